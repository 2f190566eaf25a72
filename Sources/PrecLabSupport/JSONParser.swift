/// A JSON syntax error with the byte offset where it was found.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Offset from the start of the parsed bytes.
    public let offset: Int
    public let message: String

    public var description: String { "at byte offset \(offset): \(message)" }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes.
///
/// Strict on purpose: file headers (safetensors, update streams) come from other
/// programs, and a header that two parsers read differently is a security and
/// correctness problem. So duplicate keys, invalid UTF-8, lone surrogates, `NaN`,
/// trailing commas, leading zeros and trailing garbage are all errors with an offset.
/// Integer literals that fit become `.integer(Int64)`; other numbers `.number(Double)`.
/// Nesting deeper than `maxDepth` is refused so hostile input cannot exhaust the stack.
public struct JSONParser {
    public static let defaultMaxDepth = 128

    /// Parses a complete document (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position < bytes.count {
            throw parser.error("unexpected '\(parser.describe(bytes[parser.position]))' after the JSON value")
        }
        return value
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, maxDepth: maxDepth) }
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var position = 0

    private init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, message: message)
    }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F { return String(UnicodeScalar(byte)) }
        return "\\x" + String(byte, radix: 16, uppercase: true)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case let byte: throw error("unexpected '\(describe(byte))', expected a value")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws {
        let start = position
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("invalid literal, expected '\(word)'", at: start) }
        for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
            throw error("invalid literal, expected '\(word)'", at: start)
        }
        position += count
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
        position += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error(position < bytes.count ? "expected a string key" : "unexpected end of input, expected a string key")
            }
            let keyOffset = position
            let key = try parseString()
            if object[key] != nil {
                throw error("duplicate key \"\(key)\"", at: keyOffset)
            }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("expected ':' after an object key")
            }
            position += 1
            skipWhitespace()
            object[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input, expected ',' or '}'") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
            throw error("unexpected '\(describe(bytes[position]))', expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input, expected ',' or ']'") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
            throw error("unexpected '\(describe(bytes[position]))', expected ',' or ']'")
        }
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = position
        var isInteger = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else {
            throw error("invalid number: expected a digit", at: position)
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) {
                throw error("invalid number: leading zero", at: start)
            }
        } else {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else {
                throw error("invalid number: expected a digit after '.'")
            }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else {
                throw error("invalid number: expected a digit in the exponent")
            }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        // "-0" stays a number, as serde_json (the safetensors reference) reads it: an
        // offset or dimension spelled -0 is then refused like any float.
        if isInteger, text != "-0", let value = Int64(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else {
            throw error("number \(text) is out of range", at: start)
        }
        return .number(value)
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Parses a string starting at its opening quote, validating UTF-8 and escapes.
    private mutating func parseString() throws -> String {
        let start = position
        position += 1
        var scalars = String.UnicodeScalarView()
        // Fast path: a run without escapes or non-ASCII is appended as a whole.
        while true {
            guard position < bytes.count else { throw error("unterminated string", at: start) }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                scalars.append(try parseEscape())
            case 0..<0x20:
                throw error("control character \(describe(byte)) in a string (must be escaped)")
            case 0x20..<0x80:
                scalars.append(UnicodeScalar(byte))
                position += 1
            default:
                scalars.append(try decodeUTF8Scalar())
            }
        }
    }

    private mutating func parseEscape() throws -> UnicodeScalar {
        let escapeOffset = position
        position += 1
        guard position < bytes.count else { throw error("unterminated escape", at: escapeOffset) }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let first = try parseHex4(escapeOffset)
            if (0xD800..<0xDC00).contains(first) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("unpaired surrogate \\u\(String(first, radix: 16))", at: escapeOffset)
                }
                position += 2
                let second = try parseHex4(escapeOffset)
                guard (0xDC00..<0xE000).contains(second) else {
                    throw error("unpaired surrogate \\u\(String(first, radix: 16))", at: escapeOffset)
                }
                let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                return UnicodeScalar(value)!
            }
            guard let scalar = UnicodeScalar(first) else {
                throw error("unpaired surrogate \\u\(String(first, radix: 16))", at: escapeOffset)
            }
            return scalar
        default:
            throw error("invalid escape '\\\(describe(byte))'", at: escapeOffset)
        }
    }

    private mutating func parseHex4(_ escapeOffset: Int) throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape", at: escapeOffset) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw error("invalid hex digit in \\u escape", at: escapeOffset)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// Decodes one multi-byte UTF-8 sequence, rejecting overlong forms, surrogates and
    /// values beyond U+10FFFF (the rules of RFC 3629).
    private mutating func decodeUTF8Scalar() throws -> UnicodeScalar {
        let start = position
        let lead = bytes[position]
        let length: Int
        var value: UInt32
        let lowerBound: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F); lowerBound = 0x80
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F); lowerBound = 0x800
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07); lowerBound = 0x10000
        default: throw error("invalid UTF-8 byte \(describe(lead))")
        }
        guard position + length <= bytes.count else { throw error("truncated UTF-8 sequence", at: start) }
        for index in 1..<length {
            let byte = bytes[position + index]
            guard byte & 0xC0 == 0x80 else { throw error("invalid UTF-8 sequence", at: start) }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard value >= lowerBound, value <= 0x10FFFF, !(0xD800..<0xE000).contains(value),
              let scalar = UnicodeScalar(value) else {
            throw error("invalid UTF-8 sequence", at: start)
        }
        position += length
        return scalar
    }
}
