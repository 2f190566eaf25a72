import PrecLabSupport
import XCTest
@testable import PrecLabSynth

/// Small streams, generated into memory.
func synthesize(shapes: [(Int, Int)], steps: Int = 6, lr: Double = 1e-4, profile: SynthProfile,
                seed: UInt64 = 7, threads: Int = 1, gradient: GradientModel? = nil,
                spectrum: BaseSpectrum = BaseSpectrum()) throws -> InMemoryStreamSink {
    let configuration = SynthConfiguration(steps: steps, learningRate: lr, profile: profile, seed: seed,
                                           gradient: gradient, spectrum: spectrum, threads: threads)
    let tensors = shapes.enumerated().map { index, shape in
        SynthTensorSource.generated(name: SynthTensorSource.defaultName(index: index),
                                    rows: shape.0, columns: shape.1)
    }
    let generator = try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)
    var sink = InMemoryStreamSink()
    try generator.generate(into: &sink)
    return sink
}

extension SynthProfile {
    /// The preset with k and the signal rank set.
    func gradient(k: Int?, signalRank: Int? = nil) -> GradientModel {
        var model = gradient
        model.principalRank = k
        model.signalRank = signalRank
        return model
    }
}

/// Every payload of a stream as bit patterns, in record order.
func recordBits(_ sink: InMemoryStreamSink) -> [[UInt32]] {
    var records = sink.base.map { $0.map(\.bitPattern) }
    for step in sink.steps { records += step.deltas.map { $0.map(\.bitPattern) } }
    records += sink.final.map { $0.map(\.bitPattern) }
    return records
}

final class SynthGeneratorTests: XCTestCase {
    func testSameSeedGivesSameRecordsAndOtherSeedsDiffer() throws {
        let shapes = [(24, 16), (16, 20)]
        for profile in SynthProfile.allCases {
            let first = try synthesize(shapes: shapes, profile: profile, seed: 11)
            let second = try synthesize(shapes: shapes, profile: profile, seed: 11)
            XCTAssertEqual(recordBits(first), recordBits(second), "\(profile)")
            let other = try synthesize(shapes: shapes, profile: profile, seed: 12)
            XCTAssertNotEqual(first.base[0].map(\.bitPattern), other.base[0].map(\.bitPattern))
            XCTAssertNotEqual(first.steps[0].deltas[1].map(\.bitPattern),
                              other.steps[0].deltas[1].map(\.bitPattern))
        }
    }

    func testThreadCountDoesNotChangeTheRecords() throws {
        // 150 × 130 = 19 500 elements: two chunks of the AdamW loop, the second short
        // and starting at an even index; 7 × 9 is odd-sized.
        let shapes = [(150, 130), (7, 9)]
        let one = try synthesize(shapes: shapes, steps: 3, profile: .rl, threads: 1)
        for threads in [2, 3] {
            let many = try synthesize(shapes: shapes, steps: 3, profile: .rl, threads: threads)
            XCTAssertEqual(recordBits(one), recordBits(many), "threads \(threads)")
        }
    }

