#ifndef HDLABEL_CBLAS_SHIM_H
#define HDLABEL_CBLAS_SHIM_H
// OpenBLAS CBLAS interface plus the few LAPACK routines hdlabel calls.
// Debian's libopenblas exports LAPACK's Fortran symbols, so only prototypes are declared here.
#include <cblas.h>

/// Symmetric eigen-decomposition (divide and conquer), single precision, column-major.
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda,
             float *w, float *work, const int *lwork, int *iwork, const int *liwork, int *info);

/// Solves A X = B for symmetric positive definite A (Cholesky), single precision, column-major.
void sposv_(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda, float *b, const int *ldb, int *info);

static inline void hdl_blas_set_threads(int n) { openblas_set_num_threads(n); }
static inline int hdl_blas_get_threads(void) { return openblas_get_num_threads(); }
#endif
