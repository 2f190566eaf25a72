#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PrecLabFiles
import PrecLabFormats
import PrecLabSupport

/// `files` suite: CRC-32 and stream walking against memcpy of the same bytes, and the
/// peak resident memory of inspecting 2 GiB files (sparse, so no disk is used).
enum FilesBenchmarks {
    static func run() {
        let directory = NSTemporaryDirectory() + "preclab-bench-files-\(getpid())"
        mkdir(directory, 0o755)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // Memory first: ru_maxrss is a process-wide peak.
        let baseline = peakResidentMemoryKiB()
        let safetensorsPath = directory + "/huge.safetensors"
        makeSparseSafetensors(safetensorsPath, bytes: 2 << 30)
        let start = now()
        let checkpoint = try! Checkpoint.open(safetensorsPath)
        let inspectTime = now() - start
        print("inspect 2 GiB safetensors: \(checkpoint.tensors.count) tensor, \(ms(inspectTime)) ms, peak RSS +\(mib(peakResidentMemoryKiB() - baseline)) MiB")

        let streamPath = directory + "/huge.bin"
        let payload = 512 << 20
        makeSparseStream(streamPath, payloadBytes: payload, records: 4)
        let fileSize = 4 * (payload + 40) + 96
        for pass in ["cold", "warm"] {
            let before = now()
            let reader = try! UpdateStreamReader(path: streamPath)
            let summary = try! reader.summarize()
            let seconds = now() - before
            print("walk + CRC-verify 2 GiB stream (\(pass) page cache): \(summary.recordCount) records, \(gbps(fileSize, seconds)) GB/s, peak RSS +\(mib(peakResidentMemoryKiB() - baseline)) MiB")
        }

        // Throughput in memory, next to memcpy of the same bytes.
        let count = 256 << 20
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        let target = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        defer { source.deallocate(); target.deallocate() }
        var state: UInt64 = 1
        for index in stride(from: 0, to: count, by: 8) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            source.storeBytes(of: state, toByteOffset: index, as: UInt64.self)
        }
        memcpy(target.baseAddress!, source.baseAddress!, count)  // fault the pages in
        let memcpyTime = best { memcpy(target.baseAddress!, source.baseAddress!, count) }
        let raw = UnsafeRawBufferPointer(source)
        var single: UInt32 = 0, parallel: UInt32 = 0
        let singleTime = best { single = CRC32.update(0, raw) }
        var tables: UInt32 = 0
        let tablesTime = best { tables = CRC32.updateWithTables(0, raw) }
        let parallelTime = best { parallel = CRC32.checksum(raw) }
        precondition(single == parallel && single == tables, "the CRC-32 paths disagree")
        print("memcpy 256 MiB: \(gbps(count, memcpyTime)) GB/s")
        print("CRC-32, 1 thread (\(CRC32.foldingAvailable ? "folding with PCLMULQDQ" : "slicing-by-16: no PCLMULQDQ")): "
              + "\(gbps(count, singleTime)) GB/s (\(ratio(memcpyTime, singleTime)) of memcpy)")
        print("CRC-32 slicing-by-16 alone, 1 thread: \(gbps(count, tablesTime)) GB/s (\(ratio(memcpyTime, tablesTime)) of memcpy)")
        print("CRC-32 split + crc32_combine, \(ParallelChunks.threadCount) threads: \(gbps(count, parallelTime)) GB/s (\(ratio(memcpyTime, parallelTime)) of memcpy)")

        // Walking a stream whose pages are resident (the replay's view of a cached file).
        let inMemoryPath = directory + "/cached.bin"
        let elements = 16 << 20
        let writer = try! UpdateStreamWriter(path: inMemoryPath, tensors: [UpdateStreamTensor(name: "w", shape: [elements])])
        let values = UnsafeBufferPointer(start: source.baseAddress!.assumingMemoryBound(to: Float.self), count: elements)
        for step in 1...8 { try! writer.writeStep(step: UInt64(step), learningRate: 1e-3, values: values) }
        try! writer.close()
        let streamBytes = 8 * (elements * 4 + 40)
        var checksum: Float = 0
        let walkTime = best {
            let reader = try! UpdateStreamReader(path: inMemoryPath)
            try! reader.forEachRecord { record in checksum += record.values[0] }
        }
        print("walk + CRC-verify 512 MiB cached stream with record views: \(gbps(streamBytes, walkTime)) GB/s (\(ratio(memcpyTime * Double(streamBytes) / Double(count), walkTime)) of memcpy)\(checksum.isNaN ? " " : "")")
        try? FileManager.default.removeItem(atPath: inMemoryPath)

