#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PrecLabSupport

/// A tensor of a checkpoint, with the shard that holds it.
public struct CheckpointTensor: Sendable {
    public let info: TensorInfo
    /// Index into `Checkpoint.shards`.
    public let shardIndex: Int

    public var name: String { info.name }
    public var dtype: TensorDType { info.dtype }
    public var shape: [Int] { info.shape }
}

/// A model checkpoint as one set of tensors: a single `.safetensors` file, a sharded
/// checkpoint through its `*.safetensors.index.json`, or a directory holding either.
///
/// Tensors are listed in natural order (digit runs compare as numbers, so
/// `layers.2` comes before `layers.10`), which is layer order for the usual names.
public final class Checkpoint: @unchecked Sendable {
    public let path: String
    public let shards: [SafetensorsFile]
    public let tensors: [CheckpointTensor]
    /// `__metadata__` of a single file, or the index's `metadata` (values as text).
    public let metadata: [(key: String, value: String)]
    /// The index file when the checkpoint is sharded.
    public let indexPath: String?
    private let indexByName: [String: Int]

    public static let indexFileName = "model.safetensors.index.json"

    /// Opens a file (safetensors or index JSON) or a directory.
    public static func open(_ path: String) throws -> Checkpoint {
        if isDirectory(path) {
            let directory = path.hasSuffix("/") ? String(path.dropLast()) : path
            let entries = try listDirectory(directory)
            if entries.contains(indexFileName) {
                return try Checkpoint(indexPath: directory + "/" + indexFileName)
            }
            let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
            if indexes.count == 1 {
                return try Checkpoint(indexPath: directory + "/" + indexes[0])
            }
            if indexes.count > 1 {
                throw PrecLabError.badData("\(path): holds several index files (\(indexes.joined(separator: ", "))); name the one to use")
            }
            let files = entries.filter { $0.hasSuffix(".safetensors") }
            if files.isEmpty {
                throw PrecLabError.badData("\(path): no .safetensors file and no \(indexFileName) in this directory")
            }
            let shards = try files.map { try SafetensorsFile(path: directory + "/" + $0) }
            return try Checkpoint(path: path, shards: shards, indexPath: nil,
                                  metadata: shards.count == 1 ? shards[0].metadata : [])
        }
        if path.hasSuffix(".json") {
            return try Checkpoint(indexPath: path)
        }
        let file = try SafetensorsFile(path: path)
        return try Checkpoint(path: path, shards: [file], indexPath: nil, metadata: file.metadata)
    }

    /// Opens a sharded checkpoint through its index. `total_size` is not trusted;
    /// every mapped tensor must exist in its shard, every shard tensor must be mapped to
    /// that shard, and no tensor may appear in two shards.
    public convenience init(indexPath: String) throws {
        let file = try MappedFile(path: indexPath)
        let json: JSONValue
        do {
            json = try JSONParser.parse(file.bytes)
        } catch let error as JSONParseError {
            throw PrecLabError.badData(file: indexPath, offset: error.offset, "index is not valid JSON: \(error.message)")
        }
        guard let weightMap = json.objectValue?["weight_map"]?.objectValue else {
            throw PrecLabError.badData("\(indexPath): expected an object with a 'weight_map' object (tensor name -> shard file)")
        }
        let directory = Checkpoint.directoryOf(indexPath)
        var shardNames: [String] = []
        var shardOf: [String: String] = [:]
        for (tensor, value) in weightMap.pairs {
            guard let shard = value.stringValue, !shard.isEmpty else {
                throw PrecLabError.badData("\(indexPath): weight_map entry '\(tensor)' must name a shard file, found \(value.kindName)")
            }
            guard !shard.hasPrefix("/") else {
                throw PrecLabError.badData("\(indexPath): weight_map entry '\(tensor)' names an absolute path '\(shard)'; expected a file next to the index")
            }
            // A '..' component would read from outside the index folder, like an absolute path.
            guard !shard.split(separator: "/").contains("..") else {
                throw PrecLabError.badData("\(indexPath): weight_map entry '\(tensor)' names '\(shard)', which leaves the index folder; expected a file next to the index")
            }
            if !shardNames.contains(shard) { shardNames.append(shard) }
            shardOf[tensor] = shard
        }
        if shardNames.isEmpty {
            throw PrecLabError.badData("\(indexPath): weight_map is empty")
        }
        shardNames.sort()
        let shards = try shardNames.map { try SafetensorsFile(path: directory + "/" + $0) }
        for (position, shard) in shards.enumerated() {
            for tensor in shard.tensors {
                guard let mapped = shardOf[tensor.name] else {
                    throw PrecLabError.badData("\(indexPath): tensor '\(tensor.name)' is in shard \(shardNames[position]) but missing from weight_map")
                }
                if mapped != shardNames[position] {
                    throw PrecLabError.badData("\(indexPath): tensor '\(tensor.name)' is mapped to \(mapped) but also stored in \(shardNames[position]) (a tensor must live in exactly one shard)")
                }
            }
        }
        for (tensor, shard) in shardOf {
            let position = shardNames.firstIndex(of: shard)!
            if shards[position].tensor(named: tensor) == nil {
                throw PrecLabError.badData("\(indexPath): weight_map maps tensor '\(tensor)' to \(shard), which does not contain it")
            }
        }
        var metadata: [(key: String, value: String)] = []
        if let meta = json.objectValue?["metadata"]?.objectValue {
            metadata = meta.pairs.map { ($0.key, $0.value.stringValue ?? $0.value.serialized(indent: 0)) }
        }
        try self.init(path: indexPath, shards: shards, indexPath: indexPath, metadata: metadata)
    }

