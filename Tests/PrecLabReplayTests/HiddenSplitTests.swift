import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay
import PrecLabSupport

/// The hidden count split by what hid it, `spurious`, the step-level views and
/// `--scale`, on streams whose answers follow by hand from bf16's rounding rules.
///
/// bf16 near 1.0: the ULP above 1 is 2^-7 and below it 2^-8, so the rounding interval I
/// of the stored 1.0 is [1 - 2^-9, 1 + 2^-8] = [0.998046875, 1.00390625] (both ends are
/// ties that round to the even code 1.0).
final class HiddenSplitTests: XCTestCase {
    private func metrics(_ result: ReplayResult, _ policy: ReplayPolicy) -> PolicyMetrics {
        result.tensors[0].policies[policy]!
    }

    private func split(_ metrics: PolicyMetrics) -> [Int] {
        [metrics.hiddenNeverLeft, metrics.hiddenReturned, metrics.hiddenSwamped]
    }

    /// Truth 1.001, then 1.0005: it never leaves I. Every stored policy keeps 1.0.
    func testNeverLeft() throws {
        let result = try replayScalar(1, updates: [1e-3, -5e-4])
        XCTAssertEqual(result.tensors[0].trueChanged, 1)
        for policy in [ReplayPolicy.master, .pure, .kahan] {
            XCTAssertEqual(metrics(result, policy).hidden, 1, policy.rawValue)
            XCTAssertEqual(split(metrics(result, policy)), [1, 0, 0], policy.rawValue)
        }
        XCTAssertEqual(split(metrics(result, .fp32)), [0, 0, 0])
    }

    /// Truth 1.0025 (in I), 1.005 (out), 1.0031 (back in): a cancelled walk. Pure rounds
    /// 1.0025 and 1.0025 back to 1.0 (below 2^-8 above it) and 1.0 - 0.0019 back to 1.0
    /// (within 2^-9 below it), so pure is hidden the same way.
    func testReturned() throws {
        let result = try replayScalar(1, updates: [0.0025, 0.0025, -0.0019], policies: [.master, .pure])
        XCTAssertEqual(split(metrics(result, .master)), [0, 1, 0])
        XCTAssertEqual(split(metrics(result, .pure)), [0, 1, 0])
    }

    /// Two updates of 0.003, each below half an ULP of 1.0 (2^-8): pure never moves, the
    /// truth ends at 1.006, outside I. Master shows it; pure swamped it.
    func testSwamped() throws {
        let result = try replayScalar(1, updates: [0.003, 0.003], policies: [.master, .pure])
        XCTAssertEqual(metrics(result, .master).visibleChanged, 1)
        XCTAssertEqual(metrics(result, .master).hidden, 0)
        XCTAssertEqual(metrics(result, .pure).visibleChanged, 0)
        XCTAssertEqual(split(metrics(result, .pure)), [0, 0, 1])
    }

    /// +0.01 then -0.0099: the truth ends at about 1.0001 (net change up, inside I, so
    /// master hides it as a return). Pure stores 1 + 2^-7 after the first step, then
    /// 1.0078125 - 0.0099 = 0.9979 rounds to 1 - 2^-8: a visible change downward, the
    /// opposite sign of the truth's: spurious.
    func testSpuriousSignOfTheStoredChange() throws {
        let result = try replayScalar(1, updates: [0.01, -0.0099], policies: [.master, .pure])
        XCTAssertEqual(split(metrics(result, .master)), [0, 1, 0])
        XCTAssertEqual(metrics(result, .pure).visibleChanged, 1)
        XCTAssertEqual(metrics(result, .pure).spurious, 1)
        XCTAssertEqual(metrics(result, .master).spurious, 0)
    }

    /// Step views by hand: w = 1, updates 0.003 then 0.003 then 0.01. |u| / half-ULP(1.0)
    /// = 0.003 / 2^-8 = 0.768 (octave 2^-1) twice, then 0.01 / 2^-8 = 2.56 (octave 2^1),
    /// and only that last step changes pure (1.01 -> 1 + 2^-7). Master's export stays 1.0
    /// at step 1 (1.003), becomes 1 + 2^-7 at step 2 (1.006) and 1 + 2^-6 at step 3 (1.016).
    func testStepViewsByHand() throws {
        let result = try replayScalar(1, updates: [0.003, 0.003, 0.01], policies: [.master, .pure],
                                      stepViews: true)
        let views = try XCTUnwrap(result.stepViews)
        XCTAssertEqual(views.steps, [1, 2, 3])
        XCTAssertEqual(views.changedInStep[.pure], [0, 0, 1])
        XCTAssertEqual(views.changedInStep[.master], [0, 1, 1])
        let labels = VisibilityHistogram.labels
        var expected = Array(repeating: 0, count: labels.count)
        expected[labels.firstIndex(of: "2^-1")!] = 2
        expected[labels.firstIndex(of: "2^1")!] = 1
        XCTAssertEqual(views.pureRatioHistogram, expected)
        var changed = Array(repeating: 0, count: labels.count)
        changed[labels.firstIndex(of: "2^1")!] = 1
        XCTAssertEqual(views.pureRatioChanged, changed)
    }

