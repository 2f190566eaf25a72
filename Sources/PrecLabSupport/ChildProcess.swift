#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a child program to completion without Foundation's run loop.
///
/// Why not `Foundation.Process`: on the two-vCPU machines this project is built on,
/// `Process.waitUntilExit()` waits on the main run loop, whose timed waits can miss
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

    /// Runs `executable` (a path, or a name looked up in PATH) with `arguments`.
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
        let commandLine = ([executable] + arguments).map(shellQuoted).joined(separator: " ")
        var env = environment ?? currentEnvironment()
        for (key, value) in overrides { env[key] = value }
        let path = executable.contains("/") ? executable : (lookUp(executable, in: env["PATH"]) ?? executable)

        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw Failure.spawnFailed(command: commandLine, errno: errno)
        }
        if input != nil, pipe(&inPipe) != 0 {
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

        let deadline = monotonicSeconds() + timeout
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var open: [Int32] = [outPipe[0], errPipe[0]]
        var pendingInput = input.map { ArraySlice($0) }
        var inputFD: Int32 = input != nil ? inPipe[1] : -1
        if inputFD >= 0 { _ = fcntl(inputFD, F_SETFL, fcntl(inputFD, F_GETFL) | O_NONBLOCK) }
        if inputFD >= 0, pendingInput?.isEmpty ?? true { close(inputFD); inputFD = -1 }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var timedOut = false

        while !open.isEmpty || inputFD >= 0 {
            if monotonicSeconds() >= deadline { timedOut = true; break }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            // Short slices: a wake-up that comes early or late only costs one more turn.
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inputFD {
                    if var rest = pendingInput, !rest.isEmpty {
                        let written = rest.withUnsafeBytes { write(inputFD, $0.baseAddress, $0.count) }
                        if written > 0 { rest = rest.dropFirst(written); pendingInput = rest }
                        if written < 0 && errno != EAGAIN && errno != EINTR { rest = [] ; pendingInput = rest }
                        if rest.isEmpty { close(inputFD); inputFD = -1 }
                    }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    if entry.fd == outPipe[0] { stdout += buffer[0..<count] } else { stderr += buffer[0..<count] }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }

        var waitStatus: Int32 = 0
        while !timedOut {
            let reaped = waitpid(pid, &waitStatus, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { break }
            if monotonicSeconds() >= deadline { timedOut = true; break }
            usleep(2000)
        }
        if timedOut {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            for fd in open { close(fd) }
            if inputFD >= 0 { close(inputFD) }
            while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
            throw Failure.timedOut(command: commandLine, seconds: timeout,
                                   stdout: String(decoding: stdout, as: UTF8.self),
                                   stderr: String(decoding: stderr, as: UTF8.self))
        }
        let signalNumber = waitStatus & 0x7f
        if signalNumber != 0 {
            return Result(status: 128 + signalNumber, signal: signalNumber, stdout: stdout, stderr: stderr)
        }
        return Result(status: (waitStatus >> 8) & 0xff, signal: nil, stdout: stdout, stderr: stderr)
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
