import PrecLabFiles
import PrecLabReplay

/// Records a training run as an update stream (update-stream v1), as it happens.
///
/// The deltas are taken so that BASE + Σ deltas == FINL exactly in fp32 (the rule of
/// tools/preclab_record.py): the recorder keeps the weights the stream has *reached*
/// (BASE plus the recorded deltas, added in fp32 as a replay adds them) and records
/// - fp32 and master storage: delta = fp32(master − reached), the fp32 master trajectory;
/// - pure, stochastic and kahan storage: the intended fp32 updates u = fp32(w_new − w)
///   the optimizer asked for (their sum since the previous record with `every` > 1),
///   so that a replay of the stream under the run's own policy re-creates the stored
///   weights bit for bit (with every = 1 and all tensors recorded).
/// FINL holds the reached weights.
public final class UpdateRecorder {
    public let every: Int
    public let totalSteps: Int
    /// Indices (into the model's parameter list) of the recorded tensors.
    public let tensorIndices: [Int]
    let writer: UpdateStreamWriter
    let policy: ReplayPolicy
    private(set) var reached: [[Float]]
    private var pending: [[Float]]?
    public private(set) var recordedSteps = 0

    public init(path: String, names: [String], shapes: [[Int]], tensorIndices: [Int], base: [[Float]],
                policy: ReplayPolicy, storedDType: String?, every: Int, totalSteps: Int,
                metadata: [(key: String, value: String)], force: Bool, inputs: [String]) throws {
        self.every = max(1, every)
        self.totalSteps = totalSteps
        self.tensorIndices = tensorIndices
        self.policy = policy
        let tensors = tensorIndices.map { UpdateStreamTensor(name: names[$0], shape: shapes[$0], dtype: storedDType) }
        writer = try UpdateStreamWriter(path: path, tensors: tensors, metadata: metadata, atomic: false,
                                        force: force, inputs: inputs)
        reached = tensorIndices.map { base[$0] }
        let flat = reached.flatMap { $0 }
        try flat.withUnsafeBufferPointer { try writer.writeBase(step: 0, values: $0) }
    }

    /// Called after every step with the storage state and the step's intended updates.
    public func record(step: Int, learningRate: Double, storage: WeightStorage, updates: [[Float]]) throws {
        let isStored = ![.fp32, .master].contains(policy)
        if isStored {
            if var sums = pending {
                for (slot, tensor) in tensorIndices.enumerated() {
                    for i in sums[slot].indices { sums[slot][i] += updates[tensor][i] }
                }
                pending = sums
            } else {
                pending = tensorIndices.map { updates[$0] }
            }
        }
        guard step % every == 0 || step == totalSteps else { return }
        var payload: [Float] = []
        payload.reserveCapacity(reached.reduce(0) { $0 + $1.count })
        for (slot, tensor) in tensorIndices.enumerated() {
            let delta: [Float]
            if isStored {
                delta = pending![slot]
            } else {
                let master = storage.optimizerWeights[tensor]
                delta = zip(master, reached[slot]).map { $0 - $1 }
            }
            for i in delta.indices { reached[slot][i] += delta[i] }
            payload += delta
        }
        pending = nil
        try payload.withUnsafeBufferPointer {
            try writer.writeStep(step: UInt64(step), learningRate: learningRate, values: $0)
        }
        recordedSteps += 1
    }

    /// Writes FINL (the reached weights) and closes the file.
    public func finish() throws {
        let final = reached.flatMap { $0 }
        try final.withUnsafeBufferPointer { try writer.writeFinal(values: $0) }
        try writer.close()
    }
}
