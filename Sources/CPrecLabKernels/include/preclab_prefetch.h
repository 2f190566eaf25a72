// A cache prefetch hint, which Swift has no spelling for. The replay streams each
// step's slice of a tile from the mapped update file; asking for the next step's slice
// while computing the current one keeps the memory system busy (docs/replay.md).
#ifndef PRECLAB_PREFETCH_H
#define PRECLAB_PREFETCH_H

/// Hints that the cache line holding `address` will be read soon, into the L2 cache.
static inline __attribute__((always_inline)) void preclab_prefetch_l2(const void *address) {
    __builtin_prefetch(address, 0, 2);
}

#endif
