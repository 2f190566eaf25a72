// The training step of `preclab train` (forward + backward + clipping + AdamW, fp32
// storage) per sample, against PyTorch CPU on the same model in the same run when
// torch is importable from the private venv (.build/pyenv/bin/python). Target: within
// 2x of PyTorch with the same thread count (one: the trainer runs BLAS on one thread).
import Foundation
import PrecLabTraining

func runTrainingBenchmarks() {
    let bits = 6, batch = 128, steps = 100
    let task = ModularAdditionTask(bits: bits)
    let architecture = MLPArchitecture(inputs: task.inputWidth, hidden: [256, 256], outputs: task.classes,
                                       activation: .relu)
    var configuration = TrainingConfiguration()
    configuration.method = .pretrain
    configuration.steps = Int.max      // no final evaluation inside the timed steps
    configuration.batchSize = batch
    configuration.evaluateEvery = 0
    configuration.learningRate = 1e-3
    let trainer = Trainer(configuration: configuration, architecture: architecture, task: task,
                          initialWeights: architecture.initialParameters(seed: 0))
    for _ in 0..<20 { _ = trainer.step() }
    var best = Double.infinity
    for _ in 0..<3 {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { _ = trainer.step() }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(steps))
    }
    let perSample = best / Double(batch)
    print("-- training step, MLP \(architecture.inputs)-256-256-\(architecture.outputs) ReLU "
          + "(\(architecture.parameterCount) parameters), batch \(batch), cross-entropy + clip + AdamW, fp32")
    print("   Swift (1 OpenBLAS thread): \(String(format: "%.1f", best * 1e6)) us/step, "
          + "\(String(format: "%.2f", perSample * 1e6)) us/sample")
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let python = root.appendingPathComponent(".build/pyenv/bin/python").path
    let script = root.appendingPathComponent("tools/bench/train_torch.py").path
    guard FileManager.default.isExecutableFile(atPath: python),
          runProcess(python, ["-c", "import torch; print(torch.__version__)"]) != nil else {
        print("   PyTorch reference: skipped (torch is not importable from \(python); the ratio is not measured)")
        return
    }
    for threads in [1, 2] {
        guard let text = runProcess(python, [script, "\(bits)", "\(batch)", "\(steps)", "\(threads)"]),
              let torchStep = Double(text.trimmingCharacters(in: .whitespaces)) else {
            print("   PyTorch reference (\(threads) thread(s)): failed to run \(script)")
            continue
        }
        print("   PyTorch CPU, \(threads) thread(s): \(String(format: "%.1f", torchStep * 1e6)) us/step; "
              + "Swift / PyTorch time ratio \(String(format: "%.2f", best / torchStep)) (target <= 2)")
    }
}
