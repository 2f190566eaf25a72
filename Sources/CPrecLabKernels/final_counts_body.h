// The bf16 final counts' body, compiled once per instruction set: final_counts_bf16.c
// (the build's own target, and the entry point that chooses) and final_counts_bf16_avx2.c
// (AVX2, chosen at run time in builds below it) include it after defining
// FINAL_COUNTS_NAME, the name of the variant's function. Integer counts only: every
// variant gives the same counts. (Its one floating-point operation, a difference of two
// floats in double, is exact; contraction stays off all the same.)
#pragma clang fp contract(off)
#include "preclab_final_counts.h"
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline uint32_t float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return bits;
}

static inline float decode(uint16_t code) {
    uint32_t bits = (uint32_t)code << 16;
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

static inline uint64_t double_bits(double value) {
    uint64_t bits;
    memcpy(&bits, &value, 8);
    return bits;
}

/// Nearest-even bf16 code; a NaN keeps its sign and top payload, quieted
/// (BFloat16Codec.nearest).
static inline uint16_t nearest(float value) {
    uint32_t bits = float_bits(value);
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    uint32_t quiet = (bits >> 16) | 0x0040u;
    uint32_t nan = (uint32_t)((int32_t)(0x7F800000u - (bits & 0x7FFFFFFFu)) >> 31);
    return (uint16_t)((rounded & ~nan) | (quiet & nan));
}

/// 64 byte flags (0 or all ones) as the bits of a word (bit i = flag i): SSE2's
/// movemask, 16 at a time. (Building the words with a shift per entry made clang shift
/// 64-bit lanes, a fifth of the time; the byte flags vectorise as plain compares.)
static inline uint64_t pack_flags(const uint8_t *flags) {
#if defined(__SSE2__)
    uint64_t word = 0;
    for (int part = 0; part < 4; part++) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(flags + 16 * part));
        word |= (uint64_t)(uint16_t)_mm_movemask_epi8(bytes) << (16 * part);
    }
    return word;
#else
    uint64_t word = 0;
    for (int i = 0; i < 64; i++) word |= (uint64_t)(flags[i] >> 7) << i;
    return word;
#endif
}

static inline uint8_t flag(int condition) { return (uint8_t)-(condition != 0); }

static inline int clamp_bin(int value, int top) { return value < 1 ? 1 : value > top ? top : value; }

/// A word's bit masks (bit = entry offset in the word), as FinalAnalysis.WordBits.
typedef struct {
    uint64_t changed, swamped, rises, falls, non_finite, stored_zero, left;
} word_bits;

/// The level of the next entry's key in a bucket holding a threshold
/// (LowMagnitudeCuts.Cursor.levelInMixedBucket): keys come in index order.
static long level_in_mixed_bucket(const preclab_final_chunk *k, uint32_t key) {
    long above = 0;
    for (int i = 0; i < k->levels; i++) above += (long)(((uint64_t)key - (uint64_t)k->thresholds[i]) >> 63);
    long level = k->levels - above;
    for (long position = level - 1; position >= 0 && k->thresholds[position] == key; position--) {
        if (k->seen[position] < k->ties[position]) level = position;
        k->seen[position] += 1;
    }
    return level;
}

