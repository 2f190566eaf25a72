import PrecLabSupport

/// One tensor described by a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: TensorDType
    /// Row-major dimensions; `[]` is a scalar.
    public let shape: [Int]
    public let elementCount: Int
    /// Where the bytes lie, as absolute offsets in the file.
    public let fileRange: Range<Int>
    /// The header's `data_offsets`, relative to the data buffer.
    public let dataOffsets: Range<Int>

    public var byteCount: Int { fileRange.count }
}

/// A memory-mapped `.safetensors` file, validated with every rule of the reference
/// parser (in its order) so that preclab accepts and refuses exactly what it does:
///
/// 1. the file holds at least the 8-byte header length `N`;
/// 2. `N` ≤ 100 000 000;
/// 3. `8 + N` lies inside the file;
/// 4. the header is UTF-8 JSON (strict: duplicate names are errors), an object of
///    tensors plus an optional `__metadata__` object of strings;
/// 5. sorted by offset, the tensors tile the data buffer with no hole or overlap;
/// 6. each tensor's element count × element size neither overflows nor differs from
///    its byte range;
/// 7. the last tensor ends exactly at the end of the file.
///
/// Tensor bytes are views into the mapping: nothing is read until it is used.
public final class SafetensorsFile: @unchecked Sendable {
    public static let maximumHeaderLength = 100_000_000

