import PrecLabFiles
import PrecLabSupport

/// Which tensors of a checkpoint an analysis looks at: all of them, or those whose
/// names contain a match of a regular expression (Swift `Regex` syntax, searched
/// anywhere in the name, as `grep -E` does). One engine for every command.
public struct TensorSelection: @unchecked Sendable {
    /// The pattern as given; nil selects every tensor.
    public let pattern: String?
    private let regex: Regex<AnyRegexOutput>?

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

    public func includes(_ name: String) -> Bool {
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
