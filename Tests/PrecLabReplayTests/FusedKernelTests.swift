import CPrecLabKernels
import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// The fused bf16 kernel (`FusedBFloat16Kernel`, every policy in one pass on expanded
/// lanes) against the formats module's scalar encoder, and the whole fused replay
/// against the per-policy loops, bit for bit, on streams built to hit every special
/// case: NaN, Inf, signed zeros, subnormals, ties, overflow, and the lanes that leave
/// the fast (no-NaN) path.
final class FusedKernelTests: XCTestCase {
    let format = FloatFormat.bf16

    /// Values of every class, both signs: zeros, subnormals, ties of both parities,
    /// the largest finite values, the overflow threshold, Inf, quiet and signalling
    /// NaNs with low and high payloads, and random normals.
    private func specialValues() -> [Float] {
        var patterns: [UInt32] = [
            0x0000_0000, 0x0000_0001, 0x0000_7FFF, 0x0000_8000, 0x0000_8001, 0x0001_8000, 0x007F_FFFF,
            0x0080_0000, 0x3F80_0000, 0x3F80_8000, 0x3F81_8000, 0x3F80_7FFF, 0x3F80_8001, 0x3FFF_FFFF,
            0x7E80_0000, 0x7F7F_0000, 0x7F7F_7FFF, 0x7F7F_8000, 0x7F7F_FFFF, 0x7F80_0000,
            0x7F80_0001, 0x7F80_FFFF, 0x7FBF_FFFF, 0x7FC0_0000, 0x7FC0_0001, 0x7FFF_FFFF,
        ]
        patterns += patterns.map { $0 | 0x8000_0000 }
        var random = TestRandom(seed: 99)
        for _ in 0..<512 { patterns.append(UInt32(truncatingIfNeeded: random.nextUInt64())) }
        return patterns.map { Float(bitPattern: $0) }
    }

    /// Runs `body` with each variant of the kernel this build and CPU have (the build's
    /// own instruction set, and AVX2 chosen at run time in builds below it), then puts
    /// back the one that was chosen.
    private func forEachKernelVariant(_ body: (String) throws -> Void) rethrows {
        let chosen = preclab_fused_kernel_level()
        defer { preclab_fused_set_kernel_level(chosen) }
        preclab_fused_set_kernel_level(1)
        let levels: [Int32] = preclab_fused_kernel_level() == 1 ? [1, 0] : [0]
        for level in levels {
            preclab_fused_set_kernel_level(level)
            XCTAssertEqual(preclab_fused_kernel_level(), level)
            try body(level == 1 ? "AVX2 variant" : "build's variant")
        }
    }

    /// The kernel's four roundings (`preclab_fused_bf16_round8`) against the formats
    /// module's encoder, eight values at a time; the ones without the NaN rule on
    /// non-NaN values only. Every variant of the kernel.
    func testKernelRoundingsMatchTheFormatsEncoder() {
        forEachKernelVariant { variant in kernelRoundingsMatchTheFormatsEncoder(variant) }
    }

    private func kernelRoundingsMatchTheFormatsEncoder(_ variant: String) {
        let values = specialValues()
        var random = TestRandom(seed: 3)
        for start in stride(from: 0, to: values.count, by: 8) {
            let x = (0..<8).map { values[(start + $0) % values.count] }
            let bits = (0..<8).map { _ in UInt32(truncatingIfNeeded: random.nextUInt64()) }
            func round(_ mode: Int32) -> [UInt32] {
                var codes = [UInt32](repeating: 0, count: 8)
                preclab_fused_bf16_round8(x, bits, mode, &codes)
                return codes
            }
            let nearest = round(0), stochastic = round(1), plainNearest = round(2), plainStochastic = round(3)
            for lane in 0..<8 {
                let label = "\(variant): x = 0x\(String(x[lane].bitPattern, radix: 16))"
                let expectedNearest = format.encode(x[lane], RoundingOptions()) << 16
                let expectedStochastic = format.encode(x[lane], RoundingOptions(mode: .stochastic),
                                                       random: bits[lane]) << 16
                XCTAssertEqual(nearest[lane], expectedNearest, label)
                XCTAssertEqual(stochastic[lane], expectedStochastic, label)
                if !x[lane].isNaN {
                    XCTAssertEqual(plainNearest[lane], expectedNearest, label)
                    XCTAssertEqual(plainStochastic[lane], expectedStochastic, label)
                }
            }
        }
    }

