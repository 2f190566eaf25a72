import PrecLabSupport

/// The parsers exercised by the fuzzers (`make fuzz`) on one input: each must either
/// accept it or throw; none may crash. Kept in the module so the libFuzzer build and
/// the deterministic mutation fuzzer call exactly the same code.
public enum FuzzTargets {
    /// The parsers, one bit each in an `Outcome`.
    public enum Parser: Int, CaseIterable, Sendable {
        case json, updateStream, updateStreamSummary, safetensors, npy, npz
    }

    /// Which parsers accepted the input (the others rejected it with an error), so a
    /// caller can check that the input really reached them.
    public struct Outcome: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(_ parser: Parser) { rawValue = 1 << parser.rawValue }
        public func accepted(by parser: Parser) -> Bool { contains(Outcome(parser)) }
    }

    @discardableResult
    public static func run(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var outcome: Outcome = []
        if (try? JSONParser.parse(bytes)) != nil { outcome.insert(Outcome(.json)) }
        let file = MappedFile(name: "fuzz-input", copying: bytes)
        if let reader = try? UpdateStreamReader(file: file),
           (try? reader.forEachRecord({ record in
               for index in record.header.tensors.indices { _ = record.values(ofTensor: index).first }
           })) != nil {
            outcome.insert(Outcome(.updateStream))
        }
        if let reader = try? UpdateStreamReader(file: file, options: .init(verifyCRC: false, allowTruncated: true)),
           (try? reader.summarize()) != nil {
            outcome.insert(Outcome(.updateStreamSummary))
        }
        if let safetensors = try? SafetensorsFile(file: file) {
            for tensor in safetensors.tensors { _ = safetensors.bytes(of: tensor).last }
            outcome.insert(Outcome(.safetensors))
        }
        if let array = try? NpyArray(bytes: file.bytes, name: "fuzz-input", owner: file, bfloat16ForV2: true) {
            if array.storedBytes.count <= 1 << 20 { _ = array.floatValues() }
            outcome.insert(Outcome(.npy))
        }
        if let archive = try? NpzArchive(file: file) {
            var readAll = true
            for entry in archive.entries.prefix(8) {
                // The streaming pass has bounded memory whatever the declared size.
                if (try? archive.describe(entry, bfloat16ForV2: true)) == nil { readAll = false }
                if entry.uncompressedSize <= 1 << 20, (try? archive.array(entry)) == nil { readAll = false }
            }
            if readAll { outcome.insert(Outcome(.npz)) }
        }
        return outcome
    }
}
