#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a child program to completion without Foundation's run loop.
///
/// Why not `Foundation.Process`: on the two-vCPU machines this project is built on,
/// Foundation's `Process` waits for its child on the main run loop, whose timed waits can miss
/// their wake-up when the CPUs' monotonic clocks disagree, and then never return
/// (measured; see docs/testing.md). This runner uses `posix_spawn`, reads stdout and
/// stderr together with `poll` in bounded slices, and reaps the child with
/// `waitpid(WNOHANG)`, so every wait ends by its own deadline. A child that outlives
/// its deadline is killed with its whole process group and reported with its command
/// line.
public enum ChildProcess {
    /// What a finished child printed and how it ended.
    public struct Result: Sendable {
        /// The exit status, or 128 + signal number when a signal ended the child.
        public let status: Int32
        /// Set when a signal ended the child.
        public let signal: Int32?
        public let stdout: [UInt8]
        public let stderr: [UInt8]
        /// The child's peak resident set in KiB (`ru_maxrss`), when it was reaped.
        public let peakResidentKiB: Int?
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Why a child could not be run to completion.
    public enum Failure: Error, CustomStringConvertible {
        case spawnFailed(command: String, errno: Int32)
        case timedOut(command: String, seconds: Double, stdout: String, stderr: String)

        public var description: String {
            switch self {
            case .spawnFailed(let command, let code):
                return "could not start \(command): \(String(cString: strerror(code)))"
            case .timedOut(let command, let seconds, let stdout, let stderr):
                return "timed out after \(seconds) s and was killed: \(command)"
                    + "\n--- stdout (tail) ---\n\(String(stdout.suffix(2000)))"
                    + "\n--- stderr (tail) ---\n\(String(stderr.suffix(2000)))"
            }
        }
    }

    /// Runs `executable` (a path, or a name looked up in PATH) with `arguments` to the
    /// end and returns what it printed.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; nil inherits this process's.
    ///   - overrides: variables set (or replaced) on top of that environment.
    ///   - currentDirectory: the child's working directory; nil keeps this one's.
    ///   - input: bytes written to the child's standard input (then closed); nil gives
    ///     it /dev/null.
    ///   - timeout: seconds until the child and its process group are killed and
    ///     `Failure.timedOut` is thrown.
    public static func run(_ executable: String, _ arguments: [String] = [],
                           environment: [String: String]? = nil,
                           overrides: [String: String] = [:],
                           currentDirectory: String? = nil,
                           input: [UInt8]? = nil,
                           timeout: Double = 300) throws -> Result {
        let child = try start(executable, arguments, environment: environment, overrides: overrides,
                              currentDirectory: currentDirectory, input: input)
        if let result = child.wait(timeout: timeout) { return result }
        let killed = child.kill()
        throw Failure.timedOut(command: child.commandLine, seconds: timeout,
                               stdout: killed.stdoutText, stderr: killed.stderrText)
    }

