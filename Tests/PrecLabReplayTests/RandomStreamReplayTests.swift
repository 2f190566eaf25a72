import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// Properties that must hold on any stream.
final class RandomStreamReplayTests: XCTestCase {
    /// Three tensors, one larger than a work unit so units split a tensor.
    let tensors = [
        ReplayTensor(name: "big", shape: [130, 300]),
        ReplayTensor(name: "small", shape: [7]),
        ReplayTensor(name: "mid", shape: [50, 41]),
    ]

    private func randomStream(seed: UInt64, steps: Int, updateScale: Float) -> (base: [Float], updates: [[Float]]) {
        var random = TestRandom(seed: seed)
        let count = tensors.reduce(0) { $0 + $1.count }
        let base = (0..<count).map { _ in random.uniform() * 0.05 }
        let updates = (0..<steps).map { _ in (0..<count).map { _ in random.uniform() * updateScale } }
        return (base, updates)
    }

    /// The master policy's visible count is a recount of bf16(final fp32) != bf16(base),
    /// done here with the formats module's scalar encoder and a plain fp32 loop.
    func testMasterVisibleCountsEqualADirectRecount() throws {
        let (base, updates) = randomStream(seed: 11, steps: 20, updateScale: 2e-4)
        let result = try replay(tensors: tensors, base: base, updates: updates, curveEvery: 5)
        var truth = base
        var start = 0
        var curveIndex = 0
        for (step, update) in updates.enumerated() {
            for index in truth.indices { truth[index] += update[index] }
            if (step + 1) % 5 == 0 {
                var recount = 0
                for index in truth.indices
                where FloatFormat.bf16.encode(truth[index]) != FloatFormat.bf16.encode(base[index]) {
                    recount += 1
                }
                XCTAssertEqual(result.curve[curveIndex].totalVisible(.master), recount, "step \(step + 1)")
                curveIndex += 1
            }
        }
        XCTAssertEqual(curveIndex, result.curve.count)
        for (tensorIndex, tensor) in tensors.enumerated() {
            let range = start..<(start + tensor.count)
            let visible = range.filter {
                FloatFormat.bf16.encode(truth[$0]) != FloatFormat.bf16.encode(base[$0])
            }.count
            let changed = range.filter { truth[$0].bitPattern != base[$0].bitPattern }.count
            XCTAssertEqual(result.tensors[tensorIndex].policies[.master]!.visibleChanged, visible, tensor.name)
            XCTAssertEqual(result.tensors[tensorIndex].trueChanged, changed, tensor.name)
            XCTAssertEqual(result.tensors[tensorIndex].policies[.fp32]!.visibleChanged, changed, tensor.name)
            XCTAssertEqual(result.tensors[tensorIndex].policies[.fp32]!.relativeError, 0)
            start += tensor.count
        }
    }

    /// Pure storage recounted with `FloatFormat.add` (PyTorch add_ semantics) per
    /// element, for a non-default rounding mode and format that take the generic path.
    func testPureStorageMatchesScalarAddForGenericFormats() throws {
        let (base, updates) = randomStream(seed: 5, steps: 8, updateScale: 1e-2)
        for (format, mode) in [(FloatFormat.fp16, RoundingMode.towardZero), (.e4m3fn, .nearestEven),
                               (.bf16, .up), (.e5m2, .stochastic)] {
            let options = RoundingOptions(mode: mode)
            let result = try replay(tensors: tensors, base: base, updates: updates, format: format,
                                    rounding: options, policies: [.pure], seed: 3)
            var expected = 0
            var start = 0
            for (tensorIndex, tensor) in tensors.enumerated() {
                var visible = 0
                for local in 0..<tensor.count {
                    let index = start + local
                    let storedBase = format.encode(base[index], RoundingOptions())
                    var code = storedBase
                    for (step, update) in updates.enumerated() {
                        let key = StochasticKey(seed: 3, stream: UInt64(tensorIndex), step: UInt64(step + 1))
                        code = format.add(stored: code, delta: update[index], options,
                                          random: key.randomBits(index: local))
                    }
                    // +0 <-> -0 is no change (Def. 2.1; the replay's default).
                    if code != storedBase && !(format.decode(code) == 0 && format.decode(storedBase) == 0) { visible += 1 }
                }
                XCTAssertEqual(result.tensors[tensorIndex].policies[.pure]!.visibleChanged, visible,
                               "\(format.name) \(mode) \(tensor.name)")
                expected += visible
                start += tensor.count
            }
            XCTAssertEqual(result.total(.pure).visibleChanged, expected)
        }
    }

