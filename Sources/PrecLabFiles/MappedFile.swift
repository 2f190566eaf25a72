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
    /// Kept open for `read(into:at:)`, which copies without faulting pages into the mapping.
    private let descriptor: Int32

    /// Maps `path`. Errors name the file and the system's reason.
    public init(path: String) throws {
        self.path = path
        // Refuse FIFOs, devices and directories before open(), which blocks on a FIFO.
        var pathInfo = stat()
        if stat(path, &pathInfo) == 0, (pathInfo.st_mode & S_IFMT) != S_IFREG {
            throw PrecLabError.badData("\(path): not a regular file")
        }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PrecLabError.badData("\(path): cannot open: \(errnoText())")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            close(descriptor)
            throw PrecLabError.badData("\(path): cannot stat: \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw PrecLabError.badData("\(path): not a regular file")
        }
        self.descriptor = descriptor
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let address = mmap(nil, count, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            close(descriptor)
            throw PrecLabError.badData("\(path): cannot map into memory: \(errnoText())")
        }
        base = UnsafeRawPointer(address)
    }

    /// An in-memory copy of `bytes` behaving like a mapped file named `name` (for
    /// fuzzing and tests; the parsers take a `MappedFile`).
    public init(name: String, copying bytes: UnsafeRawBufferPointer) {
        path = name
        count = bytes.count
        descriptor = -1
        if bytes.isEmpty {
            base = nil
        } else {
            let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 4096)
            storage.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            base = UnsafeRawPointer(storage)
        }
    }

    deinit {
        if descriptor < 0 {
            base.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
        } else {
            if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
            close(descriptor)
        }
    }

    /// Copies `buffer.count` bytes from `offset` with pread: for one pass over data that
    /// is not kept (CRC checks), this avoids a page fault per page of the mapping.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        if descriptor < 0 {
            buffer.copyMemory(from: bytes(offset..<(offset + buffer.count)))
            return
        }
        var done = 0
        while done < buffer.count {
            let got = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw PrecLabError.badData(file: path, offset: offset + done, "read failed: \(got < 0 ? errnoText() : "unexpected end of file")")
            }
            done += got
        }
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
        if let base, descriptor >= 0 { madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_SEQUENTIAL) }
    }

    /// Maps the pages of `range` into this process's page tables now, the two halves on
    /// two threads at once (MADV_POPULATE_READ, Linux 5.14 and later; elsewhere, or when
    /// the kernel refuses, nothing happens and pages are mapped as they are first read).
    public func populate(_ range: Range<Int>, threads: Int) {
        #if os(Linux)
        let populateRead: Int32 = 22  // MADV_POPULATE_READ (Glibc's Swift overlay may lack it)
        adviseInHalves(range, populateRead, threads: threads)
        #endif
    }

    /// Drops every page of the mapping from this process's page tables, the two halves
    /// on two threads at once (the mapping stays valid: pages touched later are mapped
    /// again from the file). Unmapping a 1.4 GB stream whose every page was read takes
    /// about 0.03 s of kernel time on one thread here, 0.02 s split in two; a replay
    /// calls this when it is done with the records, instead of leaving it all to munmap.
    public func releaseAllPages(threads: Int) {
        adviseInHalves(0..<count, MADV_DONTNEED, threads: threads)
    }

    /// madvise over the pages holding `range`, split at a page boundary into two halves
    /// given to two threads (page-table work on a large mapping is per page).
    private func adviseInHalves(_ range: Range<Int>, _ advice: Int32, threads: Int) {
        guard let base, descriptor >= 0, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lower = range.lowerBound / page * page, upper = min(count, range.upperBound)
        guard upper > lower else { return }
        let middle = min(upper, (lower + (upper - lower) / 2 + page - 1) / page * page)
        let start = UnsafeSendable(UnsafeMutableRawPointer(mutating: base))
        ParallelChunks.forEach(count: 2, chunkSize: 1, threads: min(2, max(1, threads))) { parts in
            for part in parts {
                let from = part == 0 ? lower : middle, to = part == 0 ? middle : upper
                if to > from { _ = madvise(start.value + from, to - from, advice) }
            }
        }
    }

    /// Drops the resident pages wholly inside `range` from this process (they are read
    /// again from the file if touched later). Walking a multi-gigabyte file this way
    /// keeps resident memory near one window instead of the whole file.
    public func releasePages(_ range: Range<Int>) {
        guard let base, !range.isEmpty, descriptor >= 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound == count ? range.upperBound : range.upperBound / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
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
