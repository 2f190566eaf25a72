import PrecLabFiles
import PrecLabSupport

/// Which tensors of a checkpoint an analysis looks at: all of them, or those whose
/// names contain a match of a regular expression (Swift `Regex` syntax, searched
/// anywhere in the name, as `grep -E` does). One engine for every command.
public struct TensorSelection: @unchecked Sendable {
    /// The pattern as given; nil selects every tensor.
    public let pattern: String?
    private let regex: Regex<AnyRegexOutput>?
    /// When set, only these names (a shard of the selected tensors, `TensorSharding`).
    public private(set) var shardNames: Set<String>? = nil

    /// Every tensor.
    public static let all = TensorSelection()

    private init() {
        pattern = nil
        regex = nil
    }

    /// Tensors whose names contain a match of `pattern`.
    /// - Throws: `PrecLabError.invalidArgument` when the pattern does not compile.
    public init(pattern: String) throws {
        do {
            regex = try Regex(pattern)
        } catch {
            throw PrecLabError.invalidArgument("'\(pattern)' is not a valid regular expression: \(error)")
        }
        self.pattern = pattern
    }

    /// `init(pattern:)` when a pattern is given, `all` otherwise.
    public init(optionalPattern: String?) throws {
        if let optionalPattern { try self.init(pattern: optionalPattern) } else { self.init() }
    }

    /// The same pattern, further restricted to `names` (one shard's tensors).
    public func restricted(to names: Set<String>) -> TensorSelection {
        var copy = self
        copy.shardNames = names
        return copy
    }

    /// The same pattern without a shard restriction.
    public var unrestricted: TensorSelection {
        var copy = self
        copy.shardNames = nil
        return copy
    }

    public func includes(_ name: String) -> Bool {
        if let shardNames, !shardNames.contains(name) { return false }
        guard let regex else { return true }
        return (try? regex.firstMatch(in: name)) != nil
    }
}

extension Checkpoint {
    /// Every file this checkpoint is read from: the path given, the index JSON of a
    /// sharded checkpoint and every shard. Outputs must never replace any of them.
    public var filePaths: [String] {
        var paths = [path]
        if let indexPath { paths.append(indexPath) }
        paths += shards.map(\.path)
        return paths
    }
}

/// A selection is encoded as its pattern (nil: every tensor); a shard restriction is
/// not part of it (merged results select what the unsharded run selected).
extension TensorSelection: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(optionalPattern: container.decodeNil() ? nil : container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let pattern { try container.encode(pattern) } else { try container.encodeNil() }
    }
}
