#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// A read-only memory mapping of a whole file.
///
/// Pages are loaded only when touched, so inspecting the header of a multi-gigabyte
/// checkpoint costs a few pages of resident memory. (On Linux,
/// `Data(contentsOf:options:.mappedIfSafe)` reads the whole file instead.) The mapping
/// lives as long as this object; byte views handed out must not outlive it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    /// Maps `path`. Errors name the file and the system's reason.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PrecLabError.badData("\(path): cannot open: \(errnoText())")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw PrecLabError.badData("\(path): cannot stat: \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw PrecLabError.badData("\(path): not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let address = mmap(nil, count, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw PrecLabError.badData("\(path): cannot map into memory: \(errnoText())")
        }
        base = UnsafeRawPointer(address)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The whole file.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The bytes in `range` (which the caller has checked lies inside the file).
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range outside the mapped file")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// Tells the kernel the file will be read front to back (larger read-ahead).
    public func adviseSequential() {
        if let base { madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_SEQUENTIAL) }
    }

    /// Reads a little-endian integer at an arbitrary (possibly unaligned) offset.
    public func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// The process's peak resident memory so far, in KiB (getrusage ru_maxrss), used to
/// check that inspecting a huge file does not read it into memory.
public func peakResidentMemoryKiB() -> Int {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss)
}
