// The bf16 final counts for AVX2 CPUs, in builds that do not target AVX2 themselves
// (the portable x86-64 build): final_counts_bf16.c chooses it at run time.
#include "preclab_final_counts.h"

#if defined(__x86_64__) && !defined(__AVX2__)
// The headers first, so the attribute below reaches only the counts' own functions.
#include <emmintrin.h>
#include <string.h>
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define FINAL_COUNTS_NAME preclab_final_counts_variant_avx2
#include "final_counts_body.h"
#pragma clang attribute pop
#endif
