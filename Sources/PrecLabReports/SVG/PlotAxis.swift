import Foundation

/// One numeric plot axis: its scale, its bounds in plotting coordinates (log10 of the
/// value on a log axis), and labelled ticks. Built from the values it must show.
struct PlotAxis {
    struct Tick {
        /// Position in plotting coordinates.
        let coordinate: Double
        let label: String
    }

    let scale: AxisScale
    let lower: Double
    let upper: Double
    let ticks: [Tick]
    /// Unlabelled minor ticks (2..9 within each decade on log axes).
    let minorTicks: [Double]

    /// The plotting coordinate of a value, or nil when the axis cannot show it
    /// (non-finite, or not positive on a log axis).
    static func coordinate(_ value: Double, scale: AxisScale) -> Double? {
        guard value.isFinite else { return nil }
        switch scale {
        case .linear: return value
        case .log10: return value > 0 ? Foundation.log10(value) : nil
        }
    }

    func coordinate(_ value: Double) -> Double? {
        PlotAxis.coordinate(value, scale: scale)
    }

    /// Where a value falls between the bounds: 0 at `lower`, 1 at `upper`.
    func fraction(_ value: Double) -> Double? {
        guard let coordinate = coordinate(value) else { return nil }
        return coordinateFraction(coordinate)
    }

    /// Where a plotting coordinate falls between the bounds. Halved first so that spans
    /// near the ends of the Double range cannot overflow.
    func coordinateFraction(_ coordinate: Double) -> Double {
        (coordinate / 2 - lower / 2) / (upper / 2 - lower / 2)
    }

    /// An axis covering `values` (which must all be showable on `scale`), expanded to
    /// nice tick values; or exactly `fixed` when given and valid for the scale.
    /// - Parameter targetTicks: about how many intervals fit along the axis.
    init(scale: AxisScale, values: [Double], fixed: ClosedRange<Double>?, targetTicks: Int) {
        self.scale = scale
        let usableFixed = fixed.flatMap { range -> ClosedRange<Double>? in
            guard range.lowerBound.isFinite, range.upperBound.isFinite,
                  range.lowerBound < range.upperBound else { return nil }
            if scale == .log10, range.lowerBound <= 0 { return nil }
            return range
        }
        let low = usableFixed?.lowerBound ?? values.min() ?? (scale == .linear ? 0 : 1)
        let high = usableFixed?.upperBound ?? values.max() ?? (scale == .linear ? 1 : 10)

        switch scale {
        case .linear:
            var (a, b) = (low, high)
            if b - a <= max(abs(a), abs(b)) * 1e-12 || b - a < 1e-290 {
                // One value (or a spread lost in rounding): centre it in a small range.
                let half = abs(a) < 1e-290 ? 1 : abs(a) * 0.1
                (a, b) = (a - half, b + half)
            }
            var scaleBack = 1.0
            if !(b - a).isFinite { (a, b, scaleBack) = (a / 2, b / 2, 2) }  // keep the span finite
            let result = usableFixed != nil
                ? AxisTicks.linearInside(lower: a, upper: b, targetCount: targetTicks)
                : AxisTicks.linear(lower: a, upper: b, targetCount: targetTicks)
            let step = result.step * scaleBack
            if scaleBack == 1 {
                lower = usableFixed?.lowerBound ?? result.ticks.first!
                upper = usableFixed?.upperBound ?? result.ticks.last!
            } else {
                // Near the ends of the Double range nice bounds would overflow: use the data's.
                (lower, upper) = (usableFixed?.lowerBound ?? a * 2, usableFixed?.upperBound ?? b * 2)
            }
            let (shownLower, shownUpper) = (lower, upper)
            let ticks = result.ticks.map { $0 * scaleBack }.filter { $0 >= shownLower && $0 <= shownUpper }
            self.ticks = ticks.map { Tick(coordinate: $0, label: AxisTicks.label($0, step: step)) }
            minorTicks = []
        case .log10:
            let decades: [Int]
            if let usableFixed {
                lower = Foundation.log10(usableFixed.lowerBound)
                upper = Foundation.log10(usableFixed.upperBound)
                let first = Int(lower.rounded(.up))
                let last = Int(upper.rounded(.down))
                decades = first <= last ? Array(first...last) : []
            } else {
                let range = AxisTicks.decades(lower: low, upper: high)
                decades = Array(range)
                lower = Double(range.lowerBound)
                upper = Double(range.upperBound)
            }
            // Label every k-th decade so labels do not crowd; minor ticks only when
            // each decade is wide enough to hold them.
            // Label every k-th decade (k = 1, 2, 5, 10, 20, ...) so labels do not crowd;
            // the decades in between get minor grid lines.
            let every = decades.count <= targetTicks + 1 ? 1
                : Int(AxisTicks.niceStep(covering: Double(decades.count - 1), intervals: max(1, targetTicks)).value)
            var ticks: [Tick] = []
            var minor: [Double] = []
            for exponent in decades {
                if exponent % every == 0 {
                    ticks.append(Tick(coordinate: Double(exponent), label: "10^\(exponent)"))
                } else if decades.count <= 80 {
                    minor.append(Double(exponent))
                }
            }
            if decades.isEmpty, let usableFixed {
                // A fixed range inside one decade has no power of ten to label: label its ends.
                ticks = [usableFixed.lowerBound, usableFixed.upperBound].map {
                    Tick(coordinate: Foundation.log10($0), label: NumberFormat.general($0))
                }
            }
            if decades.count <= targetTicks + 1 {
                let first = Int(lower.rounded(.down))
                let last = Int(upper.rounded(.up))
                for exponent in first..<max(first, last) {
                    for multiple in 2...9 {
                        let coordinate = Double(exponent) + Foundation.log10(Double(multiple))
                        if coordinate > lower, coordinate < upper { minor.append(coordinate) }
                    }
                }
            }
            self.ticks = ticks
            minorTicks = minor
        }
    }
}
