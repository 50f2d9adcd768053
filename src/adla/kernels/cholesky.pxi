# Cholesky: potrf, its gradient and tangent, potri, potrs, per matrix and interleaved.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef int potrf_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # The factorisations write their triangle only: the other one is zeroed as the input's is
    # copied, one pass instead of a whole copy and a pass after (A/B in one process, Zen 4:
    # 1.03-1.06x faster at 1 x 1000-2000 and 30 x 300, both dtypes). A row-major lower factor
    # is a column-major upper one, whose recursion solves on the left (solve_columns' leaves).
    cdef int n = job.n
    cdef bint lower = (job.flags & LOWER) != 0
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, lower):
        return NONFINITE
    triangle_into(p[1], p[0], n, lower, False)
    return potrf_recursive(c'U' if lower else c'L', n, p[1], n)


cdef inline void symmetrize(floating* a, int n) noexcept nogil:
    pair_entries(a, a, n, n, PAIRS_AVERAGE)

cdef inline char flipped(char trans) noexcept nogil:
    return c'T' if trans == c'N' else c'N'

cdef void copy_transposed_block(floating* dst, int ldd, const floating* src, int lds, int rows,
                                int cols) noexcept nogil:
    # Column-major dst (cols x rows) := src^T (src rows x cols), in tiles of PAIR_TILE.
    cdef int ti, tj, i, j
    for tj in range((cols + PAIR_TILE - 1) // PAIR_TILE):
        for ti in range((rows + PAIR_TILE - 1) // PAIR_TILE):
            for j in range(tj * PAIR_TILE, min(tj * PAIR_TILE + PAIR_TILE, cols)):
                for i in range(ti * PAIR_TILE, min(ti * PAIR_TILE + PAIR_TILE, rows)):
                    dst[j + <Py_ssize_t>i * ldd] = src[i + <Py_ssize_t>j * lds]

cdef inline void subtract_half(floating* dst, int ldd, const floating* src, int rows,
                               int cols) noexcept nogil:
    # Column-major dst -= src / 2 (src rows x cols, contiguous).
    cdef int i, j
    for j in range(cols):
        for i in range(rows):
            dst[i + <Py_ssize_t>j * ldd] -= src[i + <Py_ssize_t>j * rows] * <floating>0.5

cdef void congruence_solve(floating* s, int lds, floating* f, int ldf, int n, char uplo,
                           char trans, floating* work) noexcept nogil:
    """Column-major X := T^-1 S T^-T in s for symmetric S (both triangles) and T = op(F), the
    triangle F given BLAS-style (uplo, trans): X symmetric up to rounding, both triangles
    written. Above CONGRUENCE_LEAF by halves, as LAPACK's sygst, at n^3 flops against 2 n^3 for
    two triangular solves: for upper T, with T X T^T = S block by block,
        X22 = T22^-1 S22 T22^-T,  R' = S12 T22^-T - T12 X22 / 2,
        X11 = T11^-1 (S11 - R' T12^T - T12 R'^T) T11^-T,  X12 = T11^-1 (R' - T12 X22 / 2),
    and lower T the same from the other corner. Against the two solves (trsm_recursive, A/B,
    potrf_backward): 0.79x the time at order 1000, 0.86x for 30 matrices of 300; leaves of 64
    0.93-0.98x those of 128 at 200-1000, of 32 level with 64. work: n^2 / 4 elements (T12 X22
    or T21 X11)."""
    cdef int h, r
    cdef bint upper_t = (uplo == c'U') == (trans == c'N')
    cdef floating* off
    cdef floating* s12
    cdef floating* s21
    cdef floating* s22
    cdef floating* f22
    if n <= CONGRUENCE_LEAF:
        trsm_recursive(c'L', uplo, trans, c'N', n, n, 1, f, ldf, s, lds)
        trsm_recursive(c'R', uplo, flipped(trans), c'N', n, n, 1, f, ldf, s, lds)
        return
    h = split_point(n)
    r = n - h
    # op(F)'s off-diagonal block is op() of the stored one, in whichever corner F has it.
    off = f + <Py_ssize_t>h * ldf if uplo == c'U' else f + h
    s12, s21, s22 = s + <Py_ssize_t>h * lds, s + h, s + h + <Py_ssize_t>h * lds
    f22 = f + h + <Py_ssize_t>h * ldf
    if upper_t:
        congruence_solve(s22, lds, f22, ldf, r, uplo, trans, work)
        trsm_recursive(c'R', uplo, flipped(trans), c'N', h, r, 1, f22, ldf, s12, lds)
        xgemm(trans, c'N', h, r, r, 1, off, ldf, s22, lds, 0, work, h)     # T12 X22
        subtract_half(s12, lds, work, h, r)
        gemm_triangle(c'U', c'N', flipped(trans), h, r, -1, s12, lds, off, ldf, 1, s, lds)
        gemm_triangle(c'U', trans, c'T', h, r, -1, off, ldf, s12, lds, 1, s, lds)
        pair_entries(s, s, h, lds, PAIRS_FROM_LOWER)        # column-major: upper onto lower
        subtract_half(s12, lds, work, h, r)
        congruence_solve(s, lds, f, ldf, h, uplo, trans, work)
        trsm_recursive(c'L', uplo, trans, c'N', h, r, 1, f, ldf, s12, lds)
        copy_transposed_block(s21, lds, s12, lds, h, r)
    else:
        congruence_solve(s, lds, f, ldf, h, uplo, trans, work)
        trsm_recursive(c'R', uplo, flipped(trans), c'N', r, h, 1, f, ldf, s21, lds)
        xgemm(trans, c'N', r, h, h, 1, off, ldf, s, lds, 0, work, r)         # T21 X11
        subtract_half(s21, lds, work, r, h)
        gemm_triangle(c'L', c'N', flipped(trans), r, h, -1, s21, lds, off, ldf, 1, s22, lds)
        gemm_triangle(c'L', trans, c'T', r, h, -1, off, ldf, s21, lds, 1, s22, lds)
        pair_entries(s22, s22, r, lds, PAIRS_FROM_UPPER)      # column-major: lower onto upper
        subtract_half(s21, lds, work, r, h)
        congruence_solve(s22, lds, f22, ldf, r, uplo, trans, work)
        trsm_recursive(c'L', uplo, trans, c'N', r, h, 1, f22, ldf, s21, lds)
        copy_transposed_block(s12, lds, s21, lds, r, h)

cdef void upper_of_upper_products(int n, floating* a, int lda, const floating* b,
                                  int ldb) noexcept nogil:
    """Column-major a := A B^T in its upper triangle, A (in a) and B upper triangular (B's
    other triangle not read; a's strict lower triangle zero on entry, anything on exit): by
    halves, C11 = A11 B11^T + A12 B12^T, C12 = A12 B22^T, C22 = A22 B22^T, with the
    triangles' zeros skipped: about n^3 / 3 flops, against n^3 for ?trmm's whole product."""
    cdef int h
    if n <= TRIANGLE_PRODUCT_LEAF:
        xtrmm(c'R', c'U', c'T', n, n, 1, <floating*>b, ldb, a, lda)
        return
    h = n // 2
    upper_of_upper_products(h, a, lda, b, ldb)
    # A12 B12^T onto C11's upper triangle before C12 overwrites A12.
    gemm_triangle(c'U', c'N', c'T', h, n - h, 1, a + <Py_ssize_t>h * lda, lda,
                  <floating*>b + <Py_ssize_t>h * ldb, ldb, 1, a, lda)
    xtrmm(c'R', c'U', c'T', h, n - h, 1, <floating*>b + h + <Py_ssize_t>h * ldb, ldb,
          a + <Py_ssize_t>h * lda, lda)
    upper_of_upper_products(n - h, a + h + <Py_ssize_t>h * lda, lda,
                            b + h + <Py_ssize_t>h * ldb, ldb)

cdef void cholesky_gradient_recursive(int n, floating* g, int ldg, floating* lf, int ldl,
                                      floating* work) noexcept nogil:
    """Row-major, in place: g's lower triangle holds dL of the lower factor L (lf) on entry, the
    symmetric dA (both triangles) on exit. At the leaves (order up to cholesky_gradient_leaf),
    dA = L^-T S L^-1 with S = (P + P^T)/2, P the lower triangle of L^T dL with its diagonal
    halved: a product of triangles in one triangle and the congruence, each by halves
    (upper_of_upper_products, congruence_solve), 4n^3/3 flops. Above, split in halves as
    potrf_recursive factors, each step undone in reverse (Murray 2016's blocked reverse mode):
    with L21 L11^T = A21 and L22 L22^T = A22 - L21 L21^T,
        dA22 = recursion(L22, dL22),  X = (dL21 - 2 dA22 L21) L11^-1,  dA21 = X / 2,
        dA11 = recursion(L11, dL11 - tril(X^T L21)),
    2n^3/3 flops in all, mostly in ?gemm. work: 2 min(n, cholesky_gradient_leaf)^2 elements."""
    cdef int h, r, i, j
    cdef floating* b = work
    cdef floating* t
    cdef floating* g21
    if n <= cholesky_gradient_leaf:
        t = work + <Py_ssize_t>n * n
        # Column-major, the row-major buffers are transposed: the lower L is an upper U with
        # A = U^T U, and the formula becomes dA = U^-1 S U^-T with S from M = U dU^T; b := dU U^T
        # = M^T in its column-major upper triangle, S from there (row-major lower), mirrored.
        for i in range(n):
            for j in range(n):
                b[i * n + j] = g[<Py_ssize_t>i * ldg + j] if j <= i else 0
        upper_of_upper_products(n, b, n, lf, ldl)
        scaled_triangle(t, b, n, True, <floating>0.5)
        mirror_triangle(t, n, True)
        congruence_solve(t, n, lf, ldl, n, c'U', c'N', b)      # U^-1 S U^-T
        symmetrize(t, n)
        for i in range(n):
            copy(g + <Py_ssize_t>i * ldg, t + <Py_ssize_t>i * n, n)
        return
    h = split_point(n)
    r = n - h
    g21 = g + <Py_ssize_t>h * ldg
    cholesky_gradient_recursive(r, g21 + h, ldg, lf + <Py_ssize_t>h * ldl + h, ldl, work)
    # Column-major: U12 = L21^T (h x r), dU12 = dL21^T, U11 = L11^T, dA22 symmetric.
    xgemm(c'N', c'N', h, r, r, -2, lf + <Py_ssize_t>h * ldl, ldl, g21 + h, ldg, 1, g21, ldg)
    trsm_recursive(c'L', c'U', c'N', c'N', h, r, 1, lf, ldl, g21, ldg)          # X^T
    gemm_triangle(c'U', c'N', c'T', h, r, -1, lf + <Py_ssize_t>h * ldl, ldl, g21, ldg, 1, g,
                  ldg)                                      # dL11 -= tril(X^T L21)
    for i in range(r):
        for j in range(h):
            g21[<Py_ssize_t>i * ldg + j] = g21[<Py_ssize_t>i * ldg + j] * <floating>0.5
    cholesky_gradient_recursive(h, g, ldg, lf, ldl, work)
    copy_transposed_block(g + h, ldg, g21, ldg, h, r)       # dA12 = dA21^T

cdef int potrf_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """dA of potrf from (dL, L) per matrix (cholesky_gradient_recursive). Upper factors U = L^T
    are transposed into that case (dA is the same). potrf_backward_lanes is the same for small
    n. work: (upper) L, then the recursion's."""
    cdef int n = job.n, i
    cdef bint lower = (job.flags & LOWER) != 0
    cdef const floating* dl = p[0]
    cdef floating* lf = p[1]
    cdef floating* da = p[2]
    if n == 0:
        return 0
    if not triangle_finite(lf, n, lower) or not triangle_finite(dl, n, lower):
        return NONFINITE
    i = first_zero_diagonal(lf, n)
    if i:
        return i
    triangle_into(da, dl, n, lower, not lower)     # dL, or dU^T: lower, zeros above
    if not lower:
        transpose_into(work, lf, n, n)
        lf = work
        work = work + <Py_ssize_t>n * n
    cholesky_gradient_recursive(n, da, n, lf, n, work)
    return 0


cdef int potri_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # In a batch, each matrix on one thread: potri_recursive, on the lower form of the factor
    # (column-major, its upper factor U = L^T), so that an upper factor gives the bits of its
    # transpose. Against ?potri (A/B, float64 / float32): 2-4 matrices of order 128-384
    # 1.05-1.35x / 1.15-1.4x faster, 3 of 512 1.15 / 1.35x, 2 of 1000 1.05 / 1.1x. One
    # matrix: ?potri on BLAS's threads, 1.05-1.1x faster than the split kernels at 512-1000.
    cdef int n = job.n, info
    cdef bint lower = (job.flags & LOWER) != 0
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, lower):
        return NONFINITE
    if job.nbatch == 1:
        copy(p[1], p[0], <Py_ssize_t>n * n)
        info = xpotri(c'U' if lower else c'L', n, p[1], n)
        mirror_triangle(p[1], n, lower)
        return info
    if lower:
        copy(p[1], p[0], <Py_ssize_t>n * n)
    else:
        transpose_into(p[1], p[0], n, n)
    info = potri_recursive(n, p[1], n)
    mirror_triangle(p[1], n, True)
    return info

cdef inline void potrs_solve(floating* l, floating* x, int n, int k, bint lower) noexcept nogil:
    # In place x := (L L^T)^-1 x, x n x k. Column-major: x^T A^-1, two right-side solves.
    cdef char uplo = c'U' if lower else c'L'
    trsm_recursive(c'R', uplo, c'N' if lower else c'T', c'N', k, n, 1, l, n, x, ld(k))
    trsm_recursive(c'R', uplo, c'T' if lower else c'N', c'N', k, n, 1, l, n, x, ld(k))

cdef int potrs_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # X = (L L^T)^-1 B, B n x k.
    cdef int n = job.m, k = job.n, status
    cdef bint lower = (job.flags & LOWER) != 0
    if n == 0 or k == 0:
        return 0
    status = solve_status(p[0], n, lower, p[1], <Py_ssize_t>n * k)
    if status:
        return status
    copy(p[2], p[1], <Py_ssize_t>n * k)
    potrs_solve(p[0], p[2], n, k, lower)
    return 0

cdef inline bint potrs_gradient_products(int n) noexcept nogil:
    # potrs_backward_one's products (rather than ?syr2k and ?trmm): up to TRMM_PRODUCT_MAX, and
    # up to POTRS_GRADIENT_PRODUCT_MAX where the FMA loops run (at 256, 1.07x slower in float32).
    return n <= TRMM_PRODUCT_MAX or (n <= POTRS_GRADIENT_PRODUCT_MAX and fma_product(n, n, n))

cdef int potrs_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dL, dB) of potrs from (L, X, dX), one matrix, BLAS-3 while it is in cache: dB = A^-1 dX
    (potrs_solve), S = dB X^T + X dB^T, dL = -tril(S L) (upper: -triu(U S)). Where
    potrs_gradient_products, S is one product and its transpose added, and dL a product with
    the factor's triangle written out (zeros off it; only the result's triangle computed):
    against ?syr2k and ?trmm (A/B, potrs fwd+bwd, Intel Xeon with AVX-512) 1.2-1.3x faster at
    1000 x 48 and 1000 x 64, level at 10000 x 16 and 200 x 128; above, ?syr2k and one ?trmm.
    Status as potrs_one on (L, dX); where it is not 0, dL is NaN in the factor's triangle (as
    the composed rule leaves it) and the caller fills dB. work (products only): S, the
    triangle, then max(n, k) n for a product's transposed operand."""
    cdef int n = job.m, k = job.n, status
    cdef bint lower = (job.flags & LOWER) != 0
    cdef Py_ssize_t nn = <Py_ssize_t>n * n
    cdef floating* dl = p[3]
    cdef floating* db = p[4]
    cdef floating* s = work
    cdef floating* t = work + nn
    cdef floating* scratch = work + 2 * nn
    if n == 0:
        return 0
    status = solve_status(p[0], n, lower, p[2], <Py_ssize_t>n * k)
    if status:
        nan_triangle(dl, n, lower)
        return status
    copy(db, p[2], <Py_ssize_t>n * k)
    potrs_solve(p[0], db, n, k, lower)
    if potrs_gradient_products(n):
        prefetch_for_blas(job)
        product_in_cache(s, db, p[1], n, n, k, TRANS_B, 1, 0, NULL, scratch)   # dB X^T
        pair_entries(s, s, n, n, PAIRS_SUM)
        triangle_into(t, p[0], n, lower, False)
        if lower:
            product_into(dl, s, t, n, n, n, TRIANGLE | LOWER | (job.flags & STREAM), -1,
                         scratch)
        else:
            product_into(dl, t, s, n, n, n, TRIANGLE | (job.flags & STREAM), -1, scratch)
        return 0
    # Column-major, the row-major n x k dB and X are k x n matrices D and Y, and
    # S = D^T Y + Y^T D: syr2k with 'T'.
    xsyr2k(c'U', c'T', n, k, 1, db, ld(k), p[1], ld(k), 0, dl, n)
    mirror_triangle(dl, n, True)            # column-major upper = row-major lower
    # Row-major S L is column-major L^T S, and L^T is the column-major upper triangle of p[0]
    # (lower); row-major U S is column-major S U^T, U^T its lower triangle (upper).
    if lower:
        xtrmm(c'L', c'U', c'N', n, n, -1, p[0], n, dl, n)
    else:
        xtrmm(c'R', c'L', c'N', n, n, -1, p[0], n, dl, n)
    zero_triangle(dl, n, lower)
    return 0


