import XCTest
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabSupport
@testable import PrecLabTraining

/// Whole runs on a small network: learning, recording, replaying, determinism.
final class TrainingRunTests: XCTestCase {
    let task = ModularAdditionTask(bits: 3)
    var architecture: MLPArchitecture { MLPArchitecture(inputs: 6, hidden: [32, 32], outputs: 8, activation: .relu) }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "preclab-train-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func configuration(_ method: TrainingMethod, steps: Int, lr: Double) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.method = method
        configuration.steps = steps
        configuration.learningRate = lr
        configuration.batchSize = 64
        configuration.evaluateEvery = 0
        return configuration
    }

    /// 8 answers: chance is 1/8. A seeded 300-step pretrain must reach at least 0.5
    /// (observed about 1.0; the margin allows other BLAS kernels).
    func testShortPretrainBeatsChance() throws {
        let summary = try TrainingRun.run(configuration: configuration(.pretrain, steps: 300, lr: 3e-3),
                                          architecture: architecture, task: task,
                                          initialWeights: architecture.initialParameters(seed: 1), output: nil)
        XCTAssertLessThan(summary.initialAccuracy, 0.35)
        XCTAssertGreaterThan(summary.finalAccuracy, 0.5)
    }

    /// With every reward 0 every advantage is 0, so the only change is the decoupled
    /// decay: w·fp32(1 − lr·wd) per step, exactly.
    func testRLWithZeroRewardOnlyDecays() {
        var configuration = configuration(.rl, steps: 3, lr: 1e-2)
        configuration.weightDecay = 0.1
        configuration.groupSize = 4
        let initial = architecture.initialParameters(seed: 2)
        let trainer = Trainer(configuration: configuration, architecture: architecture, task: task,
                              initialWeights: initial, reward: { _, _ in 0 })
        for _ in 0..<3 { _ = trainer.step() }
        let decay = Float(1 - 1e-2 * 0.1)
        for (tensor, values) in initial.enumerated() {
            for (index, value) in values.enumerated() {
                XCTAssertEqual(trainer.storage.optimizerWeights[tensor][index].bitPattern,
                               (value * decay * decay * decay).bitPattern)
            }
        }
    }

    /// A master-storage run's recorded stream replays (PrecLabReplay) to FINL bit for bit,
    /// and FINL is the run's final master.
    func testMasterStreamReplaysToFinalBitForBit() throws {
        let directory = try temporaryDirectory()
        var configuration = configuration(.pretrain, steps: 20, lr: 1e-2)
        configuration.storage = .master
        var output = TrainingOutputOptions(directory: directory)
        output.force = true
        let summary = try TrainingRun.run(configuration: configuration, architecture: architecture, task: task,
                                          initialWeights: architecture.initialParameters(seed: 3), output: output)
        let replay = try StreamReplay.runKeepingState(
            path: directory + "/updates.bin",
            configuration: ReplayConfiguration(format: .bf16, policies: [.fp32, .master]))
        XCTAssertTrue(replay.result.finalVerified)
        XCTAssertEqual(replay.result.steps, 20)
        // The stream reaches the master exactly except where an fp32 subtraction
        // master − reached was inexact (Sterbenz fails, e.g. a weight crossing zero);
        // such values miss by at most an ULP of the larger of master and previous reached
        // value (below fp32's ULP at 0.5 here) and errors never accumulate.
        var inexact = 0, total = 0
        for tensor in summary.finalWeights.indices {
            let after = replay.engine.weightsBeforeAndAfter(.fp32, tensor: tensor).after
            for (reached, master) in zip(after, summary.finalWeights[tensor]) {
                total += 1
                if reached != Double(master) {
                    inexact += 1
                    XCTAssertLessThanOrEqual(abs(reached - Double(master)), Double(Float(0.5).ulp))
                }
            }
        }
        XCTAssertLessThan(inexact, total / 100, "\(inexact) of \(total) values")
        for name in ["base.safetensors", "base.bf16.safetensors", "final.safetensors", "final.bf16.safetensors",
                     "log.csv", "summary.json", "reward.svg", "loss.svg", "updates.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/" + name), name)
        }
    }

    /// A closed-loop stochastic run's own stream (its intended updates) replayed under the
    /// same policy and seed re-creates its stored weights exactly: the loop and replay
    /// round with the same functions and keys.
    func testClosedLoopStochasticRunIsReproducedByReplayingItsStream() throws {
        let directory = try temporaryDirectory()
        var configuration = configuration(.pretrain, steps: 15, lr: 1e-3)
        configuration.storage = .stochastic
        configuration.seed = 12
        var output = TrainingOutputOptions(directory: directory)
        output.force = true
        let summary = try TrainingRun.run(configuration: configuration, architecture: architecture, task: task,
                                          initialWeights: architecture.initialParameters(seed: 4), output: output)
        let replay = try StreamReplay.runKeepingState(
            path: directory + "/updates.bin",
            configuration: ReplayConfiguration(format: .bf16, seed: 12, policies: [.fp32, .stochastic]))
        for tensor in summary.finalWeights.indices {
            let after = replay.engine.weightsBeforeAndAfter(.stochastic, tensor: tensor).after
            XCTAssertEqual(after, summary.finalWeights[tensor].map(Double.init), "tensor \(tensor)")
        }
        XCTAssertEqual(replay.result.tensors.map { $0.policies[.stochastic]!.visibleChanged }, summary.visible)
    }

    /// With --every 2 a pure-storage run records the sum of its intended updates since the
    /// previous record, and BASE + Σ deltas == FINL still holds bit for bit.
    func testEveryNRecordsSummedIntendedUpdates() throws {
        let directory = try temporaryDirectory()
        var configuration = configuration(.sft, steps: 5, lr: 1e-3)
        configuration.storage = .pure
        var output = TrainingOutputOptions(directory: directory)
        output.recordEvery = 2
        output.recordPattern = "lm_head"
        output.force = true
        let initial = architecture.initialParameters(seed: 8)
        _ = try TrainingRun.run(configuration: configuration, architecture: architecture, task: task,
                                initialWeights: initial, output: output)
        // The same run step by step: the intended updates of lm_head.weight and .bias.
        let trainer = Trainer(configuration: configuration, architecture: architecture, task: task,
                              initialWeights: initial)
        var expected: [[Float]] = []
        var pending: [Float]? = nil
        for step in 1...5 {
            let effect = trainer.step().effect
            let update = effect.updates[4] + effect.updates[5]
            pending = pending.map { zip($0, update).map { $0 + $1 } } ?? update
            if step % 2 == 0 || step == 5 {
                expected.append(pending!)
                pending = nil
            }
        }
        let reader = try UpdateStreamReader(path: directory + "/updates.bin")
        XCTAssertEqual(reader.header.tensors.map(\.name), ["lm_head.weight", "lm_head.bias"])
        var recorded: [[Float]] = []
        var steps: [UInt64] = []
        _ = try reader.forEachRecord { record in
            if record.kind == .step {
                recorded.append(Array(record.values))
                steps.append(record.step)
            }
        }
        XCTAssertEqual(steps, [2, 4, 5])
        XCTAssertEqual(recorded.map { $0.map(\.bitPattern) }, expected.map { $0.map(\.bitPattern) })
        let replay = try StreamReplay.run(path: directory + "/updates.bin",
                                          configuration: ReplayConfiguration(format: .bf16, policies: [.fp32]))
        XCTAssertTrue(replay.finalVerified)
    }

    /// The same seed gives the same weights whatever the thread count.
    func testRunIsDeterministicAcrossThreadCounts() throws {
        func run(threads: Int) throws -> [[Float]] {
            var configuration = configuration(.rl, steps: 5, lr: 1e-3)
            configuration.storage = .stochastic
            configuration.klWeight = 0.1
            configuration.threads = threads
            return try TrainingRun.run(configuration: configuration, architecture: architecture, task: task,
                                       initialWeights: architecture.initialParameters(seed: 6), output: nil).finalWeights
        }
        XCTAssertEqual(try run(threads: 1), try run(threads: 2))
    }
}