    /// The kernel's half-ULP exponents (its ratio histogram's) equal RatioBinner's table
    /// for every bf16 code, in every variant of the kernel.
    func testKernelHalfULPExponentsMatchRatioBinner() throws {
        let table = try XCTUnwrap(RatioBinner(format: format, codeBits: 16).exponents)
        forEachKernelVariant { variant in
            for start in stride(from: 0, to: 1 << 16, by: 8) {
                let codes = (0..<8).map { UInt32(start + $0) }
                var exponents = [Int32](repeating: 0, count: 8)
                preclab_fused_bf16_half_ulp_exponents8(codes, &exponents)
                for lane in 0..<8 {
                    XCTAssertEqual(exponents[lane], Int32(table[start + lane]),
                                   "\(variant): code 0x\(String(start + lane, radix: 16))")
                }
            }
        }
    }

    /// The interval of every bf16 code holds exactly the fp32 values that round to it
    /// (either zero for a zero code): its bounds round to the code and the floats just
    /// outside do not.
    func testRoundingIntervalOfEveryCode() {
        func roundsInside(_ value: Float, _ code: UInt32) -> Bool {
            let rounded = format.encode(value, RoundingOptions())
            return rounded == code || (rounded & 0x7FFF == 0 && code & 0x7FFF == 0)
        }
        for code in 0...UInt32(0xFFFF) {
            let interval = FusedTile.roundingInterval(UInt16(code))
            if code & 0x7FFF > 0x7F80 {
                XCTAssertNil(interval, "NaN code 0x\(String(code, radix: 16))")
                continue
            }
            guard let (lower, upper) = interval else {
                XCTFail("no interval for 0x\(String(code, radix: 16))")
                continue
            }
            let label = "code 0x\(String(code, radix: 16)): [\(lower), \(upper)]"
            XCTAssertTrue(roundsInside(lower, code), label)
            XCTAssertTrue(roundsInside(upper, code), label)
            if lower.isFinite { XCTAssertFalse(roundsInside(lower.nextDown, code), label) }
            if upper.isFinite { XCTAssertFalse(roundsInside(upper.nextUp, code), label) }
        }
    }

    /// The block keys the kernel draws its stochastic bits from (hash((first + i) ^ k1) ^ k2).
    func testBlockKeysGiveTheStochasticKeyBits() {
        let key = StochasticKey(seed: 11, stream: 3, step: 41)
        for first in [0, 8, 1_000_000, (1 << 32) - 8, (5 << 32) + 16] {
            let keys = key.blockKeys(forIndex: first)
            for lane in 0..<8 {
                let low = UInt32(truncatingIfNeeded: first) &+ UInt32(lane)
                XCTAssertEqual(StochasticKey.hash(low ^ keys.k1) ^ keys.k2, key.randomBits(index: first + lane),
                               "index \(first + lane)")
            }
        }
    }

    // MARK: The fused replay against the per-policy loops

    let tensors = [
        ReplayTensor(name: "wide", shape: [37, 29]),
        ReplayTensor(name: "tail", shape: [13]),
        ReplayTensor(name: "one", shape: [1]),
        ReplayTensor(name: "long", shape: [700]),
        ReplayTensor(name: "nan-base", shape: [90]),
    ]

    /// A stream whose base and updates hold every special class somewhere, updates that
    /// overflow Kahan's compensation chain, and ordinary small updates elsewhere.
    private func adversarialStream(steps: Int) -> (base: [Float], updates: [[Float]]) {
        var random = TestRandom(seed: 2024)
        let specials = specialValues().filter { !$0.isNaN }
        let count = tensors.reduce(0) { $0 + $1.count }
        let nanBaseStart = count - tensors.last!.count
        var base = (0..<count).map { _ in random.uniform() * 0.05 }
        for index in stride(from: 0, to: nanBaseStart, by: 7) {
            base[index] = specials[Int(random.nextUInt64() % UInt64(specials.count))]
        }
        base[nanBaseStart + 5] = .nan  // a NaN stored base: that tile takes the plain loops
        let updates = (0..<steps).map { step -> [Float] in
            var update = (0..<count).map { _ in random.uniform() * 3e-4 }
            for index in stride(from: step % 11, to: count, by: 23) {
                switch random.nextUInt64() % 6 {
                case 0:  // NaNs whose low payload bits would carry if rounded as numbers
                    let nans: [UInt32] = [0x7FC0_0000, 0x7FFF_FFFF, 0xFFC0_8001, 0x7F80_8001, 0x7F80_0001]
                    update[index] = Float(bitPattern: nans[Int(random.nextUInt64() % 5)])
                case 1: update[index] = random.uniform() < 0 ? -.infinity : .infinity
                case 2: update[index] = -0.0
                case 3: update[index] = 3e38 * random.uniform()
                case 4: update[index] = Float(bitPattern: 0x0000_4000)  // a subnormal below bf16's
                default: update[index] = specials[Int(random.nextUInt64() % UInt64(specials.count))]
                }
            }
            return update
        }
        return (base, updates)
    }

