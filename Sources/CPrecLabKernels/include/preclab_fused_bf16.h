// The fused bf16 replay step (every storage policy of one step in a single pass per
// element) in C with vector extensions. Swift's floating-point and bitwise SIMD
// operators are per-lane loops that LLVM re-vectorises, and it left some lanes of the
// roundings in scalar code (measured with perf: 40% of the step); written as vector
// types here, every operation is one vector instruction. The arithmetic is the scalar
// BFloat16Codec's lane for lane; PrecLabReplay's tests compare this kernel with the
// per-policy Swift loops bit for bit.
#ifndef PRECLAB_FUSED_BF16_H
#define PRECLAB_FUSED_BF16_H

#include <stdint.h>

/// The most steps one call runs (a block).
#define PRECLAB_FUSED_MAX_STEPS 8

/// One tile's state for a block of steps: expanded bf16 codes (the fp32 pattern, code <<
/// 16) in 32-bit lanes. Policies that do not run have NULL pointers.
typedef struct {
    float *truth;                 // fp32 truth, updated in place
    const float *const *update;   // the block's updates, one slice per step
    const float *const *prefetch; // slices to prefetch while this block runs (the next
                                  // block's), one per step, NULL entries or NULL: none
    const float *base;            // W0 (for the curve counts)
    const uint32_t *stored_base;  // expanded stored base (for the curve counts)
    float *minimum;               // the truth's least and greatest values so far (NaNs
    float *maximum;               // skipped: a NaN truth stays NaN, seen at the end)
    uint32_t *pure;
    uint32_t *stochastic;
    uint32_t *kahan_weights;
    uint32_t *kahan_compensation;
    long length;                  // elements, a multiple of 8
    long valid;                   // elements that are real (the rest pad the last vector)
    int steps;                    // steps in the block, 1 ... PRECLAB_FUSED_MAX_STEPS
    uint32_t counting;            // bit s set: step s counts (see preclab_fused_bf16_steps)
    int step_changes;             // counting steps also count the step views' changes
    // 1: every vector checks its updates for NaN and Inf, takes the roundings' NaN rule
    // when it meets one, and reports the step (the return value). 0: no checks, exact
    // only when no update is a NaN (the caller then runs the tile again checked; see
    // FusedBFloat16Kernel in PrecLabReplay).
    int checked;
    // Stochastic bits of element i in step s: hash((random_first + i) ^ k1[s]) ^ k2[s]
    // (NULL arrays when no policy rounds stochastically).
    uint32_t random_first;
    const uint32_t *k1, *k2;
    int pure_mode;                // 0 off, 1 nearest-even, 2 stochastic
    // The pure policy's update-ratio histogram (step views), when `ratio_all` is not NULL:
    // each counting element-step's bin of |u| / half-ULP of pure's code before the step
    // (the half-ULP as RatioBinner has it; see preclab_fused_bf16_half_ulp_exponents8)
    // (octaves ratio_lowest ... ratio_highest, bin 0 for u = 0, 1 below, ratio_bins - 1
    // above or non-finite, ratio_bins for codes without a half-ULP) is added to
    // ratio_all, and to ratio_changed when the code changed.
    uint64_t *ratio_all;
    uint64_t *ratio_changed;
    int ratio_lowest, ratio_highest, ratio_bins;  // ratio_bins < PRECLAB_FUSED_RATIO_BIN_CAPACITY
} preclab_fused_tile;

/// The most histogram bins (`ratio_bins` + 1, the no-half-ULP bin included) the kernel
/// counts; a caller with more must not ask for the histogram.
#define PRECLAB_FUSED_RATIO_BIN_CAPACITY 64

/// Counts of a step, bit inequality: against the base and stored base (the per-step
/// curve), and against the values before the step (the step views). `master` compares
/// the truth's nearest-even codes.
typedef struct {
    uint64_t true_changed, master, pure, stochastic, kahan;
    uint64_t step_true_changed, step_master, step_pure, step_stochastic, step_kahan;
} preclab_fused_counts;

/// Applies the block's steps to the tile. Returns, when `checked`, a mask with bit s set
/// when some update of step s was NaN or Inf (the caller counts them exactly), else 0. When `counts` is not
/// NULL it holds one entry per step, and each counting step adds its counts to its entry.
uint32_t preclab_fused_bf16_steps(const preclab_fused_tile *tile, preclab_fused_counts *counts);

/// ORs "left I" of `length` elements into `words` (bit i % 64 of word i / 64): the
/// truth's extremes over a batch outside [lower, upper], or the truth a NaN.
void preclab_fused_left_bits(const float *minimum, const float *maximum, const float *lower, const float *upper,
                             const float *truth, long length, uint64_t *words);

/// Which variant of the kernel runs: 0 the build's own instruction set, 1 AVX2 (x86-64
/// builds below AVX2 on a CPU that has it; chosen at the first call).
int preclab_fused_kernel_level(void);

/// Forces a variant (the tests run both): 1 AVX2 when the build has that variant and the
/// CPU can run it, else 0.
void preclab_fused_set_kernel_level(int level);

/// The kernel's log2 half-ULPs of eight bf16 codes (INT16_MIN for Inf and NaN), for the
/// tests to compare with RatioBinner's table.
void preclab_fused_bf16_half_ulp_exponents8(const uint32_t *codes, int32_t *exponents);

/// The kernel's roundings of eight values, for the tests: mode 0 nearest-even, 1
/// stochastic (with `random`), 2 and 3 the same without the NaN rule.
void preclab_fused_bf16_round8(const float *values, const uint32_t *random, int mode, uint32_t *codes);

#endif
