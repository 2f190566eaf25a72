import PrecLabSupport

/// A numpy `.npy` array (format versions 1.0, 2.0 and 3.0), viewed in place.
///
/// The header is a Python dict literal (`{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }`); it is parsed, never assumed to have a fixed size. `V2` (how
/// ml_dtypes saves bfloat16) is read as BF16 only when the caller asks, because numpy
/// itself only knows it as two opaque bytes.
public final class NpyArray: @unchecked Sendable {
    public let name: String
    /// The preamble and header dict, as parsed.
    public let header: NpyHeader
    public var descr: String { header.descr }
    public var dtype: TensorDType { header.dtype }
    public var isBigEndian: Bool { header.isBigEndian }
    public var fortranOrder: Bool { header.fortranOrder }
    public var shape: [Int] { header.shape }
    public var elementCount: Int { header.elementCount }
    public var version: (major: UInt8, minor: UInt8) { header.version }
    /// The element bytes exactly as stored (byte order and memory order of the file).
    public let storedBytes: UnsafeRawBufferPointer
    /// Keeps the memory behind `storedBytes` alive (a mapping or an inflated buffer).
    private let owner: AnyObject

    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Maps and parses a `.npy` file.
    public convenience init(path: String, bfloat16ForV2: Bool = false) throws {
        let file = try MappedFile(path: path)
        try self.init(bytes: file.bytes, name: path, owner: file, bfloat16ForV2: bfloat16ForV2)
    }

    /// Parses `.npy` bytes held alive by `owner`. `name` is used in error messages.
    public init(bytes: UnsafeRawBufferPointer, name: String, owner: AnyObject, bfloat16ForV2: Bool = false) throws {
        self.name = name
        self.owner = owner
        let header = try NpyHeader(prefix: bytes, name: name, bfloat16ForV2: bfloat16ForV2)
        self.header = header
        let dataStart = header.dataOffset
        guard bytes.count - dataStart == header.dataBytes else {
            throw PrecLabError.badData(file: name, offset: dataStart, "data holds \(bytes.count - dataStart) bytes, expected \(header.dataBytes) (\(header.elementCount) elements of '\(header.descr)')")
        }
        storedBytes = UnsafeRawBufferPointer(rebasing: bytes[dataStart..<bytes.count])
    }

    /// The safetensors dtype and byte order of a numpy descr, when supported.
    static func dtype(descr: String, bfloat16ForV2: Bool) -> (TensorDType, Bool)? {
        guard let first = descr.first else { return nil }
        var order: Character = "="
        var code = Substring(descr)
        if "<>|=".contains(first) { order = first; code = code.dropFirst() }
        let table: [Substring: TensorDType] = [
            "b1": .bool, "u1": .u8, "i1": .i8, "i2": .i16, "u2": .u16, "i4": .i32, "u4": .u32,
            "i8": .i64, "u8": .u64, "f2": .f16, "f4": .f32, "f8": .f64, "c8": .c64,
        ]
        var dtype = table[code]
        if dtype == nil, code == "V2", bfloat16ForV2 { dtype = .bf16 }
        guard let dtype else { return nil }
        // V2 stores bytes as they are in memory (little-endian on every numpy platform in use).
        return (dtype, order == ">" && dtype.bitWidth > 8 && code != "V2")
    }