    private func engine(_ base: [Float], policies: [ReplayPolicy], rounding: RoundingMode, threads: Int,
                        tileSize: Int, fused: Bool, views: Bool = false,
                        blockSteps: Int = FusedBFloat16Kernel.defaultBlockSteps,
                        configure: (inout ReplayConfiguration) -> Void = { _ in }) throws -> ReplayEngine {
        var configuration = ReplayConfiguration(format: format, rounding: RoundingOptions(mode: rounding), seed: 5,
                                                policies: policies, threads: threads)
        configuration.tileSize = tileSize
        configuration.stepViews = views
        configure(&configuration)
        let engine = try base.withUnsafeBufferPointer {
            try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
        }
        let core = try XCTUnwrap(engine.testingCore as? TypedReplayCore<BFloat16Codec>)
        core.fusedKernels = fused
        core.fusedBlockSteps = blockSteps
        return engine
    }

    private func state(_ engine: ReplayEngine) throws -> [[UInt8]] {
        func bytes<T>(_ buffer: OwnedBuffer<T>?) -> [UInt8] {
            guard let buffer else { return [] }
            return Array(UnsafeRawBufferPointer(start: buffer.pointer, count: buffer.count * MemoryLayout<T>.stride))
        }
        let core = try XCTUnwrap(engine.testingCore as? TypedReplayCore<BFloat16Codec>)
        return [bytes(core.truth), bytes(core.pure), bytes(core.stochastic), bytes(core.kahanWeights),
                bytes(core.kahanCompensation), bytes(core.leftInterval)]
    }

    /// (The non-finite update counts are per work unit; the JSON compares their sums.)
    private let stateNames = ["truth", "pure", "stochastic", "kahan weights", "kahan compensation",
                              "interval bits"]

    /// Names the first differing buffer and byte instead of printing whole buffers.
    private func assertSame(_ state: [[UInt8]], _ expected: [[UInt8]], _ label: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        for (index, (actual, wanted)) in zip(state, expected).enumerated() where actual != wanted {
            let first = zip(actual, wanted).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(actual.count, wanted.count)
            XCTFail("\(label): \(stateNames[index]) differs first at byte \(first) "
                    + "(sizes \(actual.count), \(wanted.count))", file: file, line: line)
        }
    }

    private func apply(_ updates: [[Float]], to engine: ReplayEngine, batch: Int) throws {
        try withRecordedSteps(updates, curvePoint: { $0 % 3 == 1 }) { steps in
            for start in stride(from: 0, to: steps.count, by: batch) {
                try engine.applyAll(Array(steps[start..<min(steps.count, start + batch)]))
            }
        }
    }

