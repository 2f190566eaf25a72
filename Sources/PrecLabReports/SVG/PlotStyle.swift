/// Colors and marks shared by the plots.
public enum PlotPalette {
    /// Okabe-Ito colors, which stay distinguishable under the common color-vision
    /// deficiencies. Ordered so that the first few have the most contrast on white;
    /// yellow comes last.
    public static let series: [String] = [
        "#0072B2",  // blue
        "#D55E00",  // vermillion
        "#009E73",  // bluish green
        "#E69F00",  // orange
        "#CC79A7",  // reddish purple
        "#56B4E9",  // sky blue
        "#000000",  // black
        "#F0E442",  // yellow
    ]

    /// Dash patterns used once the colors repeat (series 9-16 dashed, and so on).
    static let dashes: [String?] = [nil, "7 3", "2 2", "8 3 2 3"]

    static func color(_ index: Int) -> String { series[index % series.count] }

    static func dash(_ index: Int) -> String? { dashes[(index / series.count) % dashes.count] }

    /// Color for missing (NaN) heat map cells.
    static let missing: (red: UInt8, green: UInt8, blue: UInt8) = (0xD0, 0xD0, 0xD0)

    /// Stops of a viridis-like ramp (dark blue-purple to yellow), evenly spaced on [0, 1].
    static let ramp: [(red: Double, green: Double, blue: Double)] = [
        (0x44, 0x01, 0x54), (0x48, 0x24, 0x75), (0x41, 0x44, 0x87), (0x35, 0x5F, 0x8D),
        (0x2A, 0x78, 0x8E), (0x21, 0x91, 0x8C), (0x22, 0xA8, 0x84), (0x44, 0xBF, 0x70),
        (0x7A, 0xD1, 0x51), (0xBD, 0xDF, 0x26), (0xFD, 0xE7, 0x25),
    ]

    /// The ramp color at `t` in [0, 1] (clamped), as 8-bit RGB.
    public static func rampColor(_ t: Double) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let clamped = t.isNaN ? 0 : min(max(t, 0), 1)
        let position = clamped * Double(ramp.count - 1)
        let index = min(Int(position), ramp.count - 2)
        let weight = position - Double(index)
        let a = ramp[index], b = ramp[index + 1]
        func mix(_ x: Double, _ y: Double) -> UInt8 { UInt8((x + (y - x) * weight).rounded()) }
        return (mix(a.red, b.red), mix(a.green, b.green), mix(a.blue, b.blue))
    }

    static func hex(_ color: (red: UInt8, green: UInt8, blue: UInt8)) -> String {
        let digits = Array("0123456789ABCDEF")
        var text = "#"
        for component in [color.red, color.green, color.blue] {
            text.append(digits[Int(component >> 4)])
            text.append(digits[Int(component & 15)])
        }
        return text
    }
}

/// Marker shapes, cycled per series so series differ by shape as well as color.
enum MarkerShape: CaseIterable {
    case circle, square, triangleUp, diamond, triangleDown

    static func forSeries(_ index: Int) -> MarkerShape { allCases[index % allCases.count] }

    /// The SVG element for a marker centred at (x, y) with "radius" r; fill and stroke
    /// come from the enclosing group.
    func element(x: Double, y: Double, r: Double) -> String {
        switch self {
        case .circle:
            return "<circle cx=\"\(svgNumber(x))\" cy=\"\(svgNumber(y))\" r=\"\(svgNumber(r))\"/>"
        case .square:
            let side = r * 1.7
            return "<rect x=\"\(svgNumber(x - side / 2))\" y=\"\(svgNumber(y - side / 2))\" width=\"\(svgNumber(side))\" height=\"\(svgNumber(side))\"/>"
        case .triangleUp, .triangleDown:
            let s = self == .triangleUp ? 1.0 : -1.0
            let h = r * 1.2
            return "<path d=\"M\(svgNumber(x)) \(svgNumber(y - s * h))L\(svgNumber(x + h)) \(svgNumber(y + s * h * 0.8))L\(svgNumber(x - h)) \(svgNumber(y + s * h * 0.8))Z\"/>"
        case .diamond:
            let h = r * 1.35
            return "<path d=\"M\(svgNumber(x)) \(svgNumber(y - h))L\(svgNumber(x + h)) \(svgNumber(y))L\(svgNumber(x)) \(svgNumber(y + h))L\(svgNumber(x - h)) \(svgNumber(y))Z\"/>"
        }
    }
}
