import PrecLabSpectral
import XCTest
@testable import PrecLabSynth

/// The knobs of the gradient model do what docs/synth-model.md says, checked against an
/// independent float64 SVD of the STORED base (the bf16-rounded W0 the stream holds).
final class SynthPlacementTests: XCTestCase {
    private let (m, n, k) = (48, 40, 4)

    /// The stored base and the unit-RMS signal of one generated m × n tensor.
    private func baseAndSignal(_ gradient: GradientModel, spectrum: BaseSpectrum = BaseSpectrum(),
                               seed: UInt64 = 5) throws -> (base: [Float], signal: [Float]) {
        let configuration = SynthConfiguration(steps: 1, learningRate: 1e-6, profile: nil, seed: seed,
                                               gradient: gradient, spectrum: spectrum, threads: 1)
        let generator = try SyntheticStreamGenerator(
            configuration: configuration, tensors: [.generated(name: "w", rows: m, columns: n)])
        let (base, signal) = try generator.prepareBaseAndSignal(index: 0)
        return (base, try XCTUnwrap(signal))
    }

    private func model(_ placement: SignalPlacement, rotation: Double = 0) -> GradientModel {
        GradientModel(placement: placement, snr: 1, rotation: rotation, principalRank: k, signalRank: 2)
    }

    /// Energies of a row-major m × n matrix X against the top-k subspaces of `basis`:
    /// ‖U_kᵀ X V_k‖², ‖U_kᵀ X‖², ‖X V_k‖², ‖X‖².
    private func blockEnergies(_ x: [Float], basis: TestSVD) -> (diagonal: Double, left: Double, right: Double, total: Double) {
        let p = min(m, n)
        var total = 0.0, left = 0.0, right = 0.0, diagonal = 0.0
        for value in x { total += Double(value) * Double(value) }
        for c in 0 ..< k {          // U_kᵀ X: row c
            for j in 0 ..< n {
                var sum = 0.0
                for i in 0 ..< m { sum += basis.u[i * p + c] * Double(x[i * n + j]) }
                left += sum * sum
            }
        }
        for i in 0 ..< m {          // X V_k: column c
            for c in 0 ..< k {
                var sum = 0.0
                for j in 0 ..< n { sum += Double(x[i * n + j]) * basis.vt[c * n + j] }
                right += sum * sum
            }
        }
        diagonal = basis.principalEnergyShare(of: x.map(Double.init), rank: k) * total
        return (diagonal, left, right, total)
    }

    /// The largest principal angle (degrees) between the top-k left or right singular
    /// subspaces of the stored base and of base + c·S.
    private func largestAngle(base: [Float], signal: [Float], c: Double) throws -> Double {
        let w0 = Matrix(rows: m, columns: n, rowMajor: base.map(Double.init))
        let w1 = Matrix(rows: m, columns: n, rowMajor: zip(base, signal).map { Double($0) + c * Double($1) })
        let a = try LinearAlgebra.thinSVD(of: w0), b = try LinearAlgebra.thinSVD(of: w1)
        let left = try PrincipalAngles.between(a.u.leadingColumns(k), b.u.leadingColumns(k))
        let right = try PrincipalAngles.between(a.v.leadingColumns(k), b.v.leadingColumns(k))
        return (left + right).max()! * 180 / Double.pi
    }

    /// A perturbation size that keeps the top-k singular values of W0 + c·S above the
    /// rest: ‖c·S‖_F is 2 % of σ_k(W0) (the gap σ_k − σ_{k+1} is about 12 % of σ_k here).
    private func scale(base: [Float], signal: [Float]) -> Double {
        let svd = TestSVD(rowMajor: base.map(Double.init), rows: m, columns: n)
        var norm = 0.0
        for value in signal { norm += Double(value) * Double(value) }
        return 0.02 * svd.values[k - 1] / norm.squareRoot()
    }

    func testWithoutRotationThePlacedSignalLeavesTheTopKSubspacesOfTheStoredBaseUnchanged() throws {
        for placement in [SignalPlacement.inside, .outside] {
            let (base, signal) = try baseAndSignal(model(placement))
            XCTAssertTrue(base.allSatisfy { $0.bitPattern & 0xFFFF == 0 }, "the stored base holds bf16 values")
            let angle = try largestAngle(base: base, signal: signal, c: scale(base: base, signal: signal))
            XCTAssertLessThan(angle, 1e-6, "\(placement): \(angle)°")
        }
        // The control: a random signal of the same size does rotate them.
        var random = model(.random)
        random.signalRank = 2
        let (base, signal) = try baseAndSignal(random)
        XCTAssertGreaterThan(try largestAngle(base: base, signal: signal, c: scale(base: base, signal: signal)), 0.01)
    }

