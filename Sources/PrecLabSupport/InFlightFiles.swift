#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The temporary files (and scratch directories) of outputs still being written, so
/// that SIGINT and SIGTERM can remove them before the process ends.
///
/// A signal handler may only call async-signal-safe functions: no locks, no
/// allocation, no Swift runtime calls that might allocate. So the registry is a fixed
/// table, allocated once, of path buffers guarded by atomic slot states; registering
/// copies the path into a free slot, and the handler only reads the table, `unlink`s
/// files, `rmdir`s directories, writes a preformatted message and `_exit`s.
///
/// A path longer than `pathCapacity` bytes, or one registered while all `slotCount`
/// slots are busy, is simply not removed on a signal (`register` returns nil).
public enum InFlightFiles {
    /// Slots in the table: outputs of one command in flight at the same time.
    public static let slotCount = 128
    /// Bytes per path, including the terminating NUL.
    public static let pathCapacity = Int(PATH_MAX)

    /// A registered path; pass it back to `unregister`.
    public struct Token: Sendable, Equatable {
        fileprivate let slot: Int
    }

    /// Slot states: free, being filled, holding a file, holding a directory.
    private static let free = 0, filling = 1, file = 2, directory = 3

    /// The table. Initialised on first use (never inside the handler: installing the
    /// handler touches it first).
    private static let table = Table()

    private final class Table: @unchecked Sendable {
        let states: UnsafeMutablePointer<Atomic<Int>>
        let paths: UnsafeMutablePointer<CChar>

        init() {
            states = .allocate(capacity: InFlightFiles.slotCount)
            for slot in 0..<InFlightFiles.slotCount { (states + slot).initialize(to: Atomic(InFlightFiles.free)) }
            // Left untouched until a slot is filled (a slot is read only after it is
            // written), so unused slots cost no resident memory.
            paths = .allocate(capacity: InFlightFiles.slotCount * InFlightFiles.pathCapacity)
        }

        func path(_ slot: Int) -> UnsafeMutablePointer<CChar> { paths + slot * InFlightFiles.pathCapacity }
    }

    /// Records a temporary file to remove if the process is interrupted.
    @discardableResult
    public static func register(file path: String) -> Token? { register(path, kind: file) }

    /// Records a scratch directory to remove (after the files, once empty) if the
    /// process is interrupted. Files inside it must be registered on their own.
    @discardableResult
    public static func register(directory path: String) -> Token? { register(path, kind: directory) }

    /// Forgets a path (the file was renamed into place or removed).
    public static func unregister(_ token: Token?) {
        guard let token else { return }
        table.states[token.slot].store(free, ordering: .releasing)
    }

    /// The paths registered now (for tests and diagnostics).
    public static var registeredPaths: [String] {
        (0..<slotCount).compactMap { slot in
            let state = table.states[slot].load(ordering: .acquiring)
            guard state == file || state == directory else { return nil }
            return String(cString: table.path(slot))
        }
    }

    private static func register(_ path: String, kind: Int) -> Token? {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < pathCapacity, !bytes.contains(0) else { return nil }
        for slot in 0..<slotCount {
            guard table.states[slot].compareExchange(expected: free, desired: filling,
                                                     ordering: .acquiringAndReleasing).exchanged else { continue }
            let buffer = table.path(slot)
            bytes.withUnsafeBufferPointer { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress!, byteCount: source.count)
            }
            buffer[bytes.count] = 0
            table.states[slot].store(kind, ordering: .releasing)
            return Token(slot: slot)
        }
        return nil
    }

    // MARK: Signal handling

    /// The one-line messages, preformatted when the handler is installed.
    nonisolated(unsafe) private static var interruptMessage: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var interruptMessageLength = 0
    nonisolated(unsafe) private static var terminateMessage: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var terminateMessageLength = 0

    /// Installs handlers for SIGINT and SIGTERM that remove every registered path, print
    /// `"<program>: interrupted by SIGINT ..."` on stderr and exit with 128 + the signal
    /// number (130 for SIGINT, 143 for SIGTERM). Call once, early, from the executable.
    public static func installSignalCleanup(program: String) {
        _ = table  // initialise the table outside the handler
        func preformat(_ signal: String) -> (UnsafeMutablePointer<CChar>, Int) {
            let text = "\(program): error: interrupted by \(signal); unfinished outputs removed\n"
            let bytes = Array(text.utf8CString)
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
            buffer.initialize(from: bytes, count: bytes.count)
            return (buffer, bytes.count - 1)
        }
        (interruptMessage, interruptMessageLength) = preformat("SIGINT")
        (terminateMessage, terminateMessageLength) = preformat("SIGTERM")
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in InFlightFiles.handleSignal(signal) }
        sigemptyset(&action.sa_mask)
        sigaddset(&action.sa_mask, SIGINT)
        sigaddset(&action.sa_mask, SIGTERM)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// Removes every registered path: files first, then directories (innermost last
    /// registered first). Async-signal-safe; also callable directly.
    public static func removeAll() {
        let states = table.states
        for slot in 0..<slotCount where states[slot].load(ordering: .acquiring) == file {
            unlink(table.path(slot))
        }
        var slot = slotCount - 1
        while slot >= 0 {
            if states[slot].load(ordering: .acquiring) == directory { rmdir(table.path(slot)) }
            slot -= 1
        }
    }

    private static func handleSignal(_ signal: Int32) {
        removeAll()
        let (message, length) = signal == SIGINT
            ? (interruptMessage, interruptMessageLength) : (terminateMessage, terminateMessageLength)
        if let message { _ = write(2, message, length) }
        _exit(128 + signal)
    }
}