    private init(path: String, shards: [SafetensorsFile], indexPath: String?,
                 metadata: [(key: String, value: String)]) throws {
        self.path = path
        self.shards = shards
        self.indexPath = indexPath
        self.metadata = metadata
        var all: [CheckpointTensor] = []
        var owner: [String: Int] = [:]
        for (position, shard) in shards.enumerated() {
            for tensor in shard.tensors {
                if let previous = owner[tensor.name] {
                    throw PrecLabError.badData("\(path): tensor '\(tensor.name)' appears in both \(shards[previous].path) and \(shard.path)")
                }
                owner[tensor.name] = position
                all.append(CheckpointTensor(info: tensor, shardIndex: position))
            }
        }
        all.sort { naturalOrder($0.name, $1.name) }
        tensors = all
        var index: [String: Int] = [:]
        for (position, tensor) in all.enumerated() { index[tensor.name] = position }
        indexByName = index
    }

    public func tensor(named name: String) -> CheckpointTensor? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, in place in its shard's mapping.
    public func bytes(of tensor: CheckpointTensor) -> UnsafeRawBufferPointer {
        shards[tensor.shardIndex].bytes(of: tensor.info)
    }

    /// Total bytes of tensor data.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.info.byteCount } }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }
}

/// Natural order of names: runs of digits compare by value, everything else bytewise,
/// so "layers.2.w" < "layers.10.w". Ties (such as "01" vs "1") fall back to bytes.
public func naturalOrder(_ lhs: String, _ rhs: String) -> Bool {
    let a = Array(lhs.utf8), b = Array(rhs.utf8)
    var i = 0, j = 0
    func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    while i < a.count, j < b.count {
        if isDigit(a[i]), isDigit(b[j]) {
            var iEnd = i, jEnd = j
            while iEnd < a.count, isDigit(a[iEnd]) { iEnd += 1 }
            while jEnd < b.count, isDigit(b[jEnd]) { jEnd += 1 }
            // Compare by value: strip leading zeros, then longer is larger.
            var iStart = i, jStart = j
            while iStart < iEnd - 1, a[iStart] == 0x30 { iStart += 1 }
            while jStart < jEnd - 1, b[jStart] == 0x30 { jStart += 1 }
            let lengthA = iEnd - iStart, lengthB = jEnd - jStart
            if lengthA != lengthB { return lengthA < lengthB }
            for k in 0..<lengthA where a[iStart + k] != b[jStart + k] {
                return a[iStart + k] < b[jStart + k]
            }
            i = iEnd
            j = jEnd
        } else {
            if a[i] != b[j] { return a[i] < b[j] }
            i += 1
            j += 1
        }
    }
    if a.count - i != b.count - j { return a.count - i < b.count - j }
    return lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// Entry names of a directory, sorted, without "." and "..".
func listDirectory(_ path: String) throws -> [String] {
    guard let handle = opendir(path) else {
        throw PrecLabError.badData("\(path): cannot list directory: \(errnoText())")
    }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}
