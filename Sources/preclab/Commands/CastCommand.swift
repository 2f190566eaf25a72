import Foundation
import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// `preclab cast IN OUT --dtype DTYPE`: converts the floating tensors of a checkpoint to
/// a low-precision format with a chosen rounding, writing one safetensors file.
enum CastCommand: Command {
    static let name = "cast"
    static let summary = "convert a checkpoint's floating tensors to a format (one safetensors file out)"
    static let help = """
    usage: preclab cast IN OUT --dtype DTYPE [--rounding MODE] [--seed N] [--saturate]
                        [--flush-subnormals] [--tensors REGEX] [--force]

    IN is a .safetensors file, a model.safetensors.index.json or a directory holding
    either (sharded checkpoints are read as one). Every floating tensor (F64, F32, F16,
    BF16, F8_*, F6_*, F4) whose name matches REGEX (default: all) is rounded to DTYPE;
    other tensors are copied unchanged. OUT is one safetensors file, written atomically
    (never partially, never over an input, never over an existing file without --force).
    Its __metadata__ keeps the input's and adds preclab.* keys saying what was done.

    options:
      --dtype DTYPE        target format with a safetensors dtype: fp32, bf16, fp16, e5m2,
                           e4m3fn, e4m3fnuz, e5m2fnuz, e2m3fn, e3m2fn, e2m1fn, e8m0fnu
                           (or their safetensors names F32, BF16, F8_E4M3, ...). tf32 and
                           custom eXmY formats have no safetensors dtype and are refused.
      --rounding MODE      nearest-even (default), nearest-away, toward-zero, up, down,
                           odd, stochastic
      --seed N             seed of stochastic rounding (default 0). The random bits of
                           element i of the k-th tensor in byte-sorted name order are
                           StochasticKey(seed: N, stream: k, step: 0) at index i.
      --saturate           overflow gives the largest finite value instead of Inf/NaN
      --flush-subnormals   results that would be subnormal become signed zeros
      --tensors REGEX      only tensors whose name contains a match (NSRegularExpression)
      --force              replace an existing OUT

    Packed sub-byte outputs (F6_*, F4) put element i at bits [i*w, (i+1)*w) of the
    little-endian bit stream (F4: element 0 in the low nibble).
    """
    static let options: [OptionSpec] = [
        .value("--dtype"), .value("--rounding"), .value("--seed"), .flag("--saturate"),
        .flag("--flush-subnormals"), .value("--tensors"), .flag("--force"),
    ]

    /// Elements converted per step (a multiple of 8 so packed sub-byte chunks end on a byte).
    static let chunkElements = 1 << 22

