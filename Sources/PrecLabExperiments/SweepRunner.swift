import Foundation
import PrecLabAnalysis
import PrecLabFormats
import PrecLabReplay
import PrecLabSpectral
import PrecLabSupport
import PrecLabSynth

/// Spectral metrics of one tensor's fp32 truth W0 -> W_T.
struct TensorSpectralResult: Sendable {
    var name: String
    var rows: Int
    var columns: Int
    var comparison: MatrixComparison
}

/// Everything measured at one grid point.
public struct SweepPointResult: Sendable {
    var point: Experiment.GridPoint
    var replay: ReplayResult
    /// Per tensor, when the experiment asks for spectral output.
    var spectral: [TensorSpectralResult]?

    /// Visible entries per |W0| octave (`MagnitudeBins`) of the permuted null model,
    /// summed over tensors, when the replay ran it.
    var nullByMagnitude: [Int]? { replay.totalNullModel?.visibleByMagnitude }
}

/// Runs an experiment: synthesises each distinct stream once into a scratch
/// directory, replays it for every grid point that uses it, then deletes it.
public struct SweepRunner {
    let experiment: Experiment
    /// Where kept streams go (`--keep-streams`); nil deletes them.
    let keepStreamsIn: String?
    /// Replace kept streams that already exist.
    let force: Bool
    let threads: Int
    let progress: (String) -> Void

    /// - Parameters:
    ///   - keepStreamsIn: keep the synthesised streams there instead of deleting them.
    ///   - progress: one line per stage, for a progress display.
    public init(experiment: Experiment, keepStreamsIn: String?, force: Bool, threads: Int,
                progress: @escaping (String) -> Void) {
        self.experiment = experiment
        self.keepStreamsIn = keepStreamsIn
        self.force = force
        self.threads = threads
        self.progress = progress
    }

    /// The distinct streams of the grid, in order of first use.
    var recipes: [Experiment.StreamRecipe] {
        var recipes: [Experiment.StreamRecipe] = []
        for point in experiment.points where !recipes.contains(point.stream) { recipes.append(point.stream) }
        return recipes
    }

    /// The file names of the streams, in `recipes` order.
    public var streamFileNames: [String] {
        recipes.enumerated().map { SweepRunner.streamFileName(experiment: experiment.name, index: $0, recipe: $1) }
    }

    public func run() throws -> [SweepPointResult] {
        let points = experiment.points
        let recipes = self.recipes

        let scratch = try keepStreamsIn ?? SweepRunner.makeScratchDirectory()
        // SIGINT/SIGTERM remove the scratch directory and the stream in it (InFlightFiles).
        let scratchRegistration = keepStreamsIn == nil ? InFlightFiles.register(directory: scratch) : nil
        defer {
            if keepStreamsIn == nil { try? FileManager.default.removeItem(atPath: scratch) }
            InFlightFiles.unregister(scratchRegistration)
        }

        var results: [SweepPointResult?] = Array(repeating: nil, count: points.count)
        for (streamIndex, recipe) in recipes.enumerated() {
            let users = points.filter { $0.stream == recipe }
            let path = scratch + "/" + SweepRunner.streamFileName(experiment: experiment.name, index: streamIndex, recipe: recipe)
            progress("stream \(streamIndex + 1)/\(recipes.count): synth \(SweepRunner.describe(recipe))")
            let captured = try synthesise(recipe, to: path, keepWeights: needsWeights)
            let streamRegistration = keepStreamsIn == nil ? InFlightFiles.register(file: path) : nil
            defer { InFlightFiles.unregister(streamRegistration) }
            // Points that share the stream and the format (e.g. the placements of a zero
            // signal) share one measurement.
            var measured: [String: SweepPointResult] = [:]
            for point in users {
                if var shared = measured[point.format.name] {
                    shared.point = point
                    results[point.index] = shared
                    continue
                }
                progress("point \(point.index + 1)/\(points.count) [\(point.label)]: replay \(point.format.name)")
                let result = try measure(point, streamPath: path, weights: captured)
                measured[point.format.name] = result
                results[point.index] = result
            }
            if keepStreamsIn == nil { try? FileManager.default.removeItem(atPath: path) }
        }
        return results.map { $0! }
    }

    /// W0 and W_T are kept only for the spectral metrics; everything else comes from the replay.
    private var needsWeights: Bool { experiment.outputs.contains(.spectral) }

