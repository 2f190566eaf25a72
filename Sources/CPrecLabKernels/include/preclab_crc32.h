// CRC-32 (zlib's, reflected polynomial 0xEDB88320) by carry-less multiplication: the
// buffer is folded 64 bytes at a time with PCLMULQDQ, the method of Intel's white paper
// "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction" (Gopal et
// al., 2009). PrecLabFiles' CRC32 calls it for long buffers when the CPU has the
// instructions (checked at run time, so portable builds use it too) and keeps its
// slicing-by-16 tables for the rest; the tests compare the two.
#ifndef PRECLAB_CRC32_H
#define PRECLAB_CRC32_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has PCLMULQDQ and SSE4.1 (x86-64 only; 0 elsewhere).
int preclab_crc32_folding_available(void);

/// Advances the CRC register `state` (the running value before the final xor, i.e. ~crc)
/// over `length` bytes, which must be a multiple of 16 and at least 64. Only call it
/// when `preclab_crc32_folding_available()` is 1.
uint32_t preclab_crc32_fold(uint32_t state, const uint8_t *bytes, size_t length);

#endif
