import PrecLabSupport

/// A numpy `.npz` archive: a zip of `.npy` files, stored or deflated, with ZIP64
/// extensions (numpy always writes them). Each entry's CRC-32 and size are checked.
///
/// Memory: stored entries are read in place from the mapping. A deflated entry is
/// inflated into exactly one buffer of its declared size when its data is needed
/// (`array`), after checking that size against the memory available, and in a
/// streaming pass through a fixed window when only described (`describe`, for
/// `inspect`), so a small archive declaring a huge array costs no memory to inspect.
public final class NpzArchive: @unchecked Sendable {
    public struct Entry: Sendable {
        /// Name inside the archive (`weights.npy`).
        public let name: String
        /// The array name numpy gives it (`weights`).
        public var arrayName: String { name.hasSuffix(".npy") ? String(name.dropLast(4)) : name }
        public let method: UInt16
        public let crc: UInt32
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let localHeaderOffset: Int
    }

    public let path: String
    public let file: MappedFile
    public let entries: [Entry]

    public static let localSignature: UInt32 = 0x0403_4B50

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let size = file.count
        func fail(_ offset: Int?, _ what: String) -> PrecLabError {
            PrecLabError.badData(file: file.path, offset: offset, what)
        }
        func u16(_ at: Int) -> Int { Int(file.littleEndian(UInt16.self, at: at)) }
        func u32(_ at: Int) -> Int { Int(file.littleEndian(UInt32.self, at: at)) }
        func u64(_ at: Int) throws -> Int {
            let value = file.littleEndian(UInt64.self, at: at)
            guard value <= UInt64(Int.max) else { throw fail(at, "ZIP64 value out of range") }
            return Int(value)
        }
        // End of central directory: 22 bytes plus a comment of up to 65535 bytes.
        guard size >= 22 else { throw fail(nil, "too small for a zip archive (\(size) bytes)") }
        var eocd = -1
        var probe = size - 22
        while probe >= max(0, size - 22 - 65535) {
            if file.littleEndian(UInt32.self, at: probe) == 0x0605_4B50 { eocd = probe; break }
            probe -= 1
        }
        guard eocd >= 0 else { throw fail(nil, "no zip end-of-central-directory record (not an .npz file?)") }
        var entryCount = u16(eocd + 10)
        var directorySize = u32(eocd + 12)
        var directoryOffset = u32(eocd + 16)
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64 end-of-central-directory locator sits just before.
            let locator = eocd - 20
            guard locator >= 0, file.littleEndian(UInt32.self, at: locator) == 0x0706_4B50 else {
                throw fail(eocd, "ZIP64 sizes without a ZIP64 locator")
            }
            let record = try u64(locator + 8)
            guard record >= 0, record + 56 <= size, file.littleEndian(UInt32.self, at: record) == 0x0606_4B50 else {
                throw fail(locator + 8, "ZIP64 end-of-central-directory record not found")
            }
            entryCount = try u64(record + 32)
            directorySize = try u64(record + 40)
            directoryOffset = try u64(record + 48)
        }
        guard directoryOffset <= size, directorySize <= size - directoryOffset else {
            throw fail(eocd, "central directory [\(directoryOffset), +\(directorySize)) lies outside the file")
        }
        var entries: [Entry] = []
        var position = directoryOffset
        for index in 0..<entryCount {
            guard position + 46 <= directoryOffset + directorySize,
                  file.littleEndian(UInt32.self, at: position) == 0x0201_4B50 else {
                throw fail(position, "central directory entry #\(index) is missing or damaged")
            }
            let flags = u16(position + 8)
            let method = UInt16(u16(position + 10))
            let crc = UInt32(u32(position + 16))
            var compressed = u32(position + 20)
            var uncompressed = u32(position + 24)
            let nameLength = u16(position + 28)
            let extraLength = u16(position + 30)
            let commentLength = u16(position + 32)
            var localOffset = u32(position + 42)
            let nameStart = position + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directoryOffset + directorySize else { throw fail(position, "central directory entry #\(index) runs past the directory") }
            let name = String(decoding: file.bytes(nameStart..<extraStart), as: UTF8.self)
            if flags & 1 != 0 { throw fail(position, "entry '\(name)' is encrypted") }
            // ZIP64 extra field (id 1): the 64-bit values of the fields saturated above.
            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let id = u16(extra), length = u16(extra + 2)
                var field = extra + 4
                let fieldEnd = field + length
                guard fieldEnd <= extraStart + extraLength else { throw fail(extra, "extra field of '\(name)' runs past its entry") }
                if id == 1 {
                    if uncompressed == 0xFFFF_FFFF, field + 8 <= fieldEnd { uncompressed = try u64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF, field + 8 <= fieldEnd { compressed = try u64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF, field + 8 <= fieldEnd { localOffset = try u64(field); field += 8 }
                }
                extra = fieldEnd
            }
            entries.append(Entry(name: name, method: method, crc: crc, compressedSize: compressed,
                                 uncompressedSize: uncompressed, localHeaderOffset: localOffset))
            position = next
        }
        self.entries = entries
    }

    /// The stored bytes of an entry (compressed if deflated), located through its local header.
    func rawData(_ entry: Entry) throws -> UnsafeRawBufferPointer {
        let offset = entry.localHeaderOffset
        guard offset <= file.count - 30, file.littleEndian(UInt32.self, at: offset) == NpzArchive.localSignature else {
            throw PrecLabError.badData(file: path, offset: offset, "entry '\(entry.name)': local file header not found")
        }
        let start = offset + 30 + Int(file.littleEndian(UInt16.self, at: offset + 26))
            + Int(file.littleEndian(UInt16.self, at: offset + 28))
        guard start <= file.count, entry.compressedSize <= file.count - start else {
            throw PrecLabError.badData(file: path, offset: offset, "entry '\(entry.name)': data runs past the end of the file")
        }
        return file.bytes(start..<(start + entry.compressedSize))
    }

    /// Opens one entry as an array (inflating it when deflated) and checks its CRC-32.
    public func array(_ entry: Entry, bfloat16ForV2: Bool = false) throws -> NpyArray {
        let raw = try rawData(entry)
        let label = "\(path)[\(entry.name)]"
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw PrecLabError.badData("\(label): stored entry sizes differ (\(entry.compressedSize) vs \(entry.uncompressedSize))")
            }
            guard CRC32.checksum(raw) == entry.crc else {
                throw PrecLabError.badData("\(label): CRC-32 mismatch (the entry is corrupt)")
            }
            return try NpyArray(bytes: raw, name: label, owner: file, bfloat16ForV2: bfloat16ForV2)
        case 8:
            try ResourceBudget.requireMemory(entry.uncompressedSize, for: "\(label): the inflated array")
            let storage = ByteStorage(byteCount: entry.uncompressedSize)
            do {
                try Inflate.decompress(raw, into: UnsafeMutableRawBufferPointer(
                    rebasing: storage.pointer[0..<entry.uncompressedSize]))
            } catch let error as Inflate.Failure {
                throw PrecLabError.badData("\(label): cannot inflate: \(error.description)")
            }
            guard CRC32.checksum(storage.bytes) == entry.crc else {
                throw PrecLabError.badData("\(label): CRC-32 mismatch (the entry is corrupt)")
            }
            return try NpyArray(bytes: storage.bytes, name: label, owner: storage, bfloat16ForV2: bfloat16ForV2)
        default:
            throw PrecLabError.badData("\(label): compression method \(entry.method) is not supported (only stored and deflated)")
        }
    }

    /// What an entry holds, checked without keeping its data: its `.npy` header, and
    /// that the data has the promised size and CRC-32. Deflated entries are inflated in
    /// one streaming pass through `Inflate.streamingWindow` bytes (plus the header).
    public func describe(_ entry: Entry, bfloat16ForV2: Bool = false) throws -> NpyHeader {
        let raw = try rawData(entry)
        let label = "\(path)[\(entry.name)]"
        switch entry.method {
        case 0:
            // In place from the mapping: NpyArray checks the header and the data size.
            let array = try self.array(entry, bfloat16ForV2: bfloat16ForV2)
            return try NpyHeader(prefix: UnsafeRawBufferPointer(
                rebasing: raw[0..<(raw.count - array.storedBytes.count)]), name: label, bfloat16ForV2: bfloat16ForV2)
        case 8:
            var prefix: [UInt8] = []
            var header: NpyHeader?
            var crc: UInt32 = 0
            do {
                try Inflate.stream(raw, expectedSize: entry.uncompressedSize) { piece in
                    crc = CRC32.checksum(piece, continuing: crc)
                    guard header == nil else { return }
                    // Collect the preamble and header, which may span pieces.
                    prefix += piece.prefix(NpzArchive.maximumStreamedHeader + 12 - prefix.count)
                    let needed = prefix.withUnsafeBytes { NpyHeader.requiredLength($0) }
                    if let needed, needed > NpzArchive.maximumStreamedHeader {
                        throw PrecLabError.badData(file: label, offset: 8, "the .npy header claims \(needed) bytes, above the \(NpzArchive.maximumStreamedHeader)-byte limit for deflated entries")
                    }
                    if let needed, prefix.count >= needed {
                        header = try prefix.withUnsafeBytes {
                            try NpyHeader(prefix: UnsafeRawBufferPointer(rebasing: $0[0..<needed]), name: label,
                                          bfloat16ForV2: bfloat16ForV2)
                        }
                        prefix = []
                    }
                }
            } catch let error as Inflate.Failure {
                throw PrecLabError.badData("\(label): cannot inflate: \(error.description)")
            }
            guard crc == entry.crc else {
                throw PrecLabError.badData("\(label): CRC-32 mismatch (the entry is corrupt)")
            }
            guard let header else {
                // Too short for its own header: the full parse names what is missing.
                _ = try prefix.withUnsafeBytes { try NpyHeader(prefix: $0, name: label, bfloat16ForV2: bfloat16ForV2) }
                throw PrecLabError.badData("\(label): the .npy header is incomplete")
            }
            guard entry.uncompressedSize - header.dataOffset == header.dataBytes else {
                throw PrecLabError.badData(file: label, offset: header.dataOffset, "data holds \(entry.uncompressedSize - header.dataOffset) bytes, expected \(header.dataBytes) (\(header.elementCount) elements of '\(header.descr)')")
            }
            return header
        default:
            throw PrecLabError.badData("\(label): compression method \(entry.method) is not supported (only stored and deflated)")
        }
    }

    /// The largest `.npy` header (preamble included) `describe` collects from a deflated
    /// entry. numpy itself refuses headers over 10000 characters unless told otherwise.
    public static let maximumStreamedHeader = 1 << 20

    public func array(named name: String, bfloat16ForV2: Bool = false) throws -> NpyArray? {
        guard let entry = entries.first(where: { $0.arrayName == name || $0.name == name }) else { return nil }
        return try array(entry, bfloat16ForV2: bfloat16ForV2)
    }
}

/// Heap bytes with a stable address for as long as the object lives.
final class ByteStorage: @unchecked Sendable {
    let pointer: UnsafeMutableRawBufferPointer
    let count: Int

    /// Uninitialised storage of `byteCount` bytes (filled by the caller).
    init(byteCount: Int) {
        pointer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, byteCount), alignment: 16)
        count = byteCount
    }

    convenience init(_ bytes: [UInt8]) {
        self.init(byteCount: bytes.count)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0) }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer.baseAddress, count: count) }
    deinit { pointer.deallocate() }
}
