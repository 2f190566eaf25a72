// The fused bf16 kernel's body, compiled once per instruction set: fused_bf16.c (the
// build's own target) and fused_bf16_avx2.c (AVX2, chosen at run time) include it after
// defining FUSED_NAME(x), the names of its three entry points, and FUSED_AVX, whether
// AVX intrinsics may be used. Only exact IEEE operations appear (adds, subtracts,
// compares, min and max: no multiplies, so no contraction into fused multiply-adds), so
// every variant gives the same bits.
#pragma clang fp contract(off)

// 32-byte vector arguments between this file's always-inline helpers: in builds without
// AVX clang warns that their calling convention would differ, but no such call exists
// after inlining, and none crosses the file's interface (plain pointers only).
#pragma clang diagnostic ignored "-Wpsabi"
#include "preclab_prefetch.h"
#include <string.h>
#include <immintrin.h>

typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));

/// Elements per sub-tile (a multiple of 16): the state of all five policies, 36 bytes
/// per element, stays well inside a 32 KiB L1 data cache.
#ifndef PRECLAB_FUSED_SUBTILE
#define PRECLAB_FUSED_SUBTILE 512
#endif

static inline __attribute__((always_inline)) u32x8 load_u(const uint32_t *p) { u32x8 v; memcpy(&v, p, 32); return v; }
static inline __attribute__((always_inline)) f32x8 load_f(const float *p) { f32x8 v; memcpy(&v, p, 32); return v; }
static inline __attribute__((always_inline)) void store_u(uint32_t *p, u32x8 v) { memcpy(p, &v, 32); }
static inline __attribute__((always_inline)) void store_f(float *p, f32x8 v) { memcpy(p, &v, 32); }
static inline __attribute__((always_inline)) u32x8 bits(f32x8 v) { return (u32x8)v; }
static inline __attribute__((always_inline)) f32x8 value(u32x8 v) { return (f32x8)v; }
static inline __attribute__((always_inline)) u32x8 splat(uint32_t x) { return (u32x8){x, x, x, x, x, x, x, x}; }

/// 1 in the lanes where x is not zero.
static inline __attribute__((always_inline)) u32x8 nonzero(u32x8 x) { return (x | (splat(0) - x)) >> 31; }

/// All ones in the lanes holding a NaN.
static inline __attribute__((always_inline)) u32x8 nan_mask(u32x8 b) {
    return (u32x8)((i32x8)(splat(0x7F800000u) - (b & 0x7FFFFFFFu)) >> 31);
}

/// Nearest-even into bf16, expanded; a NaN keeps its sign and top payload, quieted.
static inline __attribute__((always_inline)) u32x8 nearest(f32x8 v) {
    u32x8 b = bits(v);
    u32x8 rounded = b + 0x7FFFu + ((b >> 16) & 1u);
    u32x8 nan = nan_mask(b);
    return ((rounded & ~nan) | ((b | 0x00400000u) & nan)) & 0xFFFF0000u;
}

