import PrecLabFiles
import PrecLabReplay
import PrecLabSupport

/// Starting weights from a checkpoint written by `preclab train` (or any safetensors
/// file with the same tensor names): the architecture is read from the shapes of
/// `model.layers.N.mlp.up_proj.weight`/`.bias` (N = 0, 1, ...) and `lm_head.weight`/`.bias`.
public struct BaseCheckpoint {
    public var architecture: MLPArchitecture
    public var weights: [[Float]]
    /// The activation recorded in the checkpoint's metadata, if any.
    public var recordedActivation: Activation?

    public static func load(_ path: String, activation requested: Activation?) throws -> BaseCheckpoint {
        let checkpoint = try Checkpoint.open(path)
        var recorded: Activation? = nil
        if let text = checkpoint.metadata.first(where: { $0.key == "activation" })?.value {
            recorded = Activation(rawValue: text)
        }
        if let requested, let recorded, requested != recorded {
            throw PrecLabError.invalidArgument("\(path) was trained with the \(recorded.rawValue) activation, "
                                     + "not \(requested.rawValue)")
        }
        var shapes: [[Int]] = []
        var layer = 0
        while let weight = checkpoint.tensor(named: "model.layers.\(layer).mlp.up_proj.weight") {
            shapes.append(weight.shape)
            shapes.append(checkpoint.tensor(named: "model.layers.\(layer).mlp.up_proj.bias")?.shape ?? [])
            layer += 1
        }
        guard let head = checkpoint.tensor(named: "lm_head.weight") else {
            throw PrecLabError.badData("\(path): no tensor 'lm_head.weight': not a checkpoint of 'preclab train'")
        }
        shapes.append(head.shape)
        shapes.append(checkpoint.tensor(named: "lm_head.bias")?.shape ?? [])
        guard let architecture = MLPArchitecture.inferred(from: shapes, activation: requested ?? recorded ?? .relu),
              architecture.hidden.count >= 1 else {
            throw PrecLabError.badData("\(path): tensor shapes \(shapes) do not form an MLP policy "
                                       + "(model.layers.N.mlp.up_proj.weight [out, in] and .bias [out], lm_head)")
        }
        let specs = architecture.parameters
        let flat = try CheckpointBase.load(path, for: specs.map { ReplayTensor(name: $0.name, shape: $0.shape) })
        var weights: [[Float]] = []
        var start = 0
        for spec in specs {
            weights.append(Array(flat[start..<(start + spec.count)]))
            start += spec.count
        }
        return BaseCheckpoint(architecture: architecture, weights: weights, recordedActivation: recorded)
    }
}

extension MLPArchitecture {
    /// RMS of the entries of the weight matrices (not the biases): the "weight scale"
    /// that `--lr-relative` multiplies.
    public static func matrixRMS(_ weights: [[Float]], _ specs: [ParameterSpec]) -> Double {
        var sum = 0.0, count = 0
        for (spec, values) in zip(specs, weights) where spec.isMatrix {
            for value in values { sum += Double(value) * Double(value) }
            count += values.count
        }
        return count == 0 ? 0 : (sum / Double(count)).squareRoot()
    }
}
