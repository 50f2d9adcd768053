# BLAS-3 products: gemm and syrk per matrix (direct loops up to order 32, BLAS above), their
# fused gradients, and the interleaved gemm.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

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

cdef extern from "_fma_product.h":
    enum:
        ADLA_LEFT_LOWER, ADLA_LEFT_UPPER, ADLA_RIGHT_LOWER, ADLA_RIGHT_UPPER, ADLA_OUT_LOWER,
        ADLA_OUT_UPPER, ADLA_SOLVE_ORDER
    int adla_fma_product_supported() noexcept nogil
    int adla_cpu_is_amd() noexcept nogil
    void adla_fma_product_d(double* out, Py_ssize_t out_row, const double* x, Py_ssize_t x_row,
                            Py_ssize_t x_step, const double* b, Py_ssize_t b_row, int m, int n,
                            int k, double alpha, double beta, const double* c,
                            Py_ssize_t c_row, int stream, int shape) noexcept nogil
    void adla_fma_product_f(float* out, Py_ssize_t out_row, const float* x, Py_ssize_t x_row,
                            Py_ssize_t x_step, const float* b, Py_ssize_t b_row, int m, int n,
                            int k, float alpha, float beta, const float* c, Py_ssize_t c_row,
                            int stream, int shape) noexcept nogil
    void adla_fma_tangent_d(double* dout, Py_ssize_t out_row, const double* x,
                            const double* dx, Py_ssize_t x_row, Py_ssize_t x_step,
                            const double* b, const double* db, Py_ssize_t b_row, int m, int n,
                            int k, double alpha, double beta, const double* dc,
                            Py_ssize_t c_row) noexcept nogil
    void adla_fma_tangent_f(float* dout, Py_ssize_t out_row, const float* x, const float* dx,
                            Py_ssize_t x_row, Py_ssize_t x_step, const float* b,
                            const float* db, Py_ssize_t b_row, int m, int n, int k, float alpha,
                            float beta, const float* dc, Py_ssize_t c_row) noexcept nogil
    void adla_fma_solve_d(const double* a, Py_ssize_t a_row, Py_ssize_t a_col, double* x,
                          Py_ssize_t x_row, int t, int c, double alpha, int unit) noexcept nogil
    void adla_fma_solve_f(const float* a, Py_ssize_t a_row, Py_ssize_t a_col, float* x,
                          Py_ssize_t x_row, int t, int c, float alpha, int unit) noexcept nogil
    void adla_prefetch_clear() noexcept nogil
    void adla_prefetch_lines(int most) noexcept nogil
    void adla_prefetch_add(const void* at, Py_ssize_t bytes) noexcept nogil

cdef void small_product(floating* out, const floating* a, Py_ssize_t a_row, Py_ssize_t a_col,
                        const floating* b, Py_ssize_t b_row, int m, int n, int k, floating alpha,
                        floating beta, const floating* c) noexcept nogil:
    """out = alpha X B + beta C for small row-major matrices without a BLAS call: X[i, l] is
    a[i a_row + l a_col] (m x k), B[l, j] is b[l b_row + j] (k x n), C (m x n) may be NULL (then
    beta is ignored). Blocks of up to ADLA_BLOCK_ROWS rows by 8 or 4 columns in vector registers,
    the last 1-3 columns too, beside zeros (in scalars when alpha == 0); whatever the block, each
    entry is alpha times its sum over l (in order from 0), plus beta times C's entry. C may be
    out itself (accumulation)."""
    cdef floating acc[8]       # the scalar path's sums (8 columns when alpha == 0)
    cdef floating tail[SMALL_PRODUCT * 4]      # B's last 1-3 columns, zero-padded to 4
    cdef floating tail_sums[16]                # alpha times their sums, a block of rows at a time
    cdef int i0, rows, i, j0, jj, l, cols, last = n % 4
    cdef bint padded = alpha != 0 and last != 0 and k <= SMALL_PRODUCT
    cdef Py_ssize_t at
    if padded:
        # The last columns run as a 4-column block too: scalar sums there cost 5x the whole
        # vector part at order 9. Each entry is still alpha times its sum in order, plus beta C.
        for l in range(k):
            for jj in range(4):
                tail[l * 4 + jj] = b[l * b_row + n - last + jj] if jj < last else 0
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
            if padded:
                if floating is double:
                    adla_block_d(tail_sums, 4, a + i0 * a_row, a_row, a_col, tail, 4, k, alpha,
                                 0, NULL, rows, 4)
                else:
                    adla_block_f(tail_sums, 4, a + i0 * a_row, a_row, a_col, tail, 4, k, alpha,
                                 0, NULL, rows, 4)
                for i in range(rows):
                    at = <Py_ssize_t>(i0 + i) * n + j0
                    for jj in range(cols):
                        acc[0] = tail_sums[i * 4 + jj]
                        if c != NULL:
                            acc[0] = acc[0] + beta * c[at + jj]
                        out[at + jj] = acc[0]
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
                    acc[jj] = alpha * acc[jj]
                if c != NULL:       # c may be out itself: each entry read before it is written
                    for jj in range(cols):
                        acc[jj] = acc[jj] + beta * c[at + jj]
                for jj in range(cols):
                    out[at + jj] = acc[jj]
            j0 += cols
        i0 += rows

