import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// `preclab cast IN OUT --dtype DTYPE`: parses, calls `CheckpointCast` (PrecLabAnalysis),
/// reports. Converts the floating tensors of a checkpoint to
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
      --tensors REGEX      only tensors whose name contains a match (Swift Regex syntax,
                           as every preclab command)
      --force              replace an existing OUT
      --progress MODE      auto (a line redrawn on a terminal, nothing otherwise),
                           plain (a line per stage) or none

    Packed sub-byte outputs (F6_*, F4) put element i at bits [i*w, (i+1)*w) of the
    little-endian bit stream (F4: element 0 in the low nibble).
    """
    static let options: [OptionSpec] = [
        .value("--dtype"), .value("--rounding"), .value("--seed"), .flag("--saturate"),
        .flag("--flush-subnormals"), TensorSelectionOption.spec, .flag("--force"), ProgressReporter.spec,
    ]

    /// Everything the command line asks for, validated before any work.
    struct Request {
        var cast: CheckpointCast
        var output: String
        var force: Bool
        var inputPaths: [String]
        var progress: ProgressReporter

        init(_ arguments: ParsedArguments) throws {
            let positionals = try arguments.requirePositionals(2, names: "an input checkpoint and an output file")
            output = positionals[1]
            guard let dtypeName = arguments.value("--dtype") else {
                throw UsageError("--dtype is required (e.g. --dtype bf16)")
            }
            let format = try FloatFormat.named(dtypeName)
            let mode = try arguments.value("--rounding").map { try RoundingMode.named($0) } ?? .nearestEven
            let rounding = RoundingOptions(mode: mode, flushSubnormals: arguments.flag("--flush-subnormals"),
                                           saturate: arguments.flag("--saturate"))
            let options = CastOptions(format: format, rounding: rounding,
                                      seed: try arguments.number("--seed", .seed, default: 0),
                                      selection: try TensorSelectionOption.parse(arguments))
            progress = try ProgressReporter(command: name, arguments: arguments)
            force = arguments.flag("--force")
            let checkpoint = try Checkpoint.open(positionals[0])
            inputPaths = checkpoint.filePaths
            // Refuse a bad destination before converting anything.
            try AtomicFileWriter.checkDestination(output, force: force, inputs: inputPaths)
            cast = try CheckpointCast(checkpoint: checkpoint, options: options)
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        let request = try Request(arguments)
        let cast = request.cast, options = cast.options
        try cast.write(to: request.output, force: request.force, inputs: request.inputPaths, progress: request.progress)
        let total = cast.castNames.count
        var summary = "cast \(total) tensor\(total == 1 ? "" : "s") to \(cast.target.name) (\(options.format.name), rounding \(options.rounding.mode.rawValue)"
        if options.rounding.mode == .stochastic { summary += ", seed \(options.seed)" }
        if options.rounding.saturate { summary += ", saturating" }
        if options.rounding.flushSubnormals { summary += ", flushing subnormals" }
        summary += "), copied \(cast.checkpoint.tensors.count - total) unchanged"
        if !cast.unselectedFloating.isEmpty {
            summary += " (\(cast.unselectedFloating.count) floating tensors did not match --tensors)"
        }
        Console.out(summary + "; wrote \(request.output)")
    }
}
