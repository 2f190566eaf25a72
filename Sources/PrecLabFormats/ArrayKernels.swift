import PrecLabSupport

// Array kernels: encode, decode and quantise-in-place over large buffers. Storage is
// little-endian packed codes of `storageBytes` each (fp6/fp4: one code per byte).
// Work is split into fixed chunks by ParallelChunks, and every element's random bits
// depend only on (key, firstIndex + element index), so the bits never depend on the
// thread count or chunking.

extension FloatFormat {
    /// Elements per parallel chunk (fixed: the result does not depend on it anyway).
    static let kernelChunk = 1 << 16

    /// Encodes `source` into `destination` (at least `source.count * storageBytes` bytes).
    /// Stochastic rounding draws `key.randomBits(index: firstIndex + i)` for element i
    /// (a missing key means seed 0).
    public func encode(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawBufferPointer,
                       _ options: RoundingOptions = .nearestEven, key: StochasticKey? = nil,
                       firstIndex: Int = 0, threads: Int = ParallelChunks.threadCount) {
        precondition(destination.count >= source.count * storageBytes,
                     "destination holds \(destination.count) bytes, need \(source.count * storageBytes)")
        guard let input = source.baseAddress, let output = destination.baseAddress else { return }
        let pointers = UnsafeSendable((input, output))
        let state = (key ?? StochasticKey(seed: 0)).state
        let plan = kind == .generic ? VectorPlan(self, options) : nil
        let format = self
        ParallelChunks.forEach(count: source.count, chunkSize: FloatFormat.kernelChunk, threads: threads) { range in
            format.encodeBlock(pointers.value.0 + range.lowerBound,
                               pointers.value.1 + range.lowerBound * format.storageBytes,
                               count: range.count, options, plan: plan, state: state,
                               firstIndex: firstIndex + range.lowerBound)
        }
    }

    /// Decodes packed codes into Floats (exact).
    public func decode(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>,
                       threads: Int = ParallelChunks.threadCount) {
        let count = source.count / storageBytes
        precondition(destination.count >= count, "destination holds \(destination.count) values, need \(count)")
        guard let input = source.baseAddress, let output = destination.baseAddress else { return }
        let pointers = UnsafeSendable((input, output))
        let table = decodeTable()
        let format = self
        ParallelChunks.forEach(count: count, chunkSize: FloatFormat.kernelChunk, threads: threads) { range in
            format.decodeBlock(pointers.value.0 + range.lowerBound * format.storageBytes,
                               pointers.value.1 + range.lowerBound, count: range.count, table: table)
        }
    }

    /// Quantises in place: each value becomes the decoded value of its encoding.
    public func roundTrip(_ values: UnsafeMutableBufferPointer<Float>, _ options: RoundingOptions = .nearestEven,
                          key: StochasticKey? = nil, firstIndex: Int = 0,
                          threads: Int = ParallelChunks.threadCount) {
        guard let base = values.baseAddress else { return }
        let pointer = UnsafeSendable(base)
        let state = (key ?? StochasticKey(seed: 0)).state
        let plan = kind == .generic ? VectorPlan(self, options) : nil
        let table = decodeTable()
        let format = self
        ParallelChunks.forEach(count: values.count, chunkSize: FloatFormat.kernelChunk, threads: threads) { range in
            // Encode and decode through a small buffer that stays in L1.
            let block = 2048
            withUnsafeTemporaryAllocation(byteCount: block * 4, alignment: 64) { scratch in
                var start = range.lowerBound
                while start < range.upperBound {
                    let n = min(block, range.upperBound - start)
                    let values = pointer.value + start
                    format.encodeBlock(UnsafePointer(values), scratch.baseAddress!, count: n, options, plan: plan,
                                       state: state, firstIndex: firstIndex + start)
                    format.decodeBlock(UnsafeRawPointer(scratch.baseAddress!), values, count: n, table: table)
                    start += n
                }
            }
        }
    }

    // MARK: Encoding blocks

    func encodeBlock(_ input: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, count: Int,
                     _ options: RoundingOptions, plan: VectorPlan?, state: UInt64, firstIndex: Int) {
        guard let plan else {
            encodeScalar(input, output, from: 0, count: count, options, state: state, firstIndex: firstIndex)
            return
        }
        switch options.mode {
        case .nearestEven: encodeVector(input, output, count: count, options, plan, NearestEvenLanes.self, state, firstIndex)
        case .nearestAway: encodeVector(input, output, count: count, options, plan, NearestAwayLanes.self, state, firstIndex)
        case .towardZero: encodeVector(input, output, count: count, options, plan, TowardZeroLanes.self, state, firstIndex)
        case .up: encodeVector(input, output, count: count, options, plan, UpLanes.self, state, firstIndex)
        case .down: encodeVector(input, output, count: count, options, plan, DownLanes.self, state, firstIndex)
        case .odd: encodeVector(input, output, count: count, options, plan, OddLanes.self, state, firstIndex)
        case .stochastic: encodeVector(input, output, count: count, options, plan, StochasticLanes.self, state, firstIndex)
        }
    }

    /// The scalar reference loop (fp32, e8m0fnu and vector tails).
    func encodeScalar(_ input: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, from start: Int, count: Int,
                      _ options: RoundingOptions, state: UInt64, firstIndex: Int) {
        let stochastic = options.mode == .stochastic
        for i in start..<count {
            let random = stochastic ? StochasticKey.bits(state: state, index: firstIndex + i) : 0
            store(encode(input[i], options, random: random), output, at: i)
        }
    }