    /// Writes the stream; returns W0 and W_T per tensor when `keepWeights`.
    private func synthesise(_ recipe: Experiment.StreamRecipe, to path: String,
                            keepWeights: Bool) throws -> CapturedWeights? {
        let configuration = recipe.configuration(threads: threads)
        let tensors = recipe.shapes.enumerated().map { index, shape in
            SynthTensorSource.generated(name: SynthTensorSource.defaultName(index: index),
                                        rows: shape.rows, columns: shape.columns)
        }
        let generator = try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)
        try SynthResources.requireFits(steps: recipe.steps, shapes: recipe.shapes, output: path)
        let file = try UpdateStreamFileSink(path: path, force: force)
        var sink = CapturingSink(inner: file, capture: keepWeights)
        try generator.generate(into: &sink, extraMetadata: [("experiment", experiment.name)])
        try file.close()
        guard keepWeights else { return nil }
        return CapturedWeights(shapes: recipe.shapes, base: sink.base, final: sink.final)
    }

    private func measure(_ point: Experiment.GridPoint, streamPath: String,
                         weights: CapturedWeights?) throws -> SweepPointResult {
        let settings = experiment.replay
        let configuration = ReplayConfiguration(format: point.format, seed: settings.seed, policies: settings.policies,
                                                nullPermute: settings.nullPermute, threads: threads)
        let options = StreamReplayOptions(curveEvery: settings.curveEvery)
        let replay = try StreamReplay.run(path: streamPath, configuration: configuration, options: options)
        var result = SweepPointResult(point: point, replay: replay, spectral: nil)
        if let weights {
            if let spectral = experiment.spectral, experiment.outputs.contains(.spectral) {
                progress("point \(point.index + 1): spectral metrics (k \(point.stream.k), rank \(spectral.rank))")
                result.spectral = try weights.spectral(format: point.format, k: point.stream.k, settings: spectral)
            }
        }
        return result
    }

    static func streamFileName(experiment: String, index: Int, recipe: Experiment.StreamRecipe) -> String {
        let g = recipe.gradient
        return "\(experiment)-\(index)-\(g.placement.rawValue)-snr\(compactDecimal(g.snr))"
            + "-lr\(compactDecimal(recipe.learningRate))-\(recipe.steps)steps-seed\(recipe.seed).stream"
    }

    /// "placement off, snr 0.1, rotation 0, lr 1e-06, 300 steps, 256x256,512x512".
    static func describe(_ recipe: Experiment.StreamRecipe) -> String {
        let g = recipe.gradient
        return "placement \(g.placement.rawValue), snr \(compactDecimal(g.snr)), rotation \(compactDecimal(g.rotation)), "
            + "lr \(compactDecimal(recipe.learningRate)), \(recipe.steps) steps, \(recipe.shapeText)"
    }

    /// A fresh directory under $TMPDIR (or /tmp).
    static func makeScratchDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/preclab-sweep-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw PrecLabError.badData("\(base): cannot create a scratch directory for the streams: \(errnoText())")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// Forwards every record to the file sink, keeping copies of BASE and FINL.
struct CapturingSink<Inner: UpdateStreamSink>: UpdateStreamSink {
    var inner: Inner
    let capture: Bool
    private(set) var base: [[Float]] = []
    private(set) var final: [[Float]] = []

    init(inner: Inner, capture: Bool) {
        self.inner = inner
        self.capture = capture
    }

    mutating func begin(tensors: [StreamTensorInfo], metadata: [(key: String, value: String)]) throws {
        try inner.begin(tensors: tensors, metadata: metadata)
    }

    mutating func writeBase(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        try inner.writeBase(step: step, tensors: tensors)
        if capture { base = tensors.map(Array.init) }
    }

    mutating func writeStep(_ step: UInt64, learningRate: Double, deltas: [UnsafeBufferPointer<Float>]) throws {
        try inner.writeStep(step, learningRate: learningRate, deltas: deltas)
    }

    mutating func writeFinal(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        try inner.writeFinal(step: step, tensors: tensors)
        if capture { final = tensors.map(Array.init) }
    }
}

/// W0 and W_T of every tensor of a stream (the fp32 truth).
struct CapturedWeights: Sendable {
    var shapes: [(rows: Int, columns: Int)]
    var base: [[Float]]
    var final: [[Float]]

    /// MatrixComparison of W0 -> W_T in float64, with M = entries whose stored codes
    /// in `format` (nearest-even) differ, ±0 pairs excepted: the master policy's
    /// visible mask; overlaps are stratified by the binades of the stored W0. Measured
    /// by the same code as `replay --spectral` (`ReplaySpectral.measure`).
    func spectral(format: FloatFormat, k: Int, settings: Experiment.SpectralSettings) throws -> [TensorSpectralResult] {
        let options = SpectralOptions(k: k, rank: settings.rank, alpha: settings.alpha, method: .exact)
        return try shapes.indices.map { index in
            let (rows, columns) = shapes[index]
            let w0 = base[index], wT = final[index]
            let name = SynthTensorSource.defaultName(index: index)
            let stored0 = w0.map { format.decode(format.encode($0)) }
            let mask = BitMask(w0.indices.map { index in
                let before = format.encode(w0[index]), after = format.encode(wT[index])
                return before != after && !(format.decode(before) == 0 && format.decode(after) == 0)
            })
            guard let comparison = try ReplaySpectral.measure(
                rows: rows, columns: columns, before: w0.map(Double.init), after: wT.map(Double.init), changed: mask,
                strata: MagnitudeStrata(storedValues: stored0, minimumNormal: format.minNormal),
                options: options) else {
                throw PrecLabError.badData("tensor '\(name)': the synthesised weights are not finite")
            }
            return TensorSpectralResult(name: name, rows: rows, columns: columns, comparison: comparison)
        }
    }
}
