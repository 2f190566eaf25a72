import PrecLabSupport

/// How a replay stores the weights between steps. Each policy is one storage regime of
/// "Gate III" (README.md, docs/replay.md): what a trainer keeps, and so which updates can vanish.
public enum ReplayPolicy: String, CaseIterable, Sendable, Comparable, Codable {
    /// fp32 weights: the truth every other policy is measured against.
    case fp32
    /// fp32 master weights updated every step; the checkpoint is exported to the
    /// storage format (nearest-even) at the end. A coordinate looks unchanged iff the
    /// *cumulative* update rounds away.
    case master
    /// Weights stored in the storage format; each step's sum is formed in fp32 and
    /// rounded into storage with the chosen rounding mode, as
    /// `bf16_param.add_(fp32_update)` does. A step below half an ULP is lost for good.
    case pure
    /// As `pure`, with stochastic rounding keyed by (seed, tensor, step, element).
    case stochastic
    /// As `pure`, plus a Kahan compensation buffer held in the storage format.
    case kahan

    /// Policies in their fixed report order.
    public static func < (lhs: ReplayPolicy, rhs: ReplayPolicy) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses a policy list: a comma-separated list, or `all`.
    public static func parseList(_ text: String) throws -> [ReplayPolicy] {
        let words = text.split(separator: ",").map { String($0.filter { !$0.isWhitespace }).lowercased() }
        if words == ["all"] { return allCases }
        var result: [ReplayPolicy] = []
        for word in words {
            guard let policy = ReplayPolicy(rawValue: word) else {
                throw PrecLabError.invalidArgument(
                    "unknown policy '\(word)'; expected a comma-separated list of "
                        + allCases.map(\.rawValue).joined(separator: ", ") + " (or all)")
            }
            if !result.contains(policy) { result.append(policy) }
        }
        guard !result.isEmpty else { throw PrecLabError.invalidArgument("a policy list needs at least one policy") }
        return result.sorted()
    }
}