    /// Stochastic and Kahan storage in formats that take the array-kernel path (1-, 2-
    /// and 4-byte codes) against a per-element recount with the scalar encoder.
    func testStochasticAndKahanMatchScalarRulesForGenericFormats() throws {
        let (base, updates) = randomStream(seed: 9, steps: 6, updateScale: 2e-2)
        let nearest = RoundingOptions()
        for format in [FloatFormat.fp16, .e4m3fn, .e5m2, .tf32] {
            let result = try replay(tensors: tensors, base: base, updates: updates, format: format,
                                    policies: [.stochastic, .kahan], seed: 5)
            var start = 0
            for (tensorIndex, tensor) in tensors.enumerated() {
                var stochasticVisible = 0, kahanVisible = 0
                for local in 0..<tensor.count {
                    let index = start + local
                    let stored = format.encode(base[index], nearest)
                    var sr = stored, w = stored, c = format.encode(Float(0), nearest)
                    for (step, update) in updates.enumerated() {
                        let key = StochasticKey(seed: 5, stream: UInt64(tensorIndex), step: UInt64(step + 1))
                        sr = format.add(stored: sr, delta: update[index], RoundingOptions(mode: .stochastic),
                                        random: key.randomBits(index: local))
                        let cNew = format.encode(format.decodeFloat(c) + update[index], nearest)
                        let old = w
                        w = format.encode(format.decodeFloat(old) + format.decodeFloat(cNew), nearest)
                        let lost = format.encode(format.decodeFloat(old) - format.decodeFloat(w), nearest)
                        c = format.encode(format.decodeFloat(cNew) + format.decodeFloat(lost), nearest)
                    }
                    // +0 <-> -0 is no change (Def. 2.1; the replay's default).
                    func zero(_ code: UInt32) -> Bool { format.decode(code) == 0 }
                    if sr != stored && !(zero(sr) && zero(stored)) { stochasticVisible += 1 }
                    if w != stored && !(zero(w) && zero(stored)) { kahanVisible += 1 }
                }
                let metrics = result.tensors[tensorIndex].policies
                XCTAssertEqual(metrics[.stochastic]!.visibleChanged, stochasticVisible, "\(format.name) \(tensor.name)")
                XCTAssertEqual(metrics[.kahan]!.visibleChanged, kahanVisible, "\(format.name) \(tensor.name)")
                start += tensor.count
            }
        }
    }

    /// Updates that are exact multiples of the ULP never round, so every policy stores
    /// exactly the truth and all agree.
    func testPoliciesAgreeWhenUpdatesAreFarAboveTheULP() throws {
        var random = TestRandom(seed: 99)
        let count = tensors.reduce(0) { $0 + $1.count }
        // Weights in [1, 1.5) with bf16-exact values; steps of ±k·2^-7 stay in [1, 2).
        let base = (0..<count).map { _ in 1 + Float(Int(random.nextUInt64() % 64)) / 128 }
        let updates = (0..<6).map { _ in
            (0..<count).map { _ in Float(Int(random.nextUInt64() % 5) - 2) / 128 }
        }
        let result = try replay(tensors: tensors, base: base, updates: updates)
        for tensor in result.tensors {
            let truth = tensor.policies[.fp32]!
            for policy in ReplayPolicy.allCases {
                let metrics = tensor.policies[policy]!
                XCTAssertEqual(metrics.visibleChanged, truth.visibleChanged, "\(policy) \(tensor.tensor.name)")
                XCTAssertEqual(metrics.hidden, 0)
                XCTAssertEqual(metrics.relativeError, 0)
            }
        }
    }

