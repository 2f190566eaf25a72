import Foundation
import PrecLabTestSupport
import XCTest
@testable import PrecLabSpectral

/// Cross-checks against numpy/scipy, an independent implementation (skipped when
/// python3 with numpy is not available).
final class NumpyCrossCheckTests: XCTestCase {
    /// Runs a numpy script on `input`; a failing script fails the test.
    func runPython(_ script: String, input: String) throws -> String? {
        try PythonOracle.require("numpy", "scipy")
        return try PythonOracle.run(script, input: input)
    }

    func text(_ m: Matrix) -> String {
        "\(m.rows) \(m.columns)\n" + m.rowMajorElements.map { String($0) }.joined(separator: " ") + "\n"
    }

    func testSingularValuesAndAnglesAgainstNumpy() throws {
        let a = TestMatrices.random(rows: 40, columns: 30, seed: 77)
        let b = a + TestMatrices.random(rows: 40, columns: 30, seed: 78, scale: 0.05)
        // numpy: singular values of A, and principal angles between the top-5 left
        // singular subspaces by the textbook formulas (arccos for large, arcsin of the
        // residual for small, each list sorted by itself, which is right when all
        // angles are below 45°, as here).
        let script = """
        import sys, numpy as np
        lines = sys.stdin.read().split('\\n')
        def read(i):
            r, c = map(int, lines[i].split()); return np.array(list(map(float, lines[i+1].split()))).reshape(r, c)
        A = read(0); B = read(2)
        print(' '.join(repr(float(x)) for x in np.linalg.svd(A, compute_uv=False)))
        Ua = np.linalg.svd(A)[0][:, :5]; Ub = np.linalg.svd(B)[0][:, :5]
        s = np.linalg.svd(Ub - Ua @ (Ua.T @ Ub), compute_uv=False)
        print(' '.join(repr(float(x)) for x in np.sort(np.arcsin(np.clip(s, 0, 1)))))
        """
        guard let output = try runPython(script, input: text(a) + text(b)) else {
            throw XCTSkip("python3 with numpy not available")
        }
        let lines = output.split(separator: "\n").map { $0.split(separator: " ").map { Double($0)! } }
        let values = try LinearAlgebra.singularValues(of: a)
        XCTAssertLessThan(maxDifference(values, lines[0]), 1e-13)
        let ua = try LinearAlgebra.thinSVD(of: a).truncated(to: 5).u
        let ub = try LinearAlgebra.thinSVD(of: b).truncated(to: 5).u
        let angles = try PrincipalAngles.between(ua, ub)
        XCTAssertLessThan(angles.max()!, Double.pi / 4)
        XCTAssertLessThan(maxDifference(angles, lines[1]), 1e-10)
    }
}
