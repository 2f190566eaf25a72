/// Totals over many tensors, weighted by parameter count: a metric's summary is
/// Σ params·x / Σ params over the tensors where the metric is defined (nil values are
/// left out of both sums). Sparsity is exact from the counts. `Metric` names the
/// metrics (a report's own enumeration, so a misspelt metric does not compile).
public struct WeightedSummary<Metric: Hashable & Sendable>: Sendable {
    public private(set) var tensors = 0
    public private(set) var parameters = 0
    public private(set) var changed = 0
    /// Metric names in first-seen order.
    public private(set) var metricNames: [Metric] = []
    private var sums: [Metric: (weighted: Double, weight: Double)] = [:]

    public init() {}

    public mutating func add(parameters count: Int, changed changedCount: Int, metrics: [(Metric, Double?)] = []) {
        tensors += 1
        parameters += count
        changed += changedCount
        for (name, value) in metrics {
            if sums[name] == nil {
                metricNames.append(name)
                sums[name] = (0, 0)
            }
            guard let value, value.isFinite else { continue }
            sums[name]!.weighted += Double(count) * value
            sums[name]!.weight += Double(count)
        }
    }

    /// Fraction of parameters whose stored code did not change; nil without parameters.
    public var sparsity: Double? {
        parameters == 0 ? nil : Double(parameters - changed) / Double(parameters)
    }

    /// The parameter-weighted mean of a metric; nil when no tensor defined it.
    public func mean(_ name: Metric) -> Double? {
        guard let sum = sums[name], sum.weight > 0 else { return nil }
        return sum.weighted / sum.weight
    }
}
