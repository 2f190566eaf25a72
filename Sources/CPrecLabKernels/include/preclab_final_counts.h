// The final analysis's integer counts for bf16 storage (FinalAnalysis.countChunk in
// PrecLabReplay, whose generic Swift loop stays the definition and the tests' oracle).
// Counting is a tenth to a fifth of a replay's time, almost all of it per-entry class
// lookups and bit tests that Swift left scalar and branchy (measured with perf); here
// the per-entry classes are found in plain loops over a 64-entry word that clang
// vectorises, and only the histogram increments stay scalar.
#ifndef PRECLAB_FINAL_COUNTS_H
#define PRECLAB_FINAL_COUNTS_H

#include <stdint.h>

/// The most policies one call counts.
#define PRECLAB_FINAL_MAX_POLICIES 8

/// Where a policy's final code comes from.
enum {
    PRECLAB_FINAL_TRUTH = 0,            // fp32: the truth's own bits
    PRECLAB_FINAL_NEAREST_OF_TRUTH = 1, // master: the truth's nearest-even bf16 export
    PRECLAB_FINAL_STORED = 2,           // pure, stochastic, kahan: stored bf16 codes
};

/// One chunk of one tensor: `length` entries from the chunk's first (a tensor-local
/// index that is a multiple of 64; every pointer below points at that entry, or word).
typedef struct {
    const float *base;              // W0
    const float *truth;             // the fp32 truth after the last step
    const uint16_t *stored_base;    // W0's stored bf16 code
    const uint64_t *left;           // per 64 entries, the engine's "left I" bits, or NULL
    const uint16_t *codes[PRECLAB_FINAL_MAX_POLICIES];  // PRECLAB_FINAL_STORED: final codes
    int32_t sources[PRECLAB_FINAL_MAX_POLICIES];
    int32_t policies;
    long length;
    int32_t signed_zero_changes;    // +0 -> -0 counts as a change
    int32_t exports_truth;          // the truth's export is the master code (else the base's)

    // Classes of an entry (StoredCodeClasses, MagnitudeBins, VisibilityHistogram).
    const uint16_t *strata;         // per bf16 code, its compact stratum
    const int16_t *half_exponents;  // per bf16 code, log2 of its half-ULP; INT16_MIN: none
    int32_t ratio_lowest, ratio_top, ratio_skipped;        // octave bins of |dW| / half-ULP
    int32_t magnitude_lowest, magnitude_top;               // octave bins of |W0|, lowest > -126

    // The mask levels (LowMagnitudeCuts.Cursor): per key >> 16 the level, or 255 when a
    // threshold falls in that bucket; then the sorted thresholds, their ties, and the
    // ties seen so far (updated in place).
    const uint8_t *bucket_levels;
    const uint32_t *thresholds;
    const long *ties;
    long *seen;
    int32_t levels;

    // FinalCountLayout offsets (in longs).
    int32_t strata_count, ratio_slots, magnitude_bins;
    long true_changed, magnitude_histogram, histogram, mask_by_level;
    long first_policy, policy_stride;
    long visible, hidden, hidden_never_left, hidden_returned, hidden_swamped, spurious, non_finite;
    long visible_by_stratum, visible_by_magnitude, visible_by_bin, visible_by_level;
} preclab_final_chunk;

/// Adds the chunk's counts into `counts` (FinalCountLayout, zeroed by the caller).
void preclab_final_counts_bf16(const preclab_final_chunk *chunk, long *counts);

#endif
