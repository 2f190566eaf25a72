#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An environment variable, or nil when unset.
public func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// The number of processors this process may run on.
public func activeProcessorCount() -> Int {
    ProcessInfo.processInfo.activeProcessorCount
}

/// A minimal mutex around pthread, for the rare shared state in parallel code.
public final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A shared counter handing out consecutive integers to worker threads.
public final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = Lock()
    public init(_ start: Int = 0) { value = start }
    /// Returns the current value and increments it.
    public func fetchAdd(_ delta: Int = 1) -> Int {
        lock.withLock {
            let old = value
            value += delta
            return old
        }
    }
}

/// Carries a value across a `@Sendable` boundary when the caller guarantees that
/// concurrent uses touch disjoint memory (for example chunks of one buffer).
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
}
