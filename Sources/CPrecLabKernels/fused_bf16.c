#include "preclab_fused_bf16.h"

// 32-byte vector arguments between this file's always-inline helpers: in builds without
// AVX clang warns that their calling convention would differ, but no such call exists
// after inlining, and none crosses the file's interface (plain pointers only).
#pragma clang diagnostic ignored "-Wpsabi"
#include "preclab_prefetch.h"
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));

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
#if defined(__AVX__)
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

static inline __attribute__((always_inline)) i32x8 isplat(int x) { return (i32x8){x, x, x, x, x, x, x, x}; }

/// Lane-wise `mask ? a : b` for a comparison's all-ones / zero mask.
static inline __attribute__((always_inline)) i32x8 select_i(i32x8 mask, i32x8 a, i32x8 b) {
    return (mask & a) | (~mask & b);
}

/// Per-lane histograms (no store-forwarding chains when lanes share a bin).
typedef struct { uint32_t pairs[8][2 * PRECLAB_FUSED_RATIO_BIN_CAPACITY]; } lane_histograms;

/// The tile's pointers as locals the compiler knows do not alias (clang otherwise
/// reloaded every one from the struct after each store).
typedef struct {
    float *restrict truth;
    const float *restrict update;
    const float *restrict next;
    const float *restrict base;
    const uint32_t *restrict stored_base;
    const float *restrict lower;
    const float *restrict upper;
    uint32_t *restrict stayed;
    uint32_t *restrict pure;
    uint32_t *restrict stochastic;
    uint32_t *restrict kahan_weights;
    uint32_t *restrict kahan_compensation;
} lanes_t;

/// The stored policies' codes after a step, and before it (for the step views).
typedef struct {
    u32x8 pure, stochastic, weights, compensation;
    u32x8 pure_before, stochastic_before, weights_before;
} stored_codes;

/// The stored policies on eight lanes. `plain`: no NaN rule (exact unless an update is
/// NaN: every other operand is an expanded code and every NaN a sum makes from them is
/// an operand's or the default NaN, whose low 16 bits are zero).
static inline __attribute__((always_inline)) stored_codes stored_policies(
    const lanes_t *t, long i, f32x8 u, u32x8 random, int pure_mode, int with_stochastic,
    int with_kahan, int plain) {
    stored_codes out;
    memset(&out, 0, sizeof out);
#define NEAREST(x) (plain ? nearest_plain(x) : nearest(x))
#define STOCHASTIC(x) (plain ? stochastic_plain((x), random) : stochastic((x), random))
    if (pure_mode != 0) {
        out.pure_before = load_u(t->pure + i);
        f32x8 sum = value(out.pure_before) + u;
        out.pure = pure_mode == 1 ? NEAREST(sum) : STOCHASTIC(sum);
        store_u(t->pure + i, out.pure);
    }
    if (with_stochastic) {
        out.stochastic_before = load_u(t->stochastic + i);
        out.stochastic = STOCHASTIC(value(out.stochastic_before) + u);
        store_u(t->stochastic + i, out.stochastic);
    }
    if (with_kahan) {
        // c += u; old = w; w += c; c += (old - w), each rounded to bf16.
        u32x8 c = NEAREST(value(load_u(t->kahan_compensation + i)) + u);
        u32x8 old = load_u(t->kahan_weights + i);
        out.weights_before = old;
        out.weights = NEAREST(value(old) + value(c));
        u32x8 lost = NEAREST(value(old) - value(out.weights));
        out.compensation = NEAREST(value(c) + value(lost));
        store_u(t->kahan_weights + i, out.weights);
        store_u(t->kahan_compensation + i, out.compensation);
    }
#undef NEAREST
#undef STOCHASTIC
    return out;
}

typedef struct {
    u32x8 true_changed, master, pure, stochastic, kahan;
    u32x8 step_true_changed, step_master, step_pure, step_stochastic, step_kahan;
} lane_counts;