        benchmarkCast(directory: directory, source: UnsafeRawBufferPointer(source))
    }

    /// `preclab cast` of a 256 MiB F32 checkpoint to bf16, next to the bare encode kernel
    /// on the same values in memory (the cast adds reading the mapping and writing).
    static func benchmarkCast(directory: String, source: UnsafeRawBufferPointer) {
        let count = source.count / 4
        let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { floats.deallocate() }
        // Finite values spread over a wide range (random bits with the exponent tamed).
        for i in 0..<count {
            let bits = source.load(fromByteOffset: 4 * i, as: UInt32.self)
            floats[i] = Float(bitPattern: (bits & 0x807F_FFFF) | (UInt32(100 + bits % 50) << 23))
        }
        let codes = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 2, alignment: 64)
        defer { codes.deallocate() }
        let kernelTime = best { FloatFormat.bf16.encode(UnsafeBufferPointer(floats), into: codes) }
        print("encode kernel fp32 -> bf16 (nearest-even), 256 MiB in memory: \(gbps(count * 4, kernelTime)) GB/s of input")

        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("preclab").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            print("preclab cast: not measured (build the CLI first: make build)")
            return
        }
        let input = directory + "/cast-in.safetensors"
        try! SafetensorsWriter.write(to: input, tensors: [SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [count])]) { _, sink in
            try sink(UnsafeRawBufferPointer(floats))
        }
        var fastest = Double.infinity
        for round in 0..<3 {
            let output = directory + "/cast-out-\(round).safetensors"
            let start = now()
            _ = try! ChildProcess.run(binary, ["cast", input, output, "--dtype", "bf16"], timeout: 600)
            fastest = min(fastest, now() - start)
            try? FileManager.default.removeItem(atPath: output)
        }
        print("preclab cast 256 MiB F32 checkpoint -> bf16 file (process, incl. fsync): \(gbps(count * 4, fastest)) GB/s of input (\(ratio(kernelTime, fastest)) of the kernel)")
    }

    static func makeSparseSafetensors(_ path: String, bytes: Int) {
        let header = Array(#"{"w":{"dtype":"BF16","shape":[\#(bytes / 2)],"data_offsets":[0,\#(bytes)]}}"#.utf8)
        var padded = header
        while padded.count % 8 != 0 { padded.append(0x20) }
        var prefix = withUnsafeBytes(of: UInt64(padded.count).littleEndian) { Array($0) }
        prefix += padded
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = prefix.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        ftruncate(fd, off_t(prefix.count + bytes))
        close(fd)
    }

    /// A valid stream whose payloads are holes (zeros): CRCs of the zero runs come from
    /// `CRC32.combine`, so nothing but the record frames is written.
    static func makeSparseStream(_ path: String, payloadBytes: Int, records: Int) {
        let header = try! UpdateStreamHeader(tensors: [UpdateStreamTensor(name: "w", shape: [payloadBytes / 4])])
        let prefix = header.encodedPrefix()
        let chunk = 1 << 20
        let zeros = [UInt8](repeating: 0, count: chunk)
        let zeroCRC = CRC32.checksum(zeros)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var offset = 0
        func put(_ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            offset += bytes.count
        }
        put(prefix)
        for step in 1...records {
            var head = Array("STEP".utf8)
            head += withUnsafeBytes(of: UInt32(0)) { Array($0) }
            head += withUnsafeBytes(of: UInt64(step).littleEndian) { Array($0) }
            head += withUnsafeBytes(of: (1e-3 as Double).bitPattern.littleEndian) { Array($0) }
            head += withUnsafeBytes(of: UInt64(payloadBytes).littleEndian) { Array($0) }
            var crc = CRC32.checksum(head)
            for _ in 0..<(payloadBytes / chunk) { crc = CRC32.combine(crc, zeroCRC, length: chunk) }
            put(head)
            offset += payloadBytes
            put(withUnsafeBytes(of: crc.littleEndian) { Array($0) } + [0, 0, 0, 0])
        }
        ftruncate(fd, off_t(offset))
        close(fd)
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// The best of five runs.
    static func best(_ body: () -> Void) -> Double {
        var fastest = Double.infinity
        for _ in 0..<5 {
            let start = now()
            body()
            fastest = min(fastest, now() - start)
        }
        return fastest
    }

    static func gbps(_ bytes: Int, _ seconds: Double) -> String { String(format: "%.2f", Double(bytes) / seconds / 1e9) }
    static func ratio(_ reference: Double, _ measured: Double) -> String { String(format: "%.2fx", reference / measured) }
    static func ms(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1000) }
    static func mib(_ kib: Int) -> String { String(kib / 1024) }
}
