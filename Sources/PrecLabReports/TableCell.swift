/// One value in a `TextTable` or `CSVTable` row. Numbers stay numbers until they are
/// written, so the terminal can show "12.3%" while the CSV of the same table keeps every
/// bit of 0.12345678.
public enum TableCell: Sendable, Equatable, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral
{
    case text(String)
    case integer(Int)
    case number(Double)
    /// No value (written as an empty field).
    case empty

    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }

    /// The cell as a Double when it holds a number.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        case .text, .empty: return nil
        }
    }

    public static func == (lhs: TableCell, rhs: TableCell) -> Bool {
        switch (lhs, rhs) {
        case (.text(let a), .text(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        // Bitwise, so that NaN cells compare equal to themselves in tests.
        case (.number(let a), .number(let b)): return a.bitPattern == b.bitPattern
        case (.empty, .empty): return true
        default: return false
        }
    }
}

/// How a numeric column is spelled on the terminal (see `NumberFormat`).
public enum NumberStyle: Sendable, Equatable {
    /// Thousands separators: "1,234,567".
    case count
    /// "1.2k", "3.4M", "1.5B".
    case compactCount
    /// A fixed number of decimals.
    case fixed(decimals: Int)
    /// A fraction shown as a percentage with fixed decimals: 0.1234 -> "12.3%".
    case percent(decimals: Int)
    /// "1.3e-05" with the given mantissa decimals.
    case scientific(digits: Int)
    /// Significant digits, switching to scientific for tiny or huge values.
    case general(significant: Int)
    /// Degrees with fixed decimals: "12.35°".
    case degrees(decimals: Int)
    /// Shortest round-trip text.
    case shortest

    /// Spells a Double in this style. Count styles round to the nearest integer.
    public func format(_ value: Double) -> String {
        switch self {
        case .count, .compactCount:
            guard value.isFinite, abs(value) < 9.2e18 else { return NumberFormat.general(value) }
            let integer = Int(value.rounded())
            return self == .count ? NumberFormat.count(integer) : NumberFormat.compactCount(integer)
        case .fixed(let decimals): return NumberFormat.fixed(value, decimals: decimals)
        case .percent(let decimals): return NumberFormat.percent(value, decimals: decimals)
        case .scientific(let digits): return NumberFormat.scientific(value, digits: digits)
        case .general(let significant): return NumberFormat.general(value, significant: significant)
        case .degrees(let decimals): return NumberFormat.degrees(value, decimals: decimals)
        case .shortest: return NumberFormat.shortest(value)
        }
    }

    /// Spells an integer in this style. Integers are exact: `.general` and `.shortest`
    /// print every digit, `.count` groups them.
    public func format(_ value: Int) -> String {
        switch self {
        case .count: return NumberFormat.count(value)
        case .compactCount: return NumberFormat.compactCount(value)
        case .general, .shortest: return String(value)
        default: return format(Double(value))
        }
    }

    /// Spells a cell in this style (text passes through unchanged).
    public func format(_ cell: TableCell) -> String {
        switch cell {
        case .text(let text): return text
        case .integer(let value): return format(value)
        case .number(let value): return format(value)
        case .empty: return ""
        }
    }
}
