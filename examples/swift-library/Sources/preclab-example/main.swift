// Compares two checkpoints and replays an update stream through the preclab library,
// then prints a few numbers. It writes its own small inputs into the folder given as
// the first argument (default: the temporary directory).
import Foundation
import PrecLabAnalysis
import PrecLabFiles
import PrecLabFormats
import PrecLabReplay
import PrecLabSpectral

let folder = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : NSTemporaryDirectory()
let (rows, columns) = (16, 12)
let base: [Float] = (0..<(rows * columns)).map { Float(($0 * 37) % 101 - 50) / 400 }

// 1. Two fp32 checkpoints: the tuned one moves every third weight by 1%.
func checkpoint(_ name: String, _ values: [Float]) throws -> String {
    let path = folder + "/" + name
    let bytes = values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
    let spec = SafetensorsTensorSpec(name: "model.layers.0.mlp.up_proj.weight", dtype: .f32, shape: [rows, columns])
    try SafetensorsWriter.write(to: path, tensors: [(spec, bytes)], force: true)
    return path
}
let tunedValues = base.enumerated().map { $0.offset % 3 == 0 ? $0.element * 1.01 : $0.element }
let comparison = try CheckpointComparison(
    basePath: try checkpoint("base.safetensors", base), tunedPath: try checkpoint("tuned.safetensors", tunedValues),
    options: CheckpointComparisonOptions(format: .bf16, spectral: SpectralOptions(k: 4, rank: 4, alpha: 0.5)))
for tensor in comparison.tensors {
    print("compare \(tensor.name.name): \(tensor.changed) of \(tensor.params) bf16 codes changed, "
          + "NSS \(tensor.comparison?.nss ?? .nan)")
}

// 2. An update stream: BASE, 20 steps of tiny updates, FINL; replayed in bf16.
let streamPath = folder + "/updates.bin"
let writer = try UpdateStreamWriter(path: streamPath, tensors: [
    UpdateStreamTensor(name: "w", shape: [rows, columns], dtype: "BF16"),
], metadata: [], force: true)
var weights = base
try writer.writeBase(tensors: [weights])
for step in UInt64(1)...20 {
    let update = weights.indices.map { Float(($0 + Int(step)) % 5 - 1) * 1e-5 }
    for index in weights.indices { weights[index] += update[index] }
    try writer.writeStep(step: step, learningRate: 1e-4, tensors: [update])
}
try writer.writeFinal(tensors: [weights])
try writer.close()

let (replay, spectral) = try ReplaySpectral.replay(path: streamPath, configuration: ReplayConfiguration(format: .bf16),
                                                   spectral: SpectralOptions(k: 4, rank: 4))
for policy in replay.configuration.policies {
    let metrics = replay.total(policy)
    print("replay \(policy.rawValue): \(metrics.visibleChanged) of \(replay.params) weights visibly changed")
}
if let truth = spectral?.entries.first(where: { $0.policy == .fp32 }) {
    print("replay fp32 truth: NSS \(truth.comparison.nss ?? .nan), fp32 replay verified: \(replay.finalVerified)")
}