cdef inline void transpose_into(floating* dst, const floating* src, int rows, int cols) noexcept nogil:
    # dst (cols x rows) = src^T, both row-major.
    if floating is double:
        adla_transpose_d(dst, src, rows, cols)
    else:
        adla_transpose_f(dst, src, rows, cols)

cdef inline bint all_within(int m, int n, int k, int bound) noexcept nogil:
    return m <= bound and n <= bound and k <= bound

cdef inline bint direct_product(int m, int n, int k) noexcept nogil:
    # Small enough for small_product: a BLAS call costs more than the arithmetic. The bound
    # depends on the CPU (direct_product_max, chosen at import).
    return all_within(m, n, k, direct_product_max)

cdef inline bint direct(const Job* job) noexcept nogil:
    return direct_product(job.m, job.n, job.k)

cdef int fma_product_max = FMA_PRODUCT_MAX if adla_fma_product_supported() else 0

def set_fma_product_max(int order):
    """Products past the direct loops up to order ``order`` in _fma_product.h's loops, larger
    ones through BLAS (0: none); returns the previous bound. Only on CPUs that have AVX-512 and
    FMA (elsewhere the bound stays 0). For tests and benchmarks, as set_direct_product_max."""
    global fma_product_max
    previous = fma_product_max
    if adla_fma_product_supported():
        fma_product_max = max(0, min(order, FMA_PRODUCT_MAX))
    return previous

cdef int fma_solve_max = ADLA_SOLVE_ORDER if adla_fma_product_supported() else 0

def set_fma_solve_max(int order):
    """The triangular solves' leaves (solve_rows) up to order ``order`` in _fma_product.h's
    loops (0: none; at most 16); returns the previous bound. As set_fma_product_max."""
    global fma_solve_max
    previous = fma_solve_max
    if adla_fma_product_supported():
        fma_solve_max = max(0, min(order, ADLA_SOLVE_ORDER))
    return previous

adla_lanes_fma = adla_fma_product_supported()

def set_fma_lanes(bint on):
    """The interleaved kernels' row loops of _lane_update.h (subtract_dot_rows,
    subtract_tangent_dots, subtract_scaled_rows: the Cholesky kernels', and the LU's updates and
    solves) in fused multiply-adds, or in the plain loops every build has; returns the previous
    choice. As set_fma_product_max: only on CPUs that have AVX-512 and FMA."""
    global adla_lanes_fma
    previous = adla_lanes_fma != 0
    adla_lanes_fma = 1 if on and adla_fma_product_supported() else 0
    return previous

cdef inline bint fma_product(int m, int n, int k) noexcept nogil:
    # Past the direct loops and up to fma_product_max (0 on CPUs without AVX-512 and FMA):
    # _fma_product.h's loops may run instead of ?gemm (plan_products decides).
    return not direct_product(m, n, k) and all_within(m, n, k, fma_product_max)

cdef inline void fma_into(floating* out, Py_ssize_t out_row, const floating* x, Py_ssize_t x_row,
                          Py_ssize_t x_step, const floating* b, Py_ssize_t b_row, int m, int n,
                          int k, floating alpha, floating beta, const floating* c,
                          Py_ssize_t c_row, int shape, bint stream) noexcept nogil:
    # _fma_product.h's product for either type, its result written past the caches only with
    # stream (a large batch's result; not one read again at once); the caller checks
    # adla_fma_product_supported().
    if floating is double:
        adla_fma_product_d(out, out_row, x, x_row, x_step, b, b_row, m, n, k, alpha, beta, c,
                           c_row, stream, shape)
    else:
        adla_fma_product_f(out, out_row, x, x_row, x_step, b, b_row, m, n, k, alpha, beta, c,
                           c_row, stream, shape)

