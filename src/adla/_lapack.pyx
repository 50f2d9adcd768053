# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""CPU kernels of adla: one batch driver over per-matrix kernels built on BLAS/LAPACK and, for
batches of small matrices, interleaved kernels that take LANES matrices per call without BLAS
(see their section; ``plan`` picks one or the other per job).

Every operand is a C-ordered stack ``(nbatch, rows, cols)`` (or ``(1, rows, cols)`` for an operand
broadcast across the batch). BLAS/LAPACK are column-major, so a row-major ``r x c`` matrix is, to
them, its ``c x r`` transpose: each kernel calls the routine for the transposed problem (swapped
sides, flipped ``uplo`` and ``trans``) instead of copying data into Fortran order.

Kernels return a status per matrix: 0 on success, ``NONFINITE`` when an entry they read is not
finite, and otherwise the 1-based LAPACK-style ``info`` (order of the failing leading minor for
``potrf``, position of a zero diagonal entry for the triangular solvers). Turning status into
exceptions is the Python front end's job; kernels never touch the GIL.
"""
from cython cimport floating
from libc.string cimport memcpy, memset
from libc.stdlib cimport malloc, free
from libc.float cimport DBL_EPSILON, DBL_MIN, FLT_EPSILON, FLT_MIN
from libc.math cimport fabs, frexp, ldexp, log, sqrt, NAN, INFINITY
cimport numpy as cnp
cimport openmp
cimport scipy.linalg.cython_blas as blas
cimport scipy.linalg.cython_lapack as lapack

import numpy as np

cnp.import_array()

# Operation codes and flags: the Python backend (_cpu.py) passes these in.
cdef enum:
    OP_GEMM = 0
    OP_SYRK = 1
    OP_TRMM = 2
    OP_TRSM = 3
    OP_POTRF = 4
    OP_POTRI = 5
    OP_POTRS = 6
    OP_GELQF = 7
    OP_GEQRF = 8
    OP_SYEVD = 9
    OP_INVERSE = 10
    OP_SLOGDET = 11
    OP_COFACTOR = 12
    OP_POTRF_BACKWARD = 13
    OP_SYEVD_BACKWARD = 14
    OP_TRSM_BACKWARD = 15
    OP_ORTHOGONAL_BACKWARD = 16
    OP_SYRK_BACKWARD = 17
    OP_GEMM_BACKWARD = 18
    MAX_OPERANDS = 6
    SMALL = 32          # matrices up to this order use the interleaved kernels, not BLAS/LAPACK
    SMALL_DENSE = 16    # the same for trsm, trmm, gelqf, geqrf and their gradients (both sides)
    SMALL_GEMM = 8      # and for gemm whose columns are no multiple of 4 (small_product's blocks)
    SMALL_PRODUCT = 32  # other gemm and syrk up to this size: small_product, not BLAS
    EIGEN_SWEEPS = 30   # QL sweeps allowed per eigenvalue before a matrix fails (steqr: 30 n in all)
    LANES = 8           # matrices per interleaved kernel call

cdef enum:
    TRANS_A = 1
    TRANS_B = 2
    RIGHT = 4
    LOWER = 8
    TRIANGLE = 16       # gemm: keep only the triangle of the result that LOWER names
    WITH_C = 32         # gemm_backward: there is a C, and dC = beta dD is wanted

cdef enum:
    NONFINITE = -1
    NO_MEMORY = -2

GEMM, SYRK, TRMM, TRSM, POTRF, POTRI, POTRS = OP_GEMM, OP_SYRK, OP_TRMM, OP_TRSM, OP_POTRF, OP_POTRI, OP_POTRS
GELQF, GEQRF, SYEVD, INVERSE, SLOGDET, COFACTOR = (OP_GELQF, OP_GEQRF, OP_SYEVD, OP_INVERSE,
                                                   OP_SLOGDET, OP_COFACTOR)
POTRF_BACKWARD, SYEVD_BACKWARD, TRSM_BACKWARD = (OP_POTRF_BACKWARD, OP_SYEVD_BACKWARD,
                                                 OP_TRSM_BACKWARD)
ORTHOGONAL_BACKWARD, SYRK_BACKWARD = OP_ORTHOGONAL_BACKWARD, OP_SYRK_BACKWARD
GEMM_BACKWARD = OP_GEMM_BACKWARD


def max_threads():
    """The number of threads a parallel batch would use now: OpenMP's setting (OMP_NUM_THREADS,
    threadpoolctl), though the batch runs on adla's own pool (_pool.h)."""
    return openmp.omp_get_max_threads()


cdef extern from *:
    """
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int adla_cpu_has_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");   /* checks the OS saves AVX state too */
    }
    #else
    static int adla_cpu_has_avx2(void) { return 0; }
    #endif
    """
    int adla_cpu_has_avx2() noexcept nogil


def cpu_has_avx2():
    """Whether this CPU (and OS) runs AVX2 code, that is, the ``_lapack_avx2`` build."""
    return adla_cpu_has_avx2() != 0


FLAG_TRANS_A, FLAG_TRANS_B, FLAG_RIGHT, FLAG_LOWER = TRANS_A, TRANS_B, RIGHT, LOWER
FLAG_TRIANGLE, FLAG_WITH_C = TRIANGLE, WITH_C
STATUS_NONFINITE = NONFINITE
STATUS_NO_MEMORY = NO_MEMORY

ctypedef struct Job:
    int op
    int flags
    Py_ssize_t work     # scratch elements each thread gets (kernels must not share scratch)
    int lanes           # matrices per kernel call: 1, or LANES for the interleaved kernels
    int m          # rows of the result
    int n          # columns of the result
    int k          # inner dimension (gemm, syrk)
    double alpha
    double beta


# ---- thin wrappers: one per BLAS/LAPACK routine, s/d chosen by the fused type -----------------

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


# ---- small helpers on row-major n x n matrices ------------------------------------------------

