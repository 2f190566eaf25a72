import PrecLabFormats

/// Deterministic fp32 bit patterns stratified over every exponent and both signs, with
/// the mantissa patterns that sit on rounding boundaries of every target width.
enum SampleInputs {
    /// A small xorshift generator (test-local, deterministic).
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }

    /// Mantissa patterns around the tie and the truncation boundary for every shift 1...23.
    static let boundaryMantissas: [UInt32] = {
        var result: Set<UInt32> = [0, 1, 2, 0x7F_FFFF, 0x7F_FFFE, 0x40_0000]
        for shift in 1...23 {
            let half = UInt32(1) << (shift - 1)
            let unit = UInt32(1) << shift
            for base in [UInt32(0), unit, 2 * unit, 0x7F_FFFF & ~(unit - 1), 0x7F_FFFF & ~(unit - 1) &- unit] {
                for offset in [half &- 1, half, half + 1, unit &- 1, 0, 1] {
                    result.insert((base &+ offset) & 0x7F_FFFF)
                }
            }
        }
        return result.sorted()
    }()

    /// Every exponent, both signs, all boundary mantissas plus `randomPerExponent` random ones.
    static func bits(randomPerExponent: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt32] {
        var generator = Generator(state: seed)
        var result: [UInt32] = []
        result.reserveCapacity(512 * (boundaryMantissas.count + randomPerExponent))
        for sign: UInt32 in [0, 1] {
            for exponent: UInt32 in 0...255 {
                let head = (sign << 31) | (exponent << 23)
                for mantissa in boundaryMantissas { result.append(head | mantissa) }
                for _ in 0..<randomPerExponent {
                    result.append(head | UInt32(truncatingIfNeeded: generator.next()) & 0x7F_FFFF)
                }
            }
        }
        return result
    }

    /// Formats the kernel tests cover.
    static var formats: [FloatFormat] {
        FloatFormat.standard + [try! FloatFormat.named("e4m3"), try! FloatFormat.named("e8m3"),
                                try! FloatFormat.named("e6m9"), try! FloatFormat.named("e7m12")]
    }
}