cdef inline void gather_factor(floating* a, floating** src, int n, bint lower,
                               floating* inverse_diagonal, int* status) noexcept nogil:
    """The lower form of a Cholesky factor (an upper U gathered as U^T) into every lane of a, its
    non-finite entries and first zero diagonal entry marked in status, and the reciprocals of
    its diagonal: what every solve with the factor starts from."""
    gather(a, src, n, n, 0, n if lower else 1, 1 if lower else n, True)
    mark_nonfinite(a, n, n, True, status)
    mark_zero_diagonal(a, n, False, status)
    reciprocal_diagonal(inverse_diagonal, a, n)

cdef inline void solve_with_factor(const floating* a, const floating* inverse_diagonal,
                                   floating* x, int n, int k) noexcept nogil:
    """x := (L L^T)^-1 x in every lane, L the lower triangle of a (n x n), x n x k."""
    forward_substitute(a, inverse_diagonal, x, n, k, 1)
    back_substitute(a, inverse_diagonal, x, n, k)


cdef inline void inverse_factor_both(floating* a, const floating* inverse_diagonal,
                                    floating* x, int n) noexcept nogil:
    """L^-1 into the lower triangle of x and its transpose into the upper one, in every lane,
    L the lower triangle of a (n x n; a's upper triangle becomes L^T). As LAPACK's trtri does
    for a lower L, from L^-1 L = I: L^-1[i, j] = -(sum over j < k <= i of L^-1[i, k] L[k, j])
    / L[j, j], so row i of L^-1 needs only itself, from its diagonal leftwards, and the rows of
    L^T: both contiguous (a column of a row-major scratch lies a row apart: 4 KiB at order 64 in
    float64, one L1 set). From L L^-1 = I instead (forward substitution), potri's residuals
    had 2-4x LAPACK's median. Entries j and j - 1 share their sums over k > j."""
    cdef floating acc[LANES]
    cdef floating pair[2 * LANES]
    cdef int i, j, k, v
    cdef floating* xi
    mirror_lower(a, n)
    for i in range(n):
        adla_prefetch_share(i, n)
        xi = x + <Py_ssize_t>i * n * LANES
        for v in range(LANES):
            xi[i * LANES + v] = inverse_diagonal[i * LANES + v]
        j = i - 1
        while j >= 1:
            for v in range(2 * LANES):
                pair[v] = 0
            add_dot_rows(pair, a + (j * n + j + 1) * LANES, -<Py_ssize_t>n * LANES,
                         xi + (j + 1) * LANES, LANES, 2, i - j)
            for v in range(LANES):
                xi[j * LANES + v] = -pair[v] * inverse_diagonal[j * LANES + v]
            for v in range(LANES):
                pair[LANES + v] = (pair[LANES + v]
                                   + a[((j - 1) * n + j) * LANES + v] * xi[j * LANES + v])
                xi[(j - 1) * LANES + v] = -pair[LANES + v] * inverse_diagonal[(j - 1) * LANES + v]
            j -= 2
        if j == 0:
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, a + LANES, LANES, xi + LANES, LANES, i)
            for v in range(LANES):
                xi[v] = -acc[v] * inverse_diagonal[v]
        for k in range(i):
            for v in range(LANES):
                x[(k * n + i) * LANES + v] = xi[k * LANES + v]