    /// The elements in C (row-major) order and little-endian byte order: swaps bytes of
    /// big-endian arrays and transposes Fortran-ordered ones.
    public func rowMajorLittleEndianBytes() -> [UInt8] {
        let width = max(1, dtype.bitWidth / 8)
        var output = [UInt8](repeating: 0, count: storedBytes.count)
        // Byte swap unit: C64 is two F32 values.
        let swapUnit = dtype == .c64 ? 4 : width
        output.withUnsafeMutableBytes { out in
            if !fortranOrder || shape.count <= 1 {
                out.copyMemory(from: storedBytes)
            } else {
                // Stored index of C-order element: Fortran strides are the reversed products.
                var fortranStrides = [Int](repeating: 1, count: shape.count)
                for axis in 1..<shape.count { fortranStrides[axis] = fortranStrides[axis - 1] * shape[axis - 1] }
                var index = [Int](repeating: 0, count: shape.count)
                for element in 0..<elementCount {
                    var source = 0
                    for axis in 0..<shape.count { source += index[axis] * fortranStrides[axis] }
                    for byte in 0..<width { out[element * width + byte] = storedBytes[source * width + byte] }
                    var axis = shape.count - 1
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < shape[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
            if isBigEndian {
                var start = 0
                while start + swapUnit <= out.count {
                    var low = start, high = start + swapUnit - 1
                    while low < high { out.swapAt(low, high); low += 1; high -= 1 }
                    start += swapUnit
                }
            }
        }
        return output
    }

    /// The values as Float (exact for F16, BF16 and F32; F64 and 64-bit integers round
    /// to nearest), in row-major order. Nil for BOOL and C64.
    public func floatValues() -> [Float]? {
        let bytes = rowMajorLittleEndianBytes()
        return bytes.withUnsafeBytes { raw -> [Float]? in
            func load<T: FixedWidthInteger>(_ type: T.Type, _ i: Int) -> T {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
            }
            switch dtype {
            case .f32: return (0..<elementCount).map { Float(bitPattern: load(UInt32.self, $0)) }
            case .f64: return (0..<elementCount).map { Float(Double(bitPattern: load(UInt64.self, $0))) }
            case .bf16: return (0..<elementCount).map { Float(bitPattern: UInt32(load(UInt16.self, $0)) << 16) }
            case .f16: return (0..<elementCount).map { halfToFloat(load(UInt16.self, $0)) }
            case .u8: return (0..<elementCount).map { Float(load(UInt8.self, $0)) }
            case .i8: return (0..<elementCount).map { Float(load(Int8.self, $0)) }
            case .u16: return (0..<elementCount).map { Float(load(UInt16.self, $0)) }
            case .i16: return (0..<elementCount).map { Float(load(Int16.self, $0)) }
            case .u32: return (0..<elementCount).map { Float(load(UInt32.self, $0)) }
            case .i32: return (0..<elementCount).map { Float(load(Int32.self, $0)) }
            case .u64: return (0..<elementCount).map { Float(load(UInt64.self, $0)) }
            case .i64: return (0..<elementCount).map { Float(load(Int64.self, $0)) }
            default: return nil
            }
        }
    }
}

/// The preamble and header dict of a `.npy` file: everything but the data, so that an
/// array can be described (and its size checked) from its first bytes alone.
public struct NpyHeader: Sendable {
    public let version: (major: UInt8, minor: UInt8)
    public let descr: String
    public let dtype: TensorDType
    public let isBigEndian: Bool
    public let fortranOrder: Bool
    public let shape: [Int]
    public let elementCount: Int
    /// Where the element bytes start.
    public let dataOffset: Int
    /// How many element bytes the header promises.
    public let dataBytes: Int

    /// How many leading bytes `init(prefix:)` needs (preamble plus header), or nil when
    /// `prefix` is too short to tell (fewer than 12 bytes).
    public static func requiredLength(_ prefix: UnsafeRawBufferPointer) -> Int? {
        guard prefix.count >= 10 else { return nil }
        if prefix[6] == 1 { return 10 + Int(UInt16(littleEndian: prefix.loadUnaligned(fromByteOffset: 8, as: UInt16.self))) }
        guard prefix.count >= 12 else { return nil }
        if prefix[6] == 2 || prefix[6] == 3 {
            return 12 + Int(UInt32(littleEndian: prefix.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        }
        return 12  // unsupported version: enough to report it
    }

    /// Parses the preamble and header at the start of `prefix` (which may hold more
    /// bytes, or the whole file). `name` is used in error messages.
    public init(prefix bytes: UnsafeRawBufferPointer, name: String, bfloat16ForV2: Bool = false) throws {
        func fail(_ offset: Int, _ what: String) -> PrecLabError {
            PrecLabError.badData(file: name, offset: offset, what)
        }
        guard bytes.count >= 10 else { throw fail(bytes.count, "file ends inside the .npy preamble (\(bytes.count) bytes, need at least 10)") }
        for (index, byte) in NpyArray.magic.enumerated() where bytes[index] != byte {
            throw fail(index, "wrong magic: expected \\x93NUMPY")
        }
        let major = bytes[6], minor = bytes[7]
        version = (major, minor)
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail(bytes.count, "file ends inside the .npy preamble") }
            headerLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
            headerStart = 12
        default:
            throw fail(6, "unsupported .npy version \(major).\(minor), expected 1.0, 2.0 or 3.0")
        }
        guard minor == 0 else { throw fail(7, "unsupported .npy version \(major).\(minor), expected 1.0, 2.0 or 3.0") }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw fail(8, "header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[headerStart..<dataStart])
        try NpyHeader.checkCharacters(headerBytes, major: major, headerStart: headerStart, name: name)
        var parser = PythonLiteralParser(bytes: headerBytes, baseOffset: headerStart, name: name)
        let dictionary = try parser.parseHeaderDictionary()
        guard case .string(let descr)? = dictionary["descr"] else {
            throw fail(headerStart, "header has no string 'descr' (a structured dtype is not supported)")
        }
        guard case .bool(let fortran)? = dictionary["fortran_order"] else {
            throw fail(headerStart, "header has no boolean 'fortran_order'")
        }
        guard case .tuple(let dims)? = dictionary["shape"] else {
            throw fail(headerStart, "header has no tuple 'shape'")
        }
        var shape: [Int] = []
        for dim in dims {
            guard case .integer(let value) = dim, value >= 0 else {
                throw fail(headerStart, "shape must hold non-negative integers")
            }
            shape.append(value)
        }
        self.descr = descr
        fortranOrder = fortran
        self.shape = shape
        guard let (dtype, bigEndian) = NpyArray.dtype(descr: descr, bfloat16ForV2: bfloat16ForV2) else {
            let hint = descr.hasSuffix("V2") ? " (V2 is read as bfloat16 only when the caller asks for it)" : ""
            throw fail(headerStart, "unsupported descr '\(descr)'\(hint); expected a boolean, integer, float or complex64 type")
        }
        self.dtype = dtype
        isBigEndian = bigEndian
        guard let count = shapeElementCount(shape), let size = dtype.byteCount(elements: count) else {
            throw fail(headerStart, "shape \(shape) overflows the element count")
        }
        elementCount = count
        dataOffset = dataStart
        dataBytes = size
    }

    /// Refuses non-ASCII header bytes, as numpy does for every header preclab can read.
    ///
    /// numpy decodes v1/v2 headers as latin-1 and v3 headers as UTF-8 (so a v3 header
    /// that is not valid UTF-8 fails to decode), then evaluates the dict literal. Outside
    /// a string a non-ASCII character is a syntax error; inside one it could only be a
    /// structured dtype's field name (the keys must be exactly 'descr', 'fortran_order',
    /// 'shape', and a plain descr is ASCII), and preclab reads no structured dtypes.
    static func checkCharacters(_ header: UnsafeRawBufferPointer, major: UInt8, headerStart: Int, name: String) throws {
        guard let index = header.firstIndex(where: { $0 >= 0x80 }) else { return }
        let byte = String(header[index], radix: 16)
        if major == 3 {
            var decoder = UTF8()
            var iterator = header.makeIterator()
            var valid = true
            decoding: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue: continue
                case .emptyInput: break decoding
                case .error: valid = false; break decoding
                }
            }
            if !valid {
                throw PrecLabError.badData(file: name, offset: headerStart, "invalid .npy header: a version 3.0 header must be UTF-8 and this one is not (byte 0x\(byte) at offset \(headerStart + index)); numpy cannot decode it")
            }
        }
        throw PrecLabError.badData(file: name, offset: headerStart + index, "invalid .npy header: non-ASCII byte 0x\(byte); numpy accepts non-ASCII characters only in structured field names, which preclab does not read")
    }
}

/// IEEE binary16 to binary32, exact (done by hand so the module needs no format library).
func halfToFloat(_ bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = Int(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa × 2^-24, exact in binary32.
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    case 31:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | mantissa << 13)
    }
}

/// The few Python literals a `.npy` header uses.
enum PythonLiteral: Equatable {
    case string(String)
    case integer(Int)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case dictionary([String: PythonLiteral])
}

/// Parses the dict literal of a `.npy` header (strings, ints, booleans, None, tuples,
/// lists, nested dicts), with offsets in errors.
struct PythonLiteralParser {
    let bytes: UnsafeRawBufferPointer
    let baseOffset: Int
    let name: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, baseOffset: Int, name: String) {
        self.bytes = bytes
        self.baseOffset = baseOffset
        self.name = name
    }

