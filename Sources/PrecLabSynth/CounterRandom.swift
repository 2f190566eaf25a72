/// What a block of random numbers is used for. Each purpose gets its own key, so that
/// changing, say, the number of steps never changes the base weights.
public enum RandomPurpose: UInt64, Sendable {
    case baseLeftFactor = 1
    case baseRightFactor = 2
    case signalLeft = 3
    case signalRight = 4
    case gradientNoise = 5
    /// The factors of the signal's off-diagonal blocks (P⊥ E)(V_k F)ᵀ and (U_k G)(Q⊥ H)ᵀ.
    case rotationE = 6
    case rotationF = 7
    case rotationG = 8
    case rotationH = 9
    /// The row and column scales of a heavy-tailed base.
    case baseRowScale = 10
    case baseColumnScale = 11
    /// The row and column scales of the noise.
    case noiseRowScale = 12
    case noiseColumnScale = 13
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
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for position `index`.
    @inline(__always)
    public func bits(_ index: Int) -> UInt64 {
        CounterRandom.mix(key &+ (UInt64(truncatingIfNeeded: index) &+ 1) &* CounterRandom.golden)
    }

    /// Sixteen standard normal values: block `block` holds elements 16·block ..< 16·block+16.
    /// Lane j < 8 is the cosine value and lane j+8 the sine value of Box-Muller pair
    /// 8·block + j, whose uniforms come from `bits(8·block + j)`: u = (k + ½)·2^-23 with k
    /// the top 23 bits (never 0 or 1, so the logarithm is finite: |z| ≤ 5.77), and the
    /// angle t·2π with t the low 24 bits over 2^24.
    @inline(__always)
    public func gaussianBlock(_ block: Int) -> (cosines: SIMD8<Float>, sines: SIMD8<Float>) {
        var u = SIMD8<Float>(), t = SIMD8<Float>()
        for lane in 0 ..< 8 {
            let random = bits(block &* 8 &+ lane)
            // Through Int32: the UInt64 → Float conversion is a slow path on x86-64.
            u[lane] = Float(Int32(truncatingIfNeeded: random >> 41)) * 0x1p-23 + 0x1p-24
            t[lane] = Float(Int32(truncatingIfNeeded: random & 0xFF_FFFF)) * 0x1p-24
        }
        let radius = VectorMath.squareRoot(-2 * VectorMath.logarithm(u))
        let (cosine, sine) = VectorMath.cosineSineOfTurns(t)
        return (radius * cosine, radius * sine)
    }

    /// The standard normal value at element `index` (see `gaussianBlock`).
    public func gaussian(_ index: Int) -> Float {
        let (cosines, sines) = gaussianBlock(index >> 4)
        let lane = index & 15
        return lane < 8 ? cosines[lane] : sines[lane - 8]
    }

    /// Fills `output[0 ..< range.count]` with `scale ·` the normal values of elements
    /// `range`, exactly as `scale · gaussian(i)` gives them one by one (in fp32).

    public func fillGaussian(_ output: UnsafeMutablePointer<Float>, elements range: Range<Int>,
                             scale: Double) {
        let factor = Float(scale)
        var index = range.lowerBound
        var position = 0
        while index < range.upperBound {
            let block = index >> 4
            let blockStart = block << 4
            let (cosines, sines) = gaussianBlock(block)
            if index == blockStart, index + 16 <= range.upperBound {
                UnsafeMutableRawPointer(output + position).storeBytes(of: cosines * factor, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(output + position + 8).storeBytes(of: sines * factor, as: SIMD8<Float>.self)
                index += 16
                position += 16
            } else {
                let end = min(blockStart + 16, range.upperBound)
                for element in index ..< end {
                    let lane = element - blockStart
                    output[position] = (lane < 8 ? cosines[lane] : sines[lane - 8]) * factor
                    position += 1
                }
                index = end
            }
        }
    }

    /// `count` normal values as Double (elements 0 ..< count), for the small matrices
    /// that are factorised in float64.
    public func gaussianArray(count: Int) -> [Double] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer {
            if let base = $0.baseAddress { fillGaussian(base, elements: 0 ..< count, scale: 1) }
        }
        return values.map(Double.init)
    }
}
