import PrecLabAnalysis
import PrecLabSpectral
import PrecLabSupport

/// `--k`, `--rank`, `--alpha` and `--svd`: the spectral settings of `compare` and
/// `replay --spectral`, read the same way in both.
enum SpectralOptionGroup {
    static func specs(svd: Bool) -> [OptionSpec] {
        [.value("--k"), .value("--rank"), .value("--alpha")] + (svd ? [.value("--svd")] : [])
    }

    static func parse(_ arguments: ParsedArguments) throws -> SpectralOptions {
        let k = try arguments.number("--k", .positive, default: 64)
        let rank = try arguments.number("--rank", .positive, default: 64)
        let alpha = try arguments.number("--alpha", .unitInterval, default: 0.5)
        let method: TopSVDMethod
        // Exact by default: randomized angles carry an error bound and are refused above it.
        switch arguments.value("--svd") ?? "exact" {
        case "auto": method = .automatic
        case "exact": method = .exact
        case "randomized": method = .randomized
        case let other: throw UsageError("invalid value '\(other)' for --svd (expected exact, randomized or auto)")
        }
        return SpectralOptions(k: k, rank: rank, alpha: alpha, method: method)
    }
}

/// `--tensors REGEX`: one regular-expression engine for every command.
enum TensorSelectionOption {
    static let spec = OptionSpec.value("--tensors")

    static func parse(_ arguments: ParsedArguments) throws -> TensorSelection {
        guard let pattern = arguments.value("--tensors") else { return .all }
        do {
            return try TensorSelection(pattern: pattern)
        } catch let error as PrecLabError {
            throw UsageError("invalid value for --tensors: \(error)")
        }
    }
}
