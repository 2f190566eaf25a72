import Foundation
@testable import PrecLabExperiments
import PrecLabFormats
import PrecLabSpectral
import PrecLabSupport
import XCTest

/// The experiments module called directly: parsing an experiment file and running a
/// tiny grid in process.
final class ExperimentTests: XCTestCase {
    private func experiment(_ text: String) throws -> Experiment {
        try ExperimentParser.parse(try JSONParser.parse(Array(text.utf8)), file: "test.json")
    }

    func testParserExpandsTheGridAndRejectsUnknownKeys() throws {
        let parsed = try experiment("""
        {"name": "t", "question": "q", "stream": {"shapes": ["4x3"], "steps": 3, "lr": 1e-3, "profile": "rl", "k": 1},
         "grid": {"dtype": ["bf16", "fp16"]}, "replay": {"policies": ["master"]}, "outputs": ["sparsity"]}
        """)
        XCTAssertEqual(parsed.points.count, 2)
        XCTAssertEqual(parsed.points.map(\.format.name), ["bf16", "fp16"])
        XCTAssertThrowsError(try experiment("""
        {"name": "t", "question": "q", "stream": {"shapes": ["4x3"], "steps": 3, "lr": 1e-3, "profile": "rl", "k": 1},
         "grid": {"dtype": ["bf16"]}, "replay": {"policies": ["master"]}, "outputs": ["sparsity"], "extra": 1}
        """)) {
            XCTAssertTrue("\($0)".contains("test.json"), "\($0)")
            XCTAssertTrue("\($0)".contains("extra"), "\($0)")
        }
    }

    /// A two-point grid runs in process; the spectral metrics of a point are those of
    /// its stream's W0 -> W_T with the master mask, whatever the thread count.
    func testRunnerMeasuresEveryPointIndependentlyOfThreads() throws {
        let parsed = try experiment("""
        {"name": "tiny", "question": "q", "stream": {"shapes": ["12x10"], "steps": 5, "lr": 1e-3, "profile": "rl", "k": 2},
         "grid": {"dtype": ["bf16", "fp16"]}, "replay": {"policies": ["fp32", "master"]},
         "spectral": {"rank": 2, "alpha": 0.5}, "outputs": ["sparsity", "spectral"]}
        """)
        var runs: [[SweepPointResult]] = []
        for threads in [1, 2] {
            let runner = SweepRunner(experiment: parsed, keepStreamsIn: nil, force: false, threads: threads) { _ in }
            runs.append(try runner.run())
        }
        XCTAssertEqual(runs[0].count, 2)
        for (one, two) in zip(runs[0], runs[1]) {
            let a = try XCTUnwrap(one.spectral?.first?.comparison), b = try XCTUnwrap(two.spectral?.first?.comparison)
            XCTAssertEqual(a.nss, b.nss)
            XCTAssertEqual(a.changed, b.changed)
            XCTAssertEqual(one.replay.tensors[0].trueChanged, two.replay.tensors[0].trueChanged)
            // The spectral mask is the master policy's visible mask.
            XCTAssertEqual(a.changed, one.replay.tensors[0].policies[.master]?.visibleChanged)
        }
        // fp16 keeps more bits than bf16: at least as many visible changes.
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(runs[0][1].spectral?.first?.comparison.changed),
                                    try XCTUnwrap(runs[0][0].spectral?.first?.comparison.changed))
    }
}