    /// Every combination of policies, pure rounding nearest or stochastic, with and
    /// without step views (per-step changes and the pure ratio histogram), tile sizes
    /// that do and do not divide the tensors (and tiles longer than the kernel's
    /// sub-tiles), one or two threads, blocks of 1, 3, 4 and 8 steps (batches of 6: whole
    /// and partial blocks, curve points at varying positions in them), and batches long
    /// enough for the fused path: the state, the interval bits, the non-finite counts,
    /// the curve and every metric equal the per-policy loops' bit for bit, and the
    /// fused path did run (except on the tile whose stored base is a NaN).
    func testFusedReplayEqualsThePerPolicyLoops() throws {
        let (base, updates) = adversarialStream(steps: 12)
        let stored: [ReplayPolicy] = [.master, .pure, .stochastic, .kahan]
        for mask in 1..<(1 << stored.count) {
            let policies = [ReplayPolicy.fp32] + stored.enumerated().filter { mask >> $0.offset & 1 == 1 }.map(\.element)
            for rounding in [RoundingMode.nearestEven, .stochastic] where rounding == .nearestEven || policies.contains(.pure) {
              for views in [false, true] {
                let reference = try engine(base, policies: policies, rounding: rounding, threads: 1, tileSize: 8192,
                                           fused: false, views: views)
                try apply(updates, to: reference, batch: updates.count)
                let expectedState = try state(reference)
                let expectedJSON = reference.finish().json().serialized()
                try forEachKernelVariant { variant in
                // The AVX2 variant on every configuration, the build's own on two.
                let configurations = variant == "AVX2 variant"
                    ? [(64, 2, 4), (192, 1, 3), (8192, 2, 8), (8192, 1, 1)] : [(64, 2, 4), (8192, 1, 1)]
                for (tileSize, threads, blockSteps) in configurations {
                    let label = "\(variant) \(policies.map(\.rawValue)) \(rounding.rawValue) views \(views) "
                        + "tile \(tileSize) threads \(threads) block \(blockSteps)"
                    let candidate = try engine(base, policies: policies, rounding: rounding, threads: threads,
                                               tileSize: tileSize, fused: true, views: views, blockSteps: blockSteps)
                    try apply(updates, to: candidate, batch: 6)
                    assertSame(try state(candidate), expectedState, label)
                    XCTAssertEqual(candidate.finish().json().serialized(), expectedJSON, label)
                    let core = try XCTUnwrap(candidate.testingCore as? TypedReplayCore<BFloat16Codec>)
                    let runs = (0..<core.units.count).map { core.fusedUnitRuns[$0] }
                    let nanTile = core.units.firstIndex { $0.range.contains(base.count - 90 + 5) }!
                    XCTAssertEqual(runs[nanTile], 0, label)
                    XCTAssertEqual(runs.enumerated().filter { $0.offset != nanTile }.map(\.element),
                                   Array(repeating: 2, count: runs.count - 1), label)
                }
                }
              }
            }
        }
    }

    /// Kahan's chain overflowing inside one step from finite operands: the compensation
    /// reaches -2^119, then an update of -max makes c = -Inf, w = -Inf, lost = +Inf and
    /// the new compensation Inf + -Inf, the hardware's default NaN. The fast path (no NaN
    /// handling, since the update is finite) must give the same bits as the full rules.
    func testKahanOverflowInsideOneStepOnTheFastPath() throws {
        let count = tensors.reduce(0) { $0 + $1.count }
        var base = [Float](repeating: 0.25, count: count)
        base[3] = 0x1p127
        var updates = [[Float]](repeating: [Float](repeating: 1e-3, count: count), count: 6)
        updates[0][3] = 0x1.8p120
        updates[1][3] = -Float.greatestFiniteMagnitude
        let reference = try engine(base, policies: ReplayPolicy.allCases, rounding: .nearestEven, threads: 1,
                                   tileSize: 64, fused: false)
        try apply(updates, to: reference, batch: 6)
        let core = try XCTUnwrap(reference.testingCore as? TypedReplayCore<BFloat16Codec>)
        XCTAssertFalse(format.decodeFloat(UInt32(core.kahanWeights![3])).isFinite, "w overflowed")
        XCTAssertTrue(format.decodeFloat(UInt32(core.kahanCompensation![3])).isNaN, "C is NaN")
        let expectedJSON = reference.finish().json().serialized()
        try forEachKernelVariant { variant in
            let candidate = try engine(base, policies: ReplayPolicy.allCases, rounding: .nearestEven, threads: 1,
                                       tileSize: 64, fused: true)
            try apply(updates, to: candidate, batch: 6)
            assertSame(try state(candidate), try state(reference), "\(variant): overflow")
            XCTAssertEqual(candidate.finish().json().serialized(), expectedJSON, variant)
        }
    }

