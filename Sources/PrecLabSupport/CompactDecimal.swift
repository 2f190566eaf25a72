/// The shortest text that reads back as the same Double, with integral values written
/// as integers ("3", not "3.0"; "-0.0" keeps its sign) and non-finite values as "nan",
/// "inf" and "-inf". The one spelling of numbers in preclab's JSON, CSV and labels.
public func compactDecimal(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == value.rounded(), abs(value) < 1e15 {
        return value == 0 && value.sign == .minus ? "-0.0" : String(Int64(value))
    }
    return "\(value)"
}