cdef inline int product_shape(int flags) noexcept nogil:
    # gemm's flags as _fma_product.h's shape: a triangular op(A) or op(B), or a triangle of D.
    cdef bint lower = (flags & LOWER) != 0
    if flags & TRIANGLE:
        return ADLA_OUT_LOWER if lower else ADLA_OUT_UPPER
    if flags & TRIANGULAR_A:
        return ADLA_LEFT_LOWER if lower else ADLA_LEFT_UPPER
    if flags & TRIANGULAR_B:
        return ADLA_RIGHT_LOWER if lower else ADLA_RIGHT_UPPER
    return 0

cdef int gemm_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # D = alpha op(A) op(B) + beta C  <=>  D^T = alpha op(B)^T op(A)^T + beta C^T (column-major)
    cdef int m = job.m, n = job.n, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef floating beta = <floating>job.beta if p[2] != NULL else 0
    cdef Py_ssize_t e
    if m == 0 or n == 0:
        return 0
    if direct(job) or (job.flags & STREAM and job.alpha != 0):
        # Loops of adla's own: op(B) copied out transposed, so that its rows are contiguous.
        # STREAM: the planner found fma_product(m, n, k) and a batch larger than the caches.
        if tb:
            transpose_into(work, p[1], n, k)
        if direct(job):
            small_product(p[3], p[0], 1 if ta else k, m if ta else 1, work if tb else p[1], n,
                          m, n, k, <floating>job.alpha, beta, p[2] if beta != 0 else NULL)
        else:
            fma_into(p[3], n, p[0], 1 if ta else k, m if ta else 1, work if tb else p[1], n, m,
                     n, k, <floating>job.alpha, beta, p[2] if beta != 0 else NULL, n,
                     product_shape(job.flags), True)
    elif job.alpha == 0:
        # BLAS semantics (alpha == 0 ignores A and B, NaN included), which some BLAS builds break
        for e in range(<Py_ssize_t>m * n):
            p[3][e] = beta * p[2][e] if beta != 0 else 0
    else:
        if beta != 0 and p[3] != p[2]:
            copy(p[3], p[2], <Py_ssize_t>m * n)
        if tb and all_within(m, n, k, TRANSPOSED_B_MAX):
            # SciPy's OpenBLAS runs a transposed B up to 8x slower at order 8-24 (its kernels
            # for small matrices), 1.6x at 33-64, 1.3x at 96 and 1.07x at 128: op(B) is copied
            # out instead, n k entries against the product's m n k multiply-adds.
            transpose_into(work, p[1], n, k)
            xgemm(c'N', c'T' if ta else c'N', n, m, k, <floating>job.alpha, work, ld(n), p[0],
                  ld(m if ta else k), beta, p[3], ld(n))
        elif job.flags & TRIANGLE:
            # The row-major lower triangle is the column-major upper one of D^T.
            gemm_triangle(c'U' if job.flags & LOWER else c'L', c'T' if tb else c'N',
                          c'T' if ta else c'N', n, k, <floating>job.alpha, p[1],
                          ld(k if tb else n), p[0], ld(m if ta else k), beta, p[3], ld(n))
        else:
            xgemm(c'T' if tb else c'N', c'T' if ta else c'N', n, m, k, <floating>job.alpha,
                  p[1], ld(k if tb else n), p[0], ld(m if ta else k), beta, p[3], ld(n))
    if job.flags & TRIANGLE and not (job.flags & STREAM and not direct(job) and job.alpha != 0):
        zero_triangle(p[3], m, (job.flags & LOWER) != 0)    # (the FMA loops zero it themselves)
    return 0

