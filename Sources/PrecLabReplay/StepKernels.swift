import PrecLabFormats

/// The inner loops of one replay step over a slice of `length` elements.
///
/// Written as plain loops over raw pointers with branch-free integer arithmetic, which
/// LLVM vectorises once they are inlined into the codec-specialised caller (measured:
/// Swift's generic `SIMD16` masks and `replacing(with:where:)` compiled to per-lane
/// loops and ran slower than scalar code). Counters are 32-bit: a slice is one tile, at
/// most `ReplayConfiguration.maximumTileSize` elements.
enum StepKernels {
    /// 1 when `x` is non-zero, else 0, without a branch.
    @inline(__always) static func isNonZero(_ x: UInt32) -> UInt32 {
        (x | (0 &- x)) >> 31
    }

    /// truth += update in fp32; returns the (NaN, Inf) counts met in the updates.
    @inline(__always)
    static func addTruth(_ truth: UnsafeMutablePointer<Float>, _ update: UnsafePointer<Float>,
                         _ length: Int) -> SIMD2<Int> {
        var nanCount: UInt32 = 0, finiteOrNaN: UInt32 = 0
        for index in 0..<length {
            let delta = update[index]
            truth[index] += delta
            let magnitude = delta.bitPattern & 0x7FFF_FFFF
            nanCount &+= (0x7F80_0000 &- magnitude) >> 31          // magnitude > Inf's
            finiteOrNaN &+= isNonZero(magnitude ^ 0x7F80_0000)      // anything but ±Inf
        }
        return SIMD2(Int(nanCount), length - Int(finiteOrNaN))
    }

    @inline(__always)
    static func countChangedBits(_ truth: UnsafePointer<Float>, _ base: UnsafePointer<Float>, _ length: Int) -> Int {
        var changed: UInt32 = 0
        for index in 0..<length { changed &+= isNonZero(truth[index].bitPattern ^ base[index].bitPattern) }
        return Int(changed)
    }

    /// scaled = update · factor in fp32 (`--scale`; a plain product, never fused).
    @inline(__always)
    static func scale(_ update: UnsafePointer<Float>, by factor: Float, into scaled: UnsafeMutablePointer<Float>,
                      _ length: Int) {
        for index in 0..<length { scaled[index] = update[index] * factor }
    }

    /// codes = round_ne(truth) in storage: the master policy's export.
    @inline(__always)
    static func export<Codec: StorageCodec>(
        _ codec: Codec, _ truth: UnsafePointer<Float>, into codes: UnsafeMutablePointer<Codec.Code>, _ length: Int
    ) {
        if let format = codec.arrayFormat {
            format.encode(UnsafeBufferPointer(start: truth, count: length),
                          into: SliceBuffers.raw(codes, length), codec.nearestOptions, threads: 1)
            return
        }
        for index in 0..<length { codes[index] = codec.nearest(truth[index]) }
    }

    /// Sets bit i of `words` (bit i % 64 of word i / 64) where round_ne(truth[i]) differs
    /// from the stored base; bits already set stay set. When `export` is given, the
    /// rounded codes are also stored there. `flags` is scratch for 64 bytes. Unless
    /// `signedZeros`, a zero code over a zero stored base (`zeros`: the codes of +0 and
    /// -0) is no departure (Def. 2.1).
    ///
    /// The differences are first written as 0/1 bytes (a loop that vectorises), then
    /// gathered eight at a time: multiplying eight 0/1 bytes by 0x0102040810204080
    /// moves byte k's bit to bit 56 + k, with no carries between them.
    @inline(__always)
    static func markLeftInterval<Codec: StorageCodec>(
        _ codec: Codec, _ truth: UnsafePointer<Float>, _ storedBase: UnsafePointer<Codec.Code>, _ length: Int,
        into words: UnsafeMutablePointer<UInt64>, export: UnsafeMutablePointer<Codec.Code>?,
        flags: UnsafeMutablePointer<UInt8>, zeros: (Codec.Code, Codec.Code), signedZeros: Bool
    ) {
        let keepZeroSign: UInt32 = signedZeros ? 1 : 0
        if let export {
            StepKernels.export(codec, truth, into: export, length)
        }
        var word = 0, start = 0
        while start < length {
            let count = min(64, length - start)
            if count < 64 { flags.update(repeating: 0, count: 64) }
            if let export {
                let codes = UnsafePointer(export) + start, base = storedBase + start
                for index in 0..<count {
                    flags[index] = departs(codes[index], base[index], zeros, keepZeroSign)
                }
            } else if codec.arrayFormat == nil {
                let values = truth + start, base = storedBase + start
                for index in 0..<count {
                    flags[index] = departs(codec.nearest(values[index]), base[index], zeros, keepZeroSign)
                }
            } else {
                let codes = UnsafeMutablePointer<Codec.Code>.allocate(capacity: 64)
                defer { codes.deallocate() }
                StepKernels.export(codec, truth + start, into: codes, count)
                let base = storedBase + start
                for index in 0..<count {
                    flags[index] = departs(codes[index], base[index], zeros, keepZeroSign)
                }
            }
            var bits: UInt64 = 0
            let raw = UnsafeRawPointer(flags)
            for byte in 0..<8 {
                let eight = raw.loadUnaligned(fromByteOffset: 8 * byte, as: UInt64.self)
                bits |= ((eight &* 0x0102_0408_1020_4080) &>> 56) &<< UInt64(8 * byte)
            }
            words[word] |= bits
            word += 1
            start += count
        }
    }