    @inline(__always)
    func store(_ code: UInt32, _ output: UnsafeMutableRawPointer, at index: Int) {
        switch storageBytes {
        case 1: output.storeBytes(of: UInt8(truncatingIfNeeded: code), toByteOffset: index, as: UInt8.self)
        case 2: output.storeBytes(of: UInt16(truncatingIfNeeded: code).littleEndian, toByteOffset: 2 * index, as: UInt16.self)
        default: output.storeBytes(of: code.littleEndian, toByteOffset: 4 * index, as: UInt32.self)
        }
    }

    @inline(never)
    func encodeVector<Rule: LaneRounding>(_ input: UnsafePointer<Float>, _ output: UnsafeMutableRawPointer, count: Int,
                                          _ options: RoundingOptions, _ plan: VectorPlan, _ rule: Rule.Type,
                                          _ state: UInt64, _ firstIndex: Int) {
        let raw = UnsafeRawPointer(input)
        let width = storageBytes
        var i = 0
        while i + laneCount <= count {
            let bits = raw.loadUnaligned(fromByteOffset: 4 * i, as: Lanes.self)
            let random = Rule.self == StochasticLanes.self
                ? randomLanes(state: state, firstIndex: firstIndex + i) : Lanes(repeating: 0)
            let codes = encodeLanes(bits, plan, Rule.self, random: random)
            switch width {
            case 1: output.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: codes), toByteOffset: i, as: SIMD8<UInt8>.self)
            case 2: output.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: codes), toByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            default: output.storeBytes(of: codes, toByteOffset: 4 * i, as: Lanes.self)
            }
            i += laneCount
        }
        encodeScalar(input, output, from: i, count: count, options, state: state, firstIndex: firstIndex)
    }

    // MARK: Decoding blocks

    /// Codes -> Float for one-byte and two-byte formats that are not a plain shift of fp32.
    func decodeTable() -> [Float]? {
        guard kind != .fp32, !(kind == .generic && exponentBits == 8), storageBytes <= 2 else { return nil }
        return DecodeTables.shared.table(for: self)
    }

    func decodeBlock(_ input: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, count: Int, table: [Float]?) {
        if let table {
            table.withUnsafeBufferPointer { lookup in
                if storageBytes == 1 {
                    for i in 0..<count { output[i] = lookup[Int(input.load(fromByteOffset: i, as: UInt8.self))] }
                } else {
                    for i in 0..<count {
                        output[i] = lookup[Int(UInt16(littleEndian: input.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))]
                    }
                }
            }
            return
        }
        if kind == .fp32 {
            UnsafeMutableRawPointer(output).copyMemory(from: input, byteCount: 4 * count)
            return
        }
        if kind == .generic && exponentBits == 8 {
            // bf16, tf32, e8mY: the code is the top of the fp32 bit pattern.
            let mask = Lanes(repeating: codeMask)
            let shift = UInt32(23 - mantissaBits - storageShift)
            let storageShift = UInt32(self.storageShift)
            var i = 0
            while i + laneCount <= count {
                let codes: Lanes
                switch storageBytes {
                case 2: codes = Lanes(truncatingIfNeeded: input.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
                default: codes = input.loadUnaligned(fromByteOffset: 4 * i, as: Lanes.self)
                }
                let floats = ((codes & mask) &>> storageShift) &<< (shift &+ storageShift)
                UnsafeMutableRawPointer(output).storeBytes(of: floats, toByteOffset: 4 * i, as: Lanes.self)
                i += laneCount
            }
            for j in i..<count { output[j] = decodeFloat(loadCode(input, at: j)) }
            return
        }
        for i in 0..<count { output[i] = decodeFloat(loadCode(input, at: i)) }
    }

    @inline(__always)
    func loadCode(_ input: UnsafeRawPointer, at index: Int) -> UInt32 {
        switch storageBytes {
        case 1: return UInt32(input.load(fromByteOffset: index, as: UInt8.self))
        case 2: return UInt32(UInt16(littleEndian: input.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
        default: return UInt32(littleEndian: input.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
        }
    }
}

/// Eight consecutive draws of the counter-based generator (the same function as
/// `StochasticKey.bits(state:index:)`, in 32-bit lanes).
@inline(__always)
func randomLanes(state: UInt64, firstIndex: Int) -> Lanes {
    let last = firstIndex &+ (laneCount - 1)
    if firstIndex >> 32 != last >> 32 {
        // The eight indices straddle a 2^32 block boundary: rare, done lane by lane.
        var result = Lanes(repeating: 0)
        for lane in 0..<laneCount { result[lane] = StochasticKey.bits(state: state, index: firstIndex &+ lane) }
        return result
    }
    let (k1, k2) = StochasticKey.blockKeys(state: state, index: firstIndex)
    var x = (Lanes(repeating: UInt32(truncatingIfNeeded: firstIndex)) &+ Lanes(0, 1, 2, 3, 4, 5, 6, 7)) ^ k1
    x ^= x &>> 16
    x = x &* 0x7FEB_352D
    x ^= x &>> 15
    x = x &* 0x846C_A68B
    x ^= x &>> 16
    return x ^ k2
}

/// Decode tables for one- and two-byte formats, built once per format.
final class DecodeTables: @unchecked Sendable {
    static let shared = DecodeTables()
    private let lock = Lock()
    private var tables: [FloatFormat: [Float]] = [:]

    func table(for format: FloatFormat) -> [Float] {
        if let table = lock.withLock({ tables[format] }) { return table }
        let size = 1 << (8 * format.storageBytes)
        let table = (0..<size).map { format.decodeFloat(UInt32($0)) }
        lock.withLock { tables[format] = table }
        return table
    }
}