cdef inline void copy(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    if count > 0:
        memcpy(dst, src, count * sizeof(floating))

cdef inline bint isfinite(floating x) noexcept nogil:
    # x - x is 0 for finite x and NaN for inf/NaN (libc's isfinite here takes a long double).
    return x - x == 0

cdef inline bint all_finite(const floating* a, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        if not isfinite(a[i]):
            return False
    return True

cdef inline bint triangle_finite(const floating* a, int n, bint lower) noexcept nogil:
    cdef int i, j
    for i in range(n):
        if lower:
            for j in range(i + 1):
                if not isfinite(a[i * n + j]):
                    return False
        else:
            for j in range(i, n):
                if not isfinite(a[i * n + j]):
                    return False
    return True

cdef inline int first_zero_diagonal(const floating* a, int n) noexcept nogil:
    """1-based position of the first zero on the diagonal, or 0."""
    cdef int i
    for i in range(n):
        if a[i * n + i] == 0:
            return i + 1
    return 0

cdef inline void zero_triangle(floating* a, int n, bint upper) noexcept nogil:
    """Zero the strict upper (or strict lower) triangle."""
    cdef int i, j
    for i in range(n):
        if upper:
            for j in range(i + 1, n):
                a[i * n + j] = 0
        else:
            for j in range(i):
                a[i * n + j] = 0

cdef inline void mirror_triangle(floating* a, int n, bint from_lower) noexcept nogil:
    """Make a symmetric by copying the lower triangle onto the upper one (or the reverse)."""
    cdef int i, j
    for i in range(n):
        for j in range(i + 1, n):
            if from_lower:
                a[i * n + j] = a[j * n + i]
            else:
                a[j * n + i] = a[i * n + j]


# ---- per-matrix kernels, row-major semantics --------------------------------------------------
# Operand order in p[] is the order of the backend call's arguments, output last.

cdef extern from "_small_product.h":
    int ADLA_BLOCK_ROWS
    void adla_block_d(double* out, Py_ssize_t out_row, const double* x, Py_ssize_t x_row,
                      Py_ssize_t x_step, const double* b, Py_ssize_t b_row, int k, double alpha,
                      double beta, const double* c, int rows, int cols) noexcept nogil
    void adla_block_f(float* out, Py_ssize_t out_row, const float* x, Py_ssize_t x_row,
                      Py_ssize_t x_step, const float* b, Py_ssize_t b_row, int k, float alpha,
                      float beta, const float* c, int rows, int cols) noexcept nogil
    void adla_transpose_d(double* dst, const double* src, int rows, int cols) noexcept nogil
    void adla_transpose_f(float* dst, const float* src, int rows, int cols) noexcept nogil

cdef void small_product(floating* out, const floating* a, Py_ssize_t a_row, Py_ssize_t a_col,
                        const floating* b, Py_ssize_t b_row, int m, int n, int k, floating alpha,
                        floating beta, const floating* c) noexcept nogil:
    """out = alpha X B + beta C for small row-major matrices without a BLAS call: X[i, l] is
    a[i a_row + l a_col] (m x k), B[l, j] is b[l b_row + j] (k x n), C (m x n) may be NULL (then
    beta is ignored). Blocks of up to ADLA_BLOCK_ROWS rows by 8 or 4 columns in vector registers,
    up to 3 last columns in scalars; whatever the block, each entry is alpha times its sum over
    l (in order from 0), plus beta times C's entry."""
    cdef floating acc[8]       # the scalar path: up to 3 columns, or 8 when alpha == 0
    cdef int i0, rows, i, j0, jj, l, cols
    cdef Py_ssize_t at
    i0 = 0
    while i0 < m:
        rows = min(ADLA_BLOCK_ROWS, m - i0)
        j0 = 0
        while j0 < n:
            cols = 8 if n - j0 >= 8 else 4 if n - j0 >= 4 else n - j0
            at = <Py_ssize_t>i0 * n + j0
            if alpha != 0 and cols >= 4:
                if floating is double:
                    adla_block_d(out + at, n, a + i0 * a_row, a_row, a_col, b + j0, b_row, k,
                                 alpha, beta, c + at if c != NULL else NULL, rows, cols)
                else:
                    adla_block_f(out + at, n, a + i0 * a_row, a_row, a_col, b + j0, b_row, k,
                                 alpha, beta, c + at if c != NULL else NULL, rows, cols)
                j0 += cols
                continue
            for i in range(i0, i0 + rows):
                at = <Py_ssize_t>i * n + j0
                for jj in range(cols):
                    acc[jj] = 0
                if alpha != 0:      # BLAS semantics: alpha == 0 ignores X and B (NaN included)
                    for l in range(k):
                        for jj in range(cols):
                            acc[jj] = acc[jj] + a[i * a_row + l * a_col] * b[l * b_row + j0 + jj]
                for jj in range(cols):
                    out[at + jj] = alpha * acc[jj]
                if c != NULL:
                    for jj in range(cols):
                        out[at + jj] = out[at + jj] + beta * c[at + jj]
            j0 += cols
        i0 += rows

cdef inline void transpose_into(floating* dst, const floating* src, int rows, int cols) noexcept nogil:
    # dst (cols x rows) = src^T, both row-major.
    if floating is double:
        adla_transpose_d(dst, src, rows, cols)
    else:
        adla_transpose_f(dst, src, rows, cols)

cdef inline bint direct(const Job* job) noexcept nogil:
    # Small enough for small_product: a BLAS call costs more than the arithmetic.
    return job.m <= SMALL_PRODUCT and job.n <= SMALL_PRODUCT and job.k <= SMALL_PRODUCT

cdef int gemm_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # D = alpha op(A) op(B) + beta C  <=>  D^T = alpha op(B)^T op(A)^T + beta C^T (column-major)
    cdef int m = job.m, n = job.n, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef floating beta = <floating>job.beta if p[2] != NULL else 0
    cdef Py_ssize_t e
    if m == 0 or n == 0:
        return 0
    if direct(job):
        if tb:
            transpose_into(work, p[1], n, k)
        small_product(p[3], p[0], 1 if ta else k, m if ta else 1, work if tb else p[1], n,
                      m, n, k, <floating>job.alpha, beta, p[2] if beta != 0 else NULL)
    elif job.alpha == 0:
        # BLAS semantics (alpha == 0 ignores A and B, NaN included), which some BLAS builds break
        for e in range(<Py_ssize_t>m * n):
            p[3][e] = beta * p[2][e] if beta != 0 else 0
    else:
        if beta != 0:
            copy(p[3], p[2], <Py_ssize_t>m * n)
        xgemm(c'T' if tb else c'N', c'T' if ta else c'N', n, m, k, <floating>job.alpha,
              p[1], ld(k if tb else n), p[0], ld(m if ta else k), beta, p[3], ld(n))
    if job.flags & TRIANGLE:
        zero_triangle(p[3], m, (job.flags & LOWER) != 0)
    return 0

cdef inline void product_into(floating* out, floating* left, floating* right, int rows, int cols,
                              int inner, int flags, double alpha, floating* work) noexcept nogil:
    # out (rows x cols) = alpha op(left) op(right), through gemm_one (flags: gemm's).
    cdef Job product
    cdef floating* q[4]
    product.m, product.n, product.k, product.flags = rows, cols, inner, flags
    product.alpha, product.beta = alpha, 0
    q[0], q[1], q[2], q[3] = left, right, NULL, out
    gemm_one(&product, q, work)

cdef int gemm_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dA, dB[, dC]) of D = alpha op(A) op(B) [+ beta C] from (dD, A, B), each matrix's dD read
    while it is in cache: d op(A) = alpha dD op(B)^T, d op(B) = alpha op(A)^T dD, dC = beta dD."""
    cdef int m = job.m, n = job.n, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef Py_ssize_t e
    cdef floating beta = <floating>job.beta
    # dA: alpha dD op(B)^T (m x k), or its transpose alpha op(B) dD^T when ta.
    if ta:
        product_into(p[3], p[2], p[0], k, m, n, (TRANS_A if tb else 0) | TRANS_B, job.alpha, work)
    else:
        product_into(p[3], p[0], p[2], m, k, n, 0 if tb else TRANS_B, job.alpha, work)
    # dB: alpha op(A)^T dD (k x n), or its transpose alpha dD^T op(A) when tb.
    if tb:
        product_into(p[4], p[0], p[1], n, k, m, TRANS_A | (TRANS_B if ta else 0), job.alpha, work)
    else:
        product_into(p[4], p[1], p[0], k, n, m, 0 if ta else TRANS_A, job.alpha, work)
    if job.flags & WITH_C:
        for e in range(<Py_ssize_t>m * n):
            p[5][e] = beta * p[0][e]
    return 0

cdef int syrk_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # C = alpha A A^T (A m x k), or alpha A^T A (A k x m) when TRANS_A; full symmetric result.
    cdef int m = job.m, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0
    if m == 0:
        return 0
    if direct(job):
        # The whole product, exactly symmetric: entries (i, j) and (j, i) sum the same products
        # in the same order.
        if not ta:
            transpose_into(work, p[0], m, k)
        small_product(p[1], p[0], 1 if ta else k, m if ta else 1, p[0] if ta else work, m,
                      m, m, k, <floating>job.alpha, 0, NULL)
    else:
        # Column-major 'U' of the result is its row-major lower triangle.
        xsyrk(c'U', c'N' if ta else c'T', m, k, <floating>job.alpha, p[0], ld(m if ta else k),
              0, p[1], ld(m))
        mirror_triangle(p[1], m, True)
    return 0

cdef int syrk_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # dA = alpha (dC + dC^T) A (m x k), or alpha A (dC + dC^T) when TRANS_A (A k x m); the
    # symmetric sum is formed in scratch, so the batch is read once.
    cdef int m = job.m, k = job.k, i, j
    cdef floating* dc = p[0]
    if m == 0 or k == 0:
        return 0
    for i in range(m):
        for j in range(m):
            work[i * m + j] = dc[i * m + j] + dc[j * m + i]
    if direct(job):
        if job.flags & TRANS_A:
            small_product(p[2], p[1], m, 1, work, m, k, m, m, <floating>job.alpha, 0, NULL)
        else:
            small_product(p[2], work, m, 1, p[1], k, m, k, m, <floating>job.alpha, 0, NULL)
    # Column-major views: A is A^T; the products are their transposes, S symmetric.
    elif job.flags & TRANS_A:
        xgemm(c'N', c'N', m, k, m, <floating>job.alpha, work, m, p[1], m, 0, p[2], m)
    else:
        xgemm(c'N', c'N', k, m, m, <floating>job.alpha, p[1], k, work, m, 0, p[2], k)
    return 0

cdef inline void triangular_call(const Job* job, floating** p, bint solve) noexcept nogil:
    # C = alpha op(A) B (or alpha B op(A) when RIGHT) on C, which holds a copy of B (m x n).
    cdef int m = job.m, n = job.n
    cdef int na = n if job.flags & RIGHT else m
    cdef char side = c'L' if job.flags & RIGHT else c'R'
    cdef char uplo = c'U' if job.flags & LOWER else c'L'
    cdef char trans = c'T' if job.flags & TRANS_A else c'N'
    if solve:
        xtrsm(side, uplo, trans, n, m, <floating>job.alpha, p[0], ld(na), p[2], ld(n))
    else:
        xtrmm(side, uplo, trans, n, m, <floating>job.alpha, p[0], ld(na), p[2], ld(n))

cdef int trmm_one(const Job* job, floating** p) noexcept nogil:
    if job.m == 0 or job.n == 0:
        return 0
    copy(p[2], p[1], <Py_ssize_t>job.m * job.n)
    triangular_call(job, p, False)
    return 0

cdef int trsm_one(const Job* job, floating** p) noexcept nogil:
    cdef int na = job.n if job.flags & RIGHT else job.m
    cdef int status
    if job.m == 0 or job.n == 0:
        return 0
    if not triangle_finite(p[0], na, job.flags & LOWER) or not all_finite(p[1], <Py_ssize_t>job.m * job.n):
        return NONFINITE
    status = first_zero_diagonal(p[0], na)
    if status:
        return status
    copy(p[2], p[1], <Py_ssize_t>job.m * job.n)
    triangular_call(job, p, True)
    return 0

cdef int trsm_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dA, dB) of trsm from (A, X, dX), the forward's flags and alpha: Y = op(A)^-T dX (on the
    right: dX op(A)^-T), dB = alpha Y and d op(A) = -Y X^T (right: -X^T Y), kept on the triangle
    that is read. Status as trsm_one on (A, dX)."""
    cdef Job solve = job[0]
    cdef floating* q[3]
    cdef bint right = (job.flags & RIGHT) != 0, transposed = (job.flags & TRANS_A) != 0
    cdef int t = job.n if right else job.m, status
    cdef Py_ssize_t i, count = <Py_ssize_t>job.m * job.n
    solve.flags, solve.alpha = job.flags ^ TRANS_A, 1
    q[0], q[1], q[2] = p[0], p[2], p[4]
    status = trsm_one(&solve, q)                       # Y, in dB's place
    if status or t == 0:
        return status
    # Row-major products giving d op(A) transposed back to dA: left -Y X^T (or -X Y^T when
    # transposed), right -X^T Y (or -Y^T X).
    if job.m == 0 or job.n == 0:
        memset(p[3], 0, <Py_ssize_t>t * t * sizeof(floating))
    elif transposed != right:
        product_into(p[3], p[1], p[4], t, t, job.m if right else job.n,
                     TRIANGLE | (job.flags & LOWER) | (TRANS_A if right else TRANS_B), -1, work)
    else:
        product_into(p[3], p[4], p[1], t, t, job.m if right else job.n,
                     TRIANGLE | (job.flags & LOWER) | (TRANS_A if right else TRANS_B), -1, work)
    if job.alpha != 1:
        for i in range(count):
            p[4][i] = p[4][i] * <floating>job.alpha
    return 0


cdef int potrf_one(const Job* job, floating** p) noexcept nogil:
    cdef int n = job.n, info
    cdef bint lower = (job.flags & LOWER) != 0
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, lower):
        return NONFINITE
    copy(p[1], p[0], <Py_ssize_t>n * n)
    info = xpotrf(c'U' if lower else c'L', n, p[1], n)
    zero_triangle(p[1], n, lower)
    return info


cdef inline void symmetrize(floating* a, int n) noexcept nogil:
    cdef int i, j
    cdef floating s
    for i in range(n):
        for j in range(i):
            s = (a[i * n + j] + a[j * n + i]) * <floating>0.5
            a[i * n + j] = s
            a[j * n + i] = s

cdef int potrf_backward_one(const Job* job, floating** p) noexcept nogil:
    """dA of potrf from (dL, L): dA = L^-T S L^-1 with S = (P + P^T)/2, P the lower triangle of
    L^T dL with its diagonal halved (Murray 2016), by a triangular product and two triangular
    solves (BLAS-3). Upper factors use L = U^T. potrf_backward_lanes is the same for small n."""
    cdef int n = job.n, i, j
    cdef bint lower = (job.flags & LOWER) != 0
    cdef const floating* dl = p[0]
    cdef const floating* lf = p[1]
    cdef floating* da = p[2]
    cdef floating* b
    cdef floating t
    if n == 0:
        return 0
    if not triangle_finite(lf, n, lower) or not triangle_finite(dl, n, lower):
        return NONFINITE
    i = first_zero_diagonal(lf, n)
    if i:
        return i
    # Column-major, the row-major buffers are transposed: lower L is an upper U with A = U^T U,
    # and the formula becomes dA = U^-1 S U^-T with S from M = U dU^T.
    b = <floating*>malloc(<Py_ssize_t>n * n * sizeof(floating))
    if b == NULL:
        return NO_MEMORY
    for i in range(n):
        for j in range(n):
            b[i * n + j] = dl[i * n + j] if (j <= i) == lower or i == j else 0
    # lower: b := dU U^T = M^T, S from its column-major upper triangle (row-major lower);
    # upper: b := L^T dL = M, S from its column-major lower triangle (row-major upper).
    if lower:
        xtrmm(c'R', c'U', c'T', n, n, 1, <floating*>lf, n, b, n)
    else:
        xtrmm(c'L', c'L', c'T', n, n, 1, <floating*>lf, n, b, n)
    for i in range(n):
        for j in range(i + 1):
            t = (b[i * n + j] if lower else b[j * n + i]) * <floating>0.5
            da[i * n + j] = t
            da[j * n + i] = t
    free(b)
    if lower:
        xtrsm(c'L', c'U', c'N', n, n, 1, <floating*>lf, n, da, n)
        xtrsm(c'R', c'U', c'T', n, n, 1, <floating*>lf, n, da, n)
    else:
        xtrsm(c'L', c'L', c'T', n, n, 1, <floating*>lf, n, da, n)
        xtrsm(c'R', c'L', c'N', n, n, 1, <floating*>lf, n, da, n)
    symmetrize(da, n)
    return 0