cdef void gemm_triangle(char uplo, char transa, char transb, int n, int k, floating alpha,
                        floating* a, int lda, floating* b, int ldb, floating beta, floating* c,
                        int ldc) noexcept nogil:
    """?gemm's C := alpha op(A) op(B) + beta C (column-major, C n x n, inner size k) in C's
    ``uplo`` triangle only, to rounding: one ?gemm call per panel of columns (at least two, of
    at most about TRIANGLE_PANEL), from the panel's diagonal block to the triangle's edge. The
    diagonal blocks are computed whole, so some of the other triangle too; beyond them it is
    left as it was. Up to TRIANGLE_PRODUCT_LEAF, one call for the whole product. About 0.6 of
    the whole product's multiply-adds at order 1000; tall panels keep ?gemm near its rate,
    where halves split recursively fell to small square blocks over a long inner size
    (125 x 125 x 1000 at half the rate: the triangle took 0.92x the whole product's time)."""
    cdef int j0 = 0, w, panels, width
    if n <= TRIANGLE_PRODUCT_LEAF:
        xgemm(transa, transb, n, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    panels = max(2, (n + TRIANGLE_PANEL - 1) // TRIANGLE_PANEL)
    width = ((n + panels - 1) // panels + 15) // 16 * 16         # whole vector steps
    while j0 < n:
        w = min(width, n - j0)
        # Columns j0 of op(B) start at column j0 of B (N) or its row j0 (T); rows of op(A)
        # likewise.
        if uplo == c'U':
            xgemm(transa, transb, j0 + w, w, k, alpha, a, lda,
                  b + (<Py_ssize_t>j0 * ldb if transb == c'N' else j0), ldb, beta,
                  c + <Py_ssize_t>j0 * ldc, ldc)
        else:
            xgemm(transa, transb, n - j0, w, k, alpha,
                  a + (j0 if transa == c'N' else <Py_ssize_t>j0 * lda), lda,
                  b + (<Py_ssize_t>j0 * ldb if transb == c'N' else j0), ldb, beta,
                  c + j0 + <Py_ssize_t>j0 * ldc, ldc)
        j0 += w

cdef int gemm_jvp_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(D, dD) of D = alpha op(A) op(B) [+ beta C] and its tangent
    dD = alpha (op(dA) op(B) + op(A) op(dB)) [+ beta dC] from (A, B, C, dA, dB, dC), any of the
    last four NULL (zero): each matrix's operands read once, while in cache; D as gemm_one's."""
    cdef Job tangent = job[0]
    cdef floating* q[4]
    cdef floating* dd = p[7]
    cdef floating* added = p[5] if p[5] != NULL and job.beta != 0 else NULL
    cdef Py_ssize_t e
    if (job.flags & FUSED_TANGENT and job.alpha != 0 and p[3] != NULL and p[4] != NULL
            and job.m > 0 and job.n > 0):
        fused_tangent(job, p, work)
        return 0
    q[0], q[1], q[2], q[3] = p[0], p[1], p[2], p[6]
    gemm_one(job, q, work)
    if job.m == 0 or job.n == 0:
        return 0
    for e in range(2):                           # alpha op(dA) op(B), then alpha op(A) op(dB)
        if p[3 + e] == NULL:
            continue
        if e == 0:
            q[0], q[1] = p[3], p[1]
        else:
            q[0], q[1] = p[0], p[4]
        q[2], q[3] = added, dd
        gemm_one(&tangent, q, work)
        added, tangent.beta = dd, 1              # accumulated in place from here on
    if added != dd:                              # neither dA nor dB
        for e in range(<Py_ssize_t>job.m * job.n):
            dd[e] = <floating>job.beta * added[e] if added != NULL else 0
    return 0

cdef void fused_tangent(const Job* job, floating** p, floating* work) noexcept nogil:
    # gemm_jvp_one with both tangents on CPUs with AVX-512 (plan_gemm_jvp): D as gemm_one's,
    # dD's two products in one pass of _fma_product.h, each row of B and dB and entry of A
    # and dA loaded once.
    cdef int m = job.m, n = job.n, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef floating beta = <floating>job.beta
    cdef floating* q[4]
    cdef floating* b = p[1]
    cdef floating* db = p[4]
    cdef floating* dc = p[5] if p[5] != NULL and beta != 0 else NULL
    q[0], q[1], q[2], q[3] = p[0], p[1], p[2], p[6]
    gemm_one(job, q, work)
    if tb:
        transpose_into(work, p[1], n, k)
        transpose_into(work + <Py_ssize_t>n * k, p[4], n, k)
        b, db = work, work + <Py_ssize_t>n * k
    if floating is double:
        adla_fma_tangent_d(p[7], n, p[0], p[3], 1 if ta else k, m if ta else 1, b, db, n, m, n,
                           k, job.alpha, beta, dc, n)
    else:
        adla_fma_tangent_f(p[7], n, p[0], p[3], 1 if ta else k, m if ta else 1, b, db, n, m, n,
                           k, <float>job.alpha, beta, dc, n)
    if job.flags & TRIANGLE:
        zero_triangle(p[7], m, (job.flags & LOWER) != 0)

cdef inline void product_into(floating* out, floating* left, floating* right, int rows, int cols,
                              int inner, int flags, double alpha, floating* work) noexcept nogil:
    # out (rows x cols) = alpha op(left) op(right), through gemm_one (flags: gemm's).
    cdef Job product
    cdef floating* q[4]
    product.m, product.n, product.k, product.flags = rows, cols, inner, flags
    product.alpha, product.beta = alpha, 0
    q[0], q[1], q[2], q[3] = left, right, NULL, out
    gemm_one(&product, q, work)

cdef inline void product_in_cache(floating* out, floating* left, floating* right, int rows,
                                  int cols, int inner, int flags, double alpha, double beta,
                                  floating* c, floating* work) noexcept nogil:
    # out (rows x cols) = alpha op(left) op(right) + beta c (c NULL, or possibly out) for a
    # result read again at once (a rule's intermediate): _fma_product.h's loops with ordinary
    # stores where the CPU has them and the order is theirs (as fma_stream's), else gemm_one.
    # work: op(right) copied out where TRANS_B. flags: gemm's, TRIANGULAR_* or TRIANGLE
    # included (the zeros they name must be there for ?gemm).
    cdef Job product
    cdef floating* q[4]
    cdef bint ta = (flags & TRANS_A) != 0, tb = (flags & TRANS_B) != 0
    if (fma_product(rows, cols, inner) and max(rows, cols, inner) >= FMA_ORDER_MIN
            and alpha != 0):
        if tb:
            transpose_into(work, right, cols, inner)
        fma_into(out, cols, left, 1 if ta else inner, rows if ta else 1, work if tb else right,
                 cols, rows, cols, inner, <floating>alpha, <floating>beta,
                 c if beta != 0 else NULL, cols, product_shape(flags), False)
        return
    product.m, product.n, product.k, product.flags = rows, cols, inner, flags & ~STREAM
    product.alpha, product.beta = alpha, beta
    q[0], q[1], q[2], q[3] = left, right, c, out
    gemm_one(&product, q, work)

cdef int gemm_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dA, dB[, dC]) of D = alpha op(A) op(B) [+ beta C] from (dD, A, B), each matrix's dD read
    while it is in cache: d op(A) = alpha dD op(B)^T, d op(B) = alpha op(A)^T dD, dC = beta dD."""
    cdef int m = job.m, n = job.n, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0, tb = (job.flags & TRANS_B) != 0
    cdef Py_ssize_t e
    cdef floating beta = <floating>job.beta
    cdef int stream = job.flags & STREAM
    # dA: alpha dD op(B)^T (m x k), or its transpose alpha op(B) dD^T when ta.
    prefetch_for_blas(job)
    if ta:
        product_into(p[3], p[2], p[0], k, m, n, (TRANS_A if tb else 0) | TRANS_B | stream,
                     job.alpha, work)
    else:
        product_into(p[3], p[0], p[2], m, k, n, (0 if tb else TRANS_B) | stream, job.alpha,
                     work)
    # dB: alpha op(A)^T dD (k x n), or its transpose alpha dD^T op(A) when tb.
    prefetch_for_blas(job)
    if tb:
        product_into(p[4], p[0], p[1], n, k, m, TRANS_A | (TRANS_B if ta else 0) | stream,
                     job.alpha, work)
    else:
        product_into(p[4], p[1], p[0], k, n, m, (0 if ta else TRANS_A) | stream, job.alpha,
                     work)
    if job.flags & WITH_C:
        for e in range(<Py_ssize_t>m * n):
            p[5][e] = beta * p[0][e]
    return 0

cdef int sandwich_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """D = alpha op(X) Y op(X) for square n x n X and Y (TRANS_A: op(X) = X^T), the inverse's
    gradient and tangent: T = alpha op(X) Y in scratch, then D = T op(X) while T and X are in
    cache, by gemm's routes (STREAM: the result written past the caches). alpha goes into T so
    that D's exact zeros are sums of zeros (+0), as the composed products give, not -0 from
    scaling them. work: n x n for op(X) copied out (gemm_one's), then T."""
    cdef int n = job.n
    cdef bint ta = (job.flags & TRANS_A) != 0
    cdef floating* t = work + <Py_ssize_t>n * n
    if n == 0:
        return 0
    prefetch_for_blas(job)
    product_in_cache(t, p[0], p[1], n, n, n, TRANS_A if ta else 0, job.alpha, 0, NULL, work)
    product_into(p[2], t, p[0], n, n, n, (TRANS_B if ta else 0) | (job.flags & STREAM), 1,
                 work)
    return 0

cdef int syrk_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # C = alpha A A^T (A m x k), or alpha A^T A (A k x m) when TRANS_A; full symmetric result.
    cdef int m = job.m, k = job.k
    cdef bint ta = (job.flags & TRANS_A) != 0
    if m == 0:
        return 0
    if job.flags & STREAM:
        # gemm's FMA loops on the whole product op(A) op(A)^T, exactly symmetric: entries (i, j)
        # and (j, i) sum the same products in the same order (fma(a, b, s) is fma(b, a, s)).
        product_into(p[1], p[0], p[0], m, m, k, (TRANS_A if ta else TRANS_B) | STREAM,
                     job.alpha, work)
    elif not job.calls_blas:
        # The direct loops on the whole product, exactly symmetric: entries (i, j) and (j, i)
        # sum the same products in the same order.
        if not ta:
            transpose_into(work, p[0], m, k)
        small_product(p[1], p[0], 1 if ta else k, m if ta else 1, p[0] if ta else work, m,
                      m, m, k, <floating>job.alpha, 0, NULL)
    elif all_within(m, m, k, SMALL_PRODUCT):
        prefetch_for_blas(job)
        product_into(p[1], p[0], p[0], m, m, k, TRANS_A if ta else TRANS_B, job.alpha, work)
        mirror_triangle(p[1], m, True)          # exactly symmetric, whatever ?gemm's order
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
    prefetch_for_blas(job)
    for i in range(m):
        for j in range(m):
            work[i * m + j] = dc[i * m + j] + dc[j * m + i]
    if direct(job):
        if job.flags & TRANS_A:
            small_product(p[2], p[1], m, 1, work, m, k, m, m, <floating>job.alpha, 0, NULL)
        else:
            small_product(p[2], work, m, 1, p[1], k, m, k, m, <floating>job.alpha, 0, NULL)
    elif job.flags & STREAM:
        if job.flags & TRANS_A:
            product_into(p[2], p[1], work, k, m, m, STREAM, job.alpha, NULL)
        else:
            product_into(p[2], work, p[1], m, k, m, STREAM, job.alpha, NULL)
    # Column-major views: A is A^T; the products are their transposes, S symmetric.
    elif job.flags & TRANS_A:
        xgemm(c'N', c'N', m, k, m, <floating>job.alpha, work, m, p[1], m, 0, p[2], m)
    else:
        xgemm(c'N', c'N', k, m, m, <floating>job.alpha, p[1], k, work, m, 0, p[2], k)
    return 0


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
    scatter(p + 3 * LANES, count, d, m, n, 0, n, 1, job.stream_out)


# Planning (the operator table in _lapack.pyx): interleaved or not, scratch per thread, BLAS use.

cdef inline void use_blas(Job* job, bint calls, int inner) noexcept nogil:
    # A batch of m x n products over ``inner`` calling ?gemm runs on the calling thread alone
    # below SERIAL_PRODUCT_WORK (nbatch m n inner): keeping BLAS to one thread for a parallel
    # batch costs 10-12 us a call, more than a second thread saves there (gemm2_backward of
    # 32 x 32 x 32: 100 us on one thread, 122 on two; of 128 x 24 x 24: 189 and 180).
    job.calls_blas = calls
    job.serial = calls and (job.nbatch * <Py_ssize_t>job.m * job.n * max(inner, 1)
                            < SERIAL_PRODUCT_WORK)

cdef inline void plan_prefetch_for_blas(Job* job, int order) noexcept nogil:
    # A batch of small products through ?gemm, too large for the calling thread alone: each
    # call would wait for its matrix's operands from memory, so the next matrix's are fetched
    # in bursts before the calls (prefetch_for_blas). A/B at 10000 x 16, Intel Xeon, float64:
    # trmm 1.5x faster, syrk and its gradient 1.35x, gemm2's gradient 1.15x, gemm's 1.08x.
    # float64 only: in float32 level, and gemm2's gradient 1.1x slower.
    if (job.calls_blas and not job.serial and not job.flags & (STREAM | SINGLE)
            and order <= BLAS_PREFETCH_MAX):
        job.prefetch_next = True

cdef inline void prefetch_for_blas(const Job* job) noexcept nogil:
    if job.prefetch_next and not job.flags & STREAM:
        adla_prefetch_lines(PREFETCH_BURST)

cdef Py_ssize_t stream_bytes = STREAM_BYTES

def set_stream_bytes(Py_ssize_t nbytes):
    """Batches of products through _fma_product.h from ``nbytes`` of operands (STREAM_BYTES;
    0: any batch); returns the previous bound. For tests, as set_direct_product_max."""
    global stream_bytes
    previous, stream_bytes = stream_bytes, max(0, nbytes)
    return previous

# The least float64 order of a batch through _fma_product.h's loops (fma_stream), by CPU. Intel
# Xeon (AVX-512), against ?gemm, fwd+bwd in batches of 20 MB an operand (A/B): gemm and trmm
# 1.3-1.5x faster at 24-32, gemm2, syrk, trsm, potrf, potri, potrs, inverse and syevd 1.0-1.18x
# (0.9-0.97x at 16, 1.1-1.3x at 20 and 1.2-1.8x at 28-40 for the products). float32 keeps
# FMA_ORDER_MIN: 1.13-1.3x faster at 24, but at 32 gemm2 and inverse took 1.1-1.25x as long
# (two vectors of 16 a row, where OpenBLAS's kernels are at their best). Zen 4 EPYC: ?gemm
# faster below 48 in both dtypes (plan_products).
cdef int fma_batch_order_min = FMA_ORDER_MIN if adla_cpu_is_amd() else FMA_BATCH_ORDER_MIN

cdef inline bint fma_stream(const Job* job, int rows, int cols, int inner,
                            int operands) noexcept nogil:
    # plan_products' choice of _fma_product.h's loops (below) for a batch of rows x cols
    # products over ``inner``.
    cdef Py_ssize_t size = 4 if job.flags & SINGLE else 8
    cdef int least = FMA_ORDER_MIN if job.flags & SINGLE else fma_batch_order_min
    return (fma_product(rows, cols, inner) and max(rows, cols, inner) >= least
            and job.nbatch * <Py_ssize_t>rows * cols * operands * size >= stream_bytes)

cdef void plan_products(Job* job, int inner, int operands, bint direct_loops) noexcept nogil:
    # The route of a batch of m x n products over ``inner`` (gemm, syrk, trmm and their rules):
    # the direct loops where the caller found them (``direct_loops``), else ?gemm (use_blas),
    # except that from order FMA_ORDER_MIN (float64 on Intel: fma_batch_order_min) a batch
    # larger than the caches (``operands`` m x n matrices past stream_bytes) runs
    # _fma_product.h's loops on CPUs that have them: the next matrix's inputs fetched while
    # multiplying, the results written past the caches.
    # A/B on a Zen 4 EPYC (fwd+bwd): 1.3x faster than ?gemm at 1000 x 64, 1.3-1.7x at 48 and
    # 96-192, 1.15x at 256, and 1.2x trmm at 64; the gradient 1.3x from 19 MiB of operands,
    # the forward from 25 (1.05x slower at 11-19 MiB); ?gemm was faster at smaller orders
    # (1.4x at 10000 x 16, 1.1x at 3000 x 32).
    if fma_stream(job, job.m, job.n, inner, operands):
        job.flags |= STREAM
        job.prefetch_next = True
    use_blas(job, not direct_loops and not job.flags & STREAM, inner)

cdef void plan_gemm(Job* job) noexcept nogil:
    plan_products(job, job.k, 3, direct(job))
    if all_within(job.m, job.n, job.k, TRANSPOSED_B_MAX) or job.flags & STREAM:
        job.work = <Py_ssize_t>job.n * job.k       # op(B), transposed
    # Interleaved against the direct loops since their last columns run as a padded block (A/B,
    # 30000-100000 matrices): 1.3-2.5x faster up to about 100 multiply-adds a product (3 x 3 x 3:
    # 1.3 against 1.9 ms), level to 1.8x slower above (8 x 8 x 7: 2.7 against 1.5).
    if (job.m <= SMALL_GEMM and job.n <= SMALL_GEMM and job.k <= SMALL_GEMM and job.n % 4 != 0
            and job.m * job.n * job.k <= GEMM_LANES_WORK):
        job.lanes = LANES
        job.work = <Py_ssize_t>(job.m * job.k + job.n * job.k + job.m * job.n) * LANES

cdef void plan_gemm_jvp(Job* job) noexcept nogil:
    # D by gemm's route (so that it has the forward's bits); dD past the direct loops up to
    # FUSED_TANGENT_MAX in one pass on CPUs with AVX-512 (fused_tangent).
    # A/B, gemm2_jvp float64 (float32): 20000 x 12 4.5 against 6.0 ms (2.6 against 3.1),
    # 10000 x 16 5.1 against 5.9 (2.0 against 2.4), level at 20-24; two ?gemm were faster from
    # 32 (1.1x at 3000 x 32, 1.2x at 1000 x 64, where the pass ran at 66 GFLOP/s).
    plan_products(job, job.k, 3, direct(job))  # D: gemm's route, bit for bit
    if all_within(job.m, job.n, job.k, TRANSPOSED_B_MAX) or job.flags & STREAM:
        job.work = <Py_ssize_t>job.n * job.k       # op(B) or op(dB), transposed
    if fma_product(job.m, job.n, job.k) and all_within(job.m, job.n, job.k, FUSED_TANGENT_MAX):
        job.flags |= FUSED_TANGENT
        job.work = <Py_ssize_t>2 * job.n * job.k   # op(B) and op(dB), transposed

cdef void plan_gemm_backward(Job* job) noexcept nogil:
    plan_products(job, job.k, 3, direct(job))
    plan_prefetch_for_blas(job, max(job.m, job.n, job.k))
    job.work = max(<Py_ssize_t>job.m * job.n, max(job.m, job.n) * <Py_ssize_t>job.k)

cdef void plan_sandwich(Job* job) noexcept nogil:
    # gemm's routes for both products (the intermediate's through product_in_cache). Against
    # the two products as batched gemm calls, the intermediate written out and read back (A/B,
    # Intel Xeon with AVX-512, inverse_backward float64 / float32): 1.45x / 1.1x faster at
    # 10000 x 16, 1.2x at 3000 x 32 and 1000 x 64 (float32 1.1x), 1.1x / 1.05x at 200 x 128,
    # level for one large matrix (the same two BLAS calls).
    plan_products(job, job.n, 3, direct(job))
    plan_prefetch_for_blas(job, job.n)
    job.work = <Py_ssize_t>2 * job.n * job.n

cdef void plan_syrk(Job* job) noexcept nogil:
    # The direct loops up to SMALL_PRODUCT on every CPU: they beat ?syrk there (measured, also
    # where ?gemm is faster than they are). A batch larger than the caches as gemm's, the whole
    # product (twice the multiply-adds): 1000 x 64 took 6.0 ms against ?syrk's 9.4 (float32:
    # 2.8 against 5.4); 1.1-1.5x faster from order 48 at 11-38 MiB of operands.
    # Except that past the direct loops' bound for this CPU (8 with AVX-512), from order
    # SYRK_GEMM_MIN up to SMALL_PRODUCT, a batch too large to run on the calling thread runs
    # ?gemm's whole product, then mirrored, the next A fetched meanwhile: against the direct
    # loops (A/B, Intel Xeon with AVX-512) 1.05x faster at 10000 x 12, 1.25x at 16, 1.4x at 32
    # (float64; float32 1.05-1.55x); 0.95x at order 9, and 0.8x for a batch of 100 of order 16.
    cdef bint small = all_within(job.m, job.m, job.k, SMALL_PRODUCT)
    cdef bint direct_loops = small and (
        direct_product(job.m, job.m, job.k) or job.m < SYRK_GEMM_MIN
        or job.nbatch * <Py_ssize_t>job.m * job.m * job.k < SERIAL_PRODUCT_WORK)
    plan_products(job, job.k, 2, direct_loops)
    job.work = <Py_ssize_t>job.n * job.k           # A^T
    if small:
        plan_prefetch_for_blas(job, max(job.m, job.k))

cdef void plan_syrk_backward(Job* job) noexcept nogil:
    plan_products(job, job.k, 3, direct(job))
    plan_prefetch_for_blas(job, max(job.m, job.k))
    job.work = <Py_ssize_t>job.m * job.m           # dC + dC^T
