import Foundation

/// A minimal SVG document builder: elements are appended as text, every attribute
/// value and text node is XML-escaped, and coordinates are printed with one decimal
/// (a tenth of a pixel) so files stay small and identical from run to run.
struct SVGWriter {
    let width: Double
    let height: Double
    private(set) var body: String = ""
    private var definitions: String = ""

    static let fontFamily = "Helvetica, Arial, sans-serif"

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// The finished document.
    func document() -> String {
        var output = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        output += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(svgNumber(width))\""
        output += " height=\"\(svgNumber(height))\" viewBox=\"0 0 \(svgNumber(width)) \(svgNumber(height))\""
        output += " font-family=\"\(SVGWriter.fontFamily)\" font-size=\"12\">\n"
        if !definitions.isEmpty { output += "<defs>\n" + definitions + "</defs>\n" }
        output += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        return output + body + "</svg>\n"
    }

    mutating func define(_ element: String) {
        definitions += element + "\n"
    }

    /// Appends a raw element (already escaped).
    mutating func raw(_ element: String) {
        body += element + "\n"
    }

    mutating func open(_ element: String, _ attributes: [(String, String)] = []) {
        body += "<" + element + SVGWriter.attributeText(attributes) + ">\n"
    }

    mutating func close(_ element: String) {
        body += "</" + element + ">\n"
    }

    mutating func element(_ name: String, _ attributes: [(String, String)]) {
        body += "<" + name + SVGWriter.attributeText(attributes) + "/>\n"
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, _ attributes: [(String, String)]) {
        element("rect", [("x", svgNumber(x)), ("y", svgNumber(y)),
                         ("width", svgNumber(max(0, width))), ("height", svgNumber(max(0, height)))] + attributes)
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, _ attributes: [(String, String)]) {
        element("line", [("x1", svgNumber(x1)), ("y1", svgNumber(y1)),
                         ("x2", svgNumber(x2)), ("y2", svgNumber(y2))] + attributes)
    }

    /// Text with optional rotation (degrees, about the anchor point). A label ending in
    /// "^<integer>" ("2^-3", "10^4") is drawn with the exponent as a superscript.
    mutating func text(_ content: String, x: Double, y: Double, size: Double = 12,
                       anchor: String = "start", rotate: Double? = nil,
                       _ attributes: [(String, String)] = [])
    {
        var all: [(String, String)] = [("x", svgNumber(x)), ("y", svgNumber(y))]
        if size != 12 { all.append(("font-size", svgNumber(size))) }
        if anchor != "start" { all.append(("text-anchor", anchor)) }
        if let rotate {
            all.append(("transform", "rotate(\(svgNumber(rotate)) \(svgNumber(x)) \(svgNumber(y)))"))
        }
        body += "<text" + SVGWriter.attributeText(all + attributes) + ">"
            + SVGWriter.richText(content, size: size) + "</text>\n"
    }

    static func attributeText(_ attributes: [(String, String)]) -> String {
        attributes.map { " \($0.0)=\"\(xmlEscape($0.1))\"" }.joined()
    }

    /// Escaped text content, with a trailing "^exponent" as a raised, smaller tspan.
    static func richText(_ content: String, size: Double) -> String {
        if let caret = content.lastIndex(of: "^") {
            let exponent = content[content.index(after: caret)...]
            let digits = exponent.drop { $0 == "-" || $0 == "+" || $0 == "−" }
            if !content[..<caret].isEmpty, !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit),
               exponent.count - digits.count <= 1
            {
                let base = xmlEscape(String(content[..<caret]))
                let raised = xmlEscape(String(exponent).replacingOccurrences(of: "-", with: "−"))
                return base + "<tspan dy=\"\(svgNumber(-size * 0.4))\" font-size=\"\(svgNumber(size * 0.75))\">"
                    + raised + "</tspan>"
            }
        }
        return xmlEscape(content)
    }

    /// Roughly how wide a label is, for layout (an average sans-serif glyph is about
    /// 0.58 em; a raised exponent is drawn at 0.75 size and its caret not at all).
    static func textWidth(_ content: String, size: Double = 12) -> Double {
        let rich = richText(content, size: size)
        if rich.hasSuffix("</tspan>"), let caret = content.lastIndex(of: "^") {
            let base = content[..<caret].count
            let exponent = content[content.index(after: caret)...].count
            return (Double(base) + 0.75 * Double(exponent)) * size * 0.58
        }
        return Double(content.count) * size * 0.58
    }
}

/// Escapes the five XML special characters and drops characters XML 1.0 forbids
/// (control characters other than tab, LF and CR), so any tensor name is safe to embed.
func xmlEscape(_ text: String) -> String {
    var output = ""
    output.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": output += "&amp;"
        case "<": output += "&lt;"
        case ">": output += "&gt;"
        case "\"": output += "&quot;"
        case "'": output += "&apos;"
        default:
            let value = scalar.value
            if value < 0x20, value != 0x09, value != 0x0A, value != 0x0D { continue }
            if value == 0xFFFE || value == 0xFFFF { continue }
            output.unicodeScalars.append(scalar)
        }
    }
    return output
}

/// A coordinate or size with at most one decimal, no trailing zeros and no "-0"
/// (clamped to +-1e7 so a point far outside the view cannot overflow).
func svgNumber(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let tenths = Int((min(max(value, -1e7), 1e7) * 10).rounded())
    if tenths == 0 { return "0" }
    let sign = tenths < 0 ? "-" : ""
    let magnitude = abs(tenths)
    let whole = magnitude / 10
    let fraction = magnitude % 10
    return fraction == 0 ? sign + String(whole) : sign + String(whole) + "." + String(fraction)
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