    func testRotationShareTurnsTheTopKSubspacesMonotonically() throws {
        for placement in [SignalPlacement.inside, .outside] {
            var angles: [Double] = []
            var c: Double?
            for rotation in [0, 0.1, 0.3, 0.6, 1.0] {
                let (base, signal) = try baseAndSignal(model(placement, rotation: rotation))
                let size = c ?? scale(base: base, signal: signal)  // the same c for every share
                c = size
                angles.append(try largestAngle(base: base, signal: signal, c: size))

                // The share of ‖S‖² outside the diagonal blocks is the rotation share.
                let basis = TestSVD(rowMajor: base.map(Double.init), rows: m, columns: n)
                let e = blockEnergies(signal, basis: basis)
                let offDiagonal = (e.left - e.diagonal) + (e.right - e.diagonal)
                XCTAssertEqual(offDiagonal / e.total, rotation, accuracy: 1e-6, "\(placement) rotation \(rotation)")
            }
            XCTAssertLessThan(angles[0], 1e-6, "\(placement): \(angles)")
            // At rotation 1 nothing of the placed block is left: both placements give one signal.
            if placement == .outside {
                let (_, inside) = try baseAndSignal(model(.inside, rotation: 1))
                let (_, outside) = try baseAndSignal(model(.outside, rotation: 1))
                XCTAssertEqual(inside.map(\.bitPattern), outside.map(\.bitPattern))
                XCTAssertEqual(model(.inside, rotation: 1).canonical, model(.outside, rotation: 1).canonical)
                XCTAssertNotEqual(model(.inside, rotation: 0.3).canonical, model(.outside, rotation: 0.3).canonical)
            }
            for i in 1 ..< angles.count {
                XCTAssertGreaterThan(angles[i], angles[i - 1] * 1.05, "\(placement): \(angles)")
            }
        }
    }

    func testOffPlacementHasNoEnergyInTheTopKBlockOfTheRoundedBase() throws {
        let (base, signal) = try baseAndSignal(model(.outside))
        let stored = TestSVD(rowMajor: base.map(Double.init), rows: m, columns: n)
        let e = blockEnergies(signal, basis: stored)
        // S is rounded to fp32 (relative error 2^-24 per entry): its projections onto the
        // top-k subspaces are then of order 1e-15 of ‖S‖².
        XCTAssertLessThan(e.diagonal / e.total, 1e-12)
        XCTAssertLessThan(e.left / e.total, 1e-12)
        XCTAssertLessThan(e.right / e.total, 1e-12)
        // The inside placement, by contrast, has all its energy there.
        let (_, inside) = try baseAndSignal(model(.inside))
        let ei = blockEnergies(inside, basis: stored)
        XCTAssertEqual(ei.diagonal / ei.total, 1, accuracy: 1e-6)

        // Why the rounded base: against the singular vectors of the same base before
        // bf16 rounding, the signal is not off the top-k block.
        let unrounded = BaseSpectrum(roundToBFloat16: false)
        let configuration = SynthConfiguration(steps: 1, learningRate: 1e-6, profile: nil, seed: 5,
                                               gradient: model(.outside), spectrum: unrounded, threads: 1)
        let generator = try SyntheticStreamGenerator(
            configuration: configuration, tensors: [.generated(name: "w", rows: m, columns: n)])
        let fp32Base = try generator.prepareBaseAndSignal(index: 0).base
        XCTAssertNotEqual(fp32Base.map(\.bitPattern), base.map(\.bitPattern))
        let original = TestSVD(rowMajor: fp32Base.map(Double.init), rows: m, columns: n)
        let leak = blockEnergies(signal, basis: original)
        XCTAssertGreaterThan((leak.left + leak.right) / leak.total, 1e-8)
    }

    func testPresetsAreTheDocumentedKnobValues() {
        XCTAssertEqual(SynthProfile.rl.gradient, GradientModel(placement: .outside, snr: 0.1, noiseRMS: 1e-3))
        XCTAssertEqual(SynthProfile.sft.gradient, GradientModel(placement: .inside, snr: 2, noiseRMS: 5e-4))
        XCTAssertEqual(SynthProfile.noise.gradient.snr, 0)
        XCTAssertEqual(SynthProfile.noise.gradient.noiseRMS, 1e-3)
        // The amplitudes of synth model 1: rl 1e-4 under 1e-3, sft 1e-3 over 5e-4.
        XCTAssertEqual(SynthProfile.rl.gradient.signalRMS, 1e-4, accuracy: 1e-18)
        XCTAssertEqual(SynthProfile.sft.gradient.signalRMS, 1e-3, accuracy: 1e-18)
        for profile in SynthProfile.allCases { XCTAssertEqual(profile.gradient.rotation, 0) }
    }

