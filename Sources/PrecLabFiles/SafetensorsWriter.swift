import PrecLabSupport

/// A tensor to write: its bytes come later, from the caller's producer.
public struct SafetensorsTensorSpec: Sendable, Equatable {
    public let name: String
    public let dtype: TensorDType
    public let shape: [Int]

    public init(name: String, dtype: TensorDType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    public var byteCount: Int? { shapeElementCount(shape).flatMap { dtype.byteCount(elements: $0) } }
}

/// Writes `.safetensors` files the way the reference writer lays them out: tensors
/// sorted by dtype alignment (largest first) then by name, so every tensor is aligned
/// to its element size; `__metadata__` first in the header; the header padded with
/// spaces to a multiple of 8 bytes. The file appears only when complete
/// (`AtomicFileWriter`).
public enum SafetensorsWriter {
    /// The tensors in the order their data is laid out.
    public static func layoutOrder(_ tensors: [SafetensorsTensorSpec]) -> [SafetensorsTensorSpec] {
        tensors.sorted { lhs, rhs in
            if lhs.dtype.alignment != rhs.dtype.alignment { return lhs.dtype.alignment > rhs.dtype.alignment }
            return lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
        }
    }

    /// The 8-byte length plus padded header JSON for `tensors` in layout order.
    public static func headerBytes(_ tensors: [SafetensorsTensorSpec],
                                   metadata: [(key: String, value: String)]) throws -> [UInt8] {
        var object = JSONObject()
        if !metadata.isEmpty {
            object["__metadata__"] = .object(JSONObject(metadata.map { ($0.key, JSONValue.string($0.value)) }))
        }
        var offset = 0
        for tensor in layoutOrder(tensors) {
            guard tensor.name != "__metadata__" else {
                throw PrecLabError.invalidArgument("a tensor cannot be named __metadata__")
            }
            guard object[tensor.name] == nil else {
                throw PrecLabError.invalidArgument("tensor '\(tensor.name)' is listed twice")
            }
            guard let size = tensor.byteCount else {
                throw PrecLabError.invalidArgument("tensor '\(tensor.name)': shape \(tensor.shape) of \(tensor.dtype.name) is not a whole number of bytes")
            }
            object[tensor.name] = .object(JSONObject([
                ("dtype", .string(tensor.dtype.name)),
                ("shape", .array(tensor.shape.map { .int($0) })),
                ("data_offsets", [.int(offset), .int(offset + size)]),
            ]))
            offset += size
        }
        var json = Array(JSONValue.object(object).serialized(indent: 0).utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var bytes: [UInt8] = []
        appendLittleEndian(&bytes, UInt64(json.count))
        return bytes + json
    }

    /// Writes a file. `data` is called once per tensor in layout order and must pass
    /// exactly the tensor's bytes to the sink (in one or several pieces).
    public static func write(
        to path: String, tensors: [SafetensorsTensorSpec], metadata: [(key: String, value: String)] = [],
        force: Bool = false, inputs: [String] = [],
        data: (SafetensorsTensorSpec, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        let header = try headerBytes(tensors, metadata: metadata)
        // The whole size is known: refuse what the disk cannot take before writing.
        var fileBytes = header.count
        for tensor in tensors {
            let (sum, overflow) = fileBytes.addingReportingOverflow(tensor.byteCount ?? 0)
            fileBytes = overflow ? Int.max : sum
        }
        try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        try ResourceBudget.requireDisk(fileBytes, forOutput: path, what: "the safetensors file")
        let writer = try AtomicFileWriter(path: path, force: force, inputs: inputs)
        do {
            try writer.write(header)
            for tensor in layoutOrder(tensors) {
                var written = 0
                try data(tensor) { bytes in
                    written += bytes.count
                    try writer.write(bytes)
                }
                guard written == tensor.byteCount else {
                    throw PrecLabError.badData("\(path): tensor '\(tensor.name)' produced \(written) bytes, expected \(tensor.byteCount ?? 0)")
                }
            }
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Writes tensors whose bytes are already in memory.
    public static func write(
        to path: String, tensors: [(spec: SafetensorsTensorSpec, bytes: [UInt8])],
        metadata: [(key: String, value: String)] = [], force: Bool = false, inputs: [String] = []
    ) throws {
        var byName: [String: [UInt8]] = [:]
        for tensor in tensors { byName[tensor.spec.name] = tensor.bytes }
        try write(to: path, tensors: tensors.map(\.spec), metadata: metadata, force: force, inputs: inputs) { spec, sink in
            try byName[spec.name]!.withUnsafeBytes { try sink($0) }
        }
    }
}