    /// The same replay on 1, 2 and 3 threads gives identical JSON.
    func testResultsDoNotDependOnThreadCount() throws {
        let (base, updates) = randomStream(seed: 21, steps: 6, updateScale: 3e-4)
        let outputs = try [1, 2, 3].map { threads in
            try replay(tensors: tensors, base: base, updates: updates, nullPermute: true,
                       threads: threads, curveEvery: 2).json().serialized()
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0], outputs[2])
    }

    /// The null model permutes the cumulative update: when every entry moved by the
    /// same exact amount, permuting changes nothing and the null equals master; when
    /// the update is concentrated on the smallest weights, permuting it spreads it to
    /// large weights where it vanishes, so the null sees fewer visible entries.
    func testNullModelPermutesTheCumulativeUpdate() throws {
        let count = 64
        let tensors = [ReplayTensor(name: "w", shape: [8, 8])]
        let uniformBase = (0..<count).map { 1 + Float($0 % 64) / 128 }   // bf16-exact in [1, 1.5)
        let uniform = try replay(tensors: tensors, base: uniformBase,
                                 updates: [[Float](repeating: 1 / 128, count: count)], nullPermute: true)
        XCTAssertEqual(uniform.tensors[0].nullModel!.visibleChanged, count)
        XCTAssertEqual(uniform.tensors[0].policies[.master]!.visibleChanged, count)

        // Eight tiny weights get an update far above their ULP; 56 large ones get none.
        let base = (0..<count).map { $0 < 8 ? Float(1) / 1024 : Float(64) }
        let update = (0..<count).map { $0 < 8 ? Float(1) / 4096 : 0 }
        var nullCounts: Set<Int> = []
        for seed in 0..<6 {
            let result = try replay(tensors: tensors, base: base, updates: [update], seed: UInt64(seed),
                                    nullPermute: true)
            XCTAssertEqual(result.tensors[0].policies[.master]!.visibleChanged, 8)
            let null = result.tensors[0].nullModel!.visibleChanged
            XCTAssertLessThanOrEqual(null, 8)
            nullCounts.insert(null)
            let again = try replay(tensors: tensors, base: base, updates: [update], seed: UInt64(seed),
                                   nullPermute: true)
            XCTAssertEqual(again.tensors[0].nullModel!.visibleChanged, null, "deterministic for a seed")
        }
        // Expected null count is 8·8/64 = 1; across six seeds it cannot always be 8.
        XCTAssertLessThan(nullCounts.min()!, 8)
    }

    /// The bf16 fast codec gives exactly the bits of the formats module.
    func testBFloat16FastCodecMatchesFormats() {
        let configuration = ReplayConfiguration(format: .bf16, rounding: RoundingOptions(mode: .nearestEven))
        let fast = BFloat16Codec(configuration: configuration)
        var random = TestRandom(seed: 8)
        var patterns: [UInt32] = [0, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7F80_0001, 0xFFC0_0000,
                                  0x7FFF_FFFF, 0x7F7F_7FFF, 0x7F7F_8000, 0x3F80_8000, 0x3F81_8000,
                                  0x0001_8000, 0x0000_8000, 0x8000_8001, 0x3F80_7FFF]
        for _ in 0..<200_000 { patterns.append(UInt32(truncatingIfNeeded: random.nextUInt64())) }
        for bits in patterns {
            let value = Float(bitPattern: bits)
            XCTAssertEqual(UInt32(fast.nearest(value)), FloatFormat.bf16.encode(value),
                           "nearest 0x\(String(bits, radix: 16))")
            let randomBits = UInt32(truncatingIfNeeded: random.nextUInt64())
            XCTAssertEqual(UInt32(fast.stochastic(value, random: randomBits)),
                           FloatFormat.bf16.encode(value, RoundingOptions(mode: .stochastic), random: randomBits),
                           "stochastic 0x\(String(bits, radix: 16)) r 0x\(String(randomBits, radix: 16))")
        }
        for code in 0...UInt32(0xFFFF) {
            let decoded = fast.decode(UInt16(code))
            let expected = FloatFormat.bf16.decodeFloat(code)
            XCTAssertTrue(decoded.bitPattern == expected.bitPattern || (decoded.isNaN && expected.isNaN))
        }
    }

    func testPolicyListParsing() throws {
        XCTAssertEqual(try ReplayPolicy.parseList("all"), ReplayPolicy.allCases)
        XCTAssertEqual(try ReplayPolicy.parseList("kahan, master,master"), [.master, .kahan])
        XCTAssertThrowsError(try ReplayPolicy.parseList("fp64")) { error in
            XCTAssertEqual((error as? PrecLabError)?.isDataError, false)
        }
    }
}
