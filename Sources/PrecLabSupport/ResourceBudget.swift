#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the machine can give a command, checked before sizes that come from input
/// files or options are allocated or written: a hostile or mistaken input is refused
/// with exit 1 and the numbers, never an abort in the allocator or a disk filled.
///
/// Memory available is the least of: `MemAvailable` from /proc/meminfo, the cgroup
/// limit minus its usage (v2 `memory.max`, v1 `memory.limit_in_bytes`), the address
/// space limit (`ulimit -v`) minus what is mapped, and `PRECLAB_MEMORY_LIMIT` (bytes)
/// when set. Free disk is `statvfs`'s `f_bavail * f_frsize` of the output's directory,
/// or `PRECLAB_DISK_LIMIT` (bytes) when that is smaller. The two variables let a user
/// (or a test) hold preclab to less than the machine has.
public enum ResourceBudget {
    /// Bytes this process may still allocate, or nil when nothing could be measured.
    public static func availableMemory() -> Int? {
        var candidates: [Int] = []
        if let text = readSmallFile("/proc/meminfo"), let kilobytes = meminfoValue(text, key: "MemAvailable") {
            candidates.append(kilobytes.multipliedReportingOverflow(by: 1024).overflow ? Int.max : kilobytes * 1024)
        }
        if let limit = cgroupRoom() { candidates.append(limit) }
        if let room = addressSpaceRoom() { candidates.append(room) }
        if let text = getenvString("PRECLAB_MEMORY_LIMIT"), let value = Int(text), value >= 0 {
            candidates.append(value)
        }
        return candidates.min()
    }

    /// Free bytes for an unprivileged writer on the file system that would hold `path`
    /// (its directory), or nil when that cannot be measured.
    public static func freeDisk(forOutput path: String) -> Int? {
        var directory = "."
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        }
        var candidates: [Int] = []
        var status = statvfs()
        if statvfs(directory, &status) == 0 {
            let (bytes, overflow) = Int(status.f_bavail).multipliedReportingOverflow(by: Int(status.f_frsize))
            candidates.append(overflow ? Int.max : bytes)
        }
        if let text = getenvString("PRECLAB_DISK_LIMIT"), let value = Int(text), value >= 0 {
            candidates.append(value)
        }
        return candidates.min()
    }

    /// Refuses (exit 1) when `bytes` exceed the memory available.
    /// - Parameter what: what needs the memory, e.g. "x.npz[w.npy]: the inflated array".
    public static func requireMemory(_ bytes: Int, for what: String) throws {
        guard let available = availableMemory(), bytes > available else { return }
        throw PrecLabError.badData("\(what) needs \(describe(bytes)) of memory, but only \(describe(available)) is available")
    }

    /// Refuses (exit 1) when writing `bytes` to `path` would not fit on its file system.
    /// Special destinations (devices, FIFOs, standard output) take no disk and pass.
    public static func requireDisk(_ bytes: Int, forOutput path: String, what: String? = nil) throws {
        if let kind = try? AtomicFileWriter.destination(of: path) {
            switch kind {
            case .specialFile, .descriptor: return
            case .absent, .regularFile: break
            }
        }
        guard let free = freeDisk(forOutput: path), bytes > free else { return }
        throw PrecLabError.badData("\(path): \(what ?? "the output") needs \(describe(bytes)) of disk, but only \(describe(free)) is free there")
    }

    /// `12345678901 bytes (11.5 GiB)`.
    public static func describe(_ bytes: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = -1
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit < 0 { return "\(bytes) bytes" }
        return "\(bytes) bytes (\((value * 10).rounded() / 10) \(units[unit]))"
    }

    /// `(a * b) + c ...` without overflow: nil when the product does not fit an Int.
    public static func product(_ factors: Int...) -> Int? {
        var result = 1
        for factor in factors {
            guard factor >= 0 else { return nil }
            let (value, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = value
        }
        return result
    }

    // MARK: Sources

    static func meminfoValue(_ text: String, key: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.dropFirst(key.count + 1).split(separator: " ")
            return fields.first.flatMap { Int($0) }
        }
        return nil
    }

    /// The cgroup's limit minus its usage, when a limit is set.
    static func cgroupRoom() -> Int? {
        let pairs = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                     ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
        for (limitPath, usagePath) in pairs {
            guard let limitText = readSmallFile(limitPath) else { continue }
            let trimmed = limitText.split(separator: "\n").first.map(String.init) ?? ""
            // "max" (v2) or a huge page-rounded number (v1) means no limit.
            guard let limit = Int(trimmed), limit < (1 << 60) else { return nil }
            let usage = readSmallFile(usagePath).flatMap { Int($0.split(separator: "\n").first ?? "") } ?? 0
            return max(0, limit - usage)
        }
        return nil
    }

    /// `ulimit -v` minus the address space already mapped, when a limit is set.
    static func addressSpaceRoom() -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { return nil }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = readSmallFile("/proc/self/statm").flatMap { Int($0.split(separator: " ").first ?? "") } ?? 0
        return max(0, Int(clamping: limit.rlim_cur) - pages * pageSize)
    }

    /// The text of a small file (a /proc or /sys entry), nil when it cannot be read.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while bytes.count < 1 << 20 {
            let count = read(fd, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