    /// 1 when `code` differs from `base`, except (unless `keepZeroSign` is 1) when both
    /// are zeros (`zeros`: the codes of +0 and -0); branch-free.
    @inline(__always)
    static func departs<Code: FixedWidthInteger>(_ code: Code, _ base: Code, _ zeros: (Code, Code),
                                                 _ keepZeroSign: UInt32) -> UInt8 {
        let differs = isNonZero(UInt32(truncatingIfNeeded: code ^ base))
        let codeIsZero: UInt32 = (code == zeros.0 ? 1 : 0) | (code == zeros.1 ? 1 : 0)
        let baseIsZero: UInt32 = (base == zeros.0 ? 1 : 0) | (base == zeros.1 ? 1 : 0)
        return UInt8(truncatingIfNeeded: differs & ((codeIsZero & baseIsZero) ^ 1 | keepZeroSign))
    }

    /// Adds each element's ratio bin to `bins`, and to `changed` when its code changed
    /// in the step. Bin `bins.count - 1` collects elements without a half-ULP.
    @inline(__always)
    static func tally<Code: FixedWidthInteger>(
        _ binOf: UnsafePointer<UInt8>, _ codes: UnsafePointer<Code>, _ previous: UnsafePointer<Code>, _ length: Int,
        into bins: inout [Int], changed: inout [Int]
    ) {
        bins.withUnsafeMutableBufferPointer { bins in
            changed.withUnsafeMutableBufferPointer { changed in
                for index in 0..<length {
                    let bin = Int(binOf[index])
                    bins[bin] &+= 1
                    changed[bin] &+= Int(isNonZero(UInt32(truncatingIfNeeded: codes[index] ^ previous[index])))
                }
            }
        }
    }

    @inline(__always)
    static func countDiffering<Code: FixedWidthInteger>(
        _ codes: UnsafePointer<Code>, _ storedBase: UnsafePointer<Code>, _ length: Int
    ) -> Int {
        var differing: UInt32 = 0
        for index in 0..<length { differing &+= isNonZero(UInt32(truncatingIfNeeded: codes[index] ^ storedBase[index])) }
        return Int(differing)
    }

    /// codes = round(fp32(decode(codes) + update)) with the pure policy's deterministic mode.
    @inline(__always)
    static func addRounded<Codec: StorageCodec>(
        _ codec: Codec, _ codes: UnsafeMutablePointer<Codec.Code>, _ update: UnsafePointer<Float>, _ length: Int
    ) {
        if let format = codec.arrayFormat {
            SliceBuffers.addThroughArrayKernels(format, codes, update, length, codec.pureOptions, key: nil, firstIndex: 0)
        } else if codec.pureIsNearest {
            for index in 0..<length { codes[index] = codec.nearest(codec.decode(codes[index]) + update[index]) }
        } else {
            for index in 0..<length {
                codes[index] = codec.pureRound(codec.decode(codes[index]) + update[index], random: 0)
            }
        }
    }

    /// Stochastic rounding with bits keyed by (seed, tensor, step, element index). The
    /// bits are drawn for the whole slice first (a vectorisable hash loop), then used by
    /// a branch-free rounding loop.
    @inline(__always)
    static func addStochastic<Codec: StorageCodec>(
        _ codec: Codec, _ codes: UnsafeMutablePointer<Codec.Code>, _ update: UnsafePointer<Float>, _ length: Int,
        key: StochasticKey, firstIndex: Int, pure: Bool
    ) {
        if let format = codec.arrayFormat {
            SliceBuffers.addThroughArrayKernels(format, codes, update, length,
                                                pure ? codec.pureOptions : codec.stochasticOptions,
                                                key: key, firstIndex: firstIndex)
            return
        }
        // A heap buffer rather than withUnsafeTemporaryAllocation: its closure kept the
        // loops below from being specialised for the codec (measured with perf).
        let random = UnsafeMutablePointer<UInt32>.allocate(capacity: max(length, 1))
        defer { random.deallocate() }
        key.fillRandomBits(from: firstIndex, count: length, into: random)
        if pure {
            for index in 0..<length {
                codes[index] = codec.pureRound(codec.decode(codes[index]) + update[index], random: random[index])
            }
        } else {
            for index in 0..<length {
                codes[index] = codec.stochastic(codec.decode(codes[index]) + update[index], random: random[index])
            }
        }
    }