    /// Starts a child and returns at once, for callers that signal it or watch it while
    /// it runs; `run` is `start` followed by `wait`. Same parameters as `run`.
    public static func start(_ executable: String, _ arguments: [String] = [],
                             environment: [String: String]? = nil,
                             overrides: [String: String] = [:],
                             currentDirectory: String? = nil,
                             input: [UInt8]? = nil) throws -> Running {
        let commandLine = ([executable] + arguments).map(shellQuoted).joined(separator: " ")
        var env = environment ?? currentEnvironment()
        for (key, value) in overrides { env[key] = value }
        let path = executable.contains("/") ? executable : (lookUp(executable, in: env["PATH"]) ?? executable)

        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else { throw Failure.spawnFailed(command: commandLine, errno: errno) }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw Failure.spawnFailed(command: commandLine, errno: errno)
        }
        if input != nil, pipe(&inPipe) != 0 {
            for fd in outPipe + errPipe { close(fd) }
            throw Failure.spawnFailed(command: commandLine, errno: errno)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
            posix_spawn_file_actions_addclose(&actions, inPipe[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in [outPipe[0], outPipe[1], errPipe[0], errPipe[1]] {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        if input != nil { posix_spawn_file_actions_addclose(&actions, inPipe[0]) }
        if let currentDirectory {
            guard let addChdir = spawnAddChdir else {
                throw Failure.spawnFailed(command: commandLine, errno: ENOSYS)
            }
            _ = addChdir(&actions, currentDirectory)
        }

        // Its own process group, so a timeout kills grandchildren too; default signal
        // dispositions and an empty mask whatever this process has.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t(), empty = sigset_t()
        sigfillset(&defaults)
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = CStringArray([path] + arguments)
        let envp = CStringArray(env.map { "\($0.key)=\($0.value)" }.sorted())
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv.pointers, envp.pointers)
        close(outPipe[1])
        close(errPipe[1])
        if input != nil { close(inPipe[0]) }
        guard spawned == 0 else {
            close(outPipe[0]); close(errPipe[0])
            if input != nil { close(inPipe[1]) }
            throw Failure.spawnFailed(command: commandLine, errno: spawned)
        }
        return Running(pid: pid, commandLine: commandLine, stdout: outPipe[0], stderr: errPipe[0],
                       input: input != nil ? inPipe[1] : -1, pendingInput: input ?? [])
    }

    /// A started child. Its output is collected while `wait` runs; it is killed and
    /// reaped when the value goes away unreaped.
    public final class Running: @unchecked Sendable {
        public let pid: pid_t
        public let commandLine: String
        private var open: [Int32]
        private let stdoutFD: Int32
        private var inputFD: Int32
        private var pendingInput: ArraySlice<UInt8>
        private var stdout: [UInt8] = [], stderr: [UInt8] = []
        private var result: Result?

        init(pid: pid_t, commandLine: String, stdout: Int32, stderr: Int32, input: Int32, pendingInput: [UInt8]) {
            self.pid = pid
            self.commandLine = commandLine
            open = [stdout, stderr]
            stdoutFD = stdout
            inputFD = input
            self.pendingInput = pendingInput[...]
            if inputFD >= 0 {
                _ = fcntl(inputFD, F_SETFL, fcntl(inputFD, F_GETFL) | O_NONBLOCK)
                if self.pendingInput.isEmpty { close(inputFD); inputFD = -1 }
            }
        }

        deinit {
            if result == nil { _ = kill() }
        }

        /// Sends `signal` to the child (not its group).
        public func signal(_ signal: Int32) {
            if result == nil { _ = Glibc.kill(pid, signal) }
        }

        /// Collects output until the child has exited and closed its pipes, for at most
        /// `timeout` seconds; nil when it is still running then.
        public func wait(timeout: Double) -> Result? {
            if let result { return result }
            let deadline = ChildProcess.monotonicSeconds() + timeout
            var buffer = [UInt8](repeating: 0, count: 65536)
            // At least one pass even with no time left, so `wait(timeout: 0)` polls.
            var firstPass = true
            while !open.isEmpty || inputFD >= 0 {
                let left = deadline - ChildProcess.monotonicSeconds()
                if left <= 0 && !firstPass { return nil }
                firstPass = false
                var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
                // Short slices: a wake-up that comes early or late only costs one more turn.
                let ready = poll(&fds, nfds_t(fds.count), Int32(max(0, min(100, left * 1000))))
                if ready < 0 && errno != EINTR { break }
                for entry in fds where entry.revents != 0 {
                    if entry.fd == inputFD {
                        let written = pendingInput.withUnsafeBytes { write(inputFD, $0.baseAddress, $0.count) }
                        if written > 0 { pendingInput = pendingInput.dropFirst(written) }
                        if written < 0 && errno != EAGAIN && errno != EINTR { pendingInput = [] }
                        if pendingInput.isEmpty { close(inputFD); inputFD = -1 }
                        continue
                    }
                    let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                    if count > 0 {
                        if entry.fd == stdoutFD { stdout += buffer[0..<count] } else { stderr += buffer[0..<count] }
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(entry.fd)
                        open.removeAll { $0 == entry.fd }
                    }
                }
            }
            while true {
                if let reaped = reap(options: WNOHANG) { return reaped }
                if ChildProcess.monotonicSeconds() >= deadline { return nil }
                usleep(2000)
            }
        }

        /// Kills the child and its process group, reaps it and returns what it printed.
        @discardableResult
        public func kill() -> Result {
            if let result { return result }
            _ = Glibc.kill(-pid, SIGKILL)
            _ = Glibc.kill(pid, SIGKILL)
            for fd in open { close(fd) }
            open = []
            if inputFD >= 0 { close(inputFD); inputFD = -1 }
            while true {
                if let reaped = reap(options: 0) { return reaped }
                if errno != EINTR { break }
            }
            let fallback = Result(status: 128 + SIGKILL, signal: SIGKILL, stdout: stdout, stderr: stderr,
                                  peakResidentKiB: nil)
            result = fallback
            return fallback
        }

        private func reap(options: Int32) -> Result? {
            var status: Int32 = 0
            var usage = rusage()
            let reaped = wait4(pid, &status, options, &usage)
            guard reaped == pid else { return nil }
            let signalNumber = status & 0x7f
            let finished = Result(status: signalNumber != 0 ? 128 + signalNumber : (status >> 8) & 0xff,
                                  signal: signalNumber != 0 ? signalNumber : nil,
                                  stdout: stdout, stderr: stderr, peakResidentKiB: usage.ru_maxrss)
            result = finished
            return finished
        }
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (2.29+), which the Glibc module
    /// does not export: looked up once at run time.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?,
                                                 UnsafePointer<CChar>?) -> Int32
    private static let spawnAddChdir: AddChdir? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    /// This process's environment as a dictionary.
    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    /// Seconds on CLOCK_MONOTONIC.
    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }

    /// The first executable file called `name` in the `PATH` list.
    static func lookUp(_ name: String, in path: String?) -> String? {
        for folder in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// A word quoted for a shell when it needs it, so reported command lines can be pasted.
    static func shellQuoted(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        if safe && !word.isEmpty { return word }
        var quoted = "'"
        for character in word { quoted += character == "'" ? "'\\''" : String(character) }
        return quoted + "'"
    }
}

/// A NULL-terminated array of C strings that lives as long as the value.
private final class CStringArray {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointers[index] = strdup(string) }
        pointers[strings.count] = nil
    }

    deinit {
        for index in 0..<count { free(pointers[index]) }
        pointers.deallocate()
    }
}