cdef void cholesky_solve_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """potrs_one for LANES small matrices: X = L^-T (L^-1 B), L the lower form of the factor (an
    upper U = L^T gathered transposed), by forward then back substitution; or potri_one as
    LAPACK's potri computes it: L^-1 (inverse_factor_both), then L^-T L^-1 (lower triangle, in
    place row by row, mirrored so that it is exactly symmetric). Status as potrs_one and
    potri_one: non-finite entries, then the first zero on the factor's diagonal."""
    cdef bint lower = (job.flags & LOWER) != 0, inverse = job.op == OP_POTRI
    cdef int n = job.m, k = job.n, i, j, v
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>n * n * LANES
    cdef floating inverse_diagonal[POTRI_LANES_MAX * LANES]
    cdef floating acc[LANES]
    cdef floating pair[2 * LANES]
    cdef Py_ssize_t last
    gather_factor(a, p, n, lower, inverse_diagonal, status)
    if not inverse:
        gather(x, p + LANES, n, k, 0, k, 1, False)
        mark_nonfinite(x, n, k, False, status)
        solve_with_factor(a, inverse_diagonal, x, n, k)
        scatter(p + 2 * LANES, count, x, n, k, 0, k, 1, job.stream_out)
        return
    inverse_factor_both(a, inverse_diagonal, x, n)
    # (L^-T L^-1)[i, j] = sum over r >= i of L^-1[r, i] L^-1[r, j], j <= i: rows i and j of
    # L^-T from column i on, in x's upper triangle; into its lower one, which L^-1 is no longer
    # needed in, and last in row i over the diagonal entry, which nothing later reads. Summed
    # from r = n - 1 down, the diagonal's (largest) terms last: from r = i up, potri's residuals
    # had 2.5x LAPACK's median on random factors at order 64 (1.5x in two partial sums);
    # this way 0.7x there, and at most 2.2x on any family (tests/accuracy.py).
    last = (n - 1) * LANES
    for i in range(n):
        for j in range(0, i - 1, 2):
            for v in range(2 * LANES):
                pair[v] = 0
            add_dot_rows(pair, x + j * n * LANES + last, <Py_ssize_t>n * LANES,
                         x + i * n * LANES + last, -LANES, 2, n - i)
            for v in range(2 * LANES):
                x[(i * n + j) * LANES + v] = pair[v]
        for j in range(i - i % 2, i + 1):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, x + j * n * LANES + last, -LANES, x + i * n * LANES + last, -LANES,
                    n - i)
            for v in range(LANES):
                x[(i * n + j) * LANES + v] = acc[v]
    mirror_lower(x, n)
    scatter(p + LANES, count, x, n, n, 0, n, 1, job.stream_out)


