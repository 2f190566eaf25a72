import CLapack

/// The fixed signal S of the gradient model: a diagonal block chosen by the placement
/// and, with rotation ρ > 0, two off-diagonal blocks that rotate the top-k subspaces.
///
///     S ∝ √(1−ρ)·D/‖D‖ + √(ρ/2)·L/‖L‖ + √(ρ/2)·R/‖R‖
///     D = (U_k C)(V_k D')ᵀ (in),  (P⊥ A)(Q⊥ B)ᵀ (off),  A Bᵀ (random)
///     L = (P⊥ E)(V_k F)ᵀ,  R = (U_k G)(Q⊥ H)ᵀ
///
/// with P⊥ = I − U_k U_kᵀ, Q⊥ = I − V_k V_kᵀ and Gaussian factors. D, L and R lie in
/// different blocks of W0's singular basis, so they are orthogonal in the Frobenius
/// inner product and ρ is exactly the off-diagonal share of ‖S‖_F².
enum GradientSignal {
    static func make(model: GradientModel, principal: PrincipalSubspace, signalRank r: Int,
                     seed: UInt64, tensor: Int) -> [Float]? {
        guard model.hasSignal else { return nil }
        let m = principal.rows, n = principal.columns, k = principal.rank
        let rho = model.rotation
        func gaussian(_ purpose: RandomPurpose, _ count: Int) -> [Double] {
            CounterRandom(seed: seed, tensor: tensor, purpose: purpose).gaussianArray(count: count)
        }
        var s = [Double](repeating: 0, count: m * n)
        if rho < 1 {
            let a: [Double], b: [Double]
            switch model.placement {
            case .inside:
                a = multiply(principal.left, rows: m, inner: k, by: gaussian(.signalLeft, k * r), columns: r)
                b = multiply(principal.right, rows: n, inner: k, by: gaussian(.signalRight, k * r), columns: r)
            case .outside:
                a = projectOff(principal.left, rows: m, rank: k, gaussian(.signalLeft, m * r), columns: r)
                b = projectOff(principal.right, rows: n, rank: k, gaussian(.signalRight, n * r), columns: r)
            case .random:
                a = gaussian(.signalLeft, m * r)
                b = gaussian(.signalRight, n * r)
            }
            addBlock(a, b, rows: m, columns: n, rank: r, weight: (1 - rho).squareRoot(), into: &s)
        }
        if rho > 0 {
            let e = projectOff(principal.left, rows: m, rank: k, gaussian(.rotationE, m * r), columns: r)
            let f = multiply(principal.right, rows: n, inner: k, by: gaussian(.rotationF, k * r), columns: r)
            addBlock(e, f, rows: m, columns: n, rank: r, weight: (rho / 2).squareRoot(), into: &s)
            let g = multiply(principal.left, rows: m, inner: k, by: gaussian(.rotationG, k * r), columns: r)
            let h = projectOff(principal.right, rows: n, rank: k, gaussian(.rotationH, n * r), columns: r)
            addBlock(g, h, rows: m, columns: n, rank: r, weight: (rho / 2).squareRoot(), into: &s)
        }
        let total = sumOfSquares(s)
        let scale = total > 0 ? (Double(m * n) / total).squareRoot() : 0
        return s.map { Float($0 * scale) }
    }

    /// s += weight · (a bᵀ)/‖a bᵀ‖_F for a (m × r) and b (n × r), column-major; s is m × n
    /// row-major.
    private static func addBlock(_ a: [Double], _ b: [Double], rows m: Int, columns n: Int, rank r: Int,
                                 weight: Double, into s: inout [Double]) {
        // (a bᵀ)ᵀ = b aᵀ (n × m, column-major) has the memory of a bᵀ row-major.
        var block = [Double](repeating: 0, count: m * n)
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeBufferPointer { ap in
                block.withUnsafeMutableBufferPointer { cp in
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(r),
                                1.0, bp.baseAddress, Int32(n), ap.baseAddress, Int32(m),
                                0.0, cp.baseAddress, Int32(n))
                }
            }
        }
        let norm = sumOfSquares(block).squareRoot()
        guard norm > 0 else { return }
        let factor = weight / norm
        for index in s.indices { s[index] += factor * block[index] }
    }

    /// Σ x², in a fixed order.
    private static func sumOfSquares(_ x: [Double]) -> Double {
        var sum = 0.0
        for value in x { sum += value * value }
        return sum
    }

    /// X (rows × inner) · Y (inner × columns), all column-major.
    static func multiply(_ x: [Double], rows: Int, inner: Int, by y: [Double], columns: Int) -> [Double] {
        var result = [Double](repeating: 0, count: rows * columns)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                result.withUnsafeMutableBufferPointer { rp in
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns),
                                Int32(inner), 1.0, xp.baseAddress, Int32(rows), yp.baseAddress,
                                Int32(inner), 0.0, rp.baseAddress, Int32(rows))
                }
            }
        }
        return result
    }

    /// (I − Q Qᵀ)·G for Q (rows × rank) with orthonormal columns, applied twice so the
    /// result is orthogonal to Q to working precision ("twice is enough").
    static func projectOff(_ q: [Double], rows: Int, rank: Int, _ g: [Double], columns: Int) -> [Double] {
        var result = g
        var coefficients = [Double](repeating: 0, count: rank * columns)
        for _ in 0 ..< 2 {
            q.withUnsafeBufferPointer { qp in
                result.withUnsafeMutableBufferPointer { rp in
                    coefficients.withUnsafeMutableBufferPointer { cp in
                        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, Int32(rank), Int32(columns),
                                    Int32(rows), 1.0, qp.baseAddress, Int32(rows), rp.baseAddress,
                                    Int32(rows), 0.0, cp.baseAddress, Int32(rank))
                        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns),
                                    Int32(rank), -1.0, qp.baseAddress, Int32(rows), cp.baseAddress,
                                    Int32(rank), 1.0, rp.baseAddress, Int32(rows))
                    }
                }
            }
        }
        return result
    }
}
