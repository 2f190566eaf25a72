import XCTest
import PrecLabFiles
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// The tile-major traversal (every tile through all steps) against the step-major one
/// (every step over all tiles) and against a plain per-element scalar replay.
final class TileMajorReplayTests: XCTestCase {
    /// Sizes chosen so that no tile size below divides every tensor (4087 = 64·63 + 55).
    let tensors = [
        ReplayTensor(name: "big", shape: [61, 67]),
        ReplayTensor(name: "small", shape: [7]),
        ReplayTensor(name: "mid", shape: [50, 41]),
        ReplayTensor(name: "odd", shape: [1000]),
    ]

    private func stream(seed: UInt64, steps: Int) -> (base: [Float], updates: [[Float]]) {
        var random = TestRandom(seed: seed)
        let count = tensors.reduce(0) { $0 + $1.count }
        let base = (0..<count).map { _ in random.uniform() * 0.05 }
        let updates = (0..<steps).map { _ in (0..<count).map { _ in random.uniform() * 3e-4 } }
        return (base, updates)
    }

    private func engine(_ base: [Float], format: FloatFormat, rounding: RoundingMode, threads: Int,
                        tileSize: Int) throws -> ReplayEngine {
        var configuration = ReplayConfiguration(format: format, rounding: RoundingOptions(mode: rounding), seed: 7,
                                                policies: ReplayPolicy.allCases, threads: threads)
        configuration.stepViews = true
        configuration.tileSize = tileSize
        return try base.withUnsafeBufferPointer {
            try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
        }
    }

    /// Every state buffer, the JSON (all metrics, curve and step views) and the interval
    /// bits agree bit for bit, for every tile size (including 64, tiles that do not divide
    /// the tensors, and one larger than every tensor) and 1 or 2 threads.
    func testTileMajorEqualsStepMajorForEveryTileSizeAndThreadCount() throws {
        let (base, updates) = stream(seed: 31, steps: 9)
        for (format, rounding) in [(FloatFormat.bf16, RoundingMode.nearestEven), (.bf16, .stochastic),
                                   (.fp16, .towardZero)] {
            // Reference: one step at a time over all tiles, one thread, default tiles.
            let reference = try engine(base, format: format, rounding: rounding, threads: 1,
                                       tileSize: ReplayConfiguration.defaultTileSize)
            for (index, update) in updates.enumerated() {
                try update.withUnsafeBufferPointer {
                    try reference.apply(step: UInt64(index + 1), delta: $0, recordCurvePoint: index % 3 == 2)
                }
            }
            let expectedState = state(reference)
            let expectedJSON = reference.finish().json().serialized()
            for tileSize in [64, 192, 1024, 8192] {
                for threads in [1, 2] {
                    let candidate = try engine(base, format: format, rounding: rounding, threads: threads,
                                               tileSize: tileSize)
                    try withSteps(updates) { steps in try candidate.applyAll(steps) }
                    let label = "\(format.name) \(rounding.rawValue) tile \(tileSize) threads \(threads)"
                    XCTAssertEqual(state(candidate), expectedState, label)
                    XCTAssertEqual(candidate.finish().json().serialized(), expectedJSON, label)
                }
            }
        }
    }

    /// bf16 against a straightforward scalar replay written from the policy rules with
    /// the formats module's scalar encoder (`FloatFormat.add` is PyTorch's add_).
    func testTileMajorMatchesAScalarReplay() throws {
        let (base, updates) = stream(seed: 5, steps: 7)
        let format = FloatFormat.bf16
        let nearest = RoundingOptions()
        let candidate = try engine(base, format: format, rounding: .nearestEven, threads: 2, tileSize: 192)
        try withSteps(updates) { steps in try candidate.applyAll(steps) }
        let core = try XCTUnwrap(candidate.testingCore as? TypedReplayCore<BFloat16Codec>)
        var start = 0
        for (tensorIndex, tensor) in tensors.enumerated() {
            for local in 0..<tensor.count {
                let index = start + local
                var truth = base[index]
                let stored = format.encode(base[index], nearest)
                var pure = stored, sr = stored, w = stored, c = format.encode(Float(0), nearest)
                for (step, update) in updates.enumerated() {
                    let u = update[index]
                    truth += u
                    pure = format.add(stored: pure, delta: u, nearest)
                    let key = StochasticKey(seed: 7, stream: UInt64(tensorIndex), step: UInt64(step + 1))
                    sr = format.add(stored: sr, delta: u, RoundingOptions(mode: .stochastic),
                                    random: key.randomBits(index: local))
                    let cNew = format.encode(format.decodeFloat(c) + u, nearest)
                    let old = w
                    w = format.encode(format.decodeFloat(old) + format.decodeFloat(cNew), nearest)
                    let lost = format.encode(format.decodeFloat(old) - format.decodeFloat(w), nearest)
                    c = format.encode(format.decodeFloat(cNew) + format.decodeFloat(lost), nearest)
                }
                XCTAssertEqual(core.truth[index].bitPattern, truth.bitPattern, "\(tensor.name) \(local)")
                XCTAssertEqual(UInt32(core.pure![index]), pure, "\(tensor.name) \(local)")
                XCTAssertEqual(UInt32(core.stochastic![index]), sr, "\(tensor.name) \(local)")
                XCTAssertEqual(UInt32(core.kahanWeights![index]), w, "\(tensor.name) \(local)")
                XCTAssertEqual(UInt32(core.kahanCompensation![index]), c, "\(tensor.name) \(local)")
            }
            start += tensor.count
        }
    }