/// Nearest-even for lanes holding no NaN whose low 16 bits would carry (see the step).
static inline __attribute__((always_inline)) u32x8 nearest_plain(f32x8 v) {
    u32x8 b = bits(v);
    return (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
}

/// Stochastic rounding: the magnitude goes up iff the top 16 random bits are below the
/// 16 discarded bits.
static inline __attribute__((always_inline)) u32x8 stochastic_plain(f32x8 v, u32x8 random) {
    u32x8 b = bits(v);
    u32x8 up = ((random >> 16) - (b & 0xFFFFu)) >> 31;
    return (b & 0xFFFF0000u) + (up << 16);
}

static inline __attribute__((always_inline)) u32x8 stochastic(f32x8 v, u32x8 random) {
    u32x8 b = bits(v);
    u32x8 nan = nan_mask(b);
    return (stochastic_plain(v, random) & ~nan) | ((b | 0x00400000u) & 0xFFFF0000u & nan);
}

/// StochasticKey.randomBits of eight consecutive indices of one 2^32 block.
static inline __attribute__((always_inline)) u32x8 random_bits(uint32_t first, uint32_t k1, uint32_t k2) {
    u32x8 x = (splat(first) + (u32x8){0, 1, 2, 3, 4, 5, 6, 7}) ^ k1;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x ^ k2;
}

/// Whether some lane has its sign bit set (one movemask with AVX).
static inline __attribute__((always_inline)) int any_sign(u32x8 v) {
#if FUSED_AVX
    return _mm256_movemask_ps((__m256)v) != 0;
#else
    uint32_t any = 0;
    for (int lane = 0; lane < 8; lane++) any |= v[lane];
    return (int)(any >> 31);
#endif
}

/// The histogram bin of |u| (fp32 magnitude bits, not zero, finite) against a half-ULP
/// of 2^half_exponent: the octave of the ratio is floor(log2 |u|) - half_exponent.
static inline int ratio_bin(uint32_t magnitude, int half_exponent, int lowest, int highest, int top) {
    int exponent = magnitude >= 0x00800000u ? (int)(magnitude >> 23) - 127
                                            : (31 - __builtin_clz(magnitude)) - 149;
    int octave = exponent - half_exponent;
    return octave < lowest ? 1 : octave > highest ? top : octave - lowest + 2;
}

/// Lane-wise `x < y ? x : y` (so y when x is a NaN): one vminps with AVX.
static inline __attribute__((always_inline)) f32x8 lower_of(f32x8 x, f32x8 y) {
#if FUSED_AVX
    return (f32x8)_mm256_min_ps((__m256)x, (__m256)y);
#else
    u32x8 take = (u32x8)(x < y);
    return value((bits(x) & take) | (bits(y) & ~take));
#endif
}

/// Lane-wise `x > y ? x : y` (so y when x is a NaN): one vmaxps with AVX.
static inline __attribute__((always_inline)) f32x8 higher_of(f32x8 x, f32x8 y) {
#if FUSED_AVX
    return (f32x8)_mm256_max_ps((__m256)x, (__m256)y);
#else
    u32x8 take = (u32x8)(x > y);
    return value((bits(x) & take) | (bits(y) & ~take));
#endif
}

/// Whether the low 16 bits of every lane are zero (the lanes are bf16 values already;
/// one vptest with AVX).
static inline __attribute__((always_inline)) int all_low_bits_zero(u32x8 v) {
#if FUSED_AVX
    return _mm256_testz_si256((__m256i)v, (__m256i)splat(0xFFFFu));
#else
    u32x8 low = v & 0xFFFFu;
    uint32_t any = 0;
    for (int lane = 0; lane < 8; lane++) any |= low[lane];
    return any == 0;
#endif
}

static inline __attribute__((always_inline)) i32x8 isplat(int x) { return (i32x8){x, x, x, x, x, x, x, x}; }

/// Lane-wise `mask ? a : b` for a comparison's all-ones / zero mask.
static inline __attribute__((always_inline)) i32x8 select_i(i32x8 mask, i32x8 a, i32x8 b) {
    return (mask & a) | (~mask & b);
}

/// log2 of the half-ULP of eight bf16 codes (one per lane), as RatioBinner tabulates it
/// from FloatFormat.halfULP: 2^(max(e, 1) - 127 - 7 - 1) for exponent field e, and
/// INT16_MIN (no half-ULP) for Inf and NaN. Arithmetic instead of eight table loads.
static inline __attribute__((always_inline)) i32x8 half_ulp_exponent(u32x8 codes) {
    i32x8 field = (i32x8)((codes >> 7) & 0xFFu);
    i32x8 half = select_i(field < 1, isplat(1), field) - 135;
    return select_i(field == 255, isplat(INT16_MIN), half);
}

/// Per-lane histograms (no store-forwarding chains when lanes share a bin).
typedef struct { uint32_t pairs[8][2 * PRECLAB_FUSED_RATIO_BIN_CAPACITY]; } lane_histograms;

/// The tile's pointers as locals the compiler knows do not alias (clang otherwise
/// reloaded every one from the struct after each store).
typedef struct {
    float *restrict truth;
    const float *restrict base;
    const uint32_t *restrict stored_base;
    float *restrict minimum;
    float *restrict maximum;
    uint32_t *restrict pure;
    uint32_t *restrict stochastic;
    uint32_t *restrict kahan_weights;
    uint32_t *restrict kahan_compensation;
} lanes_t;

/// The stored policies' codes on eight lanes, held in registers through a block.
typedef struct {
    u32x8 pure, stochastic, weights, compensation;
} policy_state;

/// One step of the stored policies on eight lanes. `plain`: no NaN rule (exact unless an
/// update is NaN: every other operand is an expanded code and every NaN a sum makes from
/// them is an operand's or the default NaN, whose low 16 bits are zero).
static inline __attribute__((always_inline)) void step_policies(
    policy_state *state, f32x8 u, u32x8 random, int pure_mode, int with_stochastic, int with_kahan, int plain) {
#define NEAREST(x) (plain ? nearest_plain(x) : nearest(x))
#define STOCHASTIC(x) (plain ? stochastic_plain((x), random) : stochastic((x), random))
    if (pure_mode != 0) {
        f32x8 sum = value(state->pure) + u;
        state->pure = pure_mode == 1 ? NEAREST(sum) : STOCHASTIC(sum);
    }
    if (with_stochastic) state->stochastic = STOCHASTIC(value(state->stochastic) + u);
    if (with_kahan) {
        // c += u; old = w; w += c; c += (old - w), each rounded to bf16.
        u32x8 c = NEAREST(value(state->compensation) + u);
        u32x8 old = state->weights;
        state->weights = NEAREST(value(old) + value(c));
        if (plain) {
            // The last two sums are usually exact in bf16 already (the weight did not
            // move, or moved within a binade: Sterbenz), and rounding a value whose low
            // 16 bits are zero leaves it as it is; so they round only when some lane
            // needs it.
            u32x8 lost = bits(value(old) - value(state->weights));
            if (!all_low_bits_zero(lost)) lost = nearest_plain(value(lost));
            u32x8 compensation = bits(value(c) + value(lost));
            if (!all_low_bits_zero(compensation)) compensation = nearest_plain(value(compensation));
            state->compensation = compensation;
        } else {
            u32x8 lost = nearest(value(old) - value(state->weights));
            state->compensation = nearest(value(c) + value(lost));
        }
    }
#undef NEAREST
#undef STOCHASTIC
}

/// Per lane, minus the number of vectors where a value equaled its reference (each
/// equal lane adds the all-ones compare mask, -1): a compare and an add per count. The
/// changed count is the lanes run minus the equal ones (padding lanes are always equal).
typedef struct {
    i32x8 true_changed, master, pure, stochastic, kahan;
    i32x8 step_true_changed, step_master, step_pure, step_stochastic, step_kahan;
} lane_counts;

/// One step over elements start ..< end of the tile. `counting_mode`: 0 no counts, 1
/// the curve counts into `c`, 2 also the step views' changes and ratio histogram.
static inline __attribute__((always_inline)) void run_slice(
    const preclab_fused_tile *tile, const lanes_t *t, long start, long end, const float *restrict step_update,
    const float *step_prefetch, uint32_t random_first, uint32_t step_k1, uint32_t step_k2, int pure_mode,
    int with_stochastic, int with_kahan, int counting_mode, int checked, lane_counts *c,
    lane_histograms *histograms, int *saw_special) {
    const int needs_random = pure_mode == 2 || with_stochastic;
    const int lowest = tile->ratio_lowest, highest = tile->ratio_highest, top = tile->ratio_bins - 1;
    const int skipped = tile->ratio_bins;
    // The counts in registers through the loop.
    lane_counts counts;
    if (counting_mode != 0) counts = *c;
    for (long i = start; i < end; i += 8) {
        if ((i & 15) == 0) preclab_prefetch_l2(step_prefetch + i);
        f32x8 u = load_f(step_update + i);
        f32x8 before = load_f(t->truth + i);
        f32x8 truth = before + u;
        store_f(t->truth + i, truth);
        // The truth's extremes, for the caller's "left I" test after the batch.
        store_f(t->minimum + i, lower_of(truth, load_f(t->minimum + i)));
        store_f(t->maximum + i, higher_of(truth, load_f(t->maximum + i)));
        u32x8 random = needs_random ? random_bits(random_first + (uint32_t)i, step_k1, step_k2) : splat(0);
        policy_state state;
        memset(&state, 0, sizeof state);
        if (pure_mode != 0) state.pure = load_u(t->pure + i);
        if (with_stochastic) state.stochastic = load_u(t->stochastic + i);
        if (with_kahan) {
            state.weights = load_u(t->kahan_weights + i);
            state.compensation = load_u(t->kahan_compensation + i);
        }
        policy_state prior = state;
        // Exponent all ones (NaN or Inf) carries into the sign bit.
        u32x8 special = (bits(u) & 0x7F800000u) + 0x00800000u;
        if (checked && __builtin_expect(any_sign(special), 0)) {
            *saw_special = 1;
            step_policies(&state, u, random, pure_mode, with_stochastic, with_kahan, 0);
        } else {
            step_policies(&state, u, random, pure_mode, with_stochastic, with_kahan, 1);
        }
        if (pure_mode != 0) store_u(t->pure + i, state.pure);
        if (with_stochastic) store_u(t->stochastic + i, state.stochastic);
        if (with_kahan) {
            store_u(t->kahan_weights + i, state.weights);
            store_u(t->kahan_compensation + i, state.compensation);
        }
        if (counting_mode != 0) {
            // Bit equality, as the per-policy loops count (so +0 and -0 differ).
            u32x8 stored = load_u(t->stored_base + i);
            u32x8 code = nearest(truth);
            counts.true_changed += (i32x8)(bits(truth) == bits(load_f(t->base + i)));
            counts.master += (i32x8)(code == stored);
            if (pure_mode != 0) counts.pure += (i32x8)(state.pure == stored);
            if (with_stochastic) counts.stochastic += (i32x8)(state.stochastic == stored);
            if (with_kahan) counts.kahan += (i32x8)(state.weights == stored);
            if (counting_mode == 2) {
                counts.step_true_changed += (i32x8)(bits(truth) == bits(before));
                counts.step_master += (i32x8)(code == nearest(before));
                if (pure_mode != 0) counts.step_pure += (i32x8)(state.pure == prior.pure);
                if (with_stochastic) counts.step_stochastic += (i32x8)(state.stochastic == prior.stochastic);
                if (with_kahan) counts.step_kahan += (i32x8)(state.weights == prior.weights);
            }
            if (pure_mode != 0 && histograms) {
                // Bins in vector code: the octave of |u| / 2^half is its exponent minus
                // half, clamped to bins 1 ... top; zero, non-finite and no-half-ULP lanes
                // are set apart, and subnormal updates (whose exponent needs a bit count)
                // are binned again one lane at a time.
                u32x8 magnitude = bits(u) & 0x7FFFFFFFu;
                u32x8 codes = prior.pure >> 16;
                i32x8 half = half_ulp_exponent(codes);
                i32x8 bin = ((i32x8)(magnitude >> 23) - 127) - half - lowest + 2;
                bin = select_i(bin < 1, isplat(1), bin);
                bin = select_i(bin > top, isplat(top), bin);
                bin = select_i((i32x8)magnitude >= 0x7F800000, isplat(top), bin);
                bin = select_i((i32x8)magnitude == 0, isplat(0), bin);
                bin = select_i(half == INT16_MIN, isplat(skipped), bin);
                i32x8 subnormal = ((i32x8)magnitude > 0) & ((i32x8)magnitude < 0x00800000) & (half != INT16_MIN);
                u32x8 changed = nonzero(state.pure ^ prior.pure);
                int lanes_valid = tile->valid - i < 8 ? (int)(tile->valid - i) : 8;
                if (__builtin_expect(any_sign((u32x8)subnormal), 0)) {
                    for (int lane = 0; lane < 8; lane++) {
                        if (subnormal[lane]) bin[lane] = ratio_bin(magnitude[lane], half[lane], lowest, highest, top);
                    }
                }
                // One counter per (bin, changed) pair: a single increment per lane.
                i32x8 slot = (bin << 1) | (i32x8)changed;
                if (lanes_valid == 8) {
                    // Unrolled: a loop of variable length kept a branch per lane.
                    histograms->pairs[0][slot[0]] += 1;
                    histograms->pairs[1][slot[1]] += 1;
                    histograms->pairs[2][slot[2]] += 1;
                    histograms->pairs[3][slot[3]] += 1;
                    histograms->pairs[4][slot[4]] += 1;
                    histograms->pairs[5][slot[5]] += 1;
                    histograms->pairs[6][slot[6]] += 1;
                    histograms->pairs[7][slot[7]] += 1;
                } else {
                    for (int lane = 0; lane < lanes_valid; lane++) histograms->pairs[lane][slot[lane]] += 1;
                }
            }
        }
    }
    if (counting_mode != 0) *c = counts;
}

/// The block's steps over the tile, a sub-tile at a time: the sub-tile's state stays in
/// L1 through the block's steps, so its traffic to L2 is divided by the block's length.
static inline __attribute__((always_inline)) uint32_t run_block(
    const preclab_fused_tile *tile, preclab_fused_counts *counts, int pure_mode, int with_stochastic,
    int with_kahan, int counting_any, int checked) {
    const lanes_t lanes = {
        tile->truth, tile->base, tile->stored_base, tile->minimum, tile->maximum, tile->pure,
        tile->stochastic, tile->kahan_weights, tile->kahan_compensation,
    };
    const lanes_t *t = &lanes;
    const long length = tile->length;
    const int steps = tile->steps < 1 ? 1 : tile->steps > PRECLAB_FUSED_MAX_STEPS ? PRECLAB_FUSED_MAX_STEPS : tile->steps;
    const uint32_t counting = counting_any ? tile->counting : 0;
    const float *update[PRECLAB_FUSED_MAX_STEPS];
    const float *prefetch[PRECLAB_FUSED_MAX_STEPS];
    uint32_t k1[PRECLAB_FUSED_MAX_STEPS], k2[PRECLAB_FUSED_MAX_STEPS];
    for (int s = 0; s < steps; s++) {
        update[s] = tile->update[s];
        prefetch[s] = tile->prefetch && tile->prefetch[s] ? tile->prefetch[s] : tile->update[s];
        k1[s] = tile->k1 ? tile->k1[s] : 0;
        k2[s] = tile->k2 ? tile->k2[s] : 0;
    }
    const uint32_t random_first = tile->random_first;
    uint32_t specials = 0;
    lane_counts lc[PRECLAB_FUSED_MAX_STEPS];
    if (counting) memset(lc, 0, sizeof(lane_counts) * (size_t)steps);
    const int skipped = tile->ratio_bins;
    lane_histograms lane_ratio;
    lane_histograms *histograms = 0;
    if (counting && tile->ratio_all && tile->ratio_bins < PRECLAB_FUSED_RATIO_BIN_CAPACITY) {
        memset(&lane_ratio, 0, sizeof lane_ratio);
        histograms = &lane_ratio;
    }
    // The tile runs in sub-tiles small enough for their state to stay in L1 through the
    // block's steps; within a step the vectors are independent, so Kahan's chain of four
    // roundings overlaps across them.
    for (long start = 0; start < length; start += PRECLAB_FUSED_SUBTILE) {
        const long end = length - start < PRECLAB_FUSED_SUBTILE ? length : start + PRECLAB_FUSED_SUBTILE;
        for (int s = 0; s < steps; s++) {
            const float *restrict step_update = update[s];
            const float *step_prefetch = prefetch[s];
            const uint32_t step_k1 = k1[s], step_k2 = k2[s];
            const int counts_step = (counting >> s) & 1;
            int special = 0;
            if (!counts_step) {
                run_slice(tile, t, start, end, step_update, step_prefetch, random_first, step_k1, step_k2,
                          pure_mode, with_stochastic, with_kahan, 0, checked, 0, 0, &special);
            } else if (counting_any == 1) {
                run_slice(tile, t, start, end, step_update, step_prefetch, random_first, step_k1, step_k2,
                          pure_mode, with_stochastic, with_kahan, 1, checked, &lc[s], 0, &special);
            } else {
                run_slice(tile, t, start, end, step_update, step_prefetch, random_first, step_k1, step_k2,
                          pure_mode, with_stochastic, with_kahan, 2, checked, &lc[s], histograms, &special);
            }
            if (special) specials |= 1u << s;
        }
    }
    if (histograms) {
        for (int bin = 0; bin <= skipped; bin++) {
            for (int lane = 0; lane < 8; lane++) {
                uint32_t kept = histograms->pairs[lane][2 * bin], changed = histograms->pairs[lane][2 * bin + 1];
                tile->ratio_all[bin] += kept + changed;
                tile->ratio_changed[bin] += changed;
            }
        }
    }
    if (counting && counts) {
        for (int s = 0; s < steps; s++) {
            if (!(counting & (1u << s))) continue;
            const lane_counts *c = &lc[s];
            preclab_fused_counts *out = &counts[s];
            // Every lane of the `length` run counts once; the accumulators hold minus the equal ones.
            uint64_t lanes = (uint64_t)length;
            for (int lane = 0; lane < 8; lane++) {
                out->true_changed += (uint64_t)c->true_changed[lane];
                out->master += (uint64_t)c->master[lane];
                out->pure += (uint64_t)c->pure[lane];
                out->stochastic += (uint64_t)c->stochastic[lane];
                out->kahan += (uint64_t)c->kahan[lane];
                out->step_true_changed += (uint64_t)c->step_true_changed[lane];
                out->step_master += (uint64_t)c->step_master[lane];
                out->step_pure += (uint64_t)c->step_pure[lane];
                out->step_stochastic += (uint64_t)c->step_stochastic[lane];
                out->step_kahan += (uint64_t)c->step_kahan[lane];
            }
            // (a sum of -1s wraps modulo 2^64, so adding the lane count gives the changed ones)
            out->true_changed += lanes;
            out->master += lanes;
            if (pure_mode != 0) out->pure += lanes;
            if (with_stochastic) out->stochastic += lanes;
            if (with_kahan) out->kahan += lanes;
            if (counting_any == 2) {
                out->step_true_changed += lanes;
                out->step_master += lanes;
                if (pure_mode != 0) out->step_pure += lanes;
                if (with_stochastic) out->step_stochastic += lanes;
                if (with_kahan) out->step_kahan += lanes;
            }
        }
    }
    return specials;
}

uint32_t FUSED_NAME(steps)(const preclab_fused_tile *t, preclab_fused_counts *counts) {
    int s = t->stochastic != 0, k = t->kahan_weights != 0;
    int c = counts == 0 || t->counting == 0 ? 0 : t->step_changes ? 2 : 1;
    // One copy of the loop per combination, the others' work compiled out.
    int x = t->checked != 0;
#define CASE(P, S, K, C) \
    if (t->pure_mode == P && s == S && k == K && c == C) \
        return x ? run_block(t, counts, P, S, K, C, 1) : run_block(t, counts, P, S, K, C, 0);
#define CASES(P, S, K) CASE(P, S, K, 0) CASE(P, S, K, 1) CASE(P, S, K, 2)
    CASES(0, 0, 0) CASES(0, 0, 1) CASES(0, 1, 0) CASES(0, 1, 1)
    CASES(1, 0, 0) CASES(1, 0, 1) CASES(1, 1, 0) CASES(1, 1, 1)
    CASES(2, 0, 0) CASES(2, 0, 1) CASES(2, 1, 0) CASES(2, 1, 1)
#undef CASES
#undef CASE
    return run_block(t, counts, t->pure_mode, s, k, c, x);
}

void FUSED_NAME(round8)(const float *values, const uint32_t *random, int mode, uint32_t *codes) {
    f32x8 v = load_f(values);
    u32x8 r = load_u(random);
    u32x8 out = mode == 0 ? nearest(v) : mode == 1 ? stochastic(v, r) : mode == 2 ? nearest_plain(v)
        : stochastic_plain(v, r);
    store_u(codes, out);
}

void FUSED_NAME(half_ulp8)(const uint32_t *codes, int32_t *exponents) {
    i32x8 out = half_ulp_exponent(load_u(codes));
    memcpy(exponents, &out, 32);
}

void FUSED_NAME(left_bits)(const float *minimum, const float *maximum, const float *lower, const float *upper,
                             const float *truth, long length, uint64_t *words) {
    for (long start = 0; start < length; start += 64) {
        const long count = length - start < 64 ? length - start : 64;
        uint64_t left = 0;
        long offset = 0;
        for (; offset + 8 <= count; offset += 8) {
            const long i = start + offset;
            f32x8 t = load_f(truth + i);
            // Stayed: both extremes inside I and the truth not a NaN (t == t).
            u32x8 stayed = (u32x8)(load_f(minimum + i) >= load_f(lower + i))
                & (u32x8)(load_f(maximum + i) <= load_f(upper + i)) & (u32x8)(t == t);
            uint64_t mask = 0;
            for (int lane = 0; lane < 8; lane++) mask |= (uint64_t)(stayed[lane] >> 31) << lane;
            left |= (uint64_t)(~mask & 0xFF) << offset;
        }
        for (; offset < count; offset++) {
            const long i = start + offset;
            int stayed = minimum[i] >= lower[i] && maximum[i] <= upper[i] && truth[i] == truth[i];
            left |= (uint64_t)!stayed << offset;
        }
        words[start / 64] |= left;
    }
}
