import PrecLabSupport

/// The fixed bytes of update-stream files (spec: update-stream-v1.md).
public enum UpdateStreamFormat {
    /// `\x89PCLB\r\n\x1a`
    public static let magic: [UInt8] = [0x89, 0x50, 0x43, 0x4C, 0x42, 0x0D, 0x0A, 0x1A]
    public static let version: UInt32 = 1
    public static let preambleSize = 16
    public static let minimumHeaderLength = 2
    public static let maximumHeaderLength = 16_777_216
    /// Tag, flags, step, learning rate, payload length.
    public static let recordHeaderSize = 32
    /// CRC and padding.
    public static let recordTrailerSize = 8
    public static let formatName = "preclab-updates"
}

/// The kind of a record.
public enum UpdateRecordKind: String, Sendable {
    case base = "BASE"
    case step = "STEP"
    case final = "FINL"

    /// The four tag bytes read as a little-endian UInt32.
    var tagValue: UInt32 {
        let bytes = Array(rawValue.utf8)
        return UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
    }

    static func fromTag(_ tag: UInt32) -> UpdateRecordKind? {
        [.base, .step, .final].first { $0.tagValue == tag }
    }
}

/// A tensor listed in a stream header.
public struct UpdateStreamTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// The dtype the model stored the tensor in (safetensors name), when recorded.
    public let dtype: String?
    public let elementCount: Int
    /// Element offset of this tensor inside every payload.
    public let payloadOffset: Int

    public init(name: String, shape: [Int], dtype: String? = nil) {
        self.init(name: name, shape: shape, dtype: dtype, elementCount: shape.reduce(1, *), payloadOffset: 0)
    }

    init(name: String, shape: [Int], dtype: String?, elementCount: Int, payloadOffset: Int) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.elementCount = elementCount
        self.payloadOffset = payloadOffset
    }
}

/// The JSON header of an update stream, validated per the spec.
public struct UpdateStreamHeader: Sendable {
    public let tensors: [UpdateStreamTensor]
    public let metadata: [(key: String, value: String)]
    public let deltaDType: String
    /// Elements of all tensors together (one payload).
    public let totalElements: Int
    /// Bytes of one payload (F32).
    public var payloadLength: Int { totalElements * 4 }

    /// Validates tensors and fills in payload offsets. Throws `.badData` with `what`
    /// describing the rule broken (the caller adds the file and offset).
    public init(tensors: [UpdateStreamTensor], metadata: [(key: String, value: String)] = [],
                deltaDType: String = "F32") throws {
        guard deltaDType == "F32" else {
            throw PrecLabError.badData("delta_dtype is \"\(deltaDType)\", expected \"F32\" (the only element type of version 1)")
        }
        guard !tensors.isEmpty else {
            throw PrecLabError.badData("'tensors' is empty, expected at least one tensor")
        }
        var seen = Set<String>()
        var offset = 0
        var placed: [UpdateStreamTensor] = []
        for (index, tensor) in tensors.enumerated() {
            guard !tensor.name.isEmpty else {
                throw PrecLabError.badData("tensor #\(index) has an empty name")
            }
            guard seen.insert(tensor.name).inserted else {
                throw PrecLabError.badData("tensor name '\(tensor.name)' appears twice (names must be unique)")
            }
            guard (1...8).contains(tensor.shape.count) else {
                throw PrecLabError.badData("tensor '\(tensor.name)': shape has \(tensor.shape.count) dimensions, expected 1 to 8")
            }
            guard tensor.shape.allSatisfy({ $0 > 0 }) else {
                throw PrecLabError.badData("tensor '\(tensor.name)': shape \(tensor.shape) must hold positive integers")
            }
            // The spec: the model's storage dtype, by its safetensors name.
            if let dtype = tensor.dtype, TensorDType.named(dtype) == nil {
                let known = TensorDType.allCases.map(\.name).joined(separator: ", ")
                throw PrecLabError.badData("tensor '\(tensor.name)': dtype \"\(dtype)\" is not a safetensors dtype name (expected one of \(known))")
            }
            // Element count and payload size must fit in 63 bits (Int is 64-bit signed).
            guard let count = shapeElementCount(tensor.shape),
                  case let (end, overflow) = offset.addingReportingOverflow(count), !overflow,
                  case let (bytes, byteOverflow) = end.multipliedReportingOverflow(by: 4), !byteOverflow,
                  // A record adds 40 framing bytes to the payload; its length must fit too.
                  bytes <= Int.max - UpdateStreamFormat.recordHeaderSize - UpdateStreamFormat.recordTrailerSize else {
                throw PrecLabError.badData("tensor '\(tensor.name)': shape \(tensor.shape) makes the payload larger than 2^63 bytes")
            }
            placed.append(UpdateStreamTensor(name: tensor.name, shape: tensor.shape, dtype: tensor.dtype,
                                             elementCount: count, payloadOffset: offset))
            offset = end
        }
        self.tensors = placed
        self.metadata = metadata
        self.deltaDType = deltaDType
        totalElements = offset
    }