cdef int potri_one(const Job* job, floating** p) noexcept nogil:
    cdef int n = job.n, info
    cdef bint lower = (job.flags & LOWER) != 0
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, lower):
        return NONFINITE
    copy(p[1], p[0], <Py_ssize_t>n * n)
    info = xpotri(c'U' if lower else c'L', n, p[1], n)
    mirror_triangle(p[1], n, lower)
    return info

cdef int potrs_one(const Job* job, floating** p) noexcept nogil:
    # X = (L L^T)^-1 B, B n x k. Column-major: X^T = B^T A^-1, two right-side solves.
    cdef int n = job.m, k = job.n, status
    cdef bint lower = (job.flags & LOWER) != 0
    cdef char uplo = c'U' if lower else c'L'
    if n == 0 or k == 0:
        return 0
    if not triangle_finite(p[0], n, lower) or not all_finite(p[1], <Py_ssize_t>n * k):
        return NONFINITE
    status = first_zero_diagonal(p[0], n)
    if status:
        return status
    copy(p[2], p[1], <Py_ssize_t>n * k)
    xtrsm(c'R', uplo, c'N' if lower else c'T', k, n, 1, p[0], n, p[2], ld(k))
    xtrsm(c'R', uplo, c'T' if lower else c'N', k, n, 1, p[0], n, p[2], ld(k))
    return 0


cdef inline void fill_nan(floating* a, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        a[i] = NAN


cdef int orthogonal_factor(const Job* job, floating** p, bint lq) noexcept nogil:
    """Thin LQ (``lq``: A = L Q, m <= n) or QR (A = Q R, m >= n) of a row-major m x n matrix.

    Row-major A is column-major A^T, so the LQ of A is the QR of what LAPACK sees (and the QR of A
    its LQ): the factored buffer already holds Q, and the triangle LAPACK leaves is, read
    row-major, the transposed triangular factor we want. Signs are then flipped so that the
    triangular factor has a non-negative diagonal.
    """
    cdef int m = job.m, n = job.n, r = m if lq else n    # r: order of the triangular factor
    cdef int rows = n if lq else m                      # the long side
    cdef floating* q = p[1]
    cdef floating* t = p[2]
    cdef floating query = 0, query2 = 0
    cdef floating* work
    cdef int lwork, i, j, info
    if r == 0:
        return 0
    if not all_finite(p[0], <Py_ssize_t>m * n):
        fill_nan(q, <Py_ssize_t>m * n)
        fill_nan(t, <Py_ssize_t>r * r)
        return NONFINITE
    copy(q, p[0], <Py_ssize_t>m * n)
    # Column-major, q is r x rows... (lq: n x m with ld n; qr: n x m with ld n).
    if lq:
        xgeqrf(n, m, q, n, NULL, &query, -1)
        xorgqr(n, m, m, q, n, NULL, &query2, -1)
    else:
        xgelqf(n, m, q, n, NULL, &query, -1)
        xorglq(n, m, n, q, n, NULL, &query2, -1)
    lwork = workspace_size(query if query > query2 else query2, rows)
    work = <floating*>malloc((lwork + r) * sizeof(floating))
    if work == NULL:
        return NO_MEMORY
    if lq:
        info = xgeqrf(n, m, q, n, work + lwork, work, lwork)
    else:
        info = xgelqf(n, m, q, n, work + lwork, work, lwork)
    # Column-major element (i, j) lies at q[i + j*n]; the triangle (lq: R upper, i <= j < m;
    # qr: L lower, j <= i < n) is the transposed row-major factor t[j*r + i].
    for j in range(r):
        for i in range(r):
            t[j * r + i] = q[i + j * n] if (i <= j) == lq or i == j else 0
    if lq:
        info = xorgqr(n, m, m, q, n, work + lwork, work, lwork)
    else:
        info = xorglq(n, m, n, q, n, work + lwork, work, lwork)
    free(work)
    # Non-negative diagonal: flip column j of L and row j of Q (lq), or row j of R and column j
    # of Q (qr).
    for j in range(r):
        if t[j * r + j] < 0:
            for i in range(r):
                if lq:
                    t[i * r + j] = -t[i * r + j]
                else:
                    t[j * r + i] = -t[j * r + i]
            if lq:
                for i in range(n):
                    q[j * n + i] = -q[j * n + i]
            else:
                for i in range(m):
                    q[i * n + j] = -q[i * n + j]
    return info


cdef int syevd_one(const Job* job, floating** p) noexcept nogil:
    # Symmetric: row-major lower triangle is LAPACK's upper. Column-major eigenvector columns
    # are row-major rows, which is the layout the API documents.
    cdef int n = job.n, info, lwork, liwork, i, j, big
    cdef floating* u = p[1]
    cdef floating query = 0
    cdef int iquery = 0
    cdef floating* work
    cdef int* iwork
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, True):
        return NONFINITE
    copy(u, p[0], <Py_ssize_t>n * n)
    xsyevd(n, u, n, p[2], &query, -1, &iquery, -1)
    lwork = workspace_size(query, 1 + 6 * n + 2 * n * n)
    liwork = iquery if iquery > 3 + 5 * n else 3 + 5 * n
    work = <floating*>malloc(lwork * sizeof(floating))
    iwork = <int*>malloc(liwork * sizeof(int))
    if work == NULL or iwork == NULL:
        free(work)
        free(iwork)
        return NO_MEMORY
    info = xsyevd(n, u, n, p[2], work, lwork, iwork, liwork)
    free(work)
    free(iwork)
    # Deterministic signs: each row's entry of largest magnitude (first on ties) is positive.
    for i in range(n):
        big = 0
        for j in range(1, n):
            if fabs(u[i * n + j]) > fabs(u[i * n + big]):
                big = j
        if u[i * n + big] < 0:
            for j in range(n):
                u[i * n + j] = -u[i * n + j]
    return info


cdef int syevd_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """dA of syevd from (dU, dlam, U, lam, tolerance), either cotangent possibly absent (NULL =
    zero): dA = U^T S U with S the symmetric part of diag(dlam) + F * (U dU^T) and
    F[i, j] = 1/(lam[j] - lam[i]), zero where the gap is within the matrix's tolerance (one
    eigenspace; the front end computes it). Three products in cache instead of a pass over the
    batch for each step."""
    cdef int n = job.n, i, j
    cdef floating* du = p[0]
    cdef floating* dlam = p[1]
    cdef floating* u = p[2]
    cdef floating* lam = p[3]
    cdef floating tolerance = p[4][0]
    cdef floating* da = p[5]
    cdef floating* m = work
    cdef floating* t = work + <Py_ssize_t>n * n
    cdef floating gap
    if n == 0:
        return 0
    # Row-major M = U dU^T is column-major M^T = dU U^T, with the buffers' column-major views.
    if du != NULL:
        xgemm(c'T', c'N', n, n, n, 1, du, n, u, n, 0, m, n)
    else:
        memset(m, 0, <Py_ssize_t>n * n * sizeof(floating))
    for i in range(n):
        for j in range(n):
            gap = lam[j] - lam[i]
            m[i * n + j] = m[i * n + j] / gap if fabs(gap) > tolerance else 0
        m[i * n + i] = dlam[i] if dlam != NULL else 0
    symmetrize(m, n)
    # U^T S U: the row-major U is column-major U^T, so this is Ucm S Ucm^T column-major.
    xgemm(c'N', c'N', n, n, n, 1, u, n, m, n, 0, t, n)
    xgemm(c'N', c'T', n, n, n, 1, t, n, u, n, 0, da, n)
    symmetrize(da, n)
    return 0


cdef int inverse_one(const Job* job, floating** p) noexcept nogil:
    # The inverse of the transpose LAPACK sees is the transpose of the inverse: no flip needed.
    cdef int n = job.n, info, lwork
    cdef floating query = 0
    cdef floating* work
    cdef int* ipiv
    if n == 0:
        return 0
    if not all_finite(p[0], <Py_ssize_t>n * n):
        return NONFINITE
    copy(p[1], p[0], <Py_ssize_t>n * n)
    xgetri(n, p[1], n, NULL, &query, -1)
    lwork = workspace_size(query, n)
    work = <floating*>malloc(lwork * sizeof(floating))
    ipiv = <int*>malloc(n * sizeof(int))
    if work == NULL or ipiv == NULL:
        free(work)
        free(ipiv)
        return NO_MEMORY
    info = xgetrf(n, p[1], n, ipiv)
    if info == 0:
        info = xgetri(n, p[1], n, ipiv, work, lwork)
    free(work)
    free(ipiv)
    return info


cdef inline floating lu_sign_logabs(floating* lu, int n, const int* ipiv, floating* logabs) noexcept nogil:
    """Sign of det from an LU factorisation (0 if singular); log|det| into logabs."""
    cdef floating sign = 1, total = 0, d
    cdef int i
    for i in range(n):
        d = lu[i * n + i]
        if ipiv[i] != i + 1:
            sign = -sign
        if d < 0:
            sign = -sign
            d = -d
        if d == 0:
            logabs[0] = -INFINITY
            return 0
        total += log(d)
    logabs[0] = total
    return sign


cdef int slogdet_one(const Job* job, floating** p) noexcept nogil:
    # det(A^T) = det(A): LAPACK's view of the row-major matrix is fine as it is.
    cdef int n = job.n
    cdef floating* lu
    cdef int* ipiv
    if n == 0:
        p[1][0] = 1
        p[2][0] = 0
        return 0
    if not all_finite(p[0], <Py_ssize_t>n * n):
        p[1][0] = NAN
        p[2][0] = NAN
        return NONFINITE
    lu = <floating*>malloc(<Py_ssize_t>n * n * sizeof(floating))
    ipiv = <int*>malloc(n * sizeof(int))
    if lu == NULL or ipiv == NULL:
        free(lu)
        free(ipiv)
        return NO_MEMORY
    copy(lu, p[0], <Py_ssize_t>n * n)
    xgetrf(n, lu, n, ipiv)           # info > 0 (singular) shows as a zero pivot below
    p[1][0] = lu_sign_logabs(lu, n, ipiv, p[2])
    free(lu)
    free(ipiv)
    return 0


