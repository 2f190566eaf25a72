// The C kernels PrecLabReplay and PrecLabFiles call (the module's umbrella header: a new
// header is added here, so module caches see the change).
#ifndef CPRECLABKERNELS_H
#define CPRECLABKERNELS_H

#include "preclab_crc32.h"
#include "preclab_final_counts.h"
#include "preclab_fused_bf16.h"
#include "preclab_prefetch.h"

#endif
