import XCTest
@testable import PrecLabFormats

/// The array kernels must give the scalar path's bits exactly, for any thread count
/// and chunking.
final class KernelTests: XCTestCase {
    static let variants: [RoundingOptions] = RoundingMode.allCases.map { RoundingOptions(mode: $0) } + [
        RoundingOptions(mode: .nearestEven, flushSubnormals: true, saturate: true),
        RoundingOptions(mode: .stochastic, flushSubnormals: true, saturate: true),
        RoundingOptions(mode: .up, flushSubnormals: true, saturate: true),
        RoundingOptions(mode: .towardZero, saturate: true),
    ]

    func encodeWithKernel(_ format: FloatFormat, _ input: [Float], _ options: RoundingOptions,
                          key: StochasticKey, firstIndex: Int = 0, threads: Int) -> [UInt32] {
        var bytes = [UInt8](repeating: 0xAA, count: input.count * format.storageBytes)
        input.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { destination in
                format.encode(source, into: destination, options, key: key, firstIndex: firstIndex, threads: threads)
            }
        }
        return bytes.withUnsafeBytes { raw in
            (0..<input.count).map { i in
                switch format.storageBytes {
                case 1: return UInt32(raw[i])
                case 2: return UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                default: return raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                }
            }
        }
    }

    func testEncodeKernelMatchesScalarPath() {
        let all = SampleInputs.bits(randomPerExponent: 2)
        let input = stride(from: 0, to: all.count, by: 3).map { Float(bitPattern: all[$0]) }
        let key = StochasticKey(seed: 42, stream: 7, step: 3)
        let allModes: Set<String> = ["bf16", "fp16", "e4m3fn", "e2m1fn", "e8m0fnu", "e6m9", "e5m2fnuz"]
        for format in SampleInputs.formats {
            let variants = allModes.contains(format.name) ? KernelTests.variants
                : [RoundingOptions(), RoundingOptions(mode: .stochastic), KernelTests.variants[8]]
            for options in variants {
                let kernel = encodeWithKernel(format, input, options, key: key, firstIndex: 1000, threads: 2)
                var failures = 0
                for (i, x) in input.enumerated() {
                    let expected = format.encode(x, options, random: key.randomBits(index: 1000 + i))
                    if kernel[i] != expected {
                        failures += 1
                        if failures <= 3 {
                            XCTFail("\(format) \(options): input \(String(x.bitPattern, radix: 16)) kernel "
                                + "\(String(kernel[i], radix: 16)) scalar \(String(expected, radix: 16))")
                        }
                    }
                }
                XCTAssertEqual(failures, 0, "\(format) \(options)")
            }
        }
    }

    func testSameSeedSameBitsWhateverThreadsAndChunks() {
        var generator = SampleInputs.Generator(state: 99)
        let input = (0..<100_001).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()) & 0xBFFF_FFFF) }
        let options = RoundingOptions(mode: .stochastic)
        let key = StochasticKey(seed: 2024, stream: 1, step: 17)
        for format in [FloatFormat.bf16, .e4m3fn, .fp16, .e2m1fn] {
            let one = encodeWithKernel(format, input, options, key: key, threads: 1)
            XCTAssertEqual(one, encodeWithKernel(format, input, options, key: key, threads: 2), "\(format)")
            XCTAssertEqual(one, encodeWithKernel(format, input, options, key: key, threads: 5), "\(format)")
            // Two separate calls over the halves, with firstIndex carrying the position.
            let split = 65_537 + 3
            let head = encodeWithKernel(format, Array(input[..<split]), options, key: key, threads: 2)
            let tail = encodeWithKernel(format, Array(input[split...]), options, key: key, firstIndex: split, threads: 1)
            XCTAssertEqual(one, head + tail, "\(format)")
            // Indices that cross a 2^32 block of the generator match the scalar path.
            let far = (1 << 32) - 13
            let crossing = encodeWithKernel(format, Array(input[..<100]), options, key: key, firstIndex: far, threads: 1)
            for i in 0..<100 {
                XCTAssertEqual(crossing[i], format.encode(input[i], options, random: key.randomBits(index: far + i)))
            }
            // Another seed changes some bits.
            XCTAssertNotEqual(one, encodeWithKernel(format, input, options, key: StochasticKey(seed: 2025, stream: 1, step: 17), threads: 2))
        }
    }

    func testDecodeKernelMatchesScalarForEveryCode() {
        for format in SampleInputs.formats {
            let count = format.storageBytes == 4 ? 1 << 20 : 1 << (8 * format.storageBytes)
            var bytes = [UInt8](repeating: 0, count: count * format.storageBytes)
            var codes: [UInt32] = []
            var generator = SampleInputs.Generator(state: 5)
            for i in 0..<count {
                let code: UInt32 = format.storageBytes == 4 ? UInt32(truncatingIfNeeded: generator.next()) : UInt32(i)
                codes.append(code)
                for b in 0..<format.storageBytes { bytes[i * format.storageBytes + b] = UInt8(truncatingIfNeeded: code >> (8 * b)) }
            }
            var output = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { source in
                output.withUnsafeMutableBufferPointer { format.decode(source, into: $0, threads: 2) }
            }
            var failures = 0
            for (i, code) in codes.enumerated() where output[i].bitPattern != format.decodeFloat(code).bitPattern {
                failures += 1
                if failures <= 3 { XCTFail("\(format) code \(String(code, radix: 16)): \(output[i]) vs \(format.decodeFloat(code))") }
            }
            XCTAssertEqual(failures, 0, "\(format)")
        }
    }

    func testRoundTripKernelIsDecodeOfEncode() {
        let all = SampleInputs.bits(randomPerExponent: 4)
        let input = stride(from: 0, to: all.count, by: 5).map { Float(bitPattern: all[$0]) }
        let key = StochasticKey(seed: 3)
        for format in SampleInputs.formats {
            for options in [RoundingOptions(), RoundingOptions(mode: .stochastic)] {
                var values = input
                values.withUnsafeMutableBufferPointer { format.roundTrip($0, options, key: key, firstIndex: 11, threads: 2) }
                for (i, x) in input.enumerated() {
                    let expected = format.decodeFloat(format.encode(x, options, random: key.randomBits(index: 11 + i)))
                    if values[i].bitPattern != expected.bitPattern {
                        XCTFail("\(format) \(options.mode) \(x): \(values[i]) vs \(expected)")
                        break
                    }
                }
            }
        }
    }
}