cdef int cofactor_one(const Job* job, floating** p) noexcept nogil:
    """The cofactor matrix adj(A)^T = d det(A) / dA, exact also for singular A.

    With the SVD A = X S Y^T, adj(A)^T = det(X) det(Y) X adj(S) Y^T, where adj(S) is diagonal
    with entries prod_{j != i} s_j: no division, so rank n-1 is handled exactly.
    """
    cdef int n = job.n, info, lwork, i, j
    cdef Py_ssize_t nn = <Py_ssize_t>n * n
    cdef floating query = 0, running, sign, logabs
    cdef floating* a
    cdef floating* u
    cdef floating* vt
    cdef floating* s
    cdef floating* adj
    cdef floating* work
    cdef int* iwork
    if n == 0:
        return 0
    if not all_finite(p[0], nn):
        return NONFINITE
    xgesdd(n, p[0], NULL, NULL, NULL, &query, -1, NULL)
    lwork = workspace_size(query, 5 * n * n + 7 * n)
    a = <floating*>malloc((3 * nn + 2 * n + lwork) * sizeof(floating))
    iwork = <int*>malloc(8 * n * sizeof(int))
    if a == NULL or iwork == NULL:
        free(a)
        free(iwork)
        return NO_MEMORY
    u, vt = a + nn, a + 2 * nn
    s, adj, work = a + 3 * nn, a + 3 * nn + n, a + 3 * nn + 2 * n
    copy(a, p[0], nn)
    info = xgesdd(n, a, s, u, vt, work, lwork, iwork)
    if info == 0:
        # Column-major, LAPACK factors A^T = u s vt; the row-major result C satisfies
        # C^T = det(u) det(vt) u adj(s) vt, which is what gemm writes into p[1].
        running = 1
        for i in range(n):
            adj[i] = running
            running *= s[i]
        running = 1
        for i in range(n - 1, -1, -1):
            adj[i] *= running
            running *= s[i]
        copy(a, u, nn)
        xgetrf(n, a, n, iwork)
        sign = lu_sign_logabs(a, n, iwork, &logabs)
        copy(a, vt, nn)
        xgetrf(n, a, n, iwork)
        sign *= lu_sign_logabs(a, n, iwork, &logabs)
        for j in range(n):
            for i in range(n):
                u[i + j * n] *= sign * adj[j]
        xgemm(c'N', c'N', n, n, n, <floating>1, u, n, vt, n, <floating>0, p[1], n)
    free(a)
    free(iwork)
    return info


# ---- interleaved kernels for batches of small matrices ----------------------------------------
# A LAPACK call per 4 x 4 matrix costs more than its arithmetic, and a scalar loop is bound by
# the latency of its sqrt/divide chain. These kernels take LANES matrices at once, element e of
# lane v stored at w[e * LANES + v], so that every operation is a fixed-length loop over lanes
# the compiler turns into vector instructions. A short last block repeats its last matrix in
# the spare lanes; their results are not written back.

cdef inline Py_ssize_t magnitude(Py_ssize_t x) noexcept nogil:
    return -x if x < 0 else x

ctypedef struct Sweep:
    # How gather/scatter walk an operand: along its contiguous axis (rows when by_rows), outer
    # index forwards in memory; w_outer/w_inner are the matching steps in the lanes scratch.
    bint by_rows
    int outer, inner
    Py_ssize_t outer_step, inner_step, w_outer, w_inner

cdef inline Sweep sweep(int rows, int cols, Py_ssize_t row_step, Py_ssize_t col_step) noexcept nogil:
    cdef Sweep g
    g.by_rows = magnitude(col_step) <= magnitude(row_step)
    g.outer, g.inner = (rows, cols) if g.by_rows else (cols, rows)
    g.outer_step, g.inner_step = (row_step, col_step) if g.by_rows else (col_step, row_step)
    g.w_outer = (cols if g.by_rows else 1) * LANES
    g.w_inner = (1 if g.by_rows else cols) * LANES
    return g

cdef inline void gather(floating* w, floating** src, int rows, int cols, Py_ssize_t offset,
                        Py_ssize_t row_step, Py_ssize_t col_step, bint lower_only) noexcept nogil:
    """w[i, j] := src[v][offset + i*row_step + j*col_step] for every lane (j <= i if lower_only):
    any transpose or index reversal of a row-major matrix, chosen by the steps."""
    # Lane by lane, along the source's contiguous axis and forwards in memory: each matrix is
    # read in one sweep the hardware prefetcher follows (the writes land in cached scratch).
    cdef Sweep g = sweep(rows, cols, row_step, col_step)
    cdef const floating* source
    cdef floating* target
    cdef int a, b, o, first, last, v
    for v in range(LANES):
        for a in range(g.outer):
            o = g.outer - 1 - a if g.outer_step < 0 else a
            first, last = 0, g.inner
            if lower_only and g.by_rows:         # j <= i: row i has columns 0..i,
                last = o + 1
            elif lower_only:                     # and column j rows j..
                first = o
            source = src[v] + offset + o * g.outer_step
            target = w + o * g.w_outer + v
            for b in range(first, last):
                target[b * g.w_inner] = source[b * g.inner_step]

cdef inline void scatter(floating** dst, int count, const floating* w, int rows, int cols,
                         Py_ssize_t offset, Py_ssize_t row_step, Py_ssize_t col_step) noexcept nogil:
    """The inverse of gather (all of w) for the first ``count`` lanes, in the same order."""
    cdef Sweep g = sweep(rows, cols, row_step, col_step)
    cdef Py_ssize_t e
    cdef const floating* source
    cdef floating* target
    cdef int a, b, o, v
    if col_step == 1 and row_step == cols:      # contiguous: one sweep
        for v in range(count):
            target = dst[v] + offset
            for e in range(<Py_ssize_t>rows * cols):
                target[e] = w[e * LANES + v]
        return
    for v in range(count):
        for a in range(g.outer):
            o = g.outer - 1 - a if g.outer_step < 0 else a
            target = dst[v] + offset + o * g.outer_step
            source = w + o * g.w_outer + v
            for b in range(g.inner):
                target[b * g.inner_step] = source[b * g.w_inner]

cdef inline void keep_triangle(floating* w, int rows, int cols, bint lower) noexcept nogil:
    """Zero the strict upper (``lower``) or strict lower triangle of every lane of w."""
    cdef int i, j, v
    for i in range(rows):
        for j in range(cols):
            if (j > i) if lower else (j < i):
                for v in range(LANES):
                    w[(i * cols + j) * LANES + v] = 0

cdef inline void mirror_lower(floating* w, int n) noexcept nogil:
    """Copy the lower triangle of every lane of w onto its upper one."""
    cdef int i, j, v
    for i in range(n):
        for j in range(i):
            for v in range(LANES):
                w[(j * n + i) * LANES + v] = w[(i * n + j) * LANES + v]

cdef inline void mark_nonfinite(const floating* w, int rows, int cols, bint lower_only,
                                int* status) noexcept nogil:
    # x * 0 is NaN exactly for inf and NaN; one NaN makes the lane's sum NaN.
    cdef floating total[LANES]
    cdef int i, j, v
    for v in range(LANES):
        total[v] = 0
    for i in range(rows):
        for j in range(i + 1 if lower_only else cols):
            for v in range(LANES):
                total[v] = total[v] + w[(i * cols + j) * LANES + v] * 0
    for v in range(LANES):
        if total[v] != 0:
            status[v] = NONFINITE

cdef inline void mark_zero_diagonal(const floating* w, int n, bint reversed,
                                    int* status) noexcept nogil:
    """Status i+1 for the first zero, i, on the diagonal of the operand (whose diagonal entry i
    is w's entry n-1-i if it was gathered reversed); non-finite lanes keep their status."""
    cdef int i, v, position
    for i in range(n):
        position = i if reversed else n - 1 - i     # the operand's diagonal, last entry first
        for v in range(LANES):
            if w[(position * n + position) * LANES + v] == 0 and status[v] >= 0:
                status[v] = (n - position if reversed else position + 1)

cdef inline void reciprocal_diagonal(floating* out, const floating* t, int n) noexcept nogil:
    cdef int i, v
    for i in range(n):
        for v in range(LANES):
            out[i * LANES + v] = 1 / t[(i * n + i) * LANES + v]

cdef inline void back_substitute(const floating* t, const floating* inverse_diagonal,
                                 floating* x, int n, int cols) noexcept nogil:
    """In place x := T^-T x for lower triangular T (n x n) and x (n x cols), every lane."""
    cdef floating s[LANES]
    cdef int i, j, k, v
    cdef Py_ssize_t ij
    for i in range(n - 1, -1, -1):
        for j in range(cols):
            ij = (i * cols + j) * LANES
            for v in range(LANES):
                s[v] = x[ij + v]
            for k in range(i + 1, n):
                for v in range(LANES):
                    s[v] = s[v] - t[(k * n + i) * LANES + v] * x[(k * cols + j) * LANES + v]
            for v in range(LANES):
                x[ij + v] = s[v] * inverse_diagonal[i * LANES + v]

cdef inline void add_dot(floating* acc, const floating* x, Py_ssize_t x_step,
                         const floating* y, Py_ssize_t y_step, int length) noexcept nogil:
    """acc += sum_i x[i x_step] y[i y_step] for every lane (steps in scratch elements)."""
    cdef int i, v
    for i in range(length):
        for v in range(LANES):
            acc[v] = acc[v] + x[i * x_step + v] * y[i * y_step + v]

cdef inline void largest_magnitude(floating* largest, const floating* x, Py_ssize_t step,
                                   Py_ssize_t length) noexcept nogil:
    """largest := max |x[i step]| for every lane."""
    cdef floating y
    cdef Py_ssize_t i
    cdef int v
    for v in range(LANES):
        largest[v] = 0
    for i in range(length):
        for v in range(LANES):
            y = fabs(x[i * step + v])
            largest[v] = y if y > largest[v] else largest[v]

cdef inline void set_identity(floating* w, int rows, int cols) noexcept nogil:
    """Every lane of the rows x cols w := I (ones on the diagonal, zeros elsewhere)."""
    cdef int i, j, v
    for i in range(rows):
        for j in range(cols):
            for v in range(LANES):
                w[(i * cols + j) * LANES + v] = 1 if i == j else 0

cdef void cholesky_lanes(floating* a, int n, int* status) noexcept nogil:
    """In place, row by row: the lower triangle of every lane of ``a`` becomes its Cholesky
    factor. A lane whose leading minor of order i+1 is not positive gets status i+1 (if it had
    none) and carries NaN or inf onwards, which is harmless: its result is discarded."""
    # Per-lane temporaries are local arrays: the compiler then knows that storing to ``a``
    # does not change them, and vectorises across lanes.
    cdef floating s[LANES]
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef int i, j, k, v
    cdef Py_ssize_t ij, ik, jk
    for i in range(n):
        for j in range(i + 1):
            ij = (i * n + j) * LANES
            for v in range(LANES):
                s[v] = a[ij + v]
            for k in range(j):
                ik = (i * n + k) * LANES
                jk = (j * n + k) * LANES
                for v in range(LANES):
                    s[v] = s[v] - a[ik + v] * a[jk + v]
            if j < i:
                for v in range(LANES):
                    a[ij + v] = s[v] * inverse_diagonal[j * LANES + v]
            else:
                for v in range(LANES):
                    if not s[v] > 0 and status[v] == 0:
                        status[v] = i + 1
                for v in range(LANES):
                    s[v] = sqrt(s[v])
                for v in range(LANES):
                    inverse_diagonal[i * LANES + v] = 1 / s[v]
                for v in range(LANES):
                    a[ij + v] = s[v]

