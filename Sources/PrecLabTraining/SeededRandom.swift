/// SplitMix64: a small, fast, seedable generator. Every random draw of training comes
/// from one of these, keyed by (seed, purpose, step or tensor), so a run is a pure
/// function of its seed and never of the thread count or of earlier draws elsewhere.
public struct SplitMix64: Sendable {
    public private(set) var state: UInt64

    public init(state: UInt64) { self.state = state }

    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always) static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The generator for one purpose and index: state = mix(mix(seed + golden) ^ purpose·C1 ^ index·C2).
    public init(seed: UInt64, purpose: RandomPurpose, index: UInt64) {
        let s = SplitMix64.mix(seed &+ SplitMix64.golden)
        state = SplitMix64.mix(s ^ (purpose.rawValue &* 0xD1B5_4A32_D192_ED03) ^ (index &* 0x8CB9_2BA7_2F3D_8DD7))
    }

    @inline(__always) public mutating func next() -> UInt64 {
        state &+= SplitMix64.golden
        return SplitMix64.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always) public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// The top `bits` bits of the next draw: uniform in [0, 2^bits).
    @inline(__always) public mutating func nextBits(_ bits: Int) -> Int {
        bits == 0 ? 0 : Int(next() >> UInt64(64 - bits))
    }
}

/// What a random stream is used for (part of its key).
public enum RandomPurpose: UInt64, Sendable {
    case initialization = 1
    case prompts = 2
    case samples = 3
    case evaluation = 4
}