    /// Parses and validates header JSON. Errors are `JSONParseError` for syntax and
    /// `PrecLabError` for broken rules.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> UpdateStreamHeader {
        let json = try JSONParser.parse(bytes)
        guard let object = json.objectValue else {
            throw PrecLabError.badData("header must be a JSON object, found \(json.kindName)")
        }
        guard let format = object["format"] else {
            throw PrecLabError.badData("header has no \"format\" key, expected \"format\": \"preclab-updates\"")
        }
        guard format.stringValue == UpdateStreamFormat.formatName else {
            throw PrecLabError.badData("\"format\" is \(format.serialized(indent: 0)), expected \"preclab-updates\"")
        }
        guard let deltaValue = object["delta_dtype"] else {
            throw PrecLabError.badData("header has no \"delta_dtype\" key, expected \"delta_dtype\": \"F32\"")
        }
        guard let delta = deltaValue.stringValue else {
            throw PrecLabError.badData("\"delta_dtype\" is \(deltaValue.kindName), expected the string \"F32\"")
        }
        guard let tensorValues = object["tensors"]?.arrayValue else {
            throw PrecLabError.badData("header has no \"tensors\" array")
        }
        var tensors: [UpdateStreamTensor] = []
        for (index, value) in tensorValues.enumerated() {
            guard let entry = value.objectValue else {
                throw PrecLabError.badData("tensors[\(index)] is \(value.kindName), expected an object with name and shape")
            }
            guard let name = entry["name"]?.stringValue else {
                throw PrecLabError.badData("tensors[\(index)] has no string \"name\"")
            }
            guard let dims = entry["shape"]?.arrayValue else {
                throw PrecLabError.badData("tensor '\(name)': no \"shape\" array")
            }
            var shape: [Int] = []
            for dim in dims {
                guard let value = dim.integerValue else {
                    throw PrecLabError.badData("tensor '\(name)': shape \(JSONValue.array(dims).serialized(indent: 0)) must hold positive integers")
                }
                shape.append(Int(value))
            }
            var dtype: String? = nil
            if let dtypeValue = entry["dtype"] {
                guard let text = dtypeValue.stringValue else {
                    throw PrecLabError.badData("tensor '\(name)': \"dtype\" is \(dtypeValue.kindName), expected a string")
                }
                dtype = text
            }
            tensors.append(UpdateStreamTensor(name: name, shape: shape, dtype: dtype, elementCount: 0, payloadOffset: 0))
        }
        var metadata: [(key: String, value: String)] = []
        if let metaValue = object["metadata"] {
            guard let meta = metaValue.objectValue else {
                throw PrecLabError.badData("\"metadata\" is \(metaValue.kindName), expected an object of strings")
            }
            for (key, value) in meta.pairs {
                guard let text = value.stringValue else {
                    throw PrecLabError.badData("metadata '\(key)' is \(value.kindName), expected a string")
                }
                metadata.append((key, text))
            }
        }
        return try UpdateStreamHeader(tensors: tensors, metadata: metadata, deltaDType: delta)
    }

    /// The header as JSON (compact, keys in the spec's order).
    public var json: JSONValue {
        let tensorValues: [JSONValue] = tensors.map { tensor in
            var object = JSONObject([("name", .string(tensor.name)),
                                     ("shape", .array(tensor.shape.map { .int($0) }))])
            if let dtype = tensor.dtype { object["dtype"] = .string(dtype) }
            return .object(object)
        }
        var object = JSONObject([("format", .string(UpdateStreamFormat.formatName)),
                                 ("delta_dtype", .string(deltaDType)),
                                 ("tensors", .array(tensorValues))])
        if !metadata.isEmpty {
            object["metadata"] = .object(JSONObject(metadata.map { ($0.key, JSONValue.string($0.value)) }))
        }
        return .object(object)
    }

    /// Preamble plus space-padded header: the first bytes of a stream file.
    public func encodedPrefix() -> [UInt8] {
        var header = Array(json.serialized(indent: 0).utf8)
        while (UpdateStreamFormat.preambleSize + header.count) % 8 != 0 { header.append(0x20) }
        var bytes = UpdateStreamFormat.magic
        appendLittleEndian(&bytes, UpdateStreamFormat.version)
        appendLittleEndian(&bytes, UInt32(header.count))
        bytes += header
        return bytes
    }

    public func tensor(named name: String) -> UpdateStreamTensor? {
        tensors.first { $0.name == name }
    }
}

func appendLittleEndian<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
}
