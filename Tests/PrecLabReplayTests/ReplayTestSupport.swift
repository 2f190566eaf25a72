import XCTest
@testable import PrecLabFormats
@testable import PrecLabReplay

/// Runs a replay over in-memory updates: `updates[s]` is step s+1's flat update.
func replay(
    tensors: [ReplayTensor], base: [Float], updates: [[Float]],
    format: FloatFormat = .bf16, rounding: RoundingOptions = RoundingOptions(),
    policies: [ReplayPolicy] = ReplayPolicy.allCases, seed: UInt64 = 0,
    nullPermute: Bool = false, signedZeroChanges: Bool = false, threads: Int = 2, curveEvery: Int = 1
) throws -> ReplayResult {
    let configuration = ReplayConfiguration(format: format, rounding: rounding, seed: seed,
                                            policies: policies, nullPermute: nullPermute,
                                            signedZeroChanges: signedZeroChanges, threads: threads)
    let engine = try base.withUnsafeBufferPointer {
        try ReplayEngine(tensors: tensors, base: $0, configuration: configuration)
    }
    for (index, update) in updates.enumerated() {
        try update.withUnsafeBufferPointer {
            try engine.apply(step: UInt64(index + 1), delta: $0,
                             recordCurvePoint: (index + 1) % curveEvery == 0)
        }
    }
    return engine.finish()
}

/// A replay of one scalar weight.
func replayScalar(_ w0: Float, updates: [Float], format: FloatFormat = .bf16,
                  rounding: RoundingOptions = RoundingOptions(), seed: UInt64 = 0) throws -> ReplayResult {
    try replay(tensors: [ReplayTensor(name: "w", shape: [1])], base: [w0],
               updates: updates.map { [$0] }, format: format, rounding: rounding, seed: seed)
}

/// A reproducible stream of uniform floats in [-1, 1) (xorshift; independent of the
/// generators under test).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func nextUInt64() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func uniform() -> Float {
        Float(Int64(nextUInt64() >> 40) - (1 << 23)) / Float(1 << 23)
    }
}

/// Hands in-memory updates (`updates[s]` is step s+1's flat update) to `body` as
/// recorded steps, with a curve point after step s+1 when `curvePoint(s)`.
func withRecordedSteps(_ updates: [[Float]], curvePoint: (Int) -> Bool,
                       _ body: ([RecordedStep]) throws -> Void) throws {
    let count = updates.first?.count ?? 0
    let flat = UnsafeMutablePointer<Float>.allocate(capacity: max(1, updates.count * count))
    defer { flat.deallocate() }
    var steps: [RecordedStep] = []
    for (index, update) in updates.enumerated() {
        (flat + index * count).update(from: update, count: count)
        steps.append(RecordedStep(step: UInt64(index + 1),
                                  delta: UnsafeBufferPointer(start: flat + index * count, count: count),
                                  curvePoint: curvePoint(index)))
    }
    try body(steps)
}