cdef void potrf_lanes(const Job* job, floating** p, int count, floating* w,
                      int* status) noexcept nogil:
    cdef int n = job.n
    cdef bint lower = (job.flags & LOWER) != 0
    cdef floating* a = w
    # Upper U = L^T: gather the transpose, factor as lower, scatter transposed.
    gather(a, p, n, n, 0, n if lower else 1, 1 if lower else n, True)
    mark_nonfinite(a, n, n, True, status)
    cholesky_lanes(a, n, status)
    keep_triangle(a, n, n, True)
    scatter(p + LANES, count, a, n, n, 0, n if lower else 1, 1 if lower else n)

cdef void potrf_backward_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """potrf_backward_one for LANES small matrices at once, as the reverse of cholesky_lanes'
    loops step by step (the unblocked reverse mode of Murray, "Differentiation of the Cholesky
    decomposition", 2016): n^3/3 multiply-adds where L^-T S L^-1 takes 5n^3/6. Step (i, j)
    of the forward, s = A[i, j] - sum_{k<j} L[i, k] L[j, k] and L[i, j] = s / L[j, j] (or
    sqrt(s) on the diagonal), is undone for i, j descending: its cotangent sbar is the
    gradient of the lower triangle of A at (i, j), and it passes -sbar L[j, k], -sbar L[i, k]
    on to dL[i, k], dL[j, k] (and -sbar L[i, j] to dL[j, j]). dL[i, j] is read last at that
    step, so the gradient overwrites it; the symmetric dA halves it off the diagonal."""
    cdef int n = job.n, i, j, k, v
    cdef bint lower = (job.flags & LOWER) != 0
    cdef floating* l = w
    cdef floating* x = w + <Py_ssize_t>n * n * LANES
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef floating s[LANES]
    cdef floating* x_i
    cdef floating* x_j
    cdef const floating* l_i
    cdef const floating* l_j
    gather(x, p, n, n, 0, n if lower else 1, 1 if lower else n, True)
    gather(l, p + LANES, n, n, 0, n if lower else 1, 1 if lower else n, True)
    mark_nonfinite(l, n, n, True, status)
    mark_nonfinite(x, n, n, True, status)
    mark_zero_diagonal(l, n, False, status)
    reciprocal_diagonal(inverse_diagonal, l, n)
    for i in range(n - 1, -1, -1):
        x_i = x + <Py_ssize_t>i * n * LANES
        l_i = l + <Py_ssize_t>i * n * LANES
        for j in range(i, -1, -1):
            x_j = x + <Py_ssize_t>j * n * LANES
            l_j = l + <Py_ssize_t>j * n * LANES
            if j == i:                           # L[i, i] = sqrt(s)
                for v in range(LANES):
                    s[v] = x_i[i * LANES + v] * inverse_diagonal[i * LANES + v] * <floating>0.5
            else:                                # L[i, j] = s / L[j, j]
                for v in range(LANES):
                    s[v] = x_i[j * LANES + v] * inverse_diagonal[j * LANES + v]
                    x_j[j * LANES + v] = x_j[j * LANES + v] - s[v] * l_i[j * LANES + v]
            for v in range(LANES):
                x_i[j * LANES + v] = s[v] if j == i else s[v] * <floating>0.5
            for k in range(j):
                for v in range(LANES):
                    x_i[k * LANES + v] = x_i[k * LANES + v] - s[v] * l_j[k * LANES + v]
                    x_j[k * LANES + v] = x_j[k * LANES + v] - s[v] * l_i[k * LANES + v]
    mirror_lower(x, n)
    scatter(p + 2 * LANES, count, x, n, n, 0, n, 1)

ctypedef struct LowerForm:
    int t                   # order of A
    int c                   # columns of B' (B, or B^T on the right side)
    bint reversed           # T = J T0 J, J the reversal, because T0 is upper
    Py_ssize_t a_at, a_row, a_col       # gather steps of T from A
    Py_ssize_t b_at, b_row, b_col       # and of B' from B (of X' from X)

cdef inline LowerForm lower_form(const Job* job) noexcept nogil:
    """The index maps that turn a trsm/trmm job (any side, triangle, transpose) into one with a
    lower triangular T on the left: see triangular_lanes."""
    cdef LowerForm g
    cdef bint right = (job.flags & RIGHT) != 0, lower = (job.flags & LOWER) != 0
    cdef bint transposed = ((job.flags & TRANS_A) != 0) != right    # T0 = op(A), or its transpose
    g.t = job.n if right else job.m
    g.c = job.m if right else job.n
    g.reversed = lower == transposed
    g.a_at, g.a_row, g.a_col = 0, (1 if transposed else g.t), (g.t if transposed else 1)
    g.b_at, g.b_row, g.b_col = 0, (1 if right else job.n), (job.n if right else 1)
    if g.reversed:
        g.a_at, g.a_row, g.a_col = (g.t - 1) * (g.a_row + g.a_col), -g.a_row, -g.a_col
        g.b_at, g.b_row = (g.t - 1) * g.b_row, -g.b_row
    return g

cdef void triangular_lanes(const Job* job, floating** p, int count, floating* w, int* status,
                           bint solve) noexcept nogil:
    """trsm (``solve``) or trmm for LANES small matrices: C = alpha op(A)^-1 B, or alpha op(A) B,
    with B @ op(A) instead when RIGHT. Every variant becomes C' = alpha T^-1 B' (or T B') with T
    lower triangular: the right side transposes the problem (C^T = op(A)^T... B^T), and an
    upper T is turned lower by reversing its row and column order (J T J, J the reversal),
    which reverses the rows of B' and C'. Status as trsm_one: non-finite entries, then the
    first zero on A's diagonal."""
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, i, j, k, v
    cdef floating alpha = <floating>job.alpha
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>t * t * LANES
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef floating s[LANES]
    cdef Py_ssize_t ij
    gather(a, p, t, t, g.a_at, g.a_row, g.a_col, True)
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    if solve:
        mark_nonfinite(a, t, t, True, status)
        mark_nonfinite(x, t, c, False, status)
        mark_zero_diagonal(a, t, g.reversed, status)
        reciprocal_diagonal(inverse_diagonal, a, t)
        for i in range(t):                       # forward substitution, row by row
            for j in range(c):
                ij = (i * c + j) * LANES
                for v in range(LANES):
                    s[v] = alpha * x[ij + v]
                for k in range(i):
                    for v in range(LANES):
                        s[v] = s[v] - a[(i * t + k) * LANES + v] * x[(k * c + j) * LANES + v]
                for v in range(LANES):
                    x[ij + v] = s[v] * inverse_diagonal[i * LANES + v]
    else:
        for i in range(t - 1, -1, -1):           # row i of T B' needs rows k <= i of B'
            for j in range(c):
                for v in range(LANES):
                    s[v] = 0
                for k in range(i + 1):
                    for v in range(LANES):
                        s[v] = s[v] + a[(i * t + k) * LANES + v] * x[(k * c + j) * LANES + v]
                ij = (i * c + j) * LANES
                for v in range(LANES):
                    x[ij + v] = alpha * s[v]
    scatter(p + 2 * LANES, count, x, t, c, g.b_at, g.b_row, g.b_col)

