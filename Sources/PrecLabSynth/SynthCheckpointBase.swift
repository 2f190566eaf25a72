import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// Base weights taken from a checkpoint instead of generated: its 2-D floating-point
/// tensors (optionally those whose names match a pattern), in checkpoint order,
/// converted to fp32.
public enum SynthCheckpointBase {
    /// The element types read as a base. Each converts to fp32 exactly, except F64,
    /// which rounds to nearest (ties to even).
    public static let supportedDTypes: [TensorDType] = [.f32, .bf16, .f16, .f64]

    /// The tensors of `checkpoint` to simulate. `include` selects tensors by name
    /// (nil: every 2-D tensor of a supported dtype). A matched tensor that is not 2-D or
    /// not of a supported dtype is an error naming it.
    public static func tensors(of checkpoint: Checkpoint,
                               include: ((String) -> Bool)?) throws -> [SynthTensorSource] {
        var selected: [CheckpointTensor] = []
        for tensor in checkpoint.tensors {
            // The gradient model needs both sides >= 2 (a vector has no subspaces to avoid).
            let usable = tensor.shape.count == 2 && tensor.shape.allSatisfy { $0 >= 2 }
                && supportedDTypes.contains(tensor.dtype)
            if let include {
                guard include(tensor.name) else { continue }
                guard usable else {
                    throw PrecLabError.badData("\(checkpoint.path): tensor \(tensor.name) is \(tensor.dtype.name) with shape \(tensor.shape); synth needs a 2-D tensor with both sides >= 2 of F32, BF16, F16 or F64")
                }
            } else if !usable {
                continue
            }
            selected.append(tensor)
        }
        guard !selected.isEmpty else {
            throw PrecLabError.badData("\(checkpoint.path): no 2-D F32/BF16/F16/F64 tensor \(include == nil ? "in the checkpoint" : "matches the tensor pattern")")
        }
        // The shapes come from the file: check what the run will hold (the decoded base
        // included) before decoding anything.
        let shapes = selected.map { (rows: $0.shape[0], columns: $0.shape[1]) }
        let elements = shapes.reduce(0) { $0 &+ $1.rows &* $1.columns }
        if let memory = SynthResources.memoryBytes(shapes: shapes), let base = ResourceBudget.product(elements, 4) {
            try ResourceBudget.requireMemory(memory &+ base, for: "\(checkpoint.path): simulating from \(elements) base weights")
        } else {
            throw PrecLabError.badData("\(checkpoint.path): \(elements) base weights overflow any size this machine can hold")
        }
        return try selected.map { tensor in
            let weights = try decode(checkpoint.bytes(of: tensor), dtype: tensor.dtype,
                                     count: tensor.info.elementCount, name: tensor.name, path: checkpoint.path)
            return .given(name: tensor.name, rows: tensor.shape[0], columns: tensor.shape[1],
                          weights: weights, dtype: tensor.dtype.name)
        }
    }

    /// Little-endian values of `dtype` as fp32 (through the formats module's decoder).
    static func decode(_ bytes: UnsafeRawBufferPointer, dtype: TensorDType, count: Int,
                       name: String, path: String) throws -> [Float] {
        guard [.f32, .bf16, .f16, .f64].contains(dtype) else {
            throw PrecLabError.badData("\(path): tensor \(name) is \(dtype.name), which synth cannot read")
        }
        do {
            return try StoredTensorDecoding.floats(bytes, dtypeName: dtype.name, count: count)
        } catch let error as PrecLabError {
            throw PrecLabError.badData("\(path): tensor \(name): \(error.description)")
        }
    }
}
