// libFuzzer entry point for the file parsers (built by `make fuzz`, see fuzz/build.sh).
// Every input goes through the strict JSON parser and, as an in-memory file, through
// the update-stream, safetensors, npy and npz readers. Any thrown error is fine; a
// crash, trap or sanitizer report is a bug.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    FuzzTargets.run(bytes)
    return 0
}