    /// Real-looking values never leave the fast path, and the fast path alone (no NaN
    /// handling in its roundings) still equals the per-policy loops.
    func testFusedFastPathOnOrdinaryValues() throws {
        var random = TestRandom(seed: 8)
        let count = tensors.reduce(0) { $0 + $1.count }
        let base = (0..<count).map { _ in random.uniform() * 0.5 }
        let updates = (0..<9).map { _ in (0..<count).map { _ in random.uniform() * 1e-3 } }
        for views in [false, true] {
            let reference = try engine(base, policies: ReplayPolicy.allCases, rounding: .nearestEven, threads: 2,
                                       tileSize: 128, fused: false, views: views)
            try apply(updates, to: reference, batch: 9)
            let expectedJSON = reference.finish().json().serialized()
            try forEachKernelVariant { variant in
            for (tileSize, blockSteps) in [(128, 1), (128, 2), (4096, 4), (4096, 8)] {
                let label = "\(variant): ordinary values, views \(views), tile \(tileSize), block \(blockSteps)"
                let candidate = try engine(base, policies: ReplayPolicy.allCases, rounding: .nearestEven, threads: 2,
                                           tileSize: tileSize, fused: true, views: views, blockSteps: blockSteps)
                try apply(updates, to: candidate, batch: 9)
                assertSame(try state(candidate), try state(reference), label)
                XCTAssertEqual(candidate.finish().json().serialized(), expectedJSON, label)
            }
            }
        }
    }

    /// The final counts' C kernel (`FinalCountKernel`, bf16) against the Swift loop it
    /// stands in for (`FinalAnalysis.countChunk`): every metric of the JSON equal, for
    /// each source of a policy's codes, both pure roundings, signed zeros counted or not, on the
    /// adversarial stream and on a base of few magnitudes (so the mask cuts fall inside
    /// runs of equal |W0|: ties) with updates that end on zeros of either sign, every
    /// variant of the kernel the CPU runs, in chunks of 64, 192 and 16384 entries (ties and
    /// complemented counts carry across chunk boundaries and short last words).
    func testFinalCountKernelEqualsTheSwiftCounts() throws {
        let (adversarial, updates) = adversarialStream(steps: 12)
        let few: [Float] = [0, -0.0, Float(bitPattern: 0x0001_0000), 0.01, -0.01, 0.02, 0.5, -0.5]
        var random = TestRandom(seed: 17)
        let tied = adversarial.indices.map { _ in few[Int(random.nextUInt64() % UInt64(few.count))] }
        // Updates that leave zeros of the other sign (+0 onto -0) and values that round
        // to a bf16 zero of either sign, beside ordinary ones.
        let small: [Float] = [0, -0.0, Float(bitPattern: 0x0000_02CA), Float(bitPattern: 0x8000_02CA), 3e-3, -3e-3, 1e-5]
        let tiedUpdates = updates.map { $0.map { _ in small[Int(random.nextUInt64() % UInt64(small.count))] } }
        let stored: [ReplayPolicy] = [.master, .pure, .stochastic, .kahan]
        for (baseName, base, updates) in [("adversarial", adversarial, updates), ("tied", tied, tiedUpdates)] {
            // fp32 alone, master (exports of the truth, no stored policy), pure, stochastic
            // with Kahan, and all five (the kernel treats each policy on its own).
            for mask in [0, 1, 2, 12, 15] {
                let policies = [ReplayPolicy.fp32] + stored.enumerated().filter { mask >> $0.offset & 1 == 1 }.map(\.element)
                for rounding in [RoundingMode.nearestEven, .stochastic] where rounding == .nearestEven || policies.contains(.pure) {
                    for signedZeros in [false, true] {
                        let label = "\(baseName) \(policies.map(\.rawValue)) \(rounding.rawValue) signed zeros \(signedZeros)"
                        let engine = try self.engine(base, policies: policies, rounding: rounding, threads: 2,
                                                     tileSize: 64, fused: true) {
                            $0.signedZeroChanges = signedZeros
                            $0.lowMagnitudeAlphas = [0.001, 0.01, 0.1, 0.3, 0.5, 0.9, 1]
                        }
                        try apply(updates, to: engine, batch: 12)
                        let core = try XCTUnwrap(engine.testingCore as? TypedReplayCore<BFloat16Codec>)
                        let classes = StoredCodeClasses(codec: core.codec, format: format)
                        let layout = FinalCountLayout(strata: classes.stratumCount, levels: 7, policies: policies.count)
                        XCTAssertNotNil(FinalCountKernel(core: core, classes: classes, layout: layout), label)
                        for chunkSize in [64, 192, 16_384] {
                            core.finalChunkSize = chunkSize
                            core.countingKernel = false
                            let expected = engine.finish().json().serialized()
                            core.countingKernel = true
                            forEachKernelVariant { variant in
                                XCTAssertEqual(engine.finish().json().serialized(), expected,
                                               "\(variant): \(label) chunks \(chunkSize)")
                            }
                        }
                    }
                }
            }
        }
    }
}
