/// A JSON document as a value. Objects keep their keys in insertion order so that
/// everything preclab writes is stable from run to run and diffs cleanly.
///
/// Reading is done by `JSONParser` (which also reports duplicate keys, as the
/// safetensors and update-stream rules require); writing by `serialized(...)`.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal that fits in 64 bits (safetensors offsets, shapes, counts).
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The value as an integer, when it is an integer literal.
    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The value as a Double (integers widen).
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// A short name of the value's kind, for error messages ("expected an array, found a string").
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON object with keys in insertion order.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var storage: [String: JSONValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JSONValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }

    /// Key-value pairs in insertion order.
    public var pairs: [(key: String, value: JSONValue)] {
        keys.map { ($0, storage[$0]!) }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.keys == rhs.keys && lhs.storage == rhs.storage
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue {
    /// A Double as JSON: non-finite values have no JSON spelling and become null.
    public static func finite(_ value: Double) -> JSONValue {
        value.isFinite ? .number(value) : .null
    }

    public static func int(_ value: Int) -> JSONValue { .integer(Int64(value)) }

    /// Serialises the value. With `indent` > 0, objects and arrays of containers are
    /// spread over lines; arrays of scalars stay on one line so shapes and curves
    /// remain readable.
    public func serialized(indent: Int = 2) -> String {
        var output = ""
        write(to: &output, indent: indent, level: 0)
        return output
    }

    private func write(to output: inout String, indent: Int, level: Int) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .number(let value): output += JSONValue.formatNumber(value)
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let elements):
            let nested = elements.contains {
                if case .array = $0 { return true }
                if case .object = $0 { return true }
                return false
            }
            if elements.isEmpty { output += "[]"; return }
            if indent == 0 || !nested {
                output += "["
                for (index, element) in elements.enumerated() {
                    if index > 0 { output += indent == 0 ? "," : ", " }
                    element.write(to: &output, indent: indent, level: level + 1)
                }
                output += "]"
                return
            }
            output += "[\n"
            for (index, element) in elements.enumerated() {
                output += String(repeating: " ", count: indent * (level + 1))
                element.write(to: &output, indent: indent, level: level + 1)
                output += index + 1 < elements.count ? ",\n" : "\n"
            }
            output += String(repeating: " ", count: indent * level) + "]"
        case .object(let object):
            if object.count == 0 { output += "{}"; return }
            if indent == 0 {
                output += "{"
                for (index, pair) in object.pairs.enumerated() {
                    if index > 0 { output += "," }
                    JSONValue.writeString(pair.key, to: &output)
                    output += ":"
                    pair.value.write(to: &output, indent: 0, level: level + 1)
                }
                output += "}"
                return
            }
            output += "{\n"
            for (index, pair) in object.pairs.enumerated() {
                output += String(repeating: " ", count: indent * (level + 1))
                JSONValue.writeString(pair.key, to: &output)
                output += ": "
                pair.value.write(to: &output, indent: indent, level: level + 1)
                output += index + 1 < object.count ? ",\n" : "\n"
            }
            output += String(repeating: " ", count: indent * level) + "}"
        }
    }

    /// A number as JSON: `compactDecimal`, and null for values JSON cannot spell.
    static func formatNumber(_ value: Double) -> String {
        value.isFinite ? compactDecimal(value) : "null"
    }

    static func writeString(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }
}
