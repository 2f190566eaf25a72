/// A tensor as the stream header describes it.
public struct StreamTensorInfo: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// The dtype the model stores the tensor in (safetensors name), or nil.
    public var dtype: String?

    public init(name: String, shape: [Int], dtype: String? = nil) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

/// Where the generator sends the records of an update stream, in stream order:
/// `begin`, `writeBase`, one `writeStep` per step, `writeFinal`. Payloads are passed
/// as one fp32 buffer per tensor, in header order; the buffers are only valid during
/// the call. A file sink writes update-stream v1 records; tests collect them in memory.
public protocol UpdateStreamSink {
    /// The header: tensors in payload order, and string metadata in key order.
    mutating func begin(tensors: [StreamTensorInfo], metadata: [(key: String, value: String)]) throws
    /// The BASE record: the fp32 weights before the first step.
    mutating func writeBase(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws
    /// A STEP record: fp32(master_after − master_before) for each tensor.
    mutating func writeStep(_ step: UInt64, learningRate: Double,
                            deltas: [UnsafeBufferPointer<Float>]) throws
    /// The FINL record: the fp32 master weights after the last step.
    mutating func writeFinal(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws
}

/// Keeps every record in memory: for tests and small experiments.
public struct InMemoryStreamSink: UpdateStreamSink {
    public struct Step: Sendable, Equatable {
        public var step: UInt64
        public var learningRate: Double
        public var deltas: [[Float]]
    }

    public private(set) var tensors: [StreamTensorInfo] = []
    public private(set) var metadata: [(key: String, value: String)] = []
    public private(set) var baseStep: UInt64?
    public private(set) var base: [[Float]] = []
    public private(set) var steps: [Step] = []
    public private(set) var finalStep: UInt64?
    public private(set) var final: [[Float]] = []

    public init() {}

    public mutating func begin(tensors: [StreamTensorInfo], metadata: [(key: String, value: String)]) throws {
        self.tensors = tensors
        self.metadata = metadata
    }

    public mutating func writeBase(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        baseStep = step
        base = tensors.map(Array.init)
    }

    public mutating func writeStep(_ step: UInt64, learningRate: Double,
                                   deltas: [UnsafeBufferPointer<Float>]) throws {
        steps.append(Step(step: step, learningRate: learningRate, deltas: deltas.map(Array.init)))
    }

    public mutating func writeFinal(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        finalStep = step
        final = tensors.map(Array.init)
    }

    /// The metadata value for `key`, or nil.
    public func metadataValue(_ key: String) -> String? {
        metadata.first { $0.key == key }?.value
    }
}