    func fail(_ what: String) -> PrecLabError {
        PrecLabError.badData(file: name, offset: baseOffset + position, "invalid .npy header: \(what)")
    }

    mutating func parseHeaderDictionary() throws -> [String: PythonLiteral] {
        skipSpace()
        guard case .dictionary(let dictionary) = try parseValue(depth: 0) else {
            throw fail("expected a dict literal")
        }
        skipSpace()
        guard position == bytes.count else { throw fail("unexpected text after the dict") }
        return dictionary
    }

    mutating func skipSpace() {
        while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
    }

    mutating func parseValue(depth: Int) throws -> PythonLiteral {
        guard depth < 32 else { throw fail("nesting too deep") }
        guard position < bytes.count else { throw fail("unexpected end of header") }
        let byte = bytes[position]
        switch byte {
        case UInt8(ascii: "{"):
            position += 1
            var dictionary: [String: PythonLiteral] = [:]
            while true {
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .dictionary(dictionary) }
                guard case .string(let key) = try parseValue(depth: depth + 1) else { throw fail("dict keys must be strings") }
                skipSpace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                skipSpace()
                guard dictionary[key] == nil else { throw fail("duplicate key '\(key)'") }
                dictionary[key] = try parseValue(depth: depth + 1)
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                guard position < bytes.count, bytes[position] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                position += 1
                return .dictionary(dictionary)
            }
        case UInt8(ascii: "("), UInt8(ascii: "["):
            let close = byte == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
            position += 1
            var items: [PythonLiteral] = []
            while true {
                skipSpace()
                if position < bytes.count, bytes[position] == close { position += 1; return .tuple(items) }
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                guard position < bytes.count, bytes[position] == close else { throw fail("expected ',' or a closing bracket") }
                position += 1
                return .tuple(items)
            }
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            position += 1
            var text: [UInt8] = []
            while position < bytes.count, bytes[position] != byte {
                if bytes[position] == UInt8(ascii: "\\") { throw fail("escapes in strings are not supported") }
                text.append(bytes[position])
                position += 1
            }
            guard position < bytes.count else { throw fail("unterminated string") }
            position += 1
            return .string(String(decoding: text, as: UTF8.self))
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            let start = position
            position += 1
            while position < bytes.count, (0x30...0x39).contains(bytes[position]) { position += 1 }
            // numpy 1.x wrote Python 2 longs as "3L".
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if position < bytes.count, bytes[position] == UInt8(ascii: "L") { position += 1 }
            guard let value = Int(text) else { throw fail("integer '\(text)' out of range") }
            return .integer(value)
        default:
            for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)] {
                let utf8 = Array(word.utf8)
                if position + utf8.count <= bytes.count,
                   Array(bytes[position..<(position + utf8.count)]) == utf8 {
                    position += utf8.count
                    return value
                }
            }
            throw fail("unexpected character")
        }
    }
}