cdef void potrs_backward_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """(dL, dB) of potrs for LANES small matrices from (L, X, dX): dB = A^-1 dX by forward and
    back substitution, S = dB X^T + X dB^T, dL = -tril(S L) in the lower form L of the factor
    (transposed back for an upper one). Status as potrs_one on (L, dX); where it is not 0, dL
    is NaN in the factor's triangle (as the composed rule leaves it) and the caller fills dB."""
    cdef bint lower = (job.flags & LOWER) != 0
    cdef int n = job.m, k = job.n, i, j, v
    cdef Py_ssize_t l_row = n if lower else 1, l_col = 1 if lower else n
    cdef floating* a = w
    cdef floating* s = a + <Py_ssize_t>n * n * LANES
    cdef floating* x = s + <Py_ssize_t>n * n * LANES
    cdef floating* db = x + <Py_ssize_t>n * k * LANES
    cdef floating inverse_diagonal[CHOLESKY_SOLVE_LANES_MAX * LANES]
    cdef floating column[CHOLESKY_SOLVE_LANES_MAX * LANES]
    cdef floating acc[LANES]
    gather_factor(a, p, n, lower, inverse_diagonal, status)
    gather(x, p + LANES, n, k, 0, k, 1, False)
    gather(db, p + 2 * LANES, n, k, 0, k, 1, False)
    mark_nonfinite(db, n, k, False, status)
    solve_with_factor(a, inverse_diagonal, db, n, k)
    for i in range(n):
        for j in range(i + 1):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, db + <Py_ssize_t>i * k * LANES, LANES, x + <Py_ssize_t>j * k * LANES,
                    LANES, k)
            add_dot(acc, x + <Py_ssize_t>i * k * LANES, LANES, db + <Py_ssize_t>j * k * LANES,
                    LANES, k)
            for v in range(LANES):
                s[(i * n + j) * LANES + v] = acc[v]
                s[(j * n + i) * LANES + v] = acc[v]
    # Column j of -S L reads only column j of L (rows r >= j), so it replaces that column.
    for j in range(n):
        for i in range(j, n):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, s + (i * n + j) * LANES, LANES, a + (j * n + j) * LANES, n * LANES,
                    n - j)
            for v in range(LANES):
                column[i * LANES + v] = -acc[v]
        for i in range(j, n):
            for v in range(LANES):
                a[(i * n + j) * LANES + v] = column[i * LANES + v]
    keep_triangle(a, n, n, True)
    nan_triangle_where_failed(a, n, status)
    scatter(p + 3 * LANES, count, a, n, n, 0, l_row, l_col, job.stream_out)
    scatter(p + 4 * LANES, count, db, n, k, 0, k, 1, job.stream_out)


cdef inline void nan_triangle_where_failed(floating* w, int n, const int* status) noexcept nogil:
    """The lower triangle of every failed lane of w (n x n) NaN: a gradient whose solve failed,
    as the composed rules leave it."""
    cdef int i, j, v
    for v in range(LANES):
        if status[v] != 0:
            for i in range(n):
                for j in range(i + 1):
                    w[(i * n + j) * LANES + v] = NAN