    public let path: String
    public let file: MappedFile
    /// Tensors in the order they appear in the header.
    public let tensors: [TensorInfo]
    /// `__metadata__`, in header order.
    public let metadata: [(key: String, value: String)]
    /// Offset of the data buffer (8 + N).
    public let dataStart: Int
    private let indexByName: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let size = file.count
        guard size >= 8 else {
            throw PrecLabError.badData(file: path, "file is \(size) bytes, too small for a safetensors header (at least 8 bytes: the header length)")
        }
        let headerLength = file.littleEndian(UInt64.self, at: 0)
        guard headerLength <= UInt64(SafetensorsFile.maximumHeaderLength) else {
            throw PrecLabError.badData(file: path, offset: 0, "header length \(headerLength) exceeds the safetensors limit of 100000000 bytes")
        }
        let length = Int(headerLength)
        guard 8 + length <= size else {
            throw PrecLabError.badData(file: path, offset: 0, "header length \(length) runs past the end of the file (8 + \(length) > \(size) bytes)")
        }
        dataStart = 8 + length
        let header: JSONValue
        do {
            header = try JSONParser.parse(file.bytes(8..<dataStart))
        } catch let error as JSONParseError {
            throw PrecLabError.badData(file: path, offset: 8 + error.offset, "header is not valid UTF-8 JSON: \(error.message)")
        }
        guard let object = header.objectValue else {
            throw PrecLabError.badData(file: path, offset: 8, "header must be a JSON object, found \(header.kindName)")
        }
        var tensors: [TensorInfo] = []
        var metadata: [(key: String, value: String)] = []
        let bufferSize = size - dataStart
        for (name, value) in object.pairs {
            if name == "__metadata__" {
                metadata = try SafetensorsFile.parseMetadata(value, path: path)
                continue
            }
            tensors.append(try SafetensorsFile.parseTensor(name: name, value: value, path: path,
                                                         dataStart: dataStart, bufferSize: bufferSize))
        }
        // Rules 5-7: walk the tensors in offset order.
        let ordered = tensors.sorted {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound)
        }
        var expectedStart = 0
        for tensor in ordered {
            let offsets = tensor.dataOffsets
            if offsets.lowerBound != expectedStart {
                let what = offsets.lowerBound > expectedStart ? "leaves a hole" : "overlaps the previous tensor"
                throw PrecLabError.badData("\(path): tensor '\(tensor.name)': data_offsets [\(offsets.lowerBound), \(offsets.upperBound)] \(what): expected it to start at \(expectedStart) (tensors must tile the data buffer)")
            }
            guard let expectedBytes = tensor.dtype.byteCount(elements: tensor.elementCount) else {
                throw PrecLabError.badData("\(path): tensor '\(tensor.name)': \(tensor.elementCount) elements of \(tensor.dtype.name) overflow the byte size or do not make a whole number of bytes")
            }
            if expectedBytes != offsets.count {
                throw PrecLabError.badData("\(path): tensor '\(tensor.name)': data_offsets [\(offsets.lowerBound), \(offsets.upperBound)] hold \(offsets.count) bytes, expected \(expectedBytes) (\(tensor.dtype.name) \(tensor.shape))")
            }
            expectedStart = offsets.upperBound
        }
        if expectedStart != bufferSize {
            throw PrecLabError.badData(file: path, offset: dataStart + expectedStart, "tensors end at buffer offset \(expectedStart) but the data buffer is \(bufferSize) bytes (the last tensor must end at the end of the file)")
        }
        self.tensors = tensors
        self.metadata = metadata
        var index: [String: Int] = [:]
        for (position, tensor) in tensors.enumerated() { index[tensor.name] = position }
        indexByName = index
    }

    public func tensor(named name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, in place in the mapping (not necessarily aligned).
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        file.bytes(tensor.fileRange)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [(key: String, value: String)] {
        if value == .null { return [] }
        guard let object = value.objectValue else {
            throw PrecLabError.badData("\(path): __metadata__ must be an object of strings, found \(value.kindName)")
        }
        return try object.pairs.map { pair in
            guard let text = pair.value.stringValue else {
                throw PrecLabError.badData("\(path): __metadata__ key '\(pair.key)' must be a string, found \(pair.value.kindName)")
            }
            return (pair.key, text)
        }
    }

    private static func parseTensor(name: String, value: JSONValue, path: String,
                                     dataStart: Int, bufferSize: Int) throws -> TensorInfo {
        func fail(_ what: String) -> PrecLabError {
            PrecLabError.badData("\(path): tensor '\(name)': \(what)")
        }
        guard let entry = value.objectValue else {
            throw fail("expected an object with dtype, shape and data_offsets, found \(value.kindName)")
        }
        guard let dtypeName = entry["dtype"]?.stringValue else {
            throw fail("missing or non-string 'dtype'")
        }
        guard let dtype = TensorDType.named(dtypeName) else {
            throw fail("unknown dtype '\(dtypeName)' (expected one of \(TensorDType.allCases.map(\.name).joined(separator: ", ")))")
        }
        guard let shapeValues = entry["shape"]?.arrayValue else {
            throw fail("missing or non-array 'shape'")
        }
        var shape: [Int] = []
        for dimension in shapeValues {
            guard let value = dimension.integerValue, value >= 0 else {
                throw fail("shape \(shapeValues.map { $0.serialized(indent: 0) }) must hold non-negative integers")
            }
            shape.append(Int(value))
        }
        guard let offsetValues = entry["data_offsets"]?.arrayValue, offsetValues.count == 2,
              let begin = offsetValues[0].integerValue, let end = offsetValues[1].integerValue,
              begin >= 0, end >= 0 else {
            throw fail("'data_offsets' must be two non-negative integers [begin, end]")
        }
        guard begin <= end else {
            throw fail("data_offsets [\(begin), \(end)]: begin is after end")
        }
        guard end <= Int64(bufferSize) else {
            throw fail("data_offsets [\(begin), \(end)] run past the end of the file (data buffer is \(bufferSize) bytes)")
        }
        guard let count = shapeElementCount(shape) else {
            throw fail("shape \(shape) overflows the element count")
        }
        let range = Int(begin)..<Int(end)
        return TensorInfo(name: name, dtype: dtype, shape: shape, elementCount: count,
                          fileRange: (dataStart + range.lowerBound)..<(dataStart + range.upperBound),
                          dataOffsets: range)
    }
}