    /// Without a signal the placement, rotation and signal rank do nothing: the same
    /// records as the noise preset.
    func testZeroSignalIgnoresThePlacementKnobs() throws {
        var custom = GradientModel(placement: .outside, snr: 0, noiseRMS: 1e-3, rotation: 0.5, signalRank: 3)
        XCTAssertEqual(custom.canonical, SynthProfile.noise.gradient.canonical)
        let noise = try synthesize(shapes: [(20, 12)], steps: 3, profile: .noise)
        let other = try synthesize(shapes: [(20, 12)], steps: 3, profile: .noise, gradient: custom)
        XCTAssertEqual(recordBits(noise), recordBits(other))
        custom.snr = 0.1
        let signalled = try synthesize(shapes: [(20, 12)], steps: 3, profile: .noise, gradient: custom)
        XCTAssertNotEqual(recordBits(noise), recordBits(signalled))
    }

    /// The noise scales are a rank-one pattern a_i·b_j with mean-square-one factors.
    func testNoiseSpreadsScaleRowsAndColumns() throws {
        let gradient = GradientModel(placement: .outside, snr: 1, rowSpread: 0.8, columnSpread: 0.3, principalRank: 2)
        let configuration = SynthConfiguration(steps: 1, learningRate: 1e-6, profile: nil, gradient: gradient, threads: 1)
        let generator = try SyntheticStreamGenerator(
            configuration: configuration, tensors: [.generated(name: "w", rows: 30, columns: 20)])
        let scale = try XCTUnwrap(generator.noiseScale(index: 0)).map(Double.init)
        var meanSquare = 0.0
        for value in scale { meanSquare += value * value }
        // Mean square of a_i·b_j over the grid = mean(a²)·mean(b²) = 1.
        XCTAssertEqual(meanSquare / Double(scale.count), 1, accuracy: 1e-6)
        for (i, j) in [(0, 1), (5, 17), (29, 3)] {
            // a_i b_j · a_0 b_0 = a_i b_0 · a_0 b_j
            XCTAssertEqual(scale[i * 20 + j] * scale[0], scale[i * 20] * scale[j], accuracy: 1e-6 * scale[i * 20 + j] * scale[0])
        }
        let rowRatio = scale[20 * 7] / scale[20 * 8]
        XCTAssertEqual(scale[20 * 7 + 11] / scale[20 * 8 + 11], rowRatio, accuracy: 1e-5 * rowRatio)
        var plain = gradient
        plain.rowSpread = 0
        plain.columnSpread = 0
        let none = try SyntheticStreamGenerator(
            configuration: SynthConfiguration(steps: 1, learningRate: 1e-6, profile: nil, gradient: plain, threads: 1),
            tensors: [.generated(name: "w", rows: 30, columns: 20)])
        XCTAssertNil(none.noiseScale(index: 0))
    }

    /// A heavy-tailed base keeps its entry RMS and has far larger kurtosis than the plain
    /// power-law base (whose entries are near Gaussian, kurtosis near 3: a few top
    /// singular directions carry much of the energy, which adds a little).
    func testBaseTailKeepsTheEntryRMSAndFattensTheTails() throws {
        func moments(_ tail: Double) throws -> (rms: Double, kurtosis: Double) {
            let sink = try synthesize(shapes: [(96, 80)], steps: 1, profile: .noise,
                                      spectrum: BaseSpectrum(tail: tail))
            let w = sink.base[0].map(Double.init)
            var second = 0.0, fourth = 0.0
            for x in w { second += x * x; fourth += x * x * x * x }
            second /= Double(w.count); fourth /= Double(w.count)
            return (second.squareRoot(), fourth / (second * second))
        }
        let plain = try moments(0), heavy = try moments(0.75)
        // bf16 rounding moves the RMS by well under 1 %.
        XCTAssertEqual(plain.rms, 0.02, accuracy: 0.0002)
        XCTAssertEqual(heavy.rms, 0.02, accuracy: 0.0002)
        XCTAssertEqual(plain.kurtosis, 3, accuracy: 1)
        XCTAssertGreaterThan(heavy.kurtosis, 2 * plain.kurtosis, "\(heavy.kurtosis) vs \(plain.kurtosis)")
    }
}
