import Foundation
import PrecLabSupport

/// The commands whose work can be split with `--shard I/N` and joined with `preclab merge`.
public enum ShardedCommand: String, Codable, Sendable {
    case compare, consistency, replay
}

/// The tensors a sharded run partitions (after `--tensors`), in the order the unsharded
/// run reports them, and the part one shard takes.
public struct ShardPlan: Sendable {
    public let shard: TensorShard
    /// Every selected tensor, in unsharded order.
    public let names: [String]
    public let elementCounts: [Int]
    /// Positions (in `names`) of this shard's tensors, ascending.
    public let indices: [Int]

    public init(shard: TensorShard, names: [String], elementCounts: [Int]) {
        self.shard = shard
        self.names = names
        self.elementCounts = elementCounts
        let assignment = TensorSharding.assign(names: names, elementCounts: elementCounts, shards: shard.count)
        indices = names.indices.filter { assignment[$0] == shard.index - 1 }
    }

    /// This shard's tensor names.
    public var selected: Set<String> { Set(indices.map { names[$0] }) }

    /// A digest of the partitioned tensors (names and sizes), part of the run identity.
    var universeDigest: String {
        var text = ""
        for (name, count) in zip(names, elementCounts) { text += "\(name)\t\(count)\n" }
        return ShardStamp.fnv1a64(text)
    }
}

/// The `shard` block of a shard's JSON: which part of which run it holds, and the
/// shard's typed per-tensor results as a lossless payload that `preclab merge` decodes
/// back into the same types the unsharded run reports from.
///
/// `run` describes the inputs and every option that changes a number; two shards merge
/// only when their `run` objects (and so their `fingerprint`) are equal.
public struct ShardStamp: Sendable {
    public let command: ShardedCommand
    public let shard: TensorShard
    public let run: JSONObject
    /// Positions of this shard's tensors among the `universe` partitioned tensors.
    public let indices: [Int]
    public let names: [String]
    public let universe: Int
    public let payload: JSONValue

    public var fingerprint: String { ShardStamp.fnv1a64(JSONValue.object(run).serialized(indent: 0)) }

    /// - Parameter identity: the inputs and options of the run (`run` gets the command
    ///   and the digest of the partitioned tensors added).
    public init<Payload: Encodable>(command: ShardedCommand, plan: ShardPlan, identity: JSONObject,
                                    payload: Payload) throws {
        var run = JSONObject([("command", .string(command.rawValue))])
        for (key, value) in identity.pairs { run[key] = value }
        run["tensor_count"] = .int(plan.names.count)
        run["tensor_digest"] = .string(plan.universeDigest)
        self.command = command
        self.shard = plan.shard
        self.run = run
        indices = plan.indices
        names = plan.indices.map { plan.names[$0] }
        universe = plan.names.count
        self.payload = try ShardStamp.encode(payload)
    }

    private init(command: ShardedCommand, shard: TensorShard, run: JSONObject, indices: [Int], names: [String],
                 universe: Int, payload: JSONValue) {
        self.command = command
        self.shard = shard
        self.run = run
        self.indices = indices
        self.names = names
        self.universe = universe
        self.payload = payload
    }

    /// The report `document` with the `shard` block added as its last key.
    public func annotate(_ document: JSONValue) -> JSONValue {
        guard var root = document.objectValue else { return document }
        root["shard"] = .object(JSONObject([
            ("index", .int(shard.index)), ("count", .int(shard.count)), ("fingerprint", .string(fingerprint)),
            ("run", .object(run)), ("tensor_count", .int(universe)),
            ("tensor_indices", .array(indices.map { .int($0) })), ("tensors", .array(names.map { .string($0) })),
            ("payload", payload),
        ]))
        return .object(root)
    }

    /// Reads the `shard` block of a shard's JSON (`path` names the file in errors).
    public static func read(_ document: JSONValue, path: String) throws -> ShardStamp {
        guard let block = document.objectValue?["shard"]?.objectValue else {
            throw PrecLabError.badData(file: path, "not the JSON of a sharded run: it has no 'shard' block "
                                       + "(write shards with --shard I/N --json FILE)")
        }
        func fail(_ what: String) -> PrecLabError { PrecLabError.badData(file: path, "shard block: \(what)") }
        guard let run = block["run"]?.objectValue, let commandName = run["command"]?.stringValue,
              let command = ShardedCommand(rawValue: commandName) else { throw fail("no 'run' with a known command") }
        guard let index = block["index"]?.integerValue, let count = block["count"]?.integerValue,
              let shard = try? TensorShard(index: Int(index), count: Int(count)) else {
            throw fail("'index' and 'count' must be integers with 1 <= index <= count")
        }
        guard let universe = block["tensor_count"]?.integerValue,
              let indices = block["tensor_indices"]?.arrayValue?.compactMap(\.integerValue),
              let names = block["tensors"]?.arrayValue?.compactMap(\.stringValue),
              indices.count == names.count, indices.allSatisfy({ $0 >= 0 && $0 < universe }) else {
            throw fail("'tensor_count', 'tensor_indices' and 'tensors' are missing or do not agree")
        }
        guard let payload = block["payload"] else { throw fail("no 'payload'") }
        let stamp = ShardStamp(command: command, shard: shard, run: run, indices: indices.map { Int($0) },
                               names: names, universe: Int(universe), payload: payload)
        if let recorded = block["fingerprint"]?.stringValue, recorded != stamp.fingerprint {
            throw fail("the fingerprint \(recorded) does not match its 'run' (edited by hand?)")
        }
        return stamp
    }

    /// The payload decoded as the typed results it was written from.
    func decodePayload<Payload: Decodable>(_ type: Payload.Type, path: String) throws -> Payload {
        do {
            return try ShardStamp.decode(type, from: payload)
        } catch {
            throw PrecLabError.badData(file: path, "shard payload does not decode as \(command.rawValue) results: \(error)")
        }
    }

    // MARK: Lossless encoding

    /// Non-finite numbers are spelled as strings; finite ones are written and read back
    /// with their shortest exact decimal, so every Double survives bit for bit.
    private static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static func encode<Value: Encodable>(_ value: Value) throws -> JSONValue {
        let data = try encoder().encode(value)
        return try data.withUnsafeBytes { try JSONParser.parse($0, maxDepth: 1024) }
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from value: JSONValue) throws -> Value {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                        negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: Data(value.serialized(indent: 0).utf8))
    }

    /// FNV-1a, 64 bits, as 16 hex digits: a short stable digest (not a security measure).
    static func fnv1a64(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A name and the reason it was left out, as carried in a shard's payload.
struct NamedReason: Codable, Sendable {
    var name: String
    var reason: String
}
