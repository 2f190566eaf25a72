// The final analysis's integer counts for bf16 storage: FinalAnalysis.countChunk (Swift,
// PrecLabReplay) for the bf16 codec, entry for entry. See preclab_final_counts.h.
#include "preclab_final_counts.h"
#include "preclab_fused_bf16.h"

// The build's own variant.
#define FINAL_COUNTS_NAME preclab_final_counts_variant_native
#include "final_counts_body.h"
#undef FINAL_COUNTS_NAME

#if defined(__x86_64__) && !defined(__AVX2__)
void preclab_final_counts_variant_avx2(const preclab_final_chunk *chunk, long *counts);
#endif

/// The variant the fused kernel runs (preclab_fused_kernel_level: the CPU's best, or
/// the one the tests chose), so the tests that go through the variants cover both.
void preclab_final_counts_bf16(const preclab_final_chunk *chunk, long *counts) {
#if defined(__x86_64__) && !defined(__AVX2__)
    if (preclab_fused_kernel_level() == 1) {
        preclab_final_counts_variant_avx2(chunk, counts);
        return;
    }
#endif
    preclab_final_counts_variant_native(chunk, counts);
}
