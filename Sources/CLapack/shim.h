// System LAPACKE and CBLAS as provided by Debian's liblapacke-dev and libopenblas-dev.
#include <lapacke.h>
#include <cblas.h>
