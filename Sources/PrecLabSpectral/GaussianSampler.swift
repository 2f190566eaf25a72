import Foundation

/// Standard normal numbers from a counter-based generator: element `index` of the
/// stream for `seed` is a pure function of (seed, index), so a test matrix is the same
/// whatever order or thread fills it.
///
/// Uniforms come from the SplitMix64 output function applied to
/// `seed + counter * 0x9E3779B97F4A7C15`; pairs of uniforms become pairs of normals by
/// the Box-Muller transform (even index: cosine branch, odd index: sine branch).
public struct GaussianSampler: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The 64-bit hash of counter `counter`.
    @inline(__always)
    func bits(_ counter: UInt64) -> UInt64 {
        var z = seed &+ counter &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform number in (0, 1] with 53 random bits.
    @inline(__always)
    func uniform(_ counter: UInt64) -> Double {
        Double((bits(counter) >> 11) + 1) * 0x1p-53
    }

    /// The normal number at `index` of the stream.
    public func normal(at index: UInt64) -> Double {
        let pair = index / 2
        let u1 = uniform(2 * pair)
        let u2 = uniform(2 * pair + 1)
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return index % 2 == 0 ? radius * Foundation.cos(angle) : radius * Foundation.sin(angle)
    }

    /// A rows×columns matrix of independent standard normals; element (i, j) is stream
    /// element `i + j * rows` (column-major order).
    public func matrix(rows: Int, columns: Int) -> Matrix {
        var result = Matrix(rows: rows, columns: columns)
        for index in 0..<(rows * columns) { result.storage[index] = normal(at: UInt64(index)) }
        return result
    }
}
