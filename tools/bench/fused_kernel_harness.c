// The fused bf16 kernel alone, from memory the process already owns: the bench
// stream's shapes (1.77 M weights, 200 steps, tiles of 8192, blocks of 4, a curve
// point every fourth step) with fp32, master, pure (nearest) and Kahan, on two threads,
// reading the updates from one anonymous 1.4 GB buffer that is faulted in before the
// timing. Against `make bench`'s step pass (the engine over a fresh mapping of the
// stream file) it shows what the mapping costs (docs/replay.md, "Where the time goes").
//
// Build and run from the repository root:
//   clang -O3 -march=native -I Sources/CPrecLabKernels/include -I Sources/CPrecLabKernels \
//     tools/bench/fused_kernel_harness.c Sources/CPrecLabKernels/fused_bf16.c \
//     Sources/CPrecLabKernels/fused_bf16_avx2.c -lpthread -o .build/fused-kernel-harness
//   .build/fused-kernel-harness [runs]
#include "preclab_fused_bf16.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ELEMENTS = 1769472, STEPS = 200, TILE = 8192, BLOCK = 4 };

static float *updates, *truth, *base;
static uint32_t *stored_base, *pure, *weights, *compensation;
static atomic_long next_tile;

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec * 1e-9;
}

static uint32_t nearest_code(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
}

static void *worker(void *unused) {
    (void)unused;
    float *minimum = aligned_alloc(64, TILE * 4), *maximum = aligned_alloc(64, TILE * 4);
    preclab_fused_counts counts[BLOCK];
    const float *slices[BLOCK], *prefetch[BLOCK];
    uint32_t keys[BLOCK] = {0};
    for (;;) {
        long start = atomic_fetch_add(&next_tile, 1) * TILE;
        if (start >= ELEMENTS) break;
        for (int i = 0; i < TILE; i++) { minimum[i] = 1e30f; maximum[i] = -1e30f; }
        for (int step = 0; step < STEPS; step += BLOCK) {
            uint32_t counting = 0;
            for (int s = 0; s < BLOCK; s++) {
                slices[s] = updates + (long)(step + s) * ELEMENTS + start;
                int next = step + s + BLOCK;
                prefetch[s] = next < STEPS ? updates + (long)next * ELEMENTS + start : NULL;
                if ((step + s + 1) % 4 == 0) counting |= 1u << s;
            }
            memset(counts, 0, sizeof counts);
            preclab_fused_tile tile = {0};
            tile.truth = truth + start;
            tile.update = slices;
            tile.prefetch = prefetch;
            tile.base = base + start;
            tile.stored_base = stored_base + start;
            tile.minimum = minimum;
            tile.maximum = maximum;
            tile.pure = pure + start;
            tile.kahan_weights = weights + start;
            tile.kahan_compensation = compensation + start;
            tile.length = TILE;
            tile.valid = TILE;
            tile.steps = BLOCK;
            tile.counting = counting;
            tile.k1 = keys;
            tile.k2 = keys;
            tile.pure_mode = 1;
            preclab_fused_bf16_steps(&tile, counts);
        }
    }
    free(minimum);
    free(maximum);
    return NULL;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    updates = aligned_alloc(64, (size_t)ELEMENTS * STEPS * 4);
    truth = aligned_alloc(64, ELEMENTS * 4);
    base = aligned_alloc(64, ELEMENTS * 4);
    stored_base = aligned_alloc(64, ELEMENTS * 4);
    pure = aligned_alloc(64, ELEMENTS * 4);
    weights = aligned_alloc(64, ELEMENTS * 4);
    compensation = aligned_alloc(64, ELEMENTS * 4);
    if (!updates || !truth || !base || !stored_base || !pure || !weights || !compensation) {
        fprintf(stderr, "fused-kernel-harness: out of memory (needs 1.5 GB)\n");
        return 1;
    }
    unsigned state = 1;
    for (size_t i = 0; i < (size_t)ELEMENTS * STEPS; i++) {
        state = state * 1103515245u + 12345u;
        updates[i] = ((int)(state >> 8) % 100000 / 50000.0f - 1.0f) * 2e-5f;
    }
    double best = 1e30;
    for (int run = 0; run < runs; run++) {
        for (long i = 0; i < ELEMENTS; i++) {
            state = state * 1103515245u + 12345u;
            float w = ((int)(state >> 8) % 100000 / 50000.0f - 1.0f) * 0.02f;
            truth[i] = base[i] = w;
            stored_base[i] = pure[i] = weights[i] = nearest_code(w);
            compensation[i] = 0;
        }
        atomic_store(&next_tile, 0);
        double start = seconds();
        pthread_t threads[2];
        for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, worker, NULL);
        for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
        double elapsed = seconds() - start;
        if (elapsed < best) best = elapsed;
    }
    printf("fused kernel, fp32,master,pure,kahan, 2 threads, updates in memory: %.3f s (best of %d; variant %d)\n",
           best, runs, preclab_fused_kernel_level());
    return 0;
}