void FINAL_COUNTS_NAME(const preclab_final_chunk *k, long *counts) {
    const int sign_matters = k->signed_zero_changes != 0;
    const int strata = k->strata_count, magnitude_bins = k->magnitude_bins, ratio_slots = k->ratio_slots;
    const int level_slots = k->levels + 1;
    long *const magnitudes = counts + k->magnitude_histogram, *const histogram = counts + k->histogram;
    long *const mask_by_level = counts + k->mask_by_level;
    uint32_t complement = 0;  // per policy (bit): the chunk counts its invisible entries
    // The fields the entry loop reads, as locals (clang otherwise loaded them with
    // gathers inside the vectorised loop).
    const uint16_t *restrict const strata_of = k->strata;
    const int16_t *restrict const half_exponents = k->half_exponents;
    const int magnitude_top = k->magnitude_top, magnitude_lowest = k->magnitude_lowest;
    const int ratio_top = k->ratio_top, ratio_lowest = k->ratio_lowest, ratio_skipped = k->ratio_skipped;
    const int exports_truth = k->exports_truth;

    uint16_t stratum[64], exports[64];
    uint8_t magnitude[64], ratio[64], level[64];
    float stored_value[64];
    // Per entry of a word, the flags of the truth's bits (in WordBits order) and of a
    // policy's; entries past a short word keep earlier flags, cut off by `word_mask`.
    uint8_t changed_f[64] = {0}, stored_zero_f[64] = {0}, swamped_f[64] = {0}, rises_f[64] = {0};
    uint8_t falls_f[64] = {0}, non_finite_f[64] = {0}, differs_f[64] = {0}, zero_f[64] = {0};
    uint8_t p_rises_f[64] = {0}, p_falls_f[64] = {0}, p_non_finite_f[64] = {0};
    for (long word_start = 0; word_start < k->length; word_start += 64) {
        const long length = k->length - word_start < 64 ? k->length - word_start : 64;
        const uint64_t word_mask = length == 64 ? ~(uint64_t)0 : ((uint64_t)1 << length) - 1;
        const float *base = k->base + word_start, *truth = k->truth + word_start;
        const uint16_t *stored = k->stored_base + word_start;
        word_bits word = {0};
        // Classes and the truth's flags, entry by entry (no loop-carried state, so the
        // loop vectorises).
        for (long o = 0; o < length; o++) {
            const float w0 = base[o], t = truth[o];
            const uint16_t code = stored[o];
            const float value = decode(code);
            stored_value[o] = value;
            stratum[o] = strata_of[code];
            // |W0|'s octave from its float exponent field (subnormals are below the
            // lowest octave, which is above -126).
            const uint32_t w0_magnitude = float_bits(w0) & 0x7FFFFFFFu;
            const int w0_field = (int)(w0_magnitude >> 23);
            magnitude[o] = (uint8_t)(w0_magnitude == 0 ? 0 : w0_field == 255 ? magnitude_top
                                     : w0_field == 0 ? 1 : clamp_bin(w0_field - 127 - magnitude_lowest + 2,
                                                                     magnitude_top));
            // |truth - W0| / half-ULP's octave: the difference's exponent minus the
            // half-ULP's (a difference of floats is zero or a normal double).
            const int half = half_exponents[code];
            const int field = (int)((double_bits((double)t - (double)w0) >> 52) & 0x7FF);
            const int bin = field == 0 ? 0 : field == 0x7FF ? ratio_top
                            : clamp_bin(field - 1023 - half - ratio_lowest + 2, ratio_top);
            ratio[o] = (uint8_t)(half == INT16_MIN ? ratio_skipped : bin);
            const uint16_t exported = exports_truth ? nearest(t) : code;
            exports[o] = exported;
            const int zero_pair = w0 == 0 && t == 0;
            const int stored_zero = value == 0;
            changed_f[o] = flag(float_bits(w0) != float_bits(t) && !(zero_pair && !sign_matters));
            stored_zero_f[o] = flag(stored_zero);
            swamped_f[o] = flag(exported != code && !(decode(exported) == 0 && stored_zero && !sign_matters));
            rises_f[o] = flag(t > w0);
            falls_f[o] = flag(t < w0);
            non_finite_f[o] = flag((float_bits(t) & 0x7F800000u) == 0x7F800000u);
        }
        word.changed = pack_flags(changed_f) & word_mask;
        word.stored_zero = pack_flags(stored_zero_f) & word_mask;
        word.swamped = pack_flags(swamped_f) & word_mask;
        word.rises = pack_flags(rises_f) & word_mask;
        word.falls = pack_flags(falls_f) & word_mask;
        word.non_finite = pack_flags(non_finite_f) & word_mask;
        // Mask levels, in index order (ties at a threshold are counted as met).
        for (long o = 0; o < length; o++) {
            const uint32_t key = float_bits(base[o]) & 0x7FFFFFFFu;
            const uint8_t bucket = k->bucket_levels[key >> 16];
            level[o] = bucket != 255 ? bucket : (uint8_t)level_in_mixed_bucket(k, key);
        }
        for (long o = 0; o < length; o++) {
            magnitudes[magnitude[o]] += 1;
            histogram[ratio[o]] += 1;
            mask_by_level[(long)level[o] * strata + stratum[o]] += 1;
        }
        counts[k->true_changed] += __builtin_popcountll(word.changed);
        word.left = k->left ? k->left[word_start >> 6] : 0;

        for (int p = 0; p < k->policies; p++) {
            word_bits policy = word;
            if (k->sources[p] != PRECLAB_FINAL_TRUTH) {
                const uint16_t *codes = k->sources[p] == PRECLAB_FINAL_STORED ? k->codes[p] + word_start : exports;
                for (long o = 0; o < length; o++) {
                    const uint16_t code = codes[o];
                    const float value = decode(code);
                    differs_f[o] = flag(code != stored[o]);
                    zero_f[o] = flag(value == 0);
                    p_rises_f[o] = flag(value > stored_value[o]);
                    p_falls_f[o] = flag(value < stored_value[o]);
                    p_non_finite_f[o] = flag((code & 0x7F80u) == 0x7F80u);
                }
                const uint64_t differs = pack_flags(differs_f) & word_mask, zero = pack_flags(zero_f) & word_mask;
                policy.changed = differs & ~(zero & word.stored_zero & (sign_matters ? 0 : ~(uint64_t)0));
                policy.rises = pack_flags(p_rises_f) & word_mask;
                policy.falls = pack_flags(p_falls_f) & word_mask;
                policy.non_finite = pack_flags(p_non_finite_f) & word_mask;
            }
            if (word_start == 0 && 2 * __builtin_popcountll(policy.changed) > length) complement |= 1u << p;
            const uint64_t counted = (complement >> p) & 1 ? ~policy.changed & word_mask : policy.changed;
            long *block = counts + k->first_policy + p * k->policy_stride;
            const uint64_t visible = policy.changed, hidden = word.changed & ~visible;
            block[k->visible] += __builtin_popcountll(visible);
            block[k->hidden] += __builtin_popcountll(hidden);
            block[k->hidden_swamped] += __builtin_popcountll(hidden & word.swamped);
            block[k->hidden_returned] += __builtin_popcountll(hidden & ~word.swamped & word.left);
            block[k->hidden_never_left] += __builtin_popcountll(hidden & ~word.swamped & ~word.left);
            // A stored change of the opposite sign to the truth's.
            const uint64_t opposite = (policy.rises & word.falls) | (policy.falls & word.rises);
            block[k->spurious] += __builtin_popcountll(visible & opposite);
            block[k->non_finite] += __builtin_popcountll(policy.non_finite);
            long *by_stratum = block + k->visible_by_stratum, *by_magnitude = block + k->visible_by_magnitude;
            long *by_bin = block + k->visible_by_bin, *by_level = block + k->visible_by_level;
            for (uint64_t remaining = counted; remaining != 0; remaining &= remaining - 1) {
                const int o = __builtin_ctzll(remaining);
                by_stratum[stratum[o]] += 1;
                by_magnitude[magnitude[o]] += 1;
                by_bin[ratio[o]] += 1;
                by_level[level[o]] += 1;
            }
        }
    }
    if (complement == 0) return;
    // The chunk's entries per class, then visible = all - invisible for those policies.
    long per_stratum[strata], per_level[level_slots];
    memset(per_stratum, 0, sizeof per_stratum);
    memset(per_level, 0, sizeof per_level);
    for (int l = 0; l < level_slots; l++) {
        for (int s = 0; s < strata; s++) {
            per_stratum[s] += mask_by_level[l * strata + s];
            per_level[l] += mask_by_level[l * strata + s];
        }
    }
    for (int p = 0; p < k->policies; p++) {
        if (!((complement >> p) & 1)) continue;
        long *block = counts + k->first_policy + p * k->policy_stride;
        for (int s = 0; s < strata; s++) block[k->visible_by_stratum + s] = per_stratum[s] - block[k->visible_by_stratum + s];
        for (int m = 0; m < magnitude_bins; m++) block[k->visible_by_magnitude + m] = magnitudes[m] - block[k->visible_by_magnitude + m];
        for (int b = 0; b < ratio_slots; b++) block[k->visible_by_bin + b] = histogram[b] - block[k->visible_by_bin + b];
        for (int l = 0; l < level_slots; l++) block[k->visible_by_level + l] = per_level[l] - block[k->visible_by_level + l];
    }
}