cdef void trsm_backward_lanes(const Job* job, floating** p, int count, floating* w,
                              int* status) noexcept nogil:
    """trsm_backward_one for LANES small matrices, in the lower form of triangular_lanes: with
    X' = alpha T^-1 B', Y' = T^-T dX', dB' = alpha Y' and dT = -Y' X'^T on T's lower triangle;
    the same index maps carry dT back to A's read triangle and dB' to dB."""
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, i, j, k, v
    cdef floating alpha = <floating>job.alpha
    cdef floating* a = w
    cdef floating* x = a + <Py_ssize_t>t * t * LANES
    cdef floating* y = x + <Py_ssize_t>t * c * LANES
    cdef floating s[LANES]
    cdef floating inverse_diagonal[SMALL * LANES]
    gather(a, p, t, t, g.a_at, g.a_row, g.a_col, True)
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    gather(y, p + 2 * LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    mark_nonfinite(a, t, t, True, status)
    mark_nonfinite(y, t, c, False, status)
    mark_zero_diagonal(a, t, g.reversed, status)
    reciprocal_diagonal(inverse_diagonal, a, t)
    back_substitute(a, inverse_diagonal, y, t, c)             # Y' = T^-T dX'
    for i in range(t):                           # dT = -Y' X'^T, lower triangle (over T)
        for j in range(i + 1):
            for v in range(LANES):
                s[v] = 0
            for k in range(c):
                for v in range(LANES):
                    s[v] = s[v] - y[(i * c + k) * LANES + v] * x[(j * c + k) * LANES + v]
            for v in range(LANES):
                a[(i * t + j) * LANES + v] = s[v]
    keep_triangle(a, t, t, True)
    for i in range(t * c):
        for v in range(LANES):
            y[i * LANES + v] = alpha * y[i * LANES + v]
    scatter(p + 3 * LANES, count, a, t, t, g.a_at, g.a_row, g.a_col)
    scatter(p + 4 * LANES, count, y, t, c, g.b_at, g.b_row, g.b_col)

cdef inline void householder(floating* x, Py_ssize_t step, int length, floating* tau,
                             floating* beta) noexcept nogil:
    """LAPACK's larfg for every lane: for the vector x[0], x[step], ... (``length`` lane
    entries), H = I - tau u u^T with u[0] = 1 and H x = (beta, 0, ..., 0), beta =
    -sign(x[0]) |x|; u below its first entry overwrites x's, x[0] is left alone. H = I (tau =
    0, beta = x[0]) when x is zero below its first entry. The norm is taken through
    x / max|x|, so no square underflows."""
    cdef floating largest[LANES]
    cdef floating inverse[LANES]
    cdef floating squares[LANES]
    cdef floating alpha, norm, y
    cdef floating tiny = DBL_MIN if floating is double else FLT_MIN
    cdef int i, v
    largest_magnitude(largest, x, step, length)
    for v in range(LANES):
        squares[v] = 0
        inverse[v] = 1 / (largest[v] + (1 if largest[v] < tiny else 0))
    for i in range(1, length):
        for v in range(LANES):
            y = x[i * step + v] * inverse[v]
            squares[v] = squares[v] + y * y
    for v in range(LANES):
        alpha = x[v]
        y = alpha * inverse[v]
        norm = largest[v] * sqrt(y * y + squares[v])
        norm = -norm if alpha >= 0 else norm
        tau[v] = (norm - alpha) / norm if squares[v] != 0 else 0
        inverse[v] = 1 / (alpha - norm) if squares[v] != 0 else 0
        beta[v] = norm if squares[v] != 0 else alpha
    for i in range(1, length):
        for v in range(LANES):
            x[i * step + v] = x[i * step + v] * inverse[v]

cdef inline void reflect(const floating* u, Py_ssize_t u_step, const floating* tau, floating* x,
                         Py_ssize_t x_step, int length) noexcept nogil:
    """x := H x for every lane, H = I - tau u u^T as householder leaves it: u[0] = 1 (not
    read), u[i] at u[i u_step]; x[i] at x[i x_step], ``length`` entries."""
    cdef floating s[LANES]
    cdef int i, v
    for v in range(LANES):
        s[v] = x[v]
    add_dot(s, u + u_step, u_step, x + x_step, x_step, length - 1)
    for v in range(LANES):
        s[v] = s[v] * tau[v]
        x[v] = x[v] - s[v]
    for i in range(1, length):
        for v in range(LANES):
            x[i * x_step + v] = x[i * x_step + v] - s[v] * u[i * u_step + v]

cdef void orthogonal_lanes(const Job* job, floating** p, int count, floating* w, int* status,
                           bint lq) noexcept nogil:
    """orthogonal_factor for LANES small matrices: Householder QR of M (r x c, r >= c), where M
    is A for QR and A^T for LQ (A = L Q is A^T = Q^T L^T), then the thin Q accumulated from the
    reflectors backwards; signs flipped so that the triangular factor's diagonal is
    non-negative (reflectors: householder)."""
    cdef int m = job.m, n = job.n, i, j, k, v
    cdef int r = n if lq else m, c = m if lq else n
    cdef Py_ssize_t row_step = 1 if lq else n, col_step = n if lq else 1
    cdef floating* a = w
    cdef floating* q = w + <Py_ssize_t>r * c * LANES
    cdef floating tau[SMALL * LANES]
    cdef floating beta[LANES]
    cdef floating scale[LANES]
    gather(a, p, r, c, 0, row_step, col_step, False)
    mark_nonfinite(a, r, c, False, status)
    for k in range(c):
        householder(a + (k * c + k) * LANES, c * LANES, r - k, tau + k * LANES, beta)
        for v in range(LANES):
            a[(k * c + k) * LANES + v] = beta[v]
        for j in range(k + 1, c):                # H applied to the columns on the right
            reflect(a + (k * c + k) * LANES, c * LANES, tau + k * LANES,
                    a + (k * c + j) * LANES, c * LANES, r - k)
    set_identity(q, r, c)                        # Q = H_0 ... H_{c-1} [I; 0]
    for k in range(c - 1, -1, -1):
        for j in range(k, c):
            reflect(a + (k * c + k) * LANES, c * LANES, tau + k * LANES,
                    q + (k * c + j) * LANES, c * LANES, r - k)
    for k in range(c):                           # non-negative diagonal
        for v in range(LANES):
            scale[v] = -1 if a[(k * c + k) * LANES + v] < 0 else 1
        for j in range(k, c):
            for v in range(LANES):
                a[(k * c + j) * LANES + v] = a[(k * c + j) * LANES + v] * scale[v]
        for i in range(r):
            for v in range(LANES):
                q[(i * c + k) * LANES + v] = q[(i * c + k) * LANES + v] * scale[v]
    scatter(p + LANES, count, q, r, c, 0, row_step, col_step)
    keep_triangle(a, c, c, False)                # R: the top c x c of a, reflectors dropped
    scatter(p + 2 * LANES, count, a, c, c, 0, 1 if lq else c, c if lq else 1)    # L = R^T

cdef inline void gather_or_zero(floating* w, floating** src, int rows, int cols,
                                Py_ssize_t row_step, Py_ssize_t col_step,
                                bint lower_only) noexcept nogil:
    # An absent optional operand (NULL) is zero.
    cdef Py_ssize_t e
    if src[0] != NULL:
        gather(w, src, rows, cols, 0, row_step, col_step, lower_only)
    else:
        for e in range(<Py_ssize_t>rows * cols * LANES):
            w[e] = 0

cdef void orthogonal_backward_lanes(const Job* job, floating** p, int count, floating* w,
                                    int* status) noexcept nogil:
    """dA of gelqf (flag LOWER) or geqrf for LANES small matrices, from (dQ, dT, Q, T), either
    cotangent possibly absent. In LQ form (QR read transposed: L = R^T, Q -> Q^T):
    M = L^T dL - dQ Q^T, S = its lower triangle mirrored, W = dQ + S Q, dA = L^-T W. Status as
    trsm_one on (L, W): a zero on L's diagonal is rank deficiency."""
    cdef int m = job.m, n = job.n, i, j, k, v
    cdef bint lq = (job.flags & LOWER) != 0
    cdef int c = m if lq else n, r = n if lq else m    # order of T, the long side
    cdef Py_ssize_t q_row = r if lq else 1, q_col = 1 if lq else c
    cdef Py_ssize_t t_row = c if lq else 1, t_col = 1 if lq else c
    cdef floating* q = w
    cdef floating* dq = q + <Py_ssize_t>c * r * LANES
    cdef floating* t = dq + <Py_ssize_t>c * r * LANES
    cdef floating* dt = t + <Py_ssize_t>c * c * LANES
    cdef floating* sym = dt + <Py_ssize_t>c * c * LANES
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef floating acc[LANES]
    cdef Py_ssize_t ij
    gather_or_zero(dq, p, c, r, q_row, q_col, False)
    gather_or_zero(dt, p + LANES, c, c, t_row, t_col, True)
    gather(q, p + 2 * LANES, c, r, 0, q_row, q_col, False)
    gather(t, p + 3 * LANES, c, c, 0, t_row, t_col, True)
    for i in range(c):                           # S from M's lower triangle
        for j in range(i + 1):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, t + (i * c + i) * LANES, c * LANES, dt + (i * c + j) * LANES,
                    c * LANES, c - i)            # (L^T dL)[i, j]: rows k >= i
            for k in range(r):
                for v in range(LANES):
                    acc[v] = acc[v] - dq[(i * r + k) * LANES + v] * q[(j * r + k) * LANES + v]
            for v in range(LANES):
                sym[(i * c + j) * LANES + v] = acc[v]
                sym[(j * c + i) * LANES + v] = acc[v]
    for i in range(c):                           # W = dQ + S Q, in dq
        for k in range(r):
            ij = (i * r + k) * LANES
            for v in range(LANES):
                acc[v] = dq[ij + v]
            for j in range(c):
                for v in range(LANES):
                    acc[v] = acc[v] + sym[(i * c + j) * LANES + v] * q[(j * r + k) * LANES + v]
            for v in range(LANES):
                dq[ij + v] = acc[v]
    mark_nonfinite(t, c, c, True, status)
    mark_nonfinite(dq, c, r, False, status)
    mark_zero_diagonal(t, c, False, status)
    reciprocal_diagonal(inverse_diagonal, t, c)
    back_substitute(t, inverse_diagonal, dq, c, r)            # dA = L^-T W
    scatter(p + 4 * LANES, count, dq, c, r, 0, q_row, q_col)

