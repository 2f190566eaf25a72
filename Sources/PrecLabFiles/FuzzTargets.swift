import PrecLabSupport

/// The parsers exercised by the fuzzers (`make fuzz`) on one input: each must either
/// accept it or throw; none may crash. Kept in the module so the libFuzzer build and
/// the deterministic mutation fuzzer call exactly the same code.
public enum FuzzTargets {
    public static func run(_ bytes: UnsafeRawBufferPointer) {
        _ = try? JSONParser.parse(bytes)
        let file = MappedFile(name: "fuzz-input", copying: bytes)
        if let reader = try? UpdateStreamReader(file: file) {
            _ = try? reader.forEachRecord { record in
                for index in record.header.tensors.indices { _ = record.values(ofTensor: index).first }
            }
        }
        if let reader = try? UpdateStreamReader(file: file, options: .init(verifyCRC: false, allowTruncated: true)) {
            _ = try? reader.summarize()
        }
        if let safetensors = try? SafetensorsFile(file: file) {
            for tensor in safetensors.tensors { _ = safetensors.bytes(of: tensor).last }
        }
        if let array = try? NpyArray(bytes: file.bytes, name: "fuzz-input", owner: file, bfloat16ForV2: true),
           array.storedBytes.count <= 1 << 20 {
            _ = array.floatValues()
        }
        if let archive = try? NpzArchive(file: file) {
            for entry in archive.entries.prefix(8) {
                // The streaming pass has bounded memory whatever the declared size.
                _ = try? archive.describe(entry, bfloat16ForV2: true)
                if entry.uncompressedSize <= 1 << 20 { _ = try? archive.array(entry) }
            }
        }
    }
}
