// "formats" suite: elements per second of the array kernels against memcpy of the
// same source bytes (the fp32 input buffer, 4 bytes per element, into a separate
// buffer), all measured in this run.
#if canImport(Glibc)
import Glibc
#endif
import PrecLabFormats
import PrecLabSupport

/// Seconds on the monotonic clock.
private func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

/// Best of `repeats` timings of `body`, in seconds.
private func bestTime(repeats: Int = 5, _ body: () -> Void) -> Double {
    body()  // warm up (page faults, tables)
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = now()
        body()
        best = min(best, now() - start)
    }
    return best
}

private func formatRate(_ elementsPerSecond: Double) -> String {
    let value = elementsPerSecond / 1e9
    return String(Int((value * 100).rounded())).paddedLeft(5, insertingDecimalAt: 2) + " G/s"
}

private extension String {
    /// "123" -> "1.23" for two decimals, padded on the left.
    func paddedLeft(_ width: Int, insertingDecimalAt decimals: Int) -> String {
        var digits = self
        while digits.count <= decimals { digits = "0" + digits }
        let split = digits.index(digits.endIndex, offsetBy: -decimals)
        let text = digits[..<split] + "." + digits[split...]
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

/// memcpy chosen at run time, so the optimiser cannot recognise (and drop) the copy.
nonisolated(unsafe) private var opaqueCopy: (UnsafeMutableRawPointer, UnsafeRawPointer, Int) -> UnsafeMutableRawPointer? = { memmove($0, $1, $2) }

func runFormatsBenchmarks() {
    if CommandLine.arguments.count < 1_000_000 { opaqueCopy = { memcpy($0, $1, $2) } }
    let count = 1 << 24
    // Gaussian-like values (sum of uniforms) spread over several binades, with a few
    // per mille of subnormal-range values for the fp8 formats.
    var state: UInt64 = 0x1234_5678_9ABC_DEF1
    func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        let a = Float(UInt32(truncatingIfNeeded: state) >> 8) / Float(1 << 24)
        let b = Float(UInt32(truncatingIfNeeded: state >> 32) >> 8) / Float(1 << 24)
        return (a + b - 1) * 4
    }
    let source = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { source.deallocate() }
    for i in 0..<count { source[i] = next() }
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * count, alignment: 64)
    defer { copy.deallocate() }
    let codes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * count, alignment: 64)
    defer { codes.deallocate() }
    let decoded = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { decoded.deallocate() }
    copy.copyMemory(from: UnsafeRawBufferPointer(source))
    codes.initializeMemory(as: UInt8.self, repeating: 0)
    decoded.initialize(repeating: 0)

    // Read the copy back afterwards so the optimiser cannot drop the memcpy.
    var checksum: UInt8 = 0
    let memcpyTime = bestTime {
        _ = opaqueCopy(copy.baseAddress!, source.baseAddress!, 4 * count)
        checksum &+= copy[Int(checksum) * 4099 % (4 * count)]
    }
    let memcpyRate = Double(count) / memcpyTime
    print("elements: \(count) fp32 values (\(4 * count >> 20) MiB); memcpy of the fp32 source: "
        + "\(formatRate(memcpyRate)) elements/s (\(Int(Double(4 * count) / memcpyTime / 1e9)) GB/s)")
    print("ratio = kernel elements/s / memcpy elements/s, memcpy re-measured next to each kernel and the")
    print("best memcpy rate of the run used (checksum \(checksum))")
    print("")

    struct Case { let format: FloatFormat; let mode: RoundingMode; let target: Double? }
    let cases: [Case] = [
        Case(format: .bf16, mode: .nearestEven, target: 0.5),
        Case(format: .bf16, mode: .stochastic, target: 0.25),
        Case(format: .bf16, mode: .towardZero, target: nil),
        Case(format: .fp16, mode: .nearestEven, target: 0.5),
        Case(format: .fp16, mode: .stochastic, target: nil),
        Case(format: .tf32, mode: .nearestEven, target: nil),
        Case(format: .e4m3fn, mode: .nearestEven, target: 0.25),
        Case(format: .e5m2, mode: .nearestEven, target: 0.25),
        Case(format: .e4m3fn, mode: .stochastic, target: nil),
        Case(format: .e2m1fn, mode: .nearestEven, target: nil),
        Case(format: .e8m0fnu, mode: .nearestEven, target: nil),
    ]
    print("encode                       1 thread    ratio  target        2 threads  speedup")
    let key = StochasticKey(seed: 1)
    for item in cases {
        let options = RoundingOptions(mode: item.mode)
        let input = UnsafeBufferPointer(source)
        // memcpy is re-measured next to each kernel so that a busy machine affects both.
        let localMemcpy = Double(count) / bestTime(repeats: 3) {
            _ = opaqueCopy(copy.baseAddress!, source.baseAddress!, 4 * count)
            checksum &+= copy[Int(checksum) * 4099 % (4 * count)]
        }
        let one = bestTime { item.format.encode(input, into: codes, options, key: key, threads: 1) }
        let two = bestTime { item.format.encode(input, into: codes, options, key: key, threads: 2) }
        let rate = Double(count) / one
        let ratio = rate / max(localMemcpy, memcpyRate)
        var targetText = "-"
        if let target = item.target {
            targetText = ">=\(Int(target * 100))% " + (ratio >= target ? "met" : "NOT met")
        }
        let label = "\(item.format.name) \(item.mode.rawValue)"
        print(label.padding(toLength: 28, withPad: " ", startingAt: 0)
            + formatRate(rate) + "   " + String(Int((ratio * 100).rounded())).leftPadded(3) + "%  "
            + targetText.padding(toLength: 13, withPad: " ", startingAt: 0)
            + formatRate(Double(count) / two) + "   x" + String(Int((one / two * 100).rounded())).paddedLeft(4, insertingDecimalAt: 2))
    }
    print("")
    print("decode                       1 thread    ratio  2 threads")
    for format in [FloatFormat.bf16, .fp16, .tf32, .e4m3fn, .e5m2, .e2m1fn, .e8m0fnu] {
        let bytes = UnsafeRawBufferPointer(start: codes.baseAddress, count: count * format.storageBytes)
        format.encode(UnsafeBufferPointer(source), into: codes)
        let localMemcpy = Double(count) / bestTime(repeats: 3) {
            _ = opaqueCopy(copy.baseAddress!, source.baseAddress!, 4 * count)
            checksum &+= copy[Int(checksum) * 4099 % (4 * count)]
        }
        let one = bestTime { format.decode(bytes, into: decoded, threads: 1) }
        let two = bestTime { format.decode(bytes, into: decoded, threads: 2) }
        let rate = Double(count) / one
        print(format.name.padding(toLength: 28, withPad: " ", startingAt: 0) + formatRate(rate) + "   "
            + String(Int((rate / max(localMemcpy, memcpyRate) * 100).rounded())).leftPadded(3) + "%  " + formatRate(Double(count) / two))
    }
    print("")
    print("round trip (quantise in place, 1 thread)")
    for (format, mode) in [(FloatFormat.bf16, RoundingMode.nearestEven), (.bf16, .stochastic), (.e4m3fn, .nearestEven)] {
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { values.deallocate() }
        let time = bestTime(repeats: 3) {
            _ = values.initialize(from: source)
            format.roundTrip(values, RoundingOptions(mode: mode), key: key, threads: 1)
        }
        let label = "\(format.name) \(mode.rawValue) (incl. refill)"
        print(label.padding(toLength: 38, withPad: " ", startingAt: 0) + formatRate(Double(count) / time))
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