cdef inline void scale_lanes(floating* a, Py_ssize_t count, int* exponent) noexcept nogil:
    """Scale each lane of a by a power of two that brings its largest |entry| into [1/2, 1) and
    return the power undone by ldexp(x, exponent); a zero or non-finite lane is left alone."""
    cdef floating largest[LANES]
    cdef floating factor[LANES]
    cdef floating factor2[LANES]
    cdef Py_ssize_t k
    cdef int v
    largest_magnitude(largest, a, LANES, count)
    for v in range(LANES):
        frexp(largest[v], &exponent[v])
        if not (largest[v] > 0 and isfinite(largest[v])):
            exponent[v] = 0
        # 2^-exponent as two factors: one alone overflows for denormal input.
        factor[v] = ldexp(<floating>1, -(exponent[v] // 2))
        factor2[v] = ldexp(<floating>1, exponent[v] // 2 - exponent[v])
    for k in range(count):
        for v in range(LANES):
            a[k * LANES + v] = a[k * LANES + v] * factor[v] * factor2[v]

cdef void tridiagonalise_lanes(floating* a, int n, floating* d, floating* e,
                               floating* tau) noexcept nogil:
    """Householder reduction of the full symmetric a (every lane) to T = Q^T a Q with diagonal d
    and subdiagonal e (e[n-1] = 0). Q = H_0 ... H_{n-3}, H_k = I - tau_k v v^T acting on indices
    > k, v[k+1] = 1 and the rest of v left in column k of a below the diagonal (householder)."""
    cdef floating acc[LANES]
    cdef int i, j, k, v
    for k in range(n - 2):
        householder(a + ((k + 1) * n + k) * LANES, n * LANES, n - k - 1, tau + k * LANES,
                    e + k * LANES)
        for v in range(LANES):
            d[k * LANES + v] = a[(k * n + k) * LANES + v]
            a[((k + 1) * n + k) * LANES + v] = 1
        # The trailing block B becomes H B H = B - v w^T - w v^T with
        # w = tau B v - (tau^2/2)(v^T B v) v, built in row k (no longer needed).
        for i in range(k + 1, n):                # tau B v
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, a + (i * n + k + 1) * LANES, LANES, a + ((k + 1) * n + k) * LANES,
                    n * LANES, n - k - 1)
            for v in range(LANES):
                a[(k * n + i) * LANES + v] = tau[k * LANES + v] * acc[v]
        for v in range(LANES):
            acc[v] = 0
        add_dot(acc, a + (k * n + k + 1) * LANES, LANES, a + ((k + 1) * n + k) * LANES,
                n * LANES, n - k - 1)
        for v in range(LANES):
            acc[v] = acc[v] * tau[k * LANES + v] / 2
        for i in range(k + 1, n):
            for v in range(LANES):
                a[(k * n + i) * LANES + v] = (a[(k * n + i) * LANES + v]
                                              - acc[v] * a[(i * n + k) * LANES + v])
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                for v in range(LANES):
                    a[(i * n + j) * LANES + v] = (
                        a[(i * n + j) * LANES + v]
                        - a[(i * n + k) * LANES + v] * a[(k * n + j) * LANES + v]
                        - a[(k * n + i) * LANES + v] * a[(j * n + k) * LANES + v])
    for k in range(max(n - 2, 0), n):
        for v in range(LANES):
            d[k * LANES + v] = a[(k * n + k) * LANES + v]
            e[k * LANES + v] = a[((k + 1) * n + k) * LANES + v] if k + 1 < n else 0

cdef void transposed_q_lanes(floating* u, const floating* a, const floating* tau,
                             int n) noexcept nogil:
    """u := Q^T = H_{n-3} ... H_0 from tridiagonalise_lanes' reflectors, by rows: u := u H_k
    for k descending touches only rows and columns > k."""
    cdef int i, k
    set_identity(u, n, n)
    for k in range(n - 3, -1, -1):
        for i in range(k + 1, n):
            reflect(a + ((k + 1) * n + k) * LANES, n * LANES, tau + k * LANES,
                    u + (i * n + k + 1) * LANES, LANES, n - k - 1)

cdef void tridiagonal_ql_lanes(floating* d, floating* e, floating* u, int n,
                               int* status) noexcept nogil:
    """Eigenvalues of the tridiagonal (d, e) into d (unordered), every rotation also applied to
    the rows of u: implicit QL sweeps with Wilkinson shifts, the iteration of LAPACK's steqr.
    For eigenvalue l, each lane's sweep starts at its first negligible e[m] (m >= l), with
    negligible relative to the norm of T as in EISPACK's tql2 (steqr's test, relative to the
    neighbouring d, would need QR sweeps instead of QL for matrices graded the other way);
    that is absolute accuracy eps |A|, as LAPACK's. Lanes sweep in lock step: one that has
    converged, or failed, gets identity rotations until every lane has. A lane still short of
    convergence after EIGEN_SWEEPS sweeps gets status n-1-l (the off-diagonals left)."""
    cdef floating norm_t[LANES]
    cdef floating sine[LANES]
    cdef floating cosine[LANES]
    cdef floating carry[LANES]
    cdef floating chase[LANES]
    cdef floating on[LANES]
    cdef floating on_next[LANES]
    cdef floating rot_c[SMALL * LANES]
    cdef floating rot_s[SMALL * LANES]
    cdef int split[LANES]
    cdef floating b, f, g, r, t, y, z, c, s
    cdef floating eps = DBL_EPSILON if floating is double else FLT_EPSILON
    cdef floating tiny = DBL_MIN if floating is double else FLT_MIN
    cdef floating* row
    cdef int i, j, l, v, top, sweep
    for v in range(LANES):
        norm_t[v] = 0
    for i in range(n):
        for v in range(LANES):
            y = fabs(d[i * LANES + v]) + fabs(e[i * LANES + v])
            norm_t[v] = y if y > norm_t[v] else norm_t[v]
    for l in range(n):
        for sweep in range(EIGEN_SWEEPS + 1):
            top = l
            for v in range(LANES):
                split[v] = l
                while status[v] == 0 and split[v] < n - 1:
                    if fabs(e[split[v] * LANES + v]) <= eps * norm_t[v]:
                        e[split[v] * LANES + v] = 0
                        break
                    split[v] += 1
                top = split[v] if split[v] > top else top
            if top == l:
                break
            if sweep == EIGEN_SWEEPS:
                for v in range(LANES):
                    if split[v] > l:
                        status[v] = n - 1 - l
                break
            for v in range(LANES):           # the Wilkinson shift of the top 2 x 2 block
                g = (d[(l + 1) * LANES + v] - d[l * LANES + v]) / (2 * e[l * LANES + v])
                r = sqrt(g * g + 1)
                g = (d[split[v] * LANES + v] - d[l * LANES + v]
                     + e[l * LANES + v] / (g + (r if g >= 0 else -r)))
                chase[v] = g if split[v] > l else 0      # finite in idle lanes (see below)
                sine[v], cosine[v], carry[v] = 1, 1, 0
            for i in range(top - 1, l - 1, -1):
                for v in range(LANES):
                    on[v] = 1 if i < split[v] else 0
                    on_next[v] = 1 if i + 1 < split[v] else 0
                # Lanes not yet at their split (or done) keep their state through exact blends
                # x*1 + y*0 of finite values: unlike branches, that stays vector code.
                for v in range(LANES):
                    f = sine[v] * e[i * LANES + v]
                    b = cosine[v] * e[i * LANES + v]
                    # The rotation taking (g, f) to (r, 0), through (g, f)/max(|g|, |f|): no
                    # square under- or overflows. Below tiny (and for f = g = 0, as steqr's)
                    # it is c = 1, s = 0.
                    r = fabs(f) if fabs(f) > fabs(chase[v]) else fabs(chase[v])
                    y = 1 / (r + (1 if r < tiny else 0))
                    c = chase[v] * y
                    s = f * y
                    t = sqrt(c * c + s * s)
                    r = r * t
                    y = 1 / (t + (1 if t == 0 else 0))
                    c = c * y + (1 if t == 0 else 0)
                    s = s * y
                    g = d[(i + 1) * LANES + v] - carry[v]
                    t = (d[i * LANES + v] - g) * s + 2 * c * b
                    y = s * t
                    z = 1 - on[v]
                    e[(i + 1) * LANES + v] = (on_next[v] * r
                                              + (1 - on_next[v]) * e[(i + 1) * LANES + v])
                    d[(i + 1) * LANES + v] = on[v] * (g + y) + z * d[(i + 1) * LANES + v]
                    carry[v] = on[v] * y
                    chase[v] = on[v] * (c * t - b) + z * chase[v]
                    rot_c[i * LANES + v] = on[v] * c + z
                    rot_s[i * LANES + v] = on[v] * s
                    cosine[v] = rot_c[i * LANES + v]
                    sine[v] = rot_s[i * LANES + v] + z
            for i in range(top - 1, l - 1, -1):     # rows (i, i+1) of u, in the sweep's order
                row = u + <Py_ssize_t>i * n * LANES
                for j in range(n):
                    for v in range(LANES):
                        y = row[j * LANES + v]
                        z = row[(n + j) * LANES + v]
                        row[(n + j) * LANES + v] = rot_s[i * LANES + v] * y + rot_c[i * LANES + v] * z
                        row[j * LANES + v] = rot_c[i * LANES + v] * y - rot_s[i * LANES + v] * z
            for v in range(LANES):
                if l < split[v]:
                    d[l * LANES + v] = d[l * LANES + v] - carry[v]
                    e[l * LANES + v] = chase[v]

cdef void eigen_lanes(const Job* job, floating** p, int count, floating* w,
                      int* status) noexcept nogil:
    """syevd_one for LANES small matrices, without LAPACK: each lane scaled by a power of two
    (no overflow in what follows, exact to undo), tridiagonalised A = Q T Q^T, and T
    diagonalised by QL sweeps whose rotations, applied to U = Q^T, leave the eigenvectors in
    U's rows. Ordering and signs as syevd_one."""
    cdef int n = job.n, i, j, v
    cdef Py_ssize_t nn = <Py_ssize_t>n * n
    cdef floating* a = w
    cdef floating* u = w + nn * LANES
    cdef floating d[SMALL * LANES]
    cdef floating e[SMALL * LANES]
    cdef floating tau[SMALL * LANES]
    cdef floating largest[LANES]
    cdef int exponent[LANES]
    cdef int order[SMALL]
    cdef floating* row
    gather(a, p, n, n, 0, n, 1, True)
    mark_nonfinite(a, n, n, True, status)
    mirror_lower(a, n)
    scale_lanes(a, nn, exponent)
    tridiagonalise_lanes(a, n, d, e, tau)
    transposed_q_lanes(u, a, tau, n)
    tridiagonal_ql_lanes(d, e, u, n, status)
    for i in range(n):                  # each row's entry of largest magnitude (first) positive
        row = u + <Py_ssize_t>i * n * LANES
        for v in range(LANES):
            largest[v] = row[v]
        for j in range(1, n):
            for v in range(LANES):
                largest[v] = (row[j * LANES + v] if fabs(row[j * LANES + v]) > fabs(largest[v])
                              else largest[v])
        for j in range(n):
            for v in range(LANES):
                row[j * LANES + v] = -row[j * LANES + v] if largest[v] < 0 else row[j * LANES + v]
    for v in range(count):              # ascending (a stable insertion sort), scaled back
        for i in range(n):
            j = i
            while j > 0 and d[order[j - 1] * LANES + v] > d[i * LANES + v]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = i
        for i in range(n):
            p[2 * LANES + v][i] = ldexp(d[order[i] * LANES + v], exponent[v])
            row = p[LANES + v] + <Py_ssize_t>i * n
            for j in range(n):
                row[j] = u[(order[i] * n + j) * LANES + v]

cdef void gemm_lanes(const Job* job, floating** p, int count, floating* w,
                     int* status) noexcept nogil:
    """gemm_one for LANES small matrices: D = alpha op(A) op(B) + beta C, op(B) held transposed
    so that both factors of every inner product are contiguous. BLAS semantics: beta == 0
    ignores C and alpha == 0 ignores A and B."""
    cdef int m = job.m, n = job.n, k = job.k, i, j, v
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef floating alpha = <floating>job.alpha
    cdef floating beta = <floating>job.beta if p[2 * LANES] != NULL else 0
    cdef floating* a = w
    cdef floating* bt = a + <Py_ssize_t>m * k * LANES
    cdef floating* d = bt + <Py_ssize_t>n * k * LANES
    cdef floating acc[LANES]
    cdef Py_ssize_t ij, e
    if beta != 0:
        gather(d, p + 2 * LANES, m, n, 0, n, 1, False)
        for e in range(<Py_ssize_t>m * n * LANES):
            d[e] = beta * d[e]
    else:
        for e in range(<Py_ssize_t>m * n * LANES):
            d[e] = 0
    if alpha != 0 and k > 0:
        gather(a, p, m, k, 0, 1 if ta else k, m if ta else 1, False)
        gather(bt, p + LANES, n, k, 0, k if tb else 1, 1 if tb else n, False)
        for i in range(m):
            for j in range(n):
                for v in range(LANES):
                    acc[v] = 0
                add_dot(acc, a + i * k * LANES, LANES, bt + j * k * LANES, LANES, k)
                ij = (i * n + j) * LANES
                for v in range(LANES):
                    d[ij + v] = d[ij + v] + alpha * acc[v]
    if job.flags & TRIANGLE:
        keep_triangle(d, m, n, (job.flags & LOWER) != 0)
    scatter(p + 3 * LANES, count, d, m, n, 0, n, 1)

# ---- the one batch driver ---------------------------------------------------------------------

cdef inline int run_one(const Job* job, floating** p, floating* work) noexcept nogil:
    if job.op == OP_GEMM:
        return gemm_one(job, p, work)
    if job.op == OP_SYRK:
        return syrk_one(job, p, work)
    if job.op == OP_TRMM:
        return trmm_one(job, p)
    if job.op == OP_TRSM:
        return trsm_one(job, p)
    if job.op == OP_POTRF:
        return potrf_one(job, p)
    if job.op == OP_POTRI:
        return potri_one(job, p)
    if job.op == OP_POTRS:
        return potrs_one(job, p)
    if job.op == OP_GELQF or job.op == OP_GEQRF:
        return orthogonal_factor(job, p, job.op == OP_GELQF)
    if job.op == OP_SYEVD:
        return syevd_one(job, p)
    if job.op == OP_INVERSE:
        return inverse_one(job, p)
    if job.op == OP_SLOGDET:
        return slogdet_one(job, p)
    if job.op == OP_POTRF_BACKWARD:
        return potrf_backward_one(job, p)
    if job.op == OP_SYEVD_BACKWARD:
        return syevd_backward_one(job, p, work)
    if job.op == OP_TRSM_BACKWARD:
        return trsm_backward_one(job, p, work)
    if job.op == OP_SYRK_BACKWARD:
        return syrk_backward_one(job, p, work)
    if job.op == OP_GEMM_BACKWARD:
        return gemm_backward_one(job, p, work)
    return cofactor_one(job, p)

cdef inline void run_lanes(const Job* job, floating** p, int count, floating* work,
                           int* status) noexcept nogil:
    if job.op == OP_POTRF:
        potrf_lanes(job, p, count, work, status)
    elif job.op == OP_GEMM:
        gemm_lanes(job, p, count, work, status)
    elif job.op == OP_TRSM or job.op == OP_TRMM:
        triangular_lanes(job, p, count, work, status, job.op == OP_TRSM)
    elif job.op == OP_TRSM_BACKWARD:
        trsm_backward_lanes(job, p, count, work, status)
    elif job.op == OP_GELQF or job.op == OP_GEQRF:
        orthogonal_lanes(job, p, count, work, status, job.op == OP_GELQF)
    elif job.op == OP_ORTHOGONAL_BACKWARD:
        orthogonal_backward_lanes(job, p, count, work, status)
    elif job.op == OP_POTRF_BACKWARD:
        potrf_backward_lanes(job, p, count, work, status)
    elif job.op == OP_SYEVD:
        eigen_lanes(job, p, count, work, status)

cdef void run_block(const Job* job, floating** base, const Py_ssize_t* step, int noperands,
                    Py_ssize_t nbatch, Py_ssize_t block, floating* work,
                    int* status) noexcept nogil:
    # Block ``block`` of job.lanes matrices. Pointers live on this call's stack: each thread
    # has its own.
    cdef floating* p[MAX_OPERANDS * LANES]
    cdef int lane_status[LANES]
    cdef Py_ssize_t first = block * job.lanes, b
    cdef int i, v, count
    if work == NULL:
        for b in range(first, min(first + job.lanes, nbatch)):
            status[b] = NO_MEMORY
        return
    if job.lanes == 1:
        for i in range(noperands):
            p[i] = base[i] + first * step[i] if base[i] != NULL else NULL
        status[first] = run_one(job, p, work)
        return
    count = <int>min(<Py_ssize_t>LANES, nbatch - first)
    for i in range(noperands):
        for v in range(LANES):
            b = first + (v if v < count else count - 1)     # spare lanes repeat the last matrix
            p[i * LANES + v] = base[i] + b * step[i] if base[i] != NULL else NULL
    for v in range(LANES):
        lane_status[v] = 0
    run_lanes(job, p, count, work, lane_status)
    for v in range(count):
        status[first + v] = lane_status[v]

ctypedef struct Batch:
    # One call's batch, as the thread pool's chunks see it.
    const Job* job
    void** base
    const Py_ssize_t* step
    int noperands
    Py_ssize_t nbatch
    int* status

cdef extern from "_pool.h":
    ctypedef void (*adla_chunk_fn)(void* ctx, Py_ssize_t first, Py_ssize_t last,
                                   void** scratch) noexcept nogil
    void adla_parallel_for(adla_chunk_fn run, void* ctx, Py_ssize_t nblocks,
                           int threads) noexcept nogil

cdef inline void run_blocks(floating* kind, Batch* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    # Blocks [first, last); the participant's scratch is allocated at its first chunk.
    cdef Py_ssize_t block
    if scratch[0] == NULL:
        scratch[0] = malloc((batch.job.work + 1) * sizeof(floating))
    for block in range(first, last):
        run_block(batch.job, <floating**>batch.base, batch.step, batch.noperands, batch.nbatch,
                  block, <floating*>scratch[0], batch.status)

cdef void run_blocks_double(void* batch, Py_ssize_t first, Py_ssize_t last,
                            void** scratch) noexcept nogil:
    run_blocks(<double*>NULL, <Batch*>batch, first, last, scratch)

cdef void run_blocks_float(void* batch, Py_ssize_t first, Py_ssize_t last,
                           void** scratch) noexcept nogil:
    run_blocks(<float*>NULL, <Batch*>batch, first, last, scratch)

cdef void drive(const Job* job, void** base, const Py_ssize_t* step, int noperands,
                Py_ssize_t nbatch, int* status, bint is_double, int threads) noexcept nogil:
    # Matrices share no memory, so the blocks run in parallel on up to ``threads`` threads
    # (_pool.h: the calling thread and the pool's helpers, each with its own scratch).
    cdef Batch batch
    batch.job, batch.base, batch.step, batch.noperands = job, base, step, noperands
    batch.nbatch, batch.status = nbatch, status
    adla_parallel_for(run_blocks_double if is_double else run_blocks_float, &batch,
                      (nbatch + job.lanes - 1) // job.lanes, threads)


cdef void plan(Job* job) noexcept nogil:
    """Pick the interleaved kernels (job.lanes = LANES) where they exist for this size, and the
    scratch each thread needs for them."""
    cdef Py_ssize_t n = job.n, nn = n * n
    job.lanes, job.work = 1, 0
    if job.op == OP_SYEVD_BACKWARD:
        job.work = 2 * nn
    if job.op == OP_SYRK_BACKWARD:
        job.work = <Py_ssize_t>job.m * job.m
    if (job.op == OP_GEMM or job.op == OP_SYRK) and direct(job):
        job.work = <Py_ssize_t>job.n * job.k       # op(B), or A^T, transposed
    if job.op == OP_TRSM_BACKWARD:
        job.work = <Py_ssize_t>job.m * job.n       # its gemm's transposed operand
    if job.op == OP_GEMM_BACKWARD:
        job.work = max(<Py_ssize_t>job.m * job.n, max(job.m, job.n) * <Py_ssize_t>job.k)
    if job.op == OP_POTRF and n <= SMALL:
        job.lanes, job.work = LANES, nn * LANES
    elif job.op == OP_POTRF_BACKWARD and n <= SMALL:
        job.lanes, job.work = LANES, 2 * nn * LANES
    elif job.op == OP_GEMM and job.m <= SMALL_GEMM and job.n <= SMALL_GEMM \
            and job.k <= SMALL_GEMM and job.n % 4 != 0:
        job.lanes = LANES
        job.work = <Py_ssize_t>(job.m * job.k + job.n * job.k + job.m * job.n) * LANES
    elif (job.op == OP_TRSM or job.op == OP_TRMM or job.op == OP_TRSM_BACKWARD) \
            and job.m <= SMALL_DENSE and job.n <= SMALL_DENSE:
        job.lanes, job.work = LANES, <Py_ssize_t>2 * (job.m + job.n) * (job.m + job.n) * LANES
    elif (job.op == OP_GELQF or job.op == OP_GEQRF) and job.m <= SMALL_DENSE \
            and job.n <= SMALL_DENSE and job.m > 0 and job.n > 0:
        job.lanes, job.work = LANES, <Py_ssize_t>2 * job.m * job.n * LANES
    elif job.op == OP_ORTHOGONAL_BACKWARD and job.m <= SMALL_DENSE and job.n <= SMALL_DENSE:
        job.lanes, job.work = LANES, <Py_ssize_t>5 * job.m * job.n * LANES
    elif job.op == OP_SYEVD and 0 < n <= SMALL:
        job.lanes, job.work = LANES, 2 * nn * LANES


cdef Job planned(int op, int m, int n, int k) noexcept nogil:
    cdef Job job
    job.op, job.flags, job.m, job.n, job.k = op, 0, m, n, k
    plan(&job)
    return job


def interleaved(int op, int m, int n, int k=0):
    """Whether kernel ``op`` runs interleaved at this size (no BLAS/LAPACK call)."""
    return planned(op, m, n, k).lanes > 1


def calls_blas(int op, int m, int n, int k=0):
    """Whether kernel ``op`` may call BLAS/LAPACK at this size (not interleaved, no direct loops)."""
    cdef Job job = planned(op, m, n, k)
    if job.lanes > 1:
        return False
    return not (op in (OP_GEMM, OP_SYRK, OP_GEMM_BACKWARD, OP_SYRK_BACKWARD) and direct(&job))


def run(int op, tuple inputs, tuple outputs, int m, int n, int k=0, int flags=0,
        double alpha=1.0, double beta=0.0, bint threaded=False):
    """Run kernel ``op`` over a batch; return the int32 status of each matrix.

    ``inputs`` and ``outputs`` are C-contiguous stacks ``(nbatch, ...)`` of one float dtype (an
    input may be None when optional, or have length 1 to be broadcast over the batch); kernels see
    them in that order, outputs last. ``m``, ``n``: rows and columns of the result; ``k``: inner
    dimension. ``threaded``: run the batch on the thread pool (callers keep BLAS single-threaded
    meanwhile). Callers validate shapes.
    """
    cdef void* base[MAX_OPERANDS]
    cdef Py_ssize_t step[MAX_OPERANDS]
    cdef Job job
    cdef cnp.ndarray a
    cdef int i
    cdef Py_ssize_t nbatch
    operands = inputs + outputs
    cdef int noperands = len(operands)
    dtype = outputs[0].dtype
    cdef bint is_double = dtype == np.float64
    if noperands > MAX_OPERANDS:
        raise ValueError("too many operands")
    if not is_double and dtype != np.float32:
        raise TypeError(f"kernel dtype must be float32 or float64, got {dtype}")
    lengths = []
    for i in range(noperands):
        if operands[i] is None:
            base[i] = NULL
            step[i] = 0
            continue
        a = operands[i]
        if a.ndim < 1 or not a.flags.c_contiguous or a.dtype != dtype:
            raise ValueError("kernel operands must be C-contiguous stacks of one dtype")
        if i >= len(inputs) and not a.flags.writeable:
            raise ValueError("kernel outputs must be writeable")
        base[i] = cnp.PyArray_DATA(a)
        step[i] = 0 if a.shape[0] <= 1 else a.size // a.shape[0]
        lengths.append(a.shape[0])
    # Stacks have the batch length or 1 (broadcast); a zero-length stack empties the batch.
    nbatch = 0 if 0 in lengths else max(lengths)
    if any(o.shape[0] != nbatch for o in outputs) or any(n not in (1, nbatch) for n in lengths):
        raise ValueError("kernel operands disagree on the batch length")
    job.op, job.flags, job.m, job.n, job.k, job.alpha, job.beta = op, flags, m, n, k, alpha, beta
    plan(&job)
    if op == OP_ORTHOGONAL_BACKWARD and job.lanes == 1:
        raise ValueError("the fused LQ/QR gradient exists for small matrices only")
    status = np.zeros(nbatch, dtype=np.intc)
    cdef int[::1] status_view = status
    if nbatch == 0:
        return status
    cdef int threads = openmp.omp_get_max_threads() if threaded else 1
    with nogil:
        drive(&job, base, step, noperands, nbatch, &status_view[0], is_double, threads)
    return status
