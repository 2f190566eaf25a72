import Foundation
import PrecLabFiles
import PrecLabSupport
import PrecLabTestSupport
import XCTest

/// Files written by Python (tools/preclab_record.py, numpy, the `safetensors` package)
/// read bit for bit by Swift, and the other way round.
final class FilesCrossLanguageTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = try CLIRunner.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Runs a Python script with tools/ on the path in the private environment
    /// (PythonOracle); the status and the combined output.
    @discardableResult
    func python(_ script: String, _ arguments: [String] = []) throws -> (status: Int32, output: String) {
        let result = try ChildProcess.run(PythonOracle.interpreter, ["-c", script] + arguments,
                                          overrides: ["PYTHONPATH": CLIRunner.packageRoot.appendingPathComponent("tools").path,
                                                      "PYTHONDONTWRITEBYTECODE": "1"],
                                          timeout: 300)
        return (result.status, result.stdoutText + result.stderrText)
    }

    func requireNumpy() throws {
        try PythonOracle.require("numpy")
    }

    /// Float bit patterns covering both signs, zeros, subnormals, NaN (with payload), Inf,
    /// the extremes and ordinary values.
    static let specialBits: [UInt32] = [
        0x0000_0000, 0x8000_0000, 0x0000_0001, 0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x3F80_0000,
        0xBF80_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7FA0_0001,
        0xFFC1_2345, 0x3DCC_CCCD, 0x4049_0FDB,
    ]

    func randomBits(_ count: Int, seed: UInt64) -> [UInt32] {
        var state = seed
        var values = Self.specialBits
        while values.count < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            values.append(UInt32(truncatingIfNeeded: state >> 29))
        }
        return Array(values.prefix(count))
    }

    func writeRaw(_ bits: [UInt32], to name: String) throws {
        try Data(bits.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }).write(to: URL(fileURLWithPath: path(name)))
    }

    func readRaw(_ name: String) throws -> [UInt32] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return stride(from: 0, to: data.count, by: 4).map { offset in
            data[offset..<(offset + 4)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        }
    }

    func testPythonStreamReadBySwiftBitForBit() throws {
        try requireNumpy()
        let bits = randomBits(6 * 7 + 5, seed: 1)  // tensors a[6,7], b[5]; one record each
        try writeRaw(bits, to: "values.bin")
        let script = """
        import sys, numpy as np, preclab_record as pr
        d = sys.argv[1]
        v = np.fromfile(d + '/values.bin', dtype='<u4').view('<f4')
        with pr.UpdateStreamWriter(d + '/py.bin', [('a', (6, 7), 'BF16'), ('b', (5,))], {'model': 'tiny'}) as w:
            w.write_base([v[:42].reshape(6, 7), v[42:]], step=0)
            for step in (1, 2, 5):
                w.write_step(step, 0.001 * step, {'a': np.full(42, step, np.float32), 'b': v[42:]})
            w.write_final([v[:42], v[42:]])
        """
        let run = try python(script, [directory.path])
        XCTAssertEqual(run.status, 0, run.output)
        let reader = try UpdateStreamReader(path: path("py.bin"))
        XCTAssertEqual(reader.header.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(reader.header.tensors.map(\.shape), [[6, 7], [5]])
        XCTAssertEqual(reader.header.tensors.map(\.dtype), ["BF16", nil])
        var records: [(UpdateRecordKind, UInt64, Double, [UInt32])] = []
        let summary = try reader.forEachRecord { record in
            records.append((record.kind, record.step, record.learningRate, record.values.map(\.bitPattern)))
        }
        XCTAssertEqual(records.map(\.0), [.base, .step, .step, .step, .final])
        XCTAssertEqual(records.map(\.1), [0, 1, 2, 5, 5])
        XCTAssertEqual(records[0].3, bits)
        XCTAssertEqual(records[4].3, bits)
        XCTAssertEqual(Array(records[3].3.prefix(42)), [UInt32](repeating: Float(5).bitPattern, count: 42))
        XCTAssertEqual(Array(records[3].3.suffix(5)), Array(bits.suffix(5)))
        XCTAssertEqual(records[2].2, 0.002)
        XCTAssertEqual(summary.gapCount, 1)
        XCTAssertEqual(summary.missingSteps, 2)

        let inspect = try CLIRunner.run(["inspect", path("py.bin")])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("steps: 3 (first 1, last 5), 1 gap (2 steps missing"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("BASE: present (step 0); FINL: present (step 5)"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("CRC-32: all 5 records verified"), inspect.stdout)
    }

    func testSwiftStreamReadByPythonBitForBit() throws {
        try requireNumpy()
        let bits = randomBits(3 * 4, seed: 2)
        let writer = try UpdateStreamWriter(path: path("swift.bin"), tensors: [UpdateStreamTensor(name: "w", shape: [3, 4], dtype: "F16")],
                                            metadata: [("note", "ünïcode")])
        let values = bits.map { Float(bitPattern: $0) }
        try writer.writeBase(values: values.withUnsafeBufferPointer { $0 }.baseAddress.map { UnsafeBufferPointer(start: $0, count: values.count) }!)
        try writer.writeStep(step: 3, learningRate: 1e-4, tensors: [values])
        try writer.writeFinal(tensors: [values])
        try writer.close()
        let script = """
        import sys, numpy as np, preclab_record as pr
        d = sys.argv[1]
        r = pr.UpdateStreamReader(d + '/swift.bin')
        assert r.tensors == [('w', (3, 4), 'F16')], r.tensors
        assert r.metadata == {'note': 'ünïcode'}, r.metadata
        recs = list(r.records())
        assert [(x.kind, x.step) for x in recs] == [('BASE', 0), ('STEP', 3), ('FINL', 3)]
        assert recs[1].learning_rate == 1e-4
        assert recs[1].tensor('w').shape == (3, 4)
        np.concatenate([x.values for x in recs]).view('<u4').tofile(d + '/back.bin')
        """
        let run = try python(script, [directory.path])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(try readRaw("back.bin"), bits + bits + bits)
    }

    func testSafetensorsPackageBothWays() throws {
        try PythonOracle.require("numpy", "safetensors")
        let bits = randomBits(24, seed: 3)
        try writeRaw(bits, to: "values.bin")
        // Python (reference writer) -> Swift.
        let write = """
        import sys, numpy as np
        from safetensors.numpy import save_file
        d = sys.argv[1]
        v = np.fromfile(d + '/values.bin', dtype='<u4')
        save_file({'model.layers.10.w': v.view('<f4').reshape(4, 6), 'model.layers.2.h': v[:8].view('<f2'),
                   'ids': v[:6].view('<i8').copy(), 'mask': (v[:5] & 1).astype(np.bool_), 'd': v[:4].view('<f8'),
                   'scalar': np.array(2.5, dtype=np.float32)}, d + '/ref.safetensors', metadata={'format': 'np'})
        """
        let run = try python(write, [directory.path])
        XCTAssertEqual(run.status, 0, run.output)
        let checkpoint = try Checkpoint.open(path("ref.safetensors"))
        XCTAssertEqual(checkpoint.tensors.map(\.name), ["d", "ids", "mask", "model.layers.2.h", "model.layers.10.w", "scalar"])
        let rawBytes = bits.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        let w = try XCTUnwrap(checkpoint.tensor(named: "model.layers.10.w"))
        XCTAssertEqual(w.dtype, .f32)
        XCTAssertEqual(w.shape, [4, 6])
        XCTAssertEqual(Array(checkpoint.bytes(of: w)), rawBytes)
        XCTAssertEqual(Array(checkpoint.bytes(of: checkpoint.tensor(named: "model.layers.2.h")!)), Array(rawBytes[0..<32]))
        XCTAssertEqual(checkpoint.tensor(named: "model.layers.2.h")?.dtype, .f16)
        XCTAssertEqual(checkpoint.tensor(named: "ids")?.dtype, .i64)
        XCTAssertEqual(checkpoint.tensor(named: "mask")?.dtype, .bool)
        XCTAssertEqual(checkpoint.tensor(named: "scalar")?.shape, [])
        XCTAssertEqual(checkpoint.metadata.map(\.value), ["np"])

        // Swift -> Python (reference reader), bytes compared in Python against values.bin.
        try SafetensorsWriter.write(to: path("swift.safetensors"), tensors: [
            (SafetensorsTensorSpec(name: "w", dtype: .f32, shape: [4, 6]), rawBytes),
            (SafetensorsTensorSpec(name: "h", dtype: .bf16, shape: [3]), Array(rawBytes[0..<6])),
            (SafetensorsTensorSpec(name: "b", dtype: .u8, shape: [5]), Array(rawBytes[0..<5])),
        ], metadata: [("preclab", "test")])
        let read = """
        import sys, json, numpy as np
        from safetensors import safe_open
        d = sys.argv[1]
        raw = np.fromfile(d + '/values.bin', dtype='u1')
        with safe_open(d + '/swift.safetensors', 'np') as f:
            assert f.metadata() == {'preclab': 'test'}, f.metadata()
            w = f.get_tensor('w'); b = f.get_tensor('b')
            assert w.shape == (4, 6) and w.dtype == np.float32
            assert w.tobytes() == raw.tobytes()
            assert b.tobytes() == raw[:5].tobytes()
        print('ok')
        """
        let back = try python(read, [directory.path])
        XCTAssertEqual(back.status, 0, back.output)
    }

    func testNumpyFilesThroughInspect() throws {
        try requireNumpy()
        let script = """
        import sys, numpy as np
        d = sys.argv[1]
        np.save(d + '/a.npy', np.asfortranarray(np.arange(6, dtype='>f4').reshape(2, 3)))
        np.savez_compressed(d + '/b.npz', x=np.zeros((1000,), np.float16), y=np.arange(10))
        """
        XCTAssertEqual(try python(script, [directory.path]).status, 0)
        let result = try CLIRunner.run(["inspect", "--json", path("a.npy"), path("b.npz")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("\"descr\": \">f4\""), result.stdout)
        XCTAssertTrue(result.stdout.contains("\"fortran_order\": true"), result.stdout)
        XCTAssertTrue(result.stdout.contains("\"shape\": [1000]"), result.stdout)
    }
}