cdef int potri_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """dL of potri from (L, Ainv, dAinv), one matrix while it is in cache: S = dAinv +
    dAinv^T, Y = L^-1 S (upper: U^-T S; one trsm), dL = -tril(Ainv Y^T) = -tril(Ainv S L^-T)
    (upper: -triu(Y Ainv); one product, of that triangle alone where _fma_product.h's loops
    run: STREAM). Status as trsm_one on L and Ainv S: non-finite entries in L, Ainv, S or the
    result, then L's first zero diagonal entry; where it is not 0, dL is NaN in the factor's
    triangle (as the composed rule leaves it). work: Y, then the product's transposed
    operand (n x n each)."""
    cdef int n = job.n, status
    cdef bint lower = (job.flags & LOWER) != 0
    cdef floating* dl = p[3]
    cdef floating* y = work
    if n == 0:
        return 0
    pair_entries(y, p[2], n, n, PAIRS_SUM)              # S = dAinv + dAinv^T
    if not all_finite(p[1], <Py_ssize_t>n * n):
        status = NONFINITE
    else:
        status = solve_status(p[0], n, lower, y, <Py_ssize_t>n * n)
    if status == 0:
        # Column-major S is itself and the row-major buffers are transposed: Y = L^-1 S is
        # S U^-1 with U = L^T the column-major upper triangle of p[0] (lower); U^-T S is
        # S L^-T with L = U^T its lower one (upper). Solved on the right, as solve_rows runs.
        trsm_recursive(c'R', c'U' if lower else c'L', c'N' if lower else c'T', c'N', n, n, 1,
                       p[0], n, y, n)
        if lower:
            product_into(dl, p[1], y, n, n, n, TRANS_B | TRIANGLE | LOWER | (job.flags & STREAM),
                         -1, work + <Py_ssize_t>n * n)
        else:
            product_into(dl, y, p[1], n, n, n, TRIANGLE | (job.flags & STREAM), -1,
                         work + <Py_ssize_t>n * n)
        if not all_finite(dl, <Py_ssize_t>n * n):
            status = NONFINITE
    if status:
        nan_triangle(dl, n, lower)
    return status

cdef void potri_backward_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """dL of potri for LANES small matrices from (L, Ainv, dAinv): with S = dAinv + dAinv^T,
    Y = L^-1 S Ainv by forward substitution and dL = -tril(Y^T) = -tril(Ainv S L^-T), in the
    lower form L of the factor (transposed back for an upper one). Status as trsm_one on L and
    S Ainv; where it is not 0, dL is NaN in the factor's triangle."""
    cdef bint lower = (job.flags & LOWER) != 0
    cdef int n = job.n, i, j, v
    cdef Py_ssize_t l_row = n if lower else 1, l_col = 1 if lower else n
    cdef floating* a = w
    cdef floating* ainv = a + <Py_ssize_t>n * n * LANES
    cdef floating* s = ainv + <Py_ssize_t>n * n * LANES
    cdef floating* y = s + <Py_ssize_t>n * n * LANES
    cdef floating inverse_diagonal[CHOLESKY_SOLVE_LANES_MAX * LANES]
    cdef floating acc[LANES]
    gather_factor(a, p, n, lower, inverse_diagonal, status)
    gather(ainv, p + LANES, n, n, 0, n, 1, False)
    gather(s, p + 2 * LANES, n, n, 0, n, 1, False)
    for i in range(n):                           # S + S^T
        for j in range(i + 1):
            for v in range(LANES):
                acc[v] = s[(i * n + j) * LANES + v] + s[(j * n + i) * LANES + v]
                s[(i * n + j) * LANES + v] = acc[v]
                s[(j * n + i) * LANES + v] = acc[v]
    for i in range(n):                           # Y = S Ainv
        for j in range(n):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, s + i * n * LANES, LANES, ainv + j * LANES, n * LANES, n)
            for v in range(LANES):
                y[(i * n + j) * LANES + v] = acc[v]
    mark_nonfinite(y, n, n, False, status)       # as the composed rule's solve flags it
    forward_substitute(a, inverse_diagonal, y, n, n, 1)
    for i in range(n):                           # dL = -tril(Y^T), over L's scratch
        for j in range(n):
            for v in range(LANES):
                a[(i * n + j) * LANES + v] = -y[(j * n + i) * LANES + v] if j <= i else 0
    nan_triangle_where_failed(a, n, status)
    scatter(p + 3 * LANES, count, a, n, n, 0, l_row, l_col, job.stream_out)


cdef inline void cholesky_diagonal(floating* a_ii, floating* s, floating* inverse_diagonal_i,
                                   int i, int* status) noexcept nogil:
    # L[i, i] = sqrt(s) and its reciprocal; a lane whose s is not positive gets status i+1.
    cdef int v
    for v in range(LANES):
        if not s[v] > 0 and status[v] == 0:
            status[v] = i + 1
    for v in range(LANES):
        s[v] = sqrt(s[v])
    for v in range(LANES):
        inverse_diagonal_i[v] = <floating>1 / s[v]
    for v in range(LANES):
        a_ii[v] = s[v]

