import Foundation

/// How values map to positions along a plot axis.
public enum AxisScale: Sendable, Equatable {
    case linear
    /// Base-10 logarithmic; only positive values can be shown.
    case log10
}

/// Tick values for plot axes.
public enum AxisTicks {
    /// Evenly spaced "nice" ticks (steps of 1, 2 or 5 times a power of ten) whose first
    /// tick is at or below `lower` and whose last is at or above `upper`, with at most
    /// about `targetCount` intervals. For `lower == upper` the single value is returned.
    /// - Returns: the ticks (ascending) and the step between them.
    public static func linear(lower: Double, upper: Double, targetCount: Int = 6) -> (ticks: [Double], step: Double) {
        precondition(lower.isFinite && upper.isFinite && lower <= upper, "AxisTicks.linear needs a finite range")
        if lower == upper { return ([lower], 0) }
        // A span this small has no representable nice step; show the ends as they are.
        guard upper - lower >= 1e-290 else { return ([lower, upper], upper - lower) }
        let step = niceStep(covering: upper - lower, intervals: max(1, targetCount))
        let first = (lower / step.value).rounded(.down)
        let last = (upper / step.value).rounded(.up)
        let ticks = stride(from: first, through: last, by: 1).map { step.scaled($0) }
        return (ticks, step.value)
    }

    /// The ticks of `linear(...)` that fall inside [lower, upper] (for a fixed axis range).
    public static func linearInside(lower: Double, upper: Double, targetCount: Int = 6) -> (ticks: [Double], step: Double) {
        let all = linear(lower: lower, upper: upper, targetCount: targetCount)
        let tolerance = all.step * 1e-9
        return (all.ticks.filter { $0 >= lower - tolerance && $0 <= upper + tolerance }, all.step)
    }

    /// Decade exponents for a log axis covering [lower, upper] (both > 0): from the
    /// largest power of ten at or below `lower` to the smallest at or above `upper`,
    /// always at least one decade. `1e-3...0.5` gives -3...0.
    public static func decades(lower: Double, upper: Double) -> ClosedRange<Int> {
        precondition(lower > 0 && upper >= lower && upper.isFinite, "AxisTicks.decades needs 0 < lower <= upper")
        let low = decadeExponent(atOrBelow: lower)
        var high = decadeExponent(atOrBelow: upper)
        if power10(high) < upper { high += 1 }
        return low...max(high, low + 1)
    }

    /// The largest e with 10^e <= value (exact at powers of ten, unlike floor(log10)).
    static func decadeExponent(atOrBelow value: Double) -> Int {
        guard value.isFinite, value > 0 else { return 0 }
        var exponent = Int(Foundation.log10(value).rounded(.down))
        while power10(exponent) > value { exponent -= 1 }
        while power10(exponent + 1) <= value { exponent += 1 }
        return exponent
    }

    /// 10^exponent as the Double nearest the decimal value (dividing by an exact power
    /// of ten where one exists, so 10^-3 is exactly the Double 0.001).
    static func power10(_ exponent: Int) -> Double {
        if exponent >= 0 { return pow(10, Double(exponent)) }
        return exponent >= -22 ? 1 / pow(10, Double(-exponent)) : pow(10, Double(exponent))
    }

    /// A step of mantissa (1, 2 or 5) times 10^exponent.
    struct Step {
        let mantissa: Double
        let exponent: Int
        var value: Double { scaled(1) }

        /// multiple * step, computed so that decimal ticks print cleanly
        /// (0.3, not 0.30000000000000004): integer arithmetic first, then one exact
        /// scaling by a power of ten.
        func scaled(_ multiple: Double) -> Double {
            let units = multiple * mantissa
            if exponent >= 0 { return units * pow(10, Double(exponent)) }
            return units / pow(10, Double(-exponent))
        }
    }

    /// The smallest 1-2-5 step that covers `span` in at most `intervals` intervals.
    static func niceStep(covering span: Double, intervals: Int) -> Step {
        let raw = span / Double(intervals)
        var exponent = decadeExponent(atOrBelow: raw)
        for _ in 0..<2 {
            for mantissa in [1.0, 2.0, 5.0] {
                let candidate = Step(mantissa: mantissa, exponent: exponent)
                if candidate.value >= raw * (1 - 1e-12) { return candidate }
            }
            exponent += 1
        }
        return Step(mantissa: 1, exponent: exponent)
    }

    /// A label for a linear tick, with as many decimals as the step needs; very large or
    /// small magnitudes use scientific notation ("2.5e-05").
    public static func label(_ value: Double, step: Double) -> String {
        if value == 0 { return "0" }
        guard step > 0, step.isFinite, value.isFinite else { return NumberFormat.general(value) }
        let stepExponent = decadeExponent(atOrBelow: step)
        let magnitude = max(abs(value), step)
        if magnitude >= 1e6 || step < 1e-4 {
            let valueExponent = decadeExponent(atOrBelow: magnitude)
            return NumberFormat.scientific(value, digits: max(0, valueExponent - stepExponent))
        }
        return NumberFormat.fixed(value, decimals: max(0, -stepExponent))
    }
}
