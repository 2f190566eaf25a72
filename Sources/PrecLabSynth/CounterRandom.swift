#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a block of random numbers is used for. Each purpose gets its own key, so that
/// changing, say, the number of steps never changes the base weights.
public enum RandomPurpose: UInt64, Sendable {
    case baseLeftFactor = 1
    case baseRightFactor = 2
    case signalLeft = 3
    case signalRight = 4
    case gradientNoise = 5
}

/// Counter-based random numbers: the value at position `index` is a pure function of
/// (seed, tensor, purpose, step, index). Nothing is carried from one number to the
/// next, so any chunking of the index range over any number of threads gives the same
/// values.
///
/// The key is the seed and the coordinates folded through the SplitMix64 finaliser;
/// position `index` of a key is the SplitMix64 output for state `key + (index+1)·γ`
/// (γ the golden-ratio increment), i.e. the SplitMix64 sequence that starts at `key`.
public struct CounterRandom: Sendable {
    public let key: UInt64

    @usableFromInline static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    public init(seed: UInt64, tensor: Int, purpose: RandomPurpose, step: Int = 0) {
        var key = CounterRandom.mix(seed ^ 0x5052_4543_4C41_4221)  // "PRECLAB!"
        key = CounterRandom.mix(key ^ (UInt64(truncatingIfNeeded: tensor) &* 0xD1B5_4A32_D192_ED03))
        key = CounterRandom.mix(key ^ (purpose.rawValue &* 0xAEF1_7502_108E_F2D9))
        key = CounterRandom.mix(key ^ (UInt64(truncatingIfNeeded: step) &* 0x9FB2_1C65_1E98_DF25))
        self.key = key
    }

    /// The SplitMix64 output function (Steele, Lea and Flood 2014).
    @inlinable @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for position `index`.
    @inlinable @inline(__always)
    public func bits(_ index: Int) -> UInt64 {
        CounterRandom.mix(key &+ (UInt64(truncatingIfNeeded: index) &+ 1) &* CounterRandom.golden)
    }

    /// Two independent standard normal values for pair `pair`, by Box-Muller on the two
    /// 32-bit halves of `bits(pair)`. The first uniform is (k + 0.5)/2^32, never 0, so
    /// the logarithm is finite; values are bounded by sqrt(2·ln(2^33)) ≈ 6.76.
    @inlinable @inline(__always)
    public func gaussianPair(_ pair: Int) -> (Double, Double) {
        let random = bits(pair)
        let u1 = (Double(random >> 32) + 0.5) * 0x1p-32
        let u2 = Double(random & 0xFFFF_FFFF) * 0x1p-32
        let radius = (-2.0 * log(u1)).squareRoot()
        let angle = 2.0 * Double.pi * u2
        return (radius * cos(angle), radius * sin(angle))
    }

    /// The standard normal value at element `index`: element 2p is the first value of
    /// pair p, element 2p+1 the second.
    @inlinable
    public func gaussian(_ index: Int) -> Double {
        let pair = gaussianPair(index >> 1)
        return index & 1 == 0 ? pair.0 : pair.1
    }

    /// Fills `output[0 ..< range.count]` with `scale ·` the normal values of elements
    /// `range`, exactly as `gaussian(i)` would give them one by one.
    @inlinable
    public func fillGaussian(_ output: UnsafeMutablePointer<Float>, elements range: Range<Int>,
                             scale: Double) {
        var index = range.lowerBound
        var position = 0
        if index < range.upperBound, index & 1 == 1 {
            output[position] = Float(scale * gaussianPair(index >> 1).1)
            index += 1; position += 1
        }
        while index + 1 < range.upperBound {
            let (first, second) = gaussianPair(index >> 1)
            output[position] = Float(scale * first)
            output[position + 1] = Float(scale * second)
            index += 2; position += 2
        }
        if index < range.upperBound {
            output[position] = Float(scale * gaussianPair(index >> 1).0)
        }
    }

    /// `count` normal values as Double (elements 0 ..< count), for the small matrices
    /// that are factorised in float64.
    public func gaussianArray(count: Int) -> [Double] {
        (0 ..< count).map { gaussian($0) }
    }
}
