# Small helpers on row-major n x n matrices.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef inline void copy(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    if count > 0:
        memcpy(dst, src, count * sizeof(floating))

cdef inline void swap_vectors(floating* x, floating* y, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating t
    for i in range(count):
        t = x[i]
        x[i] = y[i]
        y[i] = t

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
    # Row by row, eight sums of x * 0 (NaN exactly for inf and NaN) side by side, which the
    # compiler vectorises: a branch per entry cost a shared-triangle trsm (one check per 8
    # right-hand sides) 15%.
    cdef floating partial[8]
    cdef floating total = 0
    cdef int i, j, first, last, v
    for v in range(8):
        partial[v] = 0
    for i in range(n):
        first = 0 if lower else i
        last = i + 1 if lower else n
        j = first
        while j + 8 <= last:
            for v in range(8):
                partial[v] = partial[v] + a[i * n + j + v] * 0
            j += 8
        for j in range(j, last):
            partial[0] = partial[0] + a[i * n + j] * 0
    for v in range(8):
        total = total + partial[v]
    return total == 0

cdef inline int first_zero_diagonal(const floating* a, int n) noexcept nogil:
    """1-based position of the first zero on the diagonal, or 0."""
    cdef int i
    for i in range(n):
        if a[i * n + i] == 0:
            return i + 1
    return 0

cdef inline int solve_status(const floating* t, int n, bint lower, const floating* b,
                             Py_ssize_t count) noexcept nogil:
    """A triangular solve's status: non-finite entries in the triangle of t (n x n) or in the
    ``count`` entries of b, else the 1-based position of the first zero on t's diagonal."""
    if not triangle_finite(t, n, lower) or not all_finite(b, count):
        return NONFINITE
    return first_zero_diagonal(t, n)

cdef inline void nan_triangle(floating* a, int n, bint lower) noexcept nogil:
    """NaN in the lower (or upper) triangle of a, diagonal included, zero elsewhere: the
    gradient of a factor whose solve failed, as the composed rules leave it."""
    cdef int i, j
    for i in range(n):
        for j in range(n):
            a[i * n + j] = NAN if (j <= i) == lower or i == j else 0

cdef inline void scaled_triangle(floating* dst, const floating* src, int n, bint lower,
                                 floating scale) noexcept nogil:
    """dst := scale * src in the lower (or upper) triangle, diagonal included, zero elsewhere."""
    cdef int i, j
    for i in range(n):
        for j in range(n):
            dst[i * n + j] = scale * src[i * n + j] if (j <= i) == lower or i == j else 0

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

cdef inline int ld(int x) noexcept nogil:
    # BLAS rejects a leading dimension of 0 even for empty matrices.
    return x if x > 1 else 1

cdef inline int workspace_size(floating query, int least) noexcept nogil:
    # LAPACK reports the optimal workspace as a float in work[0] of a lwork = -1 call.
    cdef int size = <int>query
    return size if size > least else least

cdef inline int ints_in(floating* kind, Py_ssize_t count) noexcept nogil:
    # Scratch elements that hold ``count`` ints.
    return <int>((count * sizeof(int) + sizeof(floating) - 1) // sizeof(floating))


cdef void trsm_recursive(char side, char uplo, char trans, char diag, int m, int n,
                         floating alpha, floating* a, int lda, floating* b,
                         int ldb) noexcept nogil:
    """BLAS trsm (column-major, same arguments), split in halves while the triangle's order is
    above TRSM_LEAF: each split is two solves of half the order and one gemm, so that most of
    the work runs at the gemm rate. SciPy's OpenBLAS solves at 40-65% of its gemm rate at order
    500-1000; split, 1.3-1.7x faster there (A/B, order 500 and 1000)."""
    cdef int order = m if side == c'L' else n
    cdef int h, r
    cdef floating* off
    cdef floating* a22
    cdef floating* b2
    cdef bint lower_op = (uplo == c'L') == (trans == c'N')      # op(A) is lower triangular
    if order <= TRSM_LEAF or m == 0 or n == 0:
        xtrsm(side, uplo, trans, diag, m, n, alpha, a, lda, b, ldb)
        return
    h = order // 2 // 16 * 16
    r = order - h
    a22 = a + h + <Py_ssize_t>h * lda
    # The stored off-diagonal block (A21 below the diagonal, A12 right of it): op() of it is
    # op(A)'s off-diagonal block, in whichever corner op(A) has it.
    off = a + h if uplo == c'L' else a + <Py_ssize_t>h * lda
    if side == c'L':                    # op(A) X = alpha B; X's rows split h, r
        if lower_op:
            trsm_recursive(side, uplo, trans, diag, h, n, alpha, a, lda, b, ldb)
            xgemm(trans, c'N', r, n, h, -1, off, lda, b, ldb, alpha, b + h, ldb)
            trsm_recursive(side, uplo, trans, diag, r, n, 1, a22, lda, b + h, ldb)
        else:
            trsm_recursive(side, uplo, trans, diag, r, n, alpha, a22, lda, b + h, ldb)
            xgemm(trans, c'N', h, n, r, -1, off, lda, b + h, ldb, alpha, b, ldb)
            trsm_recursive(side, uplo, trans, diag, h, n, 1, a, lda, b, ldb)
    else:                               # X op(A) = alpha B; X's columns split h, r
        b2 = b + <Py_ssize_t>h * ldb
        if lower_op:
            trsm_recursive(side, uplo, trans, diag, m, r, alpha, a22, lda, b2, ldb)
            xgemm(c'N', trans, m, h, r, -1, b2, ldb, off, lda, alpha, b, ldb)
            trsm_recursive(side, uplo, trans, diag, m, h, 1, a, lda, b, ldb)
        else:
            trsm_recursive(side, uplo, trans, diag, m, h, alpha, a, lda, b, ldb)
            xgemm(c'N', trans, m, r, h, -1, b, ldb, off, lda, alpha, b2, ldb)
            trsm_recursive(side, uplo, trans, diag, m, r, 1, a22, lda, b2, ldb)


cdef int potrf_recursive(char uplo, int n, floating* a, int lda) noexcept nogil:
    """LAPACK potrf (column-major, same arguments and info), split in halves above order
    POTRF_LEAF: factor the leading half, solve for the off-diagonal block (trsm_recursive),
    update the trailing half (syrk) and factor it, so that most of the work runs at the gemm
    rate. SciPy's OpenBLAS potrf runs at 15-30% of its gemm rate at order 500-1000."""
    cdef int h, r, info
    cdef floating* a22
    if n <= POTRF_LEAF:
        return xpotrf(uplo, n, a, lda)
    h = n // 2 // 16 * 16
    r = n - h
    a22 = a + h + <Py_ssize_t>h * lda
    info = potrf_recursive(uplo, h, a, lda)
    if info != 0:
        return info
    if uplo == c'U':                    # A = U^T U: U12 = U11^-T A12, A22 -= U12^T U12
        trsm_recursive(c'L', c'U', c'T', c'N', h, r, 1, a, lda, a + <Py_ssize_t>h * lda, lda)
        xsyrk(c'U', c'T', r, h, -1, a + <Py_ssize_t>h * lda, lda, 1, a22, lda)
    else:                               # A = L L^T: L21 = A21 L11^-T, A22 -= L21 L21^T
        trsm_recursive(c'R', c'L', c'T', c'N', r, h, 1, a, lda, a + h, lda)
        xsyrk(c'L', c'N', r, h, -1, a + h, lda, 1, a22, lda)
    info = potrf_recursive(uplo, r, a22, lda)
    return info + h if info != 0 else 0