    /// --scale 2 turns 0.003 (below half an ULP of 1.0) into 0.006 (above it): the truth
    /// is 1 + fp32(0.006) and both master and pure show the change; unscaled, neither does.
    func testScaleMultipliesEveryUpdate() throws {
        let plain = try replayScalar(1, updates: [0.003], policies: [.fp32, .master, .pure])
        XCTAssertEqual(metrics(plain, .master).visibleChanged, 0)
        XCTAssertEqual(metrics(plain, .pure).visibleChanged, 0)
        let configuration = ReplayConfiguration(format: .bf16, policies: [.fp32, .master, .pure], scale: 2)
        let engine = try [Float(1)].withUnsafeBufferPointer {
            try ReplayEngine(tensors: [ReplayTensor(name: "w", shape: [1])], base: $0, configuration: configuration)
        }
        try [Float(0.003)].withUnsafeBufferPointer { try engine.apply(step: 1, delta: $0, recordCurvePoint: false) }
        let core = try XCTUnwrap(engine.testingCore as? TypedReplayCore<BFloat16Codec>)
        XCTAssertEqual(core.truth[0].bitPattern, (Float(1) + Float(0.006)).bitPattern)
        let scaled = engine.finish()
        XCTAssertEqual(metrics(scaled, .master).visibleChanged, 1)
        XCTAssertEqual(metrics(scaled, .pure).visibleChanged, 1)
        XCTAssertEqual(core.pure![0], 0x3F81)  // 1.006 -> 1 + 2^-7
    }

    /// On random streams the three parts sum to `hidden` for every policy and format,
    /// master is never swamped, and master's split matches a recount with the formats
    /// module's scalar encoder tracking "left I" step by step.
    func testSplitSumsToHiddenOnRandomStreams() throws {
        let tensors = [ReplayTensor(name: "a", shape: [40, 33]), ReplayTensor(name: "b", shape: [5])]
        let count = tensors.reduce(0) { $0 + $1.count }
        var random = TestRandom(seed: 99)
        let base = (0..<count).map { _ in random.uniform() * 0.05 }
        // Updates around half an ULP of the weights, with both signs, so every category occurs.
        let updates = (0..<12).map { _ in (0..<count).map { _ in random.uniform() * 3e-4 } }
        for (format, rounding) in [(FloatFormat.bf16, RoundingMode.nearestEven), (.bf16, .stochastic),
                                   (.fp16, .nearestEven), (.e4m3fn, .towardZero)] {
            // e4m3fn's small weights round to zero, so truths that cross zero test both rules.
            for signedZeros in [false, true] {
                let result = try replay(tensors: tensors, base: base, updates: updates, format: format,
                                        rounding: RoundingOptions(mode: rounding), seed: 4,
                                        signedZeroChanges: signedZeros)
                for policy in ReplayPolicy.allCases {
                    let total = result.total(policy)
                    XCTAssertEqual(total.hiddenNeverLeft + total.hiddenReturned + total.hiddenSwamped, total.hidden,
                                   "\(format.name) \(policy.rawValue)")
                }
                XCTAssertEqual(result.total(.master).hiddenSwamped, 0, format.name)
                XCTAssertEqual(result.total(.fp32).hidden, 0, format.name)

                // +0 <-> -0 is no change (Def. 2.1; the replay's default), for the values
                // and for the codes alike; --signed-zero-changes compares bits.
                func sameCode(_ a: UInt32, _ b: UInt32) -> Bool {
                    a == b || (!signedZeros && format.decode(a) == 0 && format.decode(b) == 0)
                }
                var truth = base
                var left = [Bool](repeating: false, count: count)
                let stored = base.map { format.encode($0) }
                for update in updates {
                    for index in 0..<count {
                        truth[index] += update[index]
                        if !sameCode(format.encode(truth[index]), stored[index]) { left[index] = true }
                    }
                }
                var neverLeft = 0, returned = 0
                for index in 0..<count where truth[index].bitPattern != base[index].bitPattern
                    && (signedZeros || !(truth[index] == 0 && base[index] == 0))
                    && sameCode(format.encode(truth[index]), stored[index]) {
                    if left[index] { returned += 1 } else { neverLeft += 1 }
                }
                XCTAssertEqual(result.total(.master).hiddenNeverLeft, neverLeft, format.name)
                XCTAssertEqual(result.total(.master).hiddenReturned, returned, format.name)
                XCTAssertGreaterThan(returned, 0, "the stream should exercise returns (\(format.name))")
                XCTAssertGreaterThan(result.total(.pure).hiddenSwamped, 0, format.name)
            }
        }
    }

    private func replayScalar(_ w0: Float, updates: [Float], policies: [ReplayPolicy] = ReplayPolicy.allCases,
                              stepViews: Bool = false) throws -> ReplayResult {
        var configuration = ReplayConfiguration(format: .bf16, policies: policies)
        configuration.stepViews = stepViews
        let engine = try [w0].withUnsafeBufferPointer {
            try ReplayEngine(tensors: [ReplayTensor(name: "w", shape: [1])], base: $0, configuration: configuration)
        }
        for (index, update) in updates.enumerated() {
            try [update].withUnsafeBufferPointer {
                try engine.apply(step: UInt64(index + 1), delta: $0, recordCurvePoint: false)
            }
        }
        return engine.finish()
    }
}