static inline __attribute__((always_inline)) int step(
    const preclab_fused_tile *tile, preclab_fused_counts *counts, int pure_mode, int with_stochastic, int with_kahan,
    int counting) {
    const lanes_t lanes = {
        tile->truth, tile->update, tile->next_update ? tile->next_update : tile->update, tile->base,
        tile->stored_base, tile->lower, tile->upper, tile->stayed, tile->pure, tile->stochastic,
        tile->kahan_weights, tile->kahan_compensation,
    };
    const lanes_t *t = &lanes;
    const long length = tile->length;
    const uint32_t random_first = tile->random_first, k1 = tile->k1, k2 = tile->k2;
    u32x8 special_any = splat(0);
    lane_counts lc;
    memset(&lc, 0, sizeof lc);
    const int lowest = tile->ratio_lowest, highest = tile->ratio_highest, top = tile->ratio_bins - 1;
    const int skipped = tile->ratio_bins;
    lane_histograms lane_ratio;
    lane_histograms *histograms = 0;
    if (counting && tile->ratio_all && tile->ratio_bins < PRECLAB_FUSED_RATIO_BIN_CAPACITY) {
        memset(&lane_ratio, 0, sizeof lane_ratio);
        histograms = &lane_ratio;
    }
    for (long i = 0; i < length; i += 8) {
        if ((i & 15) == 0) preclab_prefetch_l2(t->next + i);
        f32x8 u = load_f(t->update + i);
        f32x8 before = load_f(t->truth + i);
        f32x8 updated = before + u;
        store_f(t->truth + i, updated);
        // Inside I (the truth's nearest code is the stored base) iff lower <= truth <= upper.
        u32x8 inside = (u32x8)(updated >= load_f(t->lower + i)) & (u32x8)(updated <= load_f(t->upper + i));
        store_u(t->stayed + i, load_u(t->stayed + i) & inside);

        u32x8 random = (pure_mode == 2 || with_stochastic)
            ? random_bits(random_first + (uint32_t)i, k1, k2) : splat(0);
        // Exponent all ones (NaN or Inf) carries into the sign bit.
        u32x8 special = (bits(u) & 0x7F800000u) + 0x00800000u;
        special_any |= special;
        stored_codes s;
        if (__builtin_expect(any_sign(special), 0)) {
            s = stored_policies(t, i, u, random, pure_mode, with_stochastic, with_kahan, 0);
        } else {
            s = stored_policies(t, i, u, random, pure_mode, with_stochastic, with_kahan, 1);
        }
        if (counting) {
            u32x8 stored = load_u(t->stored_base + i);
            u32x8 code = nearest(updated);
            lc.true_changed += nonzero(bits(updated) ^ bits(load_f(t->base + i)));
            lc.master += nonzero(code ^ stored);
            lc.step_true_changed += nonzero(bits(updated) ^ bits(before));
            lc.step_master += nonzero(code ^ nearest(before));
            if (pure_mode != 0) {
                lc.pure += nonzero(s.pure ^ stored);
                lc.step_pure += nonzero(s.pure ^ s.pure_before);
            }
            if (with_stochastic) {
                lc.stochastic += nonzero(s.stochastic ^ stored);
                lc.step_stochastic += nonzero(s.stochastic ^ s.stochastic_before);
            }
            if (with_kahan) {
                lc.kahan += nonzero(s.weights ^ stored);
                lc.step_kahan += nonzero(s.weights ^ s.weights_before);
            }
            if (pure_mode != 0 && histograms) {
                // Bins in vector code: the octave of |u| / 2^half is its exponent minus
                // half, clamped to bins 1 ... top; zero, non-finite and no-half-ULP lanes
                // are set apart, and subnormal updates (whose exponent needs a bit count)
                // are binned again one lane at a time.
                u32x8 magnitude = bits(u) & 0x7FFFFFFFu;
                u32x8 codes = s.pure_before >> 16;
                i32x8 half;
                for (int lane = 0; lane < 8; lane++) half[lane] = tile->half_ulp_exponents[codes[lane]];
                i32x8 bin = ((i32x8)(magnitude >> 23) - 127) - half - lowest + 2;
                bin = select_i(bin < 1, isplat(1), bin);
                bin = select_i(bin > top, isplat(top), bin);
                bin = select_i((i32x8)magnitude >= 0x7F800000, isplat(top), bin);
                bin = select_i((i32x8)magnitude == 0, isplat(0), bin);
                bin = select_i(half == INT16_MIN, isplat(skipped), bin);
                i32x8 subnormal = ((i32x8)magnitude > 0) & ((i32x8)magnitude < 0x00800000) & (half != INT16_MIN);
                u32x8 changed = nonzero(s.pure ^ s.pure_before);
                int lanes_valid = tile->valid - i < 8 ? (int)(tile->valid - i) : 8;
                if (__builtin_expect(any_sign((u32x8)subnormal), 0)) {
                    for (int lane = 0; lane < 8; lane++) {
                        if (subnormal[lane]) bin[lane] = ratio_bin(magnitude[lane], half[lane], lowest, highest, top);
                    }
                }
                // One counter per (bin, changed) pair: a single increment per lane.
                i32x8 slot = (bin << 1) | (i32x8)changed;
                for (int lane = 0; lane < lanes_valid; lane++) histograms->pairs[lane][slot[lane]] += 1;
            }
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
        for (int lane = 0; lane < 8; lane++) {
            counts->true_changed += lc.true_changed[lane];
            counts->master += lc.master[lane];
            counts->pure += lc.pure[lane];
            counts->stochastic += lc.stochastic[lane];
            counts->kahan += lc.kahan[lane];
            counts->step_true_changed += lc.step_true_changed[lane];
            counts->step_master += lc.step_master[lane];
            counts->step_pure += lc.step_pure[lane];
            counts->step_stochastic += lc.step_stochastic[lane];
            counts->step_kahan += lc.step_kahan[lane];
        }
    }
    return any_sign(special_any);
}

int preclab_fused_bf16_step(const preclab_fused_tile *t, preclab_fused_counts *counts) {
    int s = t->stochastic != 0, k = t->kahan_weights != 0, c = counts != 0;
    // One copy of the loop per combination, the others' work compiled out.
#define CASE(P, S, K, C) \
    if (t->pure_mode == P && s == S && k == K && c == C) return step(t, counts, P, S, K, C);
#define CASES(P, S, K) CASE(P, S, K, 0) CASE(P, S, K, 1)
    CASES(0, 0, 0) CASES(0, 0, 1) CASES(0, 1, 0) CASES(0, 1, 1)
    CASES(1, 0, 0) CASES(1, 0, 1) CASES(1, 1, 0) CASES(1, 1, 1)
    CASES(2, 0, 0) CASES(2, 0, 1) CASES(2, 1, 0) CASES(2, 1, 1)
#undef CASES
#undef CASE
    return step(t, counts, t->pure_mode, s, k, c);
}

void preclab_fused_bf16_round8(const float *values, const uint32_t *random, int mode, uint32_t *codes) {
    f32x8 v = load_f(values);
    u32x8 r = load_u(random);
    u32x8 out = mode == 0 ? nearest(v) : mode == 1 ? stochastic(v, r) : mode == 2 ? nearest_plain(v)
        : stochastic_plain(v, r);
    store_u(codes, out);
}