    /// Kahan-compensated storage (docs/replay.md): c += u; old = w; w += c; c += (old - w),
    /// every operation formed in fp32 and rounded to storage (nearest-even).
    @inline(__always)
    static func addKahan<Codec: StorageCodec>(
        _ codec: Codec, _ weights: UnsafeMutablePointer<Codec.Code>,
        _ compensation: UnsafeMutablePointer<Codec.Code>, _ update: UnsafePointer<Float>, _ length: Int
    ) {
        if let format = codec.arrayFormat {
            SliceBuffers.kahanThroughArrayKernels(format, weights, compensation, update, length, codec.nearestOptions)
            return
        }
        for index in 0..<length {
            let c = codec.nearest(codec.decode(compensation[index]) + update[index])
            let old = weights[index]
            let updated = codec.nearest(codec.decode(old) + codec.decode(c))
            let lost = codec.nearest(codec.decode(old) - codec.decode(updated))
            compensation[index] = codec.nearest(codec.decode(c) + codec.decode(lost))
            weights[index] = updated
        }
    }
}

/// Slices rounded through the formats module's array kernels (the generic codecs):
/// decode a slice of codes to fp32, add in fp32, encode back, all vectorised.
enum SliceBuffers {
    static func floats(_ length: Int) -> UnsafeMutablePointer<Float> {
        .allocate(capacity: max(length, 1))
    }

    static func raw<Code>(_ codes: UnsafeMutablePointer<Code>, _ length: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: codes, count: length * MemoryLayout<Code>.stride)
    }

    static func decode<Code>(_ format: FloatFormat, _ codes: UnsafeMutablePointer<Code>, _ length: Int,
                             into values: UnsafeMutablePointer<Float>) {
        format.decode(UnsafeRawBufferPointer(raw(codes, length)),
                      into: UnsafeMutableBufferPointer(start: values, count: length), threads: 1)
    }

    static func encode<Code>(_ format: FloatFormat, _ values: UnsafeMutablePointer<Float>, _ length: Int,
                             into codes: UnsafeMutablePointer<Code>, _ options: RoundingOptions,
                             key: StochasticKey? = nil, firstIndex: Int = 0) {
        format.encode(UnsafeBufferPointer(start: values, count: length), into: raw(codes, length), options,
                      key: key, firstIndex: firstIndex, threads: 1)
    }

    /// codes = round(fp32(decode(codes) + update)).
    static func addThroughArrayKernels<Code>(
        _ format: FloatFormat, _ codes: UnsafeMutablePointer<Code>, _ update: UnsafePointer<Float>, _ length: Int,
        _ options: RoundingOptions, key: StochasticKey?, firstIndex: Int
    ) {
        let values = floats(length)
        defer { values.deallocate() }
        decode(format, codes, length, into: values)
        for index in 0..<length { values[index] += update[index] }
        encode(format, values, length, into: codes, options, key: key, firstIndex: firstIndex)
    }

    /// The Kahan rule of `StepKernels.addKahan`, one rounding at a time over the slice.
    static func kahanThroughArrayKernels<Code>(
        _ format: FloatFormat, _ weights: UnsafeMutablePointer<Code>, _ compensation: UnsafeMutablePointer<Code>,
        _ update: UnsafePointer<Float>, _ length: Int, _ options: RoundingOptions
    ) {
        let c = floats(length), old = floats(length), scratch = floats(length)
        defer { c.deallocate(); old.deallocate(); scratch.deallocate() }
        // c = rn(C + u), kept as its decoded value.
        decode(format, compensation, length, into: c)
        for index in 0..<length { c[index] += update[index] }
        encode(format, c, length, into: compensation, options)
        decode(format, compensation, length, into: c)
        // w = rn(old + c), stored in place; scratch = its decoded value.
        decode(format, weights, length, into: old)
        for index in 0..<length { scratch[index] = old[index] + c[index] }
        encode(format, scratch, length, into: weights, options)
        decode(format, weights, length, into: scratch)
        // lost = rn(old - w), decoded into old.
        for index in 0..<length { old[index] -= scratch[index] }
        encode(format, old, length, into: compensation, options)
        decode(format, compensation, length, into: old)
        // C = rn(c + lost).
        for index in 0..<length { c[index] += old[index] }
        encode(format, c, length, into: compensation, options)
    }
}
