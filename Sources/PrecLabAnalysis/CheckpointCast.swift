import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// How `CheckpointCast` converts a checkpoint's floating tensors.
public struct CastOptions: Sendable {
    /// The target format; it must have a safetensors dtype.
    public var format: FloatFormat
    public var rounding: RoundingOptions
    /// Seed of stochastic rounding: element i of the k-th tensor in byte-sorted name
    /// order draws `StochasticKey(seed: seed, stream: k, step: 0)` at index i.
    public var seed: UInt64
    /// Floating tensors cast; the others are copied unchanged.
    public var selection: TensorSelection

    public init(format: FloatFormat, rounding: RoundingOptions = RoundingOptions(), seed: UInt64 = 0,
                selection: TensorSelection = .all) {
        self.format = format
        self.rounding = rounding
        self.seed = seed
        self.selection = selection
    }
}

/// A checkpoint converted to one safetensors file: every selected floating tensor
/// rounded to a format, chunk by chunk (bounded memory), everything else copied.
public struct CheckpointCast {
    public let checkpoint: Checkpoint
    public let options: CastOptions
    /// The safetensors dtype written for cast tensors.
    public let target: TensorDType
    /// Names of the tensors cast, in checkpoint order.
    public let castNames: [String]
    /// Floating tensors the selection left out (copied unchanged).
    public let unselectedFloating: [String]

    /// Elements converted per step (a multiple of 8 so packed sub-byte chunks end on a byte).
    public static let chunkElements = 1 << 22

    /// Plans the conversion; nothing is read yet.
    /// - Throws: `.invalidArgument` when the format has no safetensors dtype or the
    ///   selection matches no floating tensor; a data error when the checkpoint has no
    ///   floating tensor at all.
    public init(checkpoint: Checkpoint, options: CastOptions) throws {
        let format = options.format
        guard let targetName = format.safetensorsName, let target = TensorDType.named(targetName) else {
            let storable = FloatFormat.standard.compactMap { f in f.safetensorsName.map { "\(f.name) (\($0))" } }
            throw PrecLabError.invalidArgument("format \(format.name) has no safetensors dtype name, so a safetensors file cannot store it; formats safetensors can store: \(storable.joined(separator: ", "))")
        }
        let floating = checkpoint.tensors.filter { $0.dtype.isFloatingPoint }
        guard !floating.isEmpty else {
            throw PrecLabError.badData("\(checkpoint.path) has no floating tensor to cast (\(checkpoint.tensors.count) tensors, none floating)")
        }
        let selected = floating.filter { options.selection.includes($0.name) }
        guard !selected.isEmpty else {
            throw PrecLabError.invalidArgument("the tensor pattern matched none of the \(floating.count) floating tensors of \(checkpoint.path)")
        }
        self.checkpoint = checkpoint
        self.options = options
        self.target = target
        castNames = selected.map(\.name)
        unselectedFloating = floating.filter { !options.selection.includes($0.name) }.map(\.name)
    }

    /// The input's metadata (without `total_size` and old `preclab.*` keys) plus
    /// `preclab.*` keys saying what was done.
    public var metadata: [(key: String, value: String)] {
        var metadata = checkpoint.metadata.filter { $0.key != "total_size" && !$0.key.hasPrefix("preclab.") }
        metadata += [
            ("preclab.version", precLabVersion),
            ("preclab.cast.dtype", target.name),
            ("preclab.cast.format", options.format.name),
            ("preclab.cast.rounding", options.rounding.mode.rawValue),
            ("preclab.cast.seed", String(options.seed)),
            ("preclab.cast.saturate", String(options.rounding.saturate)),
            ("preclab.cast.flush_subnormals", String(options.rounding.flushSubnormals)),
            ("preclab.cast.tensors", JSONValue.array(castNames.map { .string($0) }).serialized(indent: 0)),
        ]
        if let pattern = options.selection.pattern { metadata.append(("preclab.cast.tensors_regex", pattern)) }
        return metadata
    }

