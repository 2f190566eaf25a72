import Foundation

/// Number spellings shared by every report, so that a sparsity printed in a table, a
/// plot label and a log line read the same way.
///
/// Conventions (deterministic, independent of the user's locale):
/// - non-finite values are spelled `nan`, `inf` and `-inf`;
/// - a value that rounds to zero at the requested precision is shown without a sign
///   ("0.00", never "-0.00"), since a signed zero in a table reads like a bug;
/// - scientific notation uses C's two-digit exponent ("1.3e-05").
public enum NumberFormat {
    /// An integer with thousands separators: `1234567` -> "1,234,567", `-1234` -> "-1,234".
    public static func count<T: BinaryInteger>(_ value: T) -> String {
        let digits = Array(String(value.magnitude))
        var grouped = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return value < 0 ? "-" + grouped : grouped
    }

    /// An integer in at most about five characters for wide tables: "999", "1.2k",
    /// "3.4M", "1.5B", "2.0T". Values that round up to the next unit move to it
    /// (999,960 is "1.0M", not "1000.0k").
    public static func compactCount<T: BinaryInteger>(_ value: T) -> String {
        let magnitude = Double(value.magnitude)
        let sign = value < 0 ? "-" : ""
        if magnitude < 1000 { return sign + String(value.magnitude) }
        let units: [(scale: Double, suffix: String)] = [(1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")]
        for (index, unit) in units.enumerated() {
            let text = String(format: "%.1f", magnitude / unit.scale)
            let isLast = index == units.count - 1
            if isLast || Double(text)! < 999.95 { return sign + text + unit.suffix }
        }
        return sign + String(value.magnitude)  // not reached: the last unit always returns
    }

    /// A fixed number of decimals: `fixed(0.12345, decimals: 3)` -> "0.123".
    public static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return nonFinite(value) }
        return unsignedZero(String(format: "%.\(max(0, decimals))f", value))
    }

    /// A fraction as a percentage: `percent(0.1234)` -> "12.3%".
    public static func percent(_ fraction: Double, decimals: Int = 1) -> String {
        guard fraction.isFinite else { return nonFinite(fraction) }
        return fixed(fraction * 100, decimals: decimals) + "%"
    }

    /// Scientific notation with `digits` decimals in the mantissa: "1.3e-05".
    public static func scientific(_ value: Double, digits: Int = 1) -> String {
        guard value.isFinite else { return nonFinite(value) }
        let text = String(format: "%.\(max(0, digits))e", value)
        if text.hasPrefix("-"), Double(text) == 0 { return String(text.dropFirst()) }
        return text
    }

    /// `significant` digits, fixed-point for ordinary magnitudes (1e-3 <= |x| < 1e6) and
    /// scientific outside them, so tiny values stay readable: 0.0123 -> "0.0123",
    /// 1.3e-5 -> "1.30e-05", 12345.6 -> "12346". Zero is "0".
    public static func general(_ value: Double, significant: Int = 3) -> String {
        guard value.isFinite else { return nonFinite(value) }
        if value == 0 { return "0" }
        let digits = max(1, significant)
        // The decimal exponent after rounding to `digits` significant digits, so that
        // 9.996 with three digits is treated as 10.0 and not as 9.996.
        let rounded = String(format: "%.\(digits - 1)e", value)
        let exponent = Int(rounded.split(separator: "e").last!)!
        if exponent < -3 || exponent >= 6 { return scientific(value, digits: digits - 1) }
        return fixed(value, decimals: max(0, digits - 1 - exponent))
    }

    /// An angle in degrees: `degrees(12.3456)` -> "12.35°".
    public static func degrees(_ value: Double, decimals: Int = 2) -> String {
        guard value.isFinite else { return nonFinite(value) }
        return fixed(value, decimals: decimals) + "°"
    }

    /// The shortest text that reads back (with `Double(_:)`, numpy or pandas) as exactly
    /// the same Double: "0.1", "1e-05", "-0.0", "nan", "inf", "-inf".
    public static func shortest(_ value: Double) -> String {
        guard value.isFinite else { return nonFinite(value) }
        return value.description
    }

    static func nonFinite(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        return value < 0 ? "-inf" : "inf"
    }

    /// Drops the sign of a fixed-point text whose digits are all zero ("-0.00" -> "0.00").
    static func unsignedZero(_ text: String) -> String {
        guard text.hasPrefix("-") else { return text }
        if text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
        return text
    }
}