    /// The null model runs through the same tile-major path: a batch of steps with a
    /// null gives the same null replay (state and JSON, every policy) as one step at a
    /// time, and that null replay is exactly a plain replay of the stream with each
    /// update moved by the null's permutation, for each permutation kind.
    func testNullReplayRunsThroughTheTileMajorPath() throws {
        let (base, updates) = stream(seed: 17, steps: 6)
        for kind in NullModelKind.allCases {
            func nullEngine(threads: Int, tileSize: Int) throws -> ReplayEngine {
                var configuration = ReplayConfiguration(format: .bf16, rounding: RoundingOptions(mode: .stochastic),
                                                        seed: 3, policies: ReplayPolicy.allCases, nullModel: kind,
                                                        threads: threads)
                configuration.tileSize = tileSize
                return try base.withUnsafeBufferPointer {
                    try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
                }
            }
            let stepwise = try nullEngine(threads: 1, tileSize: ReplayConfiguration.defaultTileSize)
            for (index, update) in updates.enumerated() {
                try update.withUnsafeBufferPointer {
                    try stepwise.apply(step: UInt64(index + 1), delta: $0, recordCurvePoint: false)
                }
            }
            let batched = try nullEngine(threads: 2, tileSize: 192)
            try withSteps(updates) { steps in try batched.applyAll(steps) }
            let stepwiseNull = try XCTUnwrap(stepwise.nullEngine), batchedNull = try XCTUnwrap(batched.nullEngine)
            XCTAssertEqual(state(batchedNull), state(stepwiseNull), kind.rawValue)
            let expectedJSON = stepwiseNull.finish().json().serialized()
            XCTAssertEqual(batchedNull.finish().json().serialized(), expectedJSON, kind.rawValue)

            // A plain replay (no null) of the permuted stream, moved element by element here.
            let source = NullPermutation(kind: kind, tensors: tensors, seed: 3).source
            var plainConfiguration = batchedNull.configuration
            plainConfiguration.threads = 1
            let plain = try base.withUnsafeBufferPointer {
                try ReplayEngine(tensors: tensors, base: $0, configuration: plainConfiguration)
            }
            for (index, update) in updates.enumerated() {
                let moved = source.map { update[$0] }
                try moved.withUnsafeBufferPointer {
                    try plain.apply(step: UInt64(index + 1), delta: $0, recordCurvePoint: false)
                }
            }
            XCTAssertEqual(state(plain), state(batchedNull), kind.rawValue)
            XCTAssertEqual(plain.finish().json().serialized(), expectedJSON, kind.rawValue)
        }
    }

    /// The state of every policy as bytes, and the interval bits (their layout depends
    /// only on the tensor sizes).
    private func state(_ engine: ReplayEngine) -> [[UInt8]] {
        func bytes<T>(_ buffer: OwnedBuffer<T>?) -> [UInt8] {
            guard let buffer else { return [] }
            return Array(UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * MemoryLayout<T>.stride))
        }
        if let core = engine.testingCore as? TypedReplayCore<BFloat16Codec> {
            return [bytes(core.truth), bytes(core.pure), bytes(core.stochastic), bytes(core.kahanWeights),
                    bytes(core.kahanCompensation), bytes(core.leftInterval)]
        }
        let core = engine.testingCore as! TypedReplayCore<GenericCodec<UInt16>>
        return [bytes(core.truth), bytes(core.pure), bytes(core.stochastic), bytes(core.kahanWeights),
                bytes(core.kahanCompensation), bytes(core.leftInterval)]
    }

    /// Hands the updates to `body` as recorded steps (curve points every third step).
    private func withSteps(_ updates: [[Float]], _ body: ([RecordedStep]) throws -> Void) throws {
        try withRecordedSteps(updates, curvePoint: { $0 % 3 == 2 }, body)
    }

    /// The CRC-32 of each step's update bytes, taken piece by piece as the tiles read
    /// them (`applyAll(payloadCRCs:)`), equals the checksum of the whole update: bf16
    /// (fused kernel) and fp16 (per-policy loops), tiles that do and do not divide the
    /// tensors, 1 and 2 threads, batches of several steps.
    func testPayloadCRCsTakenInThePassEqualTheWholeChecksum() throws {
        let (base, updates) = stream(seed: 41, steps: 7)
        let expected = updates.map { update in update.withUnsafeBytes { CRC32.checksum($0) } }
        for (format, rounding) in [(FloatFormat.bf16, RoundingMode.nearestEven), (.fp16, .towardZero)] {
            for tileSize in [64, 192, 4096] {
                for threads in [1, 2] {
                    let engine = try self.engine(base, format: format, rounding: rounding, threads: threads,
                                                 tileSize: tileSize)
                    var crcs: [UInt32] = []
                    try withRecordedSteps(updates, curvePoint: { $0 % 3 == 2 }) { steps in
                        for batch in [steps[0..<5], steps[5...]] {
                            var slots = [UInt32](repeating: 0, count: batch.count)
                            try slots.withUnsafeMutableBufferPointer {
                                try engine.applyAll(Array(batch), payloadCRCs: $0)
                            }
                            crcs += slots
                        }
                    }
                    XCTAssertEqual(crcs, expected, "\(format.name) tile \(tileSize) threads \(threads)")
                }
            }
        }
    }
}