    /// Writes the converted checkpoint to `output` atomically (see `AtomicFileWriter`).
    public func write(to output: String, force: Bool = false, inputs: [String] = [],
                      progress: (any ProgressReporting)? = nil) throws {
        let selected = Set(castNames)
        var specs: [SafetensorsTensorSpec] = []
        var sources: [String: CheckpointTensor] = [:]
        for tensor in checkpoint.tensors {
            let dtype = selected.contains(tensor.name) ? target : tensor.dtype
            let spec = SafetensorsTensorSpec(name: tensor.name, dtype: dtype, shape: tensor.shape)
            guard spec.byteCount != nil else {
                throw PrecLabError.badData(file: checkpoint.path, tensor: tensor.name, "\(tensor.info.elementCount) elements cannot be stored packed as \(target.name) (\(target.bitWidth)-bit elements must fill whole bytes)")
            }
            specs.append(spec)
            sources[tensor.name] = tensor
        }
        // Stream index: position in byte-sorted name order over all tensors.
        let sortedNames = checkpoint.tensors.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var streamIndex: [String: Int] = [:]
        for (index, name) in sortedNames.enumerated() { streamIndex[name] = index }

        progress?.begin("cast", work: castNames.map { Double(sources[$0]!.info.elementCount) })
        try SafetensorsWriter.write(to: output, tensors: specs, metadata: metadata, force: force, inputs: inputs) { spec, sink in
            let source = sources[spec.name]!
            let bytes = checkpoint.bytes(of: source)
            guard selected.contains(spec.name) else {
                try sink(bytes)
                return
            }
            let key = StochasticKey(seed: options.seed, stream: UInt64(streamIndex[spec.name]!), step: 0)
            try CheckpointCast.convert(bytes, from: source.dtype, count: source.info.elementCount, to: options.format,
                                       target: target, rounding: options.rounding, key: key, sink: sink)
            progress?.finished(spec.name, work: Double(source.info.elementCount))
        }
        progress?.end()
    }
    /// Converts one tensor chunk by chunk: decode the source exactly to Float (F64 goes
    /// straight from Double, avoiding a double rounding), encode with the key's element
    /// indices, pack sub-byte outputs, hand the bytes to the sink.
    public static func convert(_ bytes: UnsafeRawBufferPointer, from dtype: TensorDType, count: Int, to format: FloatFormat,
                        target: TensorDType, rounding: RoundingOptions, key: StochasticKey,
                        sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let chunk = min(count, chunkElements)
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, chunk))
        let codes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, chunk * format.storageBytes), alignment: 64)
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, chunk), alignment: 64)
        defer { values.deallocate(); codes.deallocate(); packed.deallocate() }
        let sourceFormat: FloatFormat? = dtype == .f64 ? nil : try FloatFormat.named(dtype.name)
        let sourceBytesPerElement = dtype.byteWidth  // nil for packed sub-byte sources
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            let codeBytes = UnsafeMutableRawBufferPointer(rebasing: codes[0..<(n * format.storageBytes)])
            if let sourceFormat {
                let slice: UnsafeRawBufferPointer
                if let width = sourceBytesPerElement {
                    slice = UnsafeRawBufferPointer(rebasing: bytes[(start * width)..<((start + n) * width)])
                } else {
                    // Unpack sub-byte codes into one byte each (start is a multiple of 8).
                    let from = start * dtype.bitWidth / 8
                    let to = (start + n) * dtype.bitWidth / 8
                    let unpacked = UnsafeMutableRawBufferPointer(rebasing: packed[0..<n])
                    SubBytePacking.unpack(UnsafeRawBufferPointer(rebasing: bytes[from..<to]), count: n,
                                          bitWidth: dtype.bitWidth, into: unpacked)
                    slice = UnsafeRawBufferPointer(unpacked)
                }
                if dtype == .f32, let base = slice.baseAddress, Int(bitPattern: base) % 4 == 0 {
                    // Aligned F32 (what the reference writer produces): encode in place.
                    let floats = UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: n)
                    format.encode(floats, into: codeBytes, rounding, key: key, firstIndex: start)
                } else {
                    let view = UnsafeMutableBufferPointer(rebasing: values[0..<n])
                    sourceFormat.decode(slice, into: view)
                    format.encode(UnsafeBufferPointer(view), into: codeBytes, rounding, key: key, firstIndex: start)
                }
            } else {
                // F64: encode from Double directly, in parallel fixed chunks.
                let shared = UnsafeSendable((bytes, codeBytes))
                let first = start
                let width = format.storageBytes
                ParallelChunks.forEach(count: n, chunkSize: 1 << 16) { range in
                    for i in range {
                        let bits = shared.value.0.loadUnaligned(fromByteOffset: (first + i) * 8, as: UInt64.self)
                        let x = Double(bitPattern: UInt64(littleEndian: bits))
                        let code = format.encode(x, rounding, random: key.randomBits(index: first + i))
                        switch width {
                        case 1: shared.value.1.storeBytes(of: UInt8(truncatingIfNeeded: code), toByteOffset: i, as: UInt8.self)
                        case 2: shared.value.1.storeBytes(of: UInt16(truncatingIfNeeded: code).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                        default: shared.value.1.storeBytes(of: code.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                        }
                    }
                }
            }
            if let _ = target.byteWidth {
                try sink(UnsafeRawBufferPointer(codeBytes))
            } else {
                let packedCount = n * target.bitWidth / 8
                SubBytePacking.pack(UnsafeRawBufferPointer(codeBytes), count: n, bitWidth: target.bitWidth,
                                    into: UnsafeMutableRawBufferPointer(rebasing: packed[0..<packedCount]))
                try sink(UnsafeRawBufferPointer(rebasing: packed[0..<packedCount]))
            }
            start += n
        }
    }
}
