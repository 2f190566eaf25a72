#include "preclab_fused_bf16.h"

// The build's own variant of the kernel (AVX intrinsics when the build targets AVX).
#define FUSED_NAME(x) preclab_fused_variant_native_##x
#if defined(__AVX__)
#define FUSED_AVX 1
#else
#define FUSED_AVX 0
#endif
#include "fused_bf16_body.h"
#undef FUSED_AVX
#undef FUSED_NAME

/// A variant's entry points.
typedef struct {
    uint32_t (*steps)(const preclab_fused_tile *, preclab_fused_counts *);
    void (*round8)(const float *, const uint32_t *, int, uint32_t *);
    void (*half_ulp8)(const uint32_t *, int32_t *);
    void (*left_bits)(const float *, const float *, const float *, const float *, const float *, long, uint64_t *);
} variant;

static const variant native_variant = {
    preclab_fused_variant_native_steps, preclab_fused_variant_native_round8,
    preclab_fused_variant_native_half_ulp8, preclab_fused_variant_native_left_bits,
};

#if defined(__x86_64__) && !defined(__AVX2__)
#include <cpuid.h>
uint32_t preclab_fused_variant_avx2_steps(const preclab_fused_tile *, preclab_fused_counts *);
void preclab_fused_variant_avx2_round8(const float *, const uint32_t *, int, uint32_t *);
void preclab_fused_variant_avx2_half_ulp8(const uint32_t *, int32_t *);
void preclab_fused_variant_avx2_left_bits(const float *, const float *, const float *, const float *,
                                          const float *, long, uint64_t *);

static const variant avx2_variant = {
    preclab_fused_variant_avx2_steps, preclab_fused_variant_avx2_round8,
    preclab_fused_variant_avx2_half_ulp8, preclab_fused_variant_avx2_left_bits,
};

/// AVX2 with the OS saving the YMM registers (CPUID.1:ECX.OSXSAVE, XCR0 bits 1 and 2).
static int cpu_has_avx2(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27)) || !(ecx & (1u << 28))) return 0;
    unsigned xcr0_low, xcr0_high;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    if ((xcr0_low & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & (1u << 5)) != 0;
}
#else
static int cpu_has_avx2(void) { return 0; }
static const variant avx2_variant = {0, 0, 0, 0};
#endif

// -1: not chosen yet. Set once (threads may race to store the same value).
static int kernel_level = -1;

/// The level the CPU allows for a wanted one: 1 only with an AVX2 variant the CPU runs.
static int usable_level(int wanted) { return wanted == 1 && avx2_variant.steps && cpu_has_avx2() ? 1 : 0; }

int preclab_fused_kernel_level(void) {
    int level = __atomic_load_n(&kernel_level, __ATOMIC_RELAXED);
    if (level < 0) {
        level = usable_level(1);
        __atomic_store_n(&kernel_level, level, __ATOMIC_RELAXED);
    }
    return level;
}

void preclab_fused_set_kernel_level(int level) {
    __atomic_store_n(&kernel_level, usable_level(level), __ATOMIC_RELAXED);
}

static const variant *chosen(void) { return preclab_fused_kernel_level() == 1 ? &avx2_variant : &native_variant; }

uint32_t preclab_fused_bf16_steps(const preclab_fused_tile *tile, preclab_fused_counts *counts) {
    return chosen()->steps(tile, counts);
}

void preclab_fused_bf16_round8(const float *values, const uint32_t *random, int mode, uint32_t *codes) {
    chosen()->round8(values, random, mode, codes);
}

void preclab_fused_bf16_half_ulp_exponents8(const uint32_t *codes, int32_t *exponents) {
    chosen()->half_ulp8(codes, exponents);
}

void preclab_fused_left_bits(const float *minimum, const float *maximum, const float *lower, const float *upper,
                             const float *truth, long length, uint64_t *words) {
    chosen()->left_bits(minimum, maximum, lower, upper, truth, length, words);
}