cdef void cholesky_lanes(floating* a, int n, int* status) noexcept nogil:
    """In place, row by row: the lower triangle of every lane of ``a`` becomes its Cholesky
    factor. A lane whose leading minor of order i+1 is not positive gets status i+1 (if it had
    none) and carries NaN or inf onwards, which is harmless: its result is discarded. Rows go in
    groups of four (then two, then one): column j of all of them from one pass over row j, so
    that four chains of additions are in flight; one chain was bound by its latency. In the
    group's own columns the rows above the diagonal are summed too, over whatever the scratch
    holds above it, and not stored: summing only the rows from the diagonal down, through a
    row count of 3 and an offset into the sums, measured 1.5-2x slower (A/B, 1000 x 64 and
    300 x 128). Left of the group's columns, two columns go in one pass (column_pair), so that
    eight chains are in flight: float32's four, one vector each, waited on the latency of their
    fused multiply-adds (A/B in one process, Zen 4: float32 forward 1.15x faster at 1000 x 64
    and 1.35x at 300 x 128, float64 1.03-1.07x). Each entry's sum runs in the same order as one
    row at a time, so the factor's bits are cholesky_tangent_lanes'."""
    # Per-lane temporaries are local arrays: the compiler then knows that storing to ``a``
    # does not change them, and vectorises across lanes.
    cdef floating acc[4 * LANES]
    cdef floating acc_next[4 * LANES]
    cdef floating inverse_diagonal[CHOLESKY_LANES_MAX * LANES]
    cdef int first = 0, rows, j, r, v
    cdef Py_ssize_t row_step = <Py_ssize_t>n * LANES
    cdef floating* group
    cdef const floating* row_j
    while first < n:
        rows = 4 if n - first >= 4 else n - first if n - first < 2 else 2
        group = a + first * row_step
        adla_prefetch_share(first + rows - 1, n)
        j = 0
        while j < first + rows:
            row_j = a + j * row_step
            if j + 1 < first:           # two columns left of the group's: final rows j, j+1
                for r in range(rows):
                    for v in range(LANES):
                        acc[r * LANES + v] = group[r * row_step + j * LANES + v]
                        acc_next[r * LANES + v] = group[r * row_step + (j + 1) * LANES + v]
                column_pair(acc, acc_next, group, row_step, row_j, row_j + row_step,
                            inverse_diagonal + j * LANES, rows, j)
                for r in range(rows):
                    lanes_product(group + r * row_step + (j + 1) * LANES, acc_next + r * LANES,
                                  inverse_diagonal + (j + 1) * LANES)
                j += 2
                continue
            for r in range(rows):
                for v in range(LANES):
                    acc[r * LANES + v] = group[r * row_step + j * LANES + v]
            subtract_dot_rows(acc, group, row_step, row_j, rows, j)
            for r in range(max(j - first, 0), rows):
                if first + r == j:
                    cholesky_diagonal(group + r * row_step + j * LANES, acc + r * LANES,
                                      inverse_diagonal + j * LANES, j, status)
                else:
                    lanes_product(group + r * row_step + j * LANES, acc + r * LANES,
                                  inverse_diagonal + j * LANES)
            j += 1
        first += rows

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
    scatter(p + LANES, count, a, n, n, 0, n if lower else 1, 1 if lower else n, job.stream_out)

cdef void cholesky_reverse_row(floating* x, int x_cols, const floating* l,
                               const floating* inverse_diagonal, int n, int i, floating* scale,
                               int q) noexcept nogil:
    # Row i of potrf_backward_lanes' reverse sweep, within the row: its steps (i, j) for j
    # descending, each one's s into scale[(j * 4 + q) * LANES:] for the updates of row j. Four
    # steps a pass: their terms on each other's entries first, in registers (reverse_block),
    # then one pass over the rest of the row for all four, in step order (one load and store of
    # an entry per four products). Through memory, each step's first load waited on the
    # previous step's store: reverse_block is 1.05-1.1x faster for the whole backward at
    # 8-64 (A/B in one process, Zen 4, both dtypes), 1.03x at 128.
    cdef floating* x_i = x + <Py_ssize_t>i * x_cols * LANES
    cdef const floating* l_i = l + <Py_ssize_t>i * n * LANES
    cdef Py_ssize_t row_step = <Py_ssize_t>n * LANES
    # s and its copies are local arrays, stored by vector moves the helpers' loads then
    # forward from (through scale, scalar stores stalled each step's first load).
    cdef floating s[4 * LANES]
    cdef int j, last, v
    for v in range(LANES):                       # L[i, i] = sqrt(s)
        s[v] = x_i[i * LANES + v] * inverse_diagonal[i * LANES + v] * <floating>0.5
    for v in range(LANES):
        s[LANES + v] = s[v]
        x_i[i * LANES + v] = s[v]
    subtract_scaled_rows(x_i, s, l_i, 0, 2, i)
    j = i - 1
    while j >= 0:                                # L[i, j] = s / L[j, j], steps j .. last
        last = j - 3 if j >= 3 else 0
        reverse_block(x_i + last * LANES, inverse_diagonal + last * LANES, s,
                      scale + (last * 4 + q) * LANES, 4 * LANES,
                      l + last * row_step + last * LANES, row_step, j - last + 1)
        # all the block's steps on the entries left of it, in step order
        subtract_scaled_rows(x_i, s, l + j * row_step, -row_step, j - last + 1, last)
        j = last - 1

cdef void potrf_backward_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """potrf_backward_one for LANES small matrices at once, as the reverse of cholesky_lanes'
    loops step by step (the unblocked reverse mode of Murray, "Differentiation of the Cholesky
    decomposition", 2016): n^3/3 multiply-adds where L^-T S L^-1 takes 5n^3/6. Step (i, j)
    of the forward, s = A[i, j] - sum_{k<j} L[i, k] L[j, k] and L[i, j] = s / L[j, j] (or
    sqrt(s) on the diagonal), is undone for i, j descending: its cotangent sbar is the
    gradient of the lower triangle of A at (i, j), and it passes -sbar L[j, k], -sbar L[i, k]
    on to dL[i, k], dL[j, k] (and -sbar L[i, j] to dL[j, j]). dL[i, j] is read last at that
    step, so the gradient overwrites it; the symmetric dA halves it off the diagonal.
    Rows are swept in groups of four (cholesky_reverse_row); the terms they pass on to each
    earlier row j then go in one pass over row j, all four at once: each entry gets the same
    terms in the same order as one step at a time, with one load and store of it per four
    products instead of per one. Within a row, steps go four at a time the same way. (Which
    products are fused multiply-adds follows the length of each pass, _lane_update.h.)"""
    cdef int n = job.n, cols = padded_columns(n, floating is float), hi, first, rows, r, q, j
    cdef bint lower = (job.flags & LOWER) != 0
    cdef Py_ssize_t row_step = <Py_ssize_t>n * LANES         # of l
    cdef Py_ssize_t x_step = <Py_ssize_t>cols * LANES        # of x, padded: mirror_lower's
    cdef floating* l = w                                      # columns spread over the L1 sets
    cdef floating* x = w + <Py_ssize_t>n * n * LANES
    cdef floating* scale = x + n * x_step                      # n x 4 lanes
    cdef floating inverse_diagonal[CHOLESKY_LANES_MAX * LANES]
    gather(x, p, n, n, 0, n if lower else 1, 1 if lower else n, True, NULL, cols)
    mark_nonfinite(x, n, n, True, status, cols)
    gather_factor(l, p + LANES, n, lower, inverse_diagonal, status)
    hi = n - 1
    while hi >= 0:
        rows = 4 if hi >= 3 else hi + 1
        first = hi - rows + 1
        adla_prefetch_share(n - 1 - first, n)
        for q in range(rows):                    # rows hi, hi - 1, ..., first
            cholesky_reverse_row(x, cols, l, inverse_diagonal, n, hi - q, scale, q)
            for r in range(first, hi - q):       # its terms on the group's earlier rows
                subtract_scaled_rows(x + r * x_step, scale + (r * 4 + q) * LANES,
                                     l + (hi - q) * row_step, 0, 1, r + 1)
        for j in range(first):
            subtract_scaled_rows(x + j * x_step, scale + j * 4 * LANES, l + hi * row_step,
                                 -row_step, rows, j + 1)
        hi = first - 1
    mirror_lower(x, n, cols)
    scatter(p + 2 * LANES, count, x, n, n, 0, n, 1, job.stream_out, NULL, cols)