    func testStreamShapeStepsAndMetadata() throws {
        let sink = try synthesize(shapes: [(12, 10), (8, 8)], steps: 4, lr: 3e-5, profile: .sft, seed: 5)
        XCTAssertEqual(sink.tensors, [
            StreamTensorInfo(name: "synth.0.weight", shape: [12, 10], dtype: "BF16"),
            StreamTensorInfo(name: "synth.1.weight", shape: [8, 8], dtype: "BF16"),
        ])
        XCTAssertEqual(sink.baseStep, 0)
        XCTAssertEqual(sink.steps.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(sink.steps.map(\.learningRate), [3e-5, 3e-5, 3e-5, 3e-5])
        XCTAssertEqual(sink.finalStep, 4)
        XCTAssertEqual(sink.base.map(\.count), [120, 64])
        XCTAssertEqual(sink.final.map(\.count), [120, 64])
        XCTAssertEqual(sink.metadataValue("profile"), "sft")
        XCTAssertEqual(sink.metadataValue("seed"), "5")
        XCTAssertEqual(sink.metadataValue("lr"), "3e-05")
        XCTAssertEqual(sink.metadataValue("adam_beta1"), "0.9")
        XCTAssertEqual(sink.metadataValue("adam_beta2"), "0.999")
        XCTAssertEqual(sink.metadataValue("adam_eps"), "1e-08")
        XCTAssertEqual(sink.metadataValue("weight_decay"), "0.01")
        XCTAssertEqual(sink.metadataValue("shapes"), "12x10,8x8")
        XCTAssertEqual(sink.metadataValue("optimizer"), "AdamW")
        XCTAssertNotNil(sink.metadataValue("generator"))
    }

    /// The stream rule: each delta is fp32(after − before) of the master, and an fp32
    /// replay (W += delta, round to nearest even) walks the master exactly to FINL.
    func testFloat32ReplayReproducesFinalBitForBit() throws {
        for profile in SynthProfile.allCases {
            // A large learning rate so that some updates cross zero and exceed |w|.
            for lr in [1e-6, 3e-2] {
                let sink = try synthesize(shapes: [(20, 18), (9, 11)], steps: 12, lr: lr, profile: profile)
                var master = sink.base
                var changed = 0
                for step in sink.steps {
                    for tensor in master.indices {
                        for i in master[tensor].indices {
                            let before = master[tensor][i]
                            let delta = step.deltas[tensor][i]
                            let after = before + delta
                            XCTAssertEqual((after - before).bitPattern, delta.bitPattern)
                            if after != before { changed += 1 }
                            master[tensor][i] = after
                        }
                    }
                }
                XCTAssertGreaterThan(changed, 0)
                for tensor in master.indices {
                    XCTAssertEqual(master[tensor].map(\.bitPattern), sink.final[tensor].map(\.bitPattern),
                                   "\(profile) lr \(lr) tensor \(tensor)")
                }
            }
        }
    }

    /// The property the profiles are built for: the rl update keeps out of the top-k
    /// singular subspaces of W0, the sft update lives in them.
    func testRLUpdateHasLessPrincipalEnergyThanSFT() throws {
        let (m, n, k) = (64, 48, 4)
        func share(_ profile: SynthProfile) throws -> Double {
            let gradient = profile.gradient(k: k, signalRank: 2)
            let sink = try synthesize(shapes: [(m, n)], steps: 40, lr: 1e-5, profile: profile,
                                      seed: 3, gradient: gradient)
            let base = sink.base[0].map(Double.init)
            let update = zip(sink.final[0], sink.base[0]).map { Double($0) - Double($1) }
            return TestSVD(rowMajor: base, rows: m, columns: n).principalEnergyShare(of: update, rank: k)
        }
        let rl = try share(.rl), sft = try share(.sft), noise = try share(.noise)
        // An update with no preferred direction puts k²/(m·n) = 0.0052 of its energy there.
        let isotropic = Double(k * k) / Double(m * n)
        XCTAssertLessThan(rl, 5 * isotropic, "rl share \(rl)")
        XCTAssertGreaterThan(sft, 0.5, "sft share \(sft)")
        XCTAssertLessThan(noise, 5 * isotropic, "noise share \(noise)")
        XCTAssertLessThan(rl, sft / 20)
    }

    /// σ_i(W0) = c·(i+1)^(-β) with c set by the entry RMS; checked against a float64 SVD.
    func testBaseSpectrumFollowsPowerLawAndEntryRMS() throws {
        let (m, n) = (64, 48)
        for (beta, rms) in [(0.6, 0.02), (1.0, 0.05)] {
            let spectrum = BaseSpectrum(exponent: beta, entryRMS: rms, roundToBFloat16: false)
            let sink = try synthesize(shapes: [(m, n)], steps: 1, profile: .noise, spectrum: spectrum)
            let base = sink.base[0].map(Double.init)
            let svd = TestSVD(rowMajor: base, rows: m, columns: n)
            var sumOfShapes = 0.0
            for i in 0 ..< n { sumOfShapes += pow(Double(i + 1), -2 * beta) }
            let c = rms * (Double(m * n) / sumOfShapes).squareRoot()
            for i in [0, 1, 2, 5, 10, 20, 47] {
                let expected = c * pow(Double(i + 1), -beta)
                XCTAssertEqual(svd.values[i], expected, accuracy: 1e-5 * expected, "beta \(beta) sigma \(i)")
            }
            // Ratios straight from the power law: σ_0/σ_1 = 2^β, σ_1/σ_3 = 2^β, σ_0/σ_9 = 10^β.
            XCTAssertEqual(svd.values[0] / svd.values[1], pow(2, beta), accuracy: 1e-5)
            XCTAssertEqual(svd.values[1] / svd.values[3], pow(2, beta), accuracy: 1e-5)
            XCTAssertEqual(svd.values[0] / svd.values[9], pow(10, beta), accuracy: 1e-4)
            var sumOfSquares = 0.0
            for value in base { sumOfSquares += value * value }
            XCTAssertEqual((sumOfSquares / Double(m * n)).squareRoot(), rms, accuracy: 1e-6 * rms)
        }
    }

    /// The default base holds bf16 values (as a bf16 checkpoint loaded into fp32 master
    /// weights does); rounding moves the spectrum by well under 2 %.
    func testBFloat16BaseIsRepresentableAndKeepsTheSpectrum() throws {
        let (m, n) = (64, 48)
        let sink = try synthesize(shapes: [(m, n)], steps: 1, profile: .noise)
        XCTAssertTrue(sink.base[0].allSatisfy { $0.bitPattern & 0xFFFF == 0 })
        let base = sink.base[0].map(Double.init)
        let svd = TestSVD(rowMajor: base, rows: m, columns: n)
        for i in [0, 3, 47] {
            let ratio = svd.values[i] / svd.values[0]
            XCTAssertEqual(ratio, pow(Double(i + 1), -0.6), accuracy: 0.02 * ratio)
        }
        var sumOfSquares = 0.0
        for value in base { sumOfSquares += value * value }
        XCTAssertEqual((sumOfSquares / Double(m * n)).squareRoot(), 0.02, accuracy: 0.0002)
    }

    func testInvalidParametersAreUsageErrors() throws {
        func fails(_ shapes: [(Int, Int)], steps: Int = 2, lr: Double = 1e-6,
                   gradient: GradientModel? = nil, adam: AdamParameters = AdamParameters()) {
            let configuration = SynthConfiguration(steps: steps, learningRate: lr, profile: .rl,
                                                   adam: adam, gradient: gradient)
            let tensors = shapes.map { SynthTensorSource.generated(name: "t\($0.0)x\($0.1)", rows: $0.0, columns: $0.1) }
            XCTAssertThrowsError(try SyntheticStreamGenerator(configuration: configuration, tensors: tensors)) {
                guard case PrecLabError.invalidArgument = $0 else { return XCTFail("\($0)") }
            }
        }
        fails([(1, 8)])
        fails([(8, 8)], steps: 0)
        fails([(8, 8)], lr: .nan)
        fails([(8, 8)], lr: -1)
        fails([(8, 8)], gradient: SynthProfile.rl.gradient(k: 8))
        fails([(8, 8)], gradient: SynthProfile.rl.gradient(k: 6, signalRank: 3))
        fails([(8, 8)], adam: AdamParameters(beta1: 1.0))
        fails([(8, 8)], adam: AdamParameters(epsilon: 0))
        fails([])
    }
}
