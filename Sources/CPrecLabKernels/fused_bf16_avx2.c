// The fused bf16 kernel for AVX2 CPUs, in builds that do not target AVX2 themselves
// (the portable x86-64 build): fused_bf16.c chooses it at run time.
#include "preclab_fused_bf16.h"

#if defined(__x86_64__) && !defined(__AVX2__)
// The headers first, so the attribute below reaches only the kernel's own functions.
#include "preclab_prefetch.h"
#include <immintrin.h>
#include <string.h>
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define FUSED_NAME(x) preclab_fused_variant_avx2_##x
#define FUSED_AVX 1
#include "fused_bf16_body.h"
#pragma clang attribute pop
#endif
