import PrecLabFiles
import PrecLabSupport

/// Writes the generator's records to an update-stream v1 file through the files
/// module's writer. The file is written atomically: it appears at `path` only when
/// `close()` succeeds, so a failed run never leaves a partial stream.
public final class UpdateStreamFileSink: UpdateStreamSink {
    public let path: String
    private let force: Bool
    private let inputs: [String]
    private var writer: UpdateStreamWriter?
    /// One payload's worth of fp32 values: the per-tensor buffers, concatenated.
    private var payload: [Float] = []

    /// - Parameters:
    ///   - force: replace an existing file at `path`.
    ///   - inputs: files the run reads (a checkpoint), which `path` may never name.
    public init(path: String, force: Bool = false, inputs: [String] = []) throws {
        try AtomicFileWriter.checkDestination(path, force: force, inputs: inputs)
        self.path = path
        self.force = force
        self.inputs = inputs
    }

    public func begin(tensors: [StreamTensorInfo], metadata: [(key: String, value: String)]) throws {
        let header = try UpdateStreamHeader(
            tensors: tensors.map { UpdateStreamTensor(name: $0.name, shape: $0.shape, dtype: $0.dtype) },
            metadata: metadata)
        writer = try UpdateStreamWriter(path: path, header: header, atomic: true, force: force, inputs: inputs)
        payload = [Float](repeating: 0, count: header.totalElements)
    }

    public func writeBase(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        let writer = try openWriter()
        try withPayload(tensors) { try writer.writeBase(step: step, values: $0) }
    }

    public func writeStep(_ step: UInt64, learningRate: Double, deltas: [UnsafeBufferPointer<Float>]) throws {
        let writer = try openWriter()
        try withPayload(deltas) { try writer.writeStep(step: step, learningRate: learningRate, values: $0) }
    }

    public func writeFinal(step: UInt64, tensors: [UnsafeBufferPointer<Float>]) throws {
        let writer = try openWriter()
        try withPayload(tensors) { try writer.writeFinal(values: $0) }
    }

    /// Moves the finished file into place.
    public func close() throws {
        try openWriter().close()
        writer = nil
    }

    private func openWriter() throws -> UpdateStreamWriter {
        guard let writer else { throw PrecLabError.invalidArgument("\(path): the stream was not begun or is closed") }
        return writer
    }

    private func withPayload(_ tensors: [UnsafeBufferPointer<Float>],
                             _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        try payload.withUnsafeMutableBufferPointer { all in
            var offset = 0
            for tensor in tensors {
                guard offset + tensor.count <= all.count, let source = tensor.baseAddress else { continue }
                (all.baseAddress! + offset).update(from: source, count: tensor.count)
                offset += tensor.count
            }
            guard offset == all.count else {
                throw PrecLabError.invalidArgument("\(path): a record holds \(offset) values, the header needs \(all.count)")
            }
            try body(UnsafeBufferPointer(all))
        }
    }
}
