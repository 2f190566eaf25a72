/// What a file on disk holds, decided from its first bytes (never from its name).
public enum FileKind: String, Sendable {
    case updateStream = "update-stream"
    case npy
    case npz
    case checkpointIndex = "safetensors-index"
    case safetensors
    case directory

    /// Detects the kind of `path`: a directory is a (possibly sharded) checkpoint;
    /// otherwise the stream magic, the npy magic, a zip signature, or a JSON object
    /// (an index) decide, and anything else is read as safetensors.
    public static func detect(_ path: String) throws -> FileKind {
        if isDirectory(path) { return .directory }
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func starts(with prefix: [UInt8]) -> Bool {
            bytes.count >= prefix.count && zip(bytes, prefix).allSatisfy { $0 == $1 }
        }
        // A magic with a damaged byte or two still names the kind, so that the reader
        // reports the wrong byte instead of a confusing safetensors error.
        func resembles(_ magic: [UInt8]) -> Bool {
            bytes.count >= magic.count && zip(bytes, magic).filter { $0 == $1 }.count >= magic.count - 2
        }
        if resembles(UpdateStreamFormat.magic) { return .updateStream }
        if resembles(NpyArray.magic) { return .npy }
        if starts(with: [0x50, 0x4B, 0x03, 0x04]) || starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .npz }
        // A safetensors header length whose low byte is 0x7B reads as "{": check the
        // length prefix first (it points at a JSON header inside the file), then JSON.
        if bytes.count >= 9 {
            let length = file.littleEndian(UInt64.self, at: 0)
            if length <= UInt64(SafetensorsFile.maximumHeaderLength), 8 + Int(length) <= bytes.count,
               bytes[8...].first(where: { $0 != 0x20 }) == UInt8(ascii: "{") {
                return .safetensors
            }
        }
        if let first = bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), first == UInt8(ascii: "{") {
            return .checkpointIndex
        }
        return .safetensors
    }
}