cdef int potrf_jvp_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """potrf and its tangent, (A, dA) -> (L, dL): dL = L Phi(L^-1 S L^-T) with S the symmetric
    matrix of dA's triangle read and Phi the lower triangle with its diagonal halved, by the
    congruence (congruence_solve) and a triangular product (BLAS-3) while the factor is in
    cache. A
    non-finite dA is no failure: it propagates into dL."""
    cdef int n = job.n, info, i
    cdef bint lower = (job.flags & LOWER) != 0
    cdef const floating* da = p[1]
    cdef floating* lf = p[2]
    cdef floating* dl = p[3]
    cdef floating* factor_operands[2]
    factor_operands[0], factor_operands[1] = p[0], lf
    info = potrf_one(job, factor_operands, work)
    if info != 0 or n == 0:
        return info
    pair_entries(dl, da, n, n, PAIRS_FROM_LOWER if lower else PAIRS_FROM_UPPER)
    # Column-major, the row-major buffers are transposed: a lower L is the upper M = L^T, and
    # dL^T = Phi(Z)^T M with Z = M^-T S M^-1; an upper U is the lower N = U^T, a Cholesky factor
    # of A itself, and dU^T = N Phi(N^-1 S N^-T). Either way the triangle kept is the row-major
    # one of the factor.
    if lower:                               # M^-T S M^-1
        congruence_solve(dl, n, lf, n, n, c'U', c'T', work)
    else:                                   # N^-1 S N^-T
        congruence_solve(dl, n, lf, n, n, c'L', c'N', work)
    zero_triangle(dl, n, lower)
    for i in range(n):
        dl[i * n + i] = dl[i * n + i] * <floating>0.5
    if lower:
        xtrmm(c'R', c'U', c'N', n, n, 1, lf, n, dl, n)
    else:
        xtrmm(c'L', c'L', c'N', n, n, 1, lf, n, dl, n)
    return 0

cdef void cholesky_tangent_lanes(floating* a, floating* d, int n, int cols,
                                 int* status) noexcept nogil:
    """cholesky_lanes on ``a`` (the same operations in the same order, so the same factor) and,
    in the same loops, its tangent in place of the lower triangle of ``d`` (dA's), row by row:
    from L[i, j] L[j, j] = A[i, j] - sum_{k<j} L[i, k] L[j, k] (L[i, i]^2 on the diagonal),
    dL[i, j] = (t - L[i, j] dL[j, j]) / L[j, j] and dL[i, i] = t / (2 L[i, i]), with
    t = dA[i, j] - sum_{k<j} (dL[i, k] L[j, k] + L[i, k] dL[j, k]); every dL on the right is of
    an earlier step. The tangent's 2n^3/3 multiply-adds share the factor's loads. Rows go in
    groups of four as cholesky_lanes' (in float64 groups of two were 1.05-1.2x slower), with the
    rows above the diagonal in the group's own columns summed and not stored, as there. From
    order 64 in float64 the group's four rows of a and d and row j of both no longer fit in L1
    together: groups of three there, 1.05-1.07x faster than four at 64 and 128 (A/B in one
    process, Zen 4; two about as fast as three; in float32 three and four level). Rows are
    ``cols`` entries apart (padded_columns)."""
    cdef floating s[4 * LANES]
    cdef floating t[4 * LANES]
    cdef floating inverse_diagonal[CHOLESKY_LANES_MAX * LANES]
    cdef int first = 0, rows, j, r, v
    cdef Py_ssize_t row_step = <Py_ssize_t>cols * LANES, ij, jj
    cdef int most = 3 if floating is double and n >= 64 else 4
    while first < n:
        rows = most if n - first >= most else n - first if n - first < 2 else 2
        adla_prefetch_share(first + rows - 1, n)
        for j in range(first + rows):
            for r in range(rows):
                ij = (first + r) * row_step + j * LANES
                for v in range(LANES):
                    s[r * LANES + v] = a[ij + v]
                    t[r * LANES + v] = d[ij + v]
            subtract_tangent_dots(s, t, a + first * row_step, d + first * row_step, row_step,
                                  a + j * row_step, d + j * row_step, rows, j)
            for r in range(max(j - first, 0), rows):
                ij = (first + r) * row_step + j * LANES
                if first + r == j:
                    cholesky_diagonal(a + ij, s + r * LANES, inverse_diagonal + j * LANES, j,
                                      status)
                    for v in range(LANES):
                        d[ij + v] = (t[r * LANES + v] * <floating>0.5
                                     * inverse_diagonal[j * LANES + v])
                else:
                    jj = j * row_step + j * LANES
                    for v in range(LANES):
                        a[ij + v] = s[r * LANES + v] * inverse_diagonal[j * LANES + v]
                    for v in range(LANES):
                        d[ij + v] = ((t[r * LANES + v] - a[ij + v] * d[jj + v])
                                     * inverse_diagonal[j * LANES + v])
        first += rows

cdef void potrf_jvp_lanes(const Job* job, floating** p, int count, floating* w,
                          int* status) noexcept nogil:
    """potrf_jvp_one for LANES matrices at once: cholesky_tangent_lanes, whose factor has the
    bits of potrf_lanes' (the forward takes the interleaved route at the same sizes). Its rows
    are padded (padded_columns): rows 4 KiB apart (order 64 in float64, 128 in float32) put
    the ten lines each step of the tangent's column loop reads in one set of the 8-way L1 (A/B
    in one process, Zen 4: 1.15x faster at 1000 x 64 float64, 1.1-1.15x at 300 x 128 both
    dtypes, level elsewhere; the forward alone, six lines a step, level)."""
    cdef int n = job.n
    cdef bint lower = (job.flags & LOWER) != 0
    cdef int cols = padded_columns(n, floating is float)
    cdef floating* l = w
    cdef floating* d = w + <Py_ssize_t>n * cols * LANES
    # Upper U = L^T: gather the transposes, as potrf_lanes does.
    gather(d, p + LANES, n, n, 0, n if lower else 1, 1 if lower else n, True, NULL, cols)
    gather(l, p, n, n, 0, n if lower else 1, 1 if lower else n, True, NULL, cols)
    mark_nonfinite(l, n, n, True, status, cols)
    cholesky_tangent_lanes(l, d, n, cols, status)
    keep_triangle(l, n, cols, True)
    scatter(p + 2 * LANES, count, l, n, n, 0, n if lower else 1, 1 if lower else n,
            job.stream_out, NULL, cols)
    keep_triangle(d, n, cols, True)
    scatter(p + 3 * LANES, count, d, n, n, 0, n if lower else 1, 1 if lower else n,
            job.stream_out, NULL, cols)