    static func run(_ arguments: ParsedArguments) throws {
        let positionals = try arguments.requirePositionals(2, names: "an input checkpoint and an output file")
        let (input, output) = (positionals[0], positionals[1])
        guard let dtypeName = arguments.value("--dtype") else {
            throw PrecLabError.usage("preclab cast: --dtype is required (e.g. --dtype bf16)")
        }
        let format = try FloatFormat.named(dtypeName)
        guard let targetName = format.safetensorsName, let target = TensorDType.named(targetName) else {
            let storable = FloatFormat.standard.compactMap { f in f.safetensorsName.map { "\(f.name) (\($0))" } }
            throw PrecLabError.usage("preclab cast: format \(format.name) has no safetensors dtype name, so a safetensors file cannot store it; formats safetensors can store: \(storable.joined(separator: ", "))")
        }
        let mode = try arguments.value("--rounding").map { try RoundingMode.named($0) } ?? .nearestEven
        let seed = try arguments.value("--seed", default: UInt64(0)) { UInt64($0) }
        let rounding = RoundingOptions(mode: mode, flushSubnormals: arguments.flag("--flush-subnormals"),
                                       saturate: arguments.flag("--saturate"))
        var pattern: NSRegularExpression? = nil
        if let text = arguments.value("--tensors") {
            do {
                pattern = try NSRegularExpression(pattern: text)
            } catch {
                throw PrecLabError.usage("preclab cast: --tensors '\(text)' is not a valid regular expression")
            }
        }
        let force = arguments.flag("--force")
        // Refuse a bad destination before reading anything.
        let checkpoint = try Checkpoint.open(input)
        var inputs = checkpoint.shards.map(\.path)
        if let index = checkpoint.indexPath { inputs.append(index) }
        try AtomicFileWriter.checkDestination(output, force: force, inputs: inputs)

        // Stream index: position in byte-sorted name order over all tensors.
        let sortedNames = checkpoint.tensors.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var streamIndex: [String: Int] = [:]
        for (index, name) in sortedNames.enumerated() { streamIndex[name] = index }

        func matches(_ name: String) -> Bool {
            guard let pattern else { return true }
            return pattern.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
        var selected = Set<String>()
        var skippedFloating: [String] = []
        for tensor in checkpoint.tensors where tensor.dtype.isFloatingPoint {
            if matches(tensor.name) { selected.insert(tensor.name) } else { skippedFloating.append(tensor.name) }
        }
        if selected.isEmpty {
            let floating = checkpoint.tensors.filter { $0.dtype.isFloatingPoint }.count
            // No floating tensor at all is the input's content (bad data, exit 1); a
            // --tensors pattern matching none of them is the command line (usage, exit 2).
            if pattern == nil {
                throw PrecLabError.badData("\(input): no floating tensor to cast (\(checkpoint.tensors.count) tensors, none floating)")
            }
            throw PrecLabError.usage("preclab cast: --tensors matched none of the \(floating) floating tensors of \(input)")
        }
        var specs: [SafetensorsTensorSpec] = []
        var sources: [String: CheckpointTensor] = [:]
        for tensor in checkpoint.tensors {
            let dtype = selected.contains(tensor.name) ? target : tensor.dtype
            let spec = SafetensorsTensorSpec(name: tensor.name, dtype: dtype, shape: tensor.shape)
            guard spec.byteCount != nil else {
                throw PrecLabError.badData("\(input): tensor '\(tensor.name)': \(tensor.info.elementCount) elements cannot be stored packed as \(target.name) (\(target.bitWidth)-bit elements must fill whole bytes)")
            }
            specs.append(spec)
            sources[tensor.name] = tensor
        }
        let selectedNames = checkpoint.tensors.map(\.name).filter { selected.contains($0) }
        var metadata = checkpoint.metadata.filter { $0.key != "total_size" && !$0.key.hasPrefix("preclab.") }
        metadata += [
            ("preclab.version", precLabVersion),
            ("preclab.cast.dtype", target.name),
            ("preclab.cast.format", format.name),
            ("preclab.cast.rounding", mode.rawValue),
            ("preclab.cast.seed", String(seed)),
            ("preclab.cast.saturate", String(rounding.saturate)),
            ("preclab.cast.flush_subnormals", String(rounding.flushSubnormals)),
            ("preclab.cast.tensors", JSONValue.array(selectedNames.map { .string($0) }).serialized(indent: 0)),
        ]
        if let text = arguments.value("--tensors") { metadata.append(("preclab.cast.tensors_regex", text)) }

        let total = selectedNames.count
        var done = 0
        try SafetensorsWriter.write(to: output, tensors: specs, metadata: metadata, force: force, inputs: inputs) { spec, sink in
            let source = sources[spec.name]!
            let bytes = checkpoint.bytes(of: source)
            guard selected.contains(spec.name) else {
                try sink(bytes)
                return
            }
            done += 1
            Console.progress("cast \(done)/\(total): \(spec.name)")
            let key = StochasticKey(seed: seed, stream: UInt64(streamIndex[spec.name]!), step: 0)
            try convert(bytes, from: source.dtype, count: source.info.elementCount, to: format, target: target,
                        rounding: rounding, key: key, sink: sink)
        }
        Console.endProgress()
        var summary = "cast \(total) tensor\(total == 1 ? "" : "s") to \(target.name) (\(format.name), rounding \(mode.rawValue)"
        if mode == .stochastic { summary += ", seed \(seed)" }
        if rounding.saturate { summary += ", saturating" }
        if rounding.flushSubnormals { summary += ", flushing subnormals" }
        summary += "), copied \(checkpoint.tensors.count - total) unchanged"
        if !skippedFloating.isEmpty { summary += " (\(skippedFloating.count) floating tensors did not match --tensors)" }
        Console.out(summary + "; wrote \(output)")
    }

    /// Converts one tensor chunk by chunk: decode the source exactly to Float (F64 goes
    /// straight from Double, avoiding a double rounding), encode with the key's element
    /// indices, pack sub-byte outputs, hand the bytes to the sink.
    static func convert(_ bytes: UnsafeRawBufferPointer, from dtype: TensorDType, count: Int, to format: FloatFormat,
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
