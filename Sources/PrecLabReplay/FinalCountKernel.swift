import CPrecLabKernels

/// The bf16 final counts in C (`preclab_final_counts_bf16`): `FinalAnalysis.countChunk`
/// for the bf16 codec, entry for entry (the Swift loop stays the definition, used by
/// every other codec and by the tests as the oracle; measurements in docs/replay.md).
/// Sendable: its template holds only numbers until a call fills in the pointers.
struct FinalCountKernel: @unchecked Sendable {
    /// The chunk description every call starts from: tables, layout, classes.
    private var template = preclab_final_chunk()

    /// nil unless the kernel applies: bf16 codes with their per-code tables, at most
    /// `PRECLAB_FINAL_MAX_POLICIES` policies, bins that fit a byte and a lowest |W0|
    /// octave above the subnormals.
    init?<Codec: StorageCodec>(core: TypedReplayCore<Codec>, classes: StoredCodeClasses, layout: FinalCountLayout) {
        let configuration = core.configuration
        guard Codec.self == BFloat16Codec.self, configuration.format == .bf16,
              configuration.policies.count <= Int(PRECLAB_FINAL_MAX_POLICIES),
              FinalCountLayout.ratioBins <= 255, MagnitudeBins.binCount <= 255,
              MagnitudeBins.octaves.lowestExponent > -126, layout.levels < 255,
              classes.hasCodeTables else { return nil }
        var chunk = preclab_final_chunk()
        chunk.policies = Int32(configuration.policies.count)
        chunk.signed_zero_changes = configuration.signedZeroChanges ? 1 : 0
        chunk.exports_truth = configuration.tracksInterval ? 1 : 0
        chunk.ratio_lowest = Int32(VisibilityHistogram.lowestExponent)
        chunk.ratio_top = Int32(VisibilityHistogram.binCount - 1)
        chunk.ratio_skipped = Int32(FinalCountLayout.skippedRatioBin)
        chunk.magnitude_lowest = Int32(MagnitudeBins.octaves.lowestExponent)
        chunk.magnitude_top = Int32(MagnitudeBins.binCount - 1)
        chunk.levels = Int32(layout.levels)
        chunk.strata_count = Int32(layout.strata)
        chunk.ratio_slots = Int32(FinalCountLayout.ratioBins)
        chunk.magnitude_bins = Int32(FinalCountLayout.magnitudeBins)
        chunk.true_changed = layout.trueChanged
        chunk.magnitude_histogram = layout.magnitudeHistogram
        chunk.histogram = layout.histogram
        chunk.mask_by_level = layout.maskByLevel
        chunk.first_policy = layout.firstPolicy
        chunk.policy_stride = layout.policyStride
        chunk.visible = FinalCountLayout.visible
        chunk.hidden = FinalCountLayout.hidden
        chunk.hidden_never_left = FinalCountLayout.hiddenNeverLeft
        chunk.hidden_returned = FinalCountLayout.hiddenReturned
        chunk.hidden_swamped = FinalCountLayout.hiddenSwamped
        chunk.spurious = FinalCountLayout.spurious
        chunk.non_finite = FinalCountLayout.nonFinite
        chunk.visible_by_stratum = FinalCountLayout.visibleByStratum
        chunk.visible_by_magnitude = layout.visibleByMagnitude
        chunk.visible_by_bin = layout.visibleByBin
        chunk.visible_by_level = layout.visibleByLevel
        template = chunk
    }

    /// Adds the counts of one chunk of a tensor (as `FinalAnalysis.countChunk`).
    func count<Codec: StorageCodec>(core: TypedReplayCore<Codec>, tensor: Int, chunk chunkIndex: Int,
                                    range: Range<Int>, cuts: LowMagnitudeCuts, classes: StoredCodeClasses,
                                    into counts: UnsafeMutablePointer<Int>) {
        precondition(range.lowerBound % 64 == 0, "chunks start on a word")
        let first = core.tensorStarts[tensor] + range.lowerBound
        func codes(_ pointer: UnsafeMutablePointer<Codec.Code>) -> UnsafePointer<UInt16> {
            UnsafeRawPointer(pointer + first).assumingMemoryBound(to: UInt16.self)
        }
        var chunk = template
        chunk.base = UnsafePointer(core.base.pointer + first)
        chunk.truth = UnsafePointer(core.truth.pointer + first)
        chunk.stored_base = codes(core.storedBase.pointer)
        chunk.left = core.leftInterval.map { UnsafePointer($0.pointer + core.wordStarts[tensor] + range.lowerBound / 64) }
        chunk.length = range.count
        withUnsafeMutableBytes(of: &chunk.codes) { slots in
            withUnsafeMutableBytes(of: &chunk.sources) { sources in
                let codeSlots = slots.bindMemory(to: UnsafePointer<UInt16>?.self)
                let sourceSlots = sources.bindMemory(to: Int32.self)
                for (index, source) in FinalAnalysis(core: core).sources().enumerated() {
                    switch source {
                    case .truth: sourceSlots[index] = Int32(PRECLAB_FINAL_TRUTH)
                    case .nearestOfTruth: sourceSlots[index] = Int32(PRECLAB_FINAL_NEAREST_OF_TRUTH)
                    case .stored(let weights):
                        sourceSlots[index] = Int32(PRECLAB_FINAL_STORED)
                        codeSlots[index] = codes(weights)
                    }
                }
            }
        }
        // (`init` made sure the tables exist.)
        _ = classes.withCodeTables { strata, halfExponents in
            chunk.strata = strata
            chunk.half_exponents = halfExponents
            cuts.withCursor(chunk: chunkIndex) { cursor in
                chunk.bucket_levels = cursor.bucketLevels.baseAddress
                chunk.thresholds = cursor.thresholds.baseAddress
                chunk.ties = cursor.ties.baseAddress
                chunk.seen = cursor.seen.baseAddress
                preclab_final_counts_bf16(&chunk, counts)
            }
        }
    }
}
