// The target's only code is the inline function in include/preclab_prefetch.h; SwiftPM
// needs one source file to build a C target.
#include "preclab_prefetch.h"
