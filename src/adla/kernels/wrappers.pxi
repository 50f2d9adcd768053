# Thin wrappers: one per BLAS/LAPACK routine, single or double precision chosen by the
# fused type, status codes returned as they are (the front end turns them into exceptions).
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef inline int ld(int x) noexcept nogil:
    # BLAS rejects a leading dimension of 0 even for empty matrices.
    return x if x > 1 else 1

cdef inline void xgemm(char ta, char tb, int m, int n, int k, floating alpha, floating* a, int lda,
                       floating* b, int ldb, floating beta, floating* c, int ldc) noexcept nogil:
    if floating is double:
        blas.dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        blas.sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)

cdef inline void xsyrk(char uplo, char trans, int n, int k, floating alpha, floating* a, int lda,
                       floating beta, floating* c, int ldc) noexcept nogil:
    if floating is double:
        blas.dsyrk(&uplo, &trans, &n, &k, &alpha, a, &lda, &beta, c, &ldc)
    else:
        blas.ssyrk(&uplo, &trans, &n, &k, &alpha, a, &lda, &beta, c, &ldc)

cdef inline void xtrmm(char side, char uplo, char trans, int m, int n, floating alpha,
                       floating* a, int lda, floating* b, int ldb) noexcept nogil:
    cdef char diag = c'N'
    if floating is double:
        blas.dtrmm(&side, &uplo, &trans, &diag, &m, &n, &alpha, a, &lda, b, &ldb)
    else:
        blas.strmm(&side, &uplo, &trans, &diag, &m, &n, &alpha, a, &lda, b, &ldb)

cdef inline void xtrsm(char side, char uplo, char trans, int m, int n, floating alpha,
                       floating* a, int lda, floating* b, int ldb) noexcept nogil:
    cdef char diag = c'N'
    if floating is double:
        blas.dtrsm(&side, &uplo, &trans, &diag, &m, &n, &alpha, a, &lda, b, &ldb)
    else:
        blas.strsm(&side, &uplo, &trans, &diag, &m, &n, &alpha, a, &lda, b, &ldb)

cdef inline int xpotrf(char uplo, int n, floating* a, int lda) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dpotrf(&uplo, &n, a, &lda, &info)
    else:
        lapack.spotrf(&uplo, &n, a, &lda, &info)
    return info

cdef inline int xpotri(char uplo, int n, floating* a, int lda) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dpotri(&uplo, &n, a, &lda, &info)
    else:
        lapack.spotri(&uplo, &n, a, &lda, &info)
    return info

cdef inline int xgeqrf(int m, int n, floating* a, int lda, floating* tau, floating* work,
                       int lwork) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dgeqrf(&m, &n, a, &lda, tau, work, &lwork, &info)
    else:
        lapack.sgeqrf(&m, &n, a, &lda, tau, work, &lwork, &info)
    return info

cdef inline int xorgqr(int m, int n, int k, floating* a, int lda, floating* tau, floating* work,
                       int lwork) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dorgqr(&m, &n, &k, a, &lda, tau, work, &lwork, &info)
    else:
        lapack.sorgqr(&m, &n, &k, a, &lda, tau, work, &lwork, &info)
    return info

cdef inline int xgelqf(int m, int n, floating* a, int lda, floating* tau, floating* work,
                       int lwork) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dgelqf(&m, &n, a, &lda, tau, work, &lwork, &info)
    else:
        lapack.sgelqf(&m, &n, a, &lda, tau, work, &lwork, &info)
    return info

cdef inline int xorglq(int m, int n, int k, floating* a, int lda, floating* tau, floating* work,
                       int lwork) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dorglq(&m, &n, &k, a, &lda, tau, work, &lwork, &info)
    else:
        lapack.sorglq(&m, &n, &k, a, &lda, tau, work, &lwork, &info)
    return info

cdef inline int xsyevd(int n, floating* a, int lda, floating* w, floating* work, int lwork,
                       int* iwork, int liwork) noexcept nogil:
    cdef int info = 0
    cdef char jobz = c'V', uplo = c'U'
    if floating is double:
        lapack.dsyevd(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info)
    else:
        lapack.ssyevd(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info)
    return info

cdef inline int xgetrf(int n, floating* a, int lda, int* ipiv) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dgetrf(&n, &n, a, &lda, ipiv, &info)
    else:
        lapack.sgetrf(&n, &n, a, &lda, ipiv, &info)
    return info

cdef inline int xgetri(int n, floating* a, int lda, int* ipiv, floating* work,
                       int lwork) noexcept nogil:
    cdef int info = 0
    if floating is double:
        lapack.dgetri(&n, a, &lda, ipiv, work, &lwork, &info)
    else:
        lapack.sgetri(&n, a, &lda, ipiv, work, &lwork, &info)
    return info

cdef inline int xgesdd(int n, floating* a, floating* s, floating* u, floating* vt,
                       floating* work, int lwork, int* iwork) noexcept nogil:
    cdef int info = 0
    cdef char jobz = c'A'
    if floating is double:
        lapack.dgesdd(&jobz, &n, &n, a, &n, s, u, &n, vt, &n, work, &lwork, iwork, &info)
    else:
        lapack.sgesdd(&jobz, &n, &n, a, &n, s, u, &n, vt, &n, work, &lwork, iwork, &info)
    return info

cdef inline int workspace_size(floating query, int least) noexcept nogil:
    # LAPACK reports the optimal workspace as a float in work[0] of a lwork = -1 call.
    cdef int size = <int>query
    return size if size > least else least