# Planning (the operator table in _lapack.pyx).

cdef inline bint cholesky_interleaved(const Job* job) noexcept nogil:
    # Beyond SMALL, for a batch that fills the lanes, measured against a LAPACK/BLAS-3 call per
    # matrix (1000 x 64, 2 threads): the backward 30 -> 18 ms, the tangent 2-4x faster, the
    # forward equal (1.5-2x faster at orders 40-48 and 128). With the loops in groups of four
    # rows, to order 192 (float64, ms, forward / backward / tangent, per matrix -> interleaved):
    # 100 x 160 6.0 -> 3.9 / 15.7 -> 8.9 / 24.7 -> 19.1, 60 x 192 5.6 -> 4.2 / 14.5 -> 9.4 /
    # 22.4 -> 19.0; float32 1.3-1.9x faster forward and backward, the tangent level. At 224-320
    # the forward was level or slower (8 x 256, one lane block for two threads: 2x slower), at
    # 384 slower throughout. One rule for all three, so that potrf_jvp's factor has potrf's
    # bits at every size.
    return job.n <= SMALL or (job.n <= CHOLESKY_LANES_MAX and job.nbatch >= LANES)

cdef void plan_potrf(Job* job) noexcept nogil:
    if cholesky_interleaved(job):
        job.lanes, job.work = LANES, <Py_ssize_t>job.n * job.n * LANES

cdef void plan_potrf_jvp(Job* job) noexcept nogil:
    if cholesky_interleaved(job):
        job.lanes = LANES
        job.work = <Py_ssize_t>2 * job.n * padded_columns(job.n, job.flags & SINGLE) * LANES
    else:
        job.work = <Py_ssize_t>job.n * job.n // 4 + 1     # congruence_solve's

cdef inline bint cholesky_solve_interleaved(const Job* job) noexcept nogil:
    return job.m > 0 and job.n > 0 and fills_lanes(
        job, potri_lanes_max if job.op == OP_POTRI else CHOLESKY_SOLVE_LANES_MAX)

cdef void plan_potrs_backward(Job* job) noexcept nogil:
    # Interleaved where potrs is, and where potrs itself runs per matrix from order 24 with 16
    # or more right-hand sides (the interleaved gradient is 1.05-1.5x faster there); elsewhere
    # potrs_backward_one (_cpu.potrs_backward composes the rule instead for thin right-hand
    # sides, 4 k < n).
    if cholesky_solve_interleaved(job):
        job.lanes = LANES
        job.work = <Py_ssize_t>2 * (job.m * job.m + job.m * job.n) * LANES
        return
    if potrs_gradient_products(job.m):
        job.work = <Py_ssize_t>(2 * job.m + max(job.m, job.n)) * job.m
        if fma_stream(job, job.m, job.m, job.m, 3):
            job.flags |= STREAM
            job.prefetch_next = True
        plan_prefetch_for_blas(job, job.m)

cdef void plan_potri_backward(Job* job) noexcept nogil:
    # Interleaved where potri is below order CHOLESKY_GRADIENT_LANES_BELOW, potri_backward_one
    # elsewhere: 1.1-1.4x faster than the interleaved gradient at 24, 1.2-2x at 32 (A/B,
    # 3000 matrices), level at 16-20. Its product through _fma_product.h's loops (one triangle)
    # from order 65 where they run: against ?gemm's whole product (A/B, float64 / float32)
    # 1.15 / 1.05x faster at 96, 1.2 / 1.15x at 128, 1.2 / 1.1x at 256; at 48-64 level / 1.05-1.2x
    # slower.
    job.work = <Py_ssize_t>2 * job.n * job.n
    if cholesky_solve_interleaved(job) and job.n < CHOLESKY_GRADIENT_LANES_BELOW:
        job.lanes, job.work = LANES, <Py_ssize_t>4 * job.n * job.n * LANES
    elif job.n > 64 and fma_stream(job, job.n, job.n, job.n, 3):
        job.flags |= STREAM

cdef void plan_cholesky_solve(Job* job) noexcept nogil:
    # potrs (n = job.m, k = job.n right-hand sides) and potri (k = n): interleaved for both up to
    # SMALL_DENSE, or up to CHOLESKY_SOLVE_LANES_MAX for a batch that fills the lanes. Against a
    # LAPACK/BLAS call per matrix, 2 threads: 10000 x 16 2-3.5x faster, 1000 x 32 1.1-1.5x,
    # 1000 x 48 potrs 1.15x slower. Later, against two solves per matrix with solve_rows (A/B,
    # 3000-10000 matrices): potrs from order 24 with 16 or more right-hand sides 1.35-1.45x
    # slower (so per matrix there), level at 16-20; potri 2-3x faster throughout. potri up to
    # POTRI_LANES_MAX since its kernel reads rows, not columns (inverse_factor_both), against
    # potri_recursive per matrix (A/B, 2 threads, float64 / float32): 1000 x 64 0.64 / 0.54,
    # 200 x 128 0.79 / 0.85, 100 x 160 0.9-1.0 / 0.8-0.86; at 192 1.45 / 1.0, at 256 1.8 /
    # 1.25. Where the solves' leaves are FMA loops (float64), potrs per matrix from order 16
    # (POTRS_FMA_LANES_BELOW): A/B against the interleaved kernel (in one process, best of 5
    # rounds, a noisy machine) 2000 x 16 1.24x faster, 8000 x 20 1.1x, 5000 x 16 with 32
    # right-hand sides 1.7x, its jvp 1.05-1.1x; level at 12-14, and in float32.
    if cholesky_solve_interleaved(job) and (
            job.op == OP_POTRI or job.n < POTRS_LANES_WIDE
            or job.m < (POTRS_FMA_LANES_BELOW if fma_solve_max > 0 and not job.flags & SINGLE
                        else CHOLESKY_GRADIENT_LANES_BELOW)):
        job.lanes, job.work = LANES, <Py_ssize_t>(job.m * job.m + job.m * job.n) * LANES

cdef void plan_potrf_backward(Job* job) noexcept nogil:
    if cholesky_interleaved(job):
        job.lanes = LANES
        job.work = (<Py_ssize_t>job.n * (job.n + 4 + padded_columns(job.n, job.flags & SINGLE))
                    * LANES)
    elif job.n > 0:
        job.work = (<Py_ssize_t>(0 if job.flags & LOWER else 1) * job.n * job.n      # (U^T)
                    + 2 * <Py_ssize_t>min(job.n, cholesky_gradient_leaf) ** 2)
