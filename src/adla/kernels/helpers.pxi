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

cdef inline void add_times_zero(floating* partial, const floating* a,
                                Py_ssize_t count) noexcept nogil:
    # Eight sums of x * 0 (NaN exactly for inf and NaN) side by side, which the compiler
    # vectorises: a compare and branch per entry took three quarters of gesv_one's own time at
    # order 64 (gesv 1000 x 64 x 64 1.1x faster, gelqf 1000 x 64 x 80 1.04x, in-process A/B)
    # and cost a shared-triangle trsm (one check per 8 right-hand sides) 15%.
    cdef Py_ssize_t i = 0
    cdef int v
    while i + 8 <= count:
        for v in range(8):
            partial[v] = partial[v] + a[i + v] * <floating>0
        i += 8
    for i in range(i, count):
        partial[0] = partial[0] + a[i] * <floating>0

cdef inline bint sums_finite(const floating* partial) noexcept nogil:
    cdef floating total = 0
    cdef int v
    for v in range(8):
        total = total + partial[v]
    return total == 0

cdef inline bint all_finite(const floating* a, Py_ssize_t count) noexcept nogil:
    cdef floating partial[8]
    memset(partial, 0, sizeof(partial))
    add_times_zero(partial, a, count)
    return sums_finite(partial)

cdef inline bint triangle_finite(const floating* a, int n, bint lower) noexcept nogil:
    # all_finite over the lower (or upper) triangle, row by row into the same sums
    cdef floating partial[8]
    cdef int i
    memset(partial, 0, sizeof(partial))
    for i in range(n):
        if lower:
            add_times_zero(partial, a + <Py_ssize_t>i * n, i + 1)
        else:
            add_times_zero(partial, a + <Py_ssize_t>i * n + i, n - i)
    return sums_finite(partial)

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

cdef inline void triangle_into(floating* dst, const floating* src, int n, bint lower,
                               bint transpose) noexcept nogil:
    """dst := op(T) in full (T^T with ``transpose``), T the lower (or upper) triangle of src,
    diagonal included, zero elsewhere: up to TRIANGLE_SELECT_MAX by one select per entry in
    vector loops, above that rows copied and cleared in runs."""
    cdef int i, j
    cdef bint keep_lower = lower != transpose          # op(T) is lower triangular
    cdef floating* d
    cdef const floating* s
    if transpose:
        transpose_into(dst, src, n, n)
    if n <= TRIANGLE_SELECT_MAX:
        # Short rows: one vectorised select per row; the calls per row cost more than the
        # copying (at order 16, 1.7x the whole pass).
        for i in range(n):
            d = dst + <Py_ssize_t>i * n
            s = (dst if transpose else src) + <Py_ssize_t>i * n
            if keep_lower:
                for j in range(n):
                    d[j] = s[j] if j <= i else 0
            else:
                for j in range(n):
                    d[j] = s[j] if j >= i else 0
        return
    for i in range(n):
        if keep_lower:
            if not transpose:
                copy(dst + <Py_ssize_t>i * n, src + <Py_ssize_t>i * n, i + 1)
            memset(dst + <Py_ssize_t>i * n + i + 1, 0, (n - 1 - i) * sizeof(floating))
        else:
            memset(dst + <Py_ssize_t>i * n, 0, i * sizeof(floating))
            if not transpose:
                copy(dst + <Py_ssize_t>i * n + i, src + <Py_ssize_t>i * n + i, n - i)

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

cdef enum:
    PAIR_TILE = 32          # pair_entries' tiles: 2 x 32 rows of 32 entries stay in L1
    PAIRS_SWAP, PAIRS_FROM_LOWER, PAIRS_FROM_UPPER, PAIRS_AVERAGE, PAIRS_SUM, PAIRS_ONTO_LOWER,
    PAIRS_ONTO_UPPER

cdef inline void pair_entries(floating* a, const floating* src, int n, Py_ssize_t ld,
                              int how) noexcept nogil:
    """For every pair of entries (i, j) and (j, i), j < i, of the row-major n x n src (rows ld
    apart), written into a (src itself, or another matrix with rows ld apart): swap them (in
    place only), copy the lower one onto the upper one or the reverse, set both to their mean
    or their sum, or put their sum in the lower (upper) one and zero in the other. The diagonal
    is copied where a is another matrix, and doubled for the sum. In tiles, so that the column
    walk stays in cache (a naive walk at order 1000 misses on every entry). Inlined with
    ``how`` a constant."""
    cdef int ti, tj, i0, j0, i, j
    cdef Py_ssize_t lower, upper
    cdef floating t
    for ti in range((n + PAIR_TILE - 1) // PAIR_TILE):
        i0 = ti * PAIR_TILE
        for tj in range(ti + 1):
            j0 = tj * PAIR_TILE
            for i in range(i0, min(i0 + PAIR_TILE, n)):
                for j in range(j0, min(j0 + PAIR_TILE, i)):
                    lower, upper = i * ld + j, j * ld + i
                    if how == PAIRS_SWAP:
                        t = a[lower]
                        a[lower] = a[upper]
                        a[upper] = t
                    elif how == PAIRS_FROM_LOWER:
                        t = src[lower]
                        a[lower] = t
                        a[upper] = t
                    elif how == PAIRS_FROM_UPPER:
                        t = src[upper]
                        a[lower] = t
                        a[upper] = t
                    elif how == PAIRS_ONTO_LOWER:
                        a[lower] = src[lower] + src[upper]
                        a[upper] = 0
                    elif how == PAIRS_ONTO_UPPER:
                        a[upper] = src[lower] + src[upper]
                        a[lower] = 0
                    elif how == PAIRS_AVERAGE:
                        t = (src[lower] + src[upper]) * <floating>0.5
                        a[lower] = t
                        a[upper] = t
                    else:
                        t = src[lower] + src[upper]
                        a[lower] = t
                        a[upper] = t
    if how == PAIRS_SUM:
        for i in range(n):
            a[i * ld + i] = src[i * ld + i] + src[i * ld + i]
    elif a != src:
        for i in range(n):
            a[i * ld + i] = src[i * ld + i]

cdef inline void mirror_triangle(floating* a, int n, bint from_lower) noexcept nogil:
    """Make a symmetric by copying the lower triangle onto the upper one (or the reverse)."""
    if from_lower:
        pair_entries(a, a, n, n, PAIRS_FROM_LOWER)
    else:
        pair_entries(a, a, n, n, PAIRS_FROM_UPPER)

cdef inline void transpose_square(floating* a, int n) noexcept nogil:
    pair_entries(a, a, n, n, PAIRS_SWAP)

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


cdef extern from "_lane_update.h":
    int adla_lanes_fma      # the FMA row loops on (products.pxi: set_fma_lanes)
    int adla_lanes_avx512   # float64 rotations in AVX-512 vectors (eigen.pxi: set_avx512_lanes)
    void adla_subtract_d(double* x, const double* y, Py_ssize_t step, const double* t,
                         int terms) noexcept nogil
    void adla_subtract_f(float* x, const float* y, Py_ssize_t step, const float* t,
                         int terms) noexcept nogil
    void adla_subtract4_d(double* x, const double* y, Py_ssize_t step,
                          const double* t) noexcept nogil
    void adla_subtract4_f(float* x, const float* y, Py_ssize_t step, const float* t) noexcept nogil
    void adla_minus_dot_rows_d(double* acc, const double* x, Py_ssize_t row_step, const double* y,
                               Py_ssize_t step, int rows, int length) noexcept nogil
    void adla_minus_dot_rows_f(float* acc, const float* x, Py_ssize_t row_step, const float* y,
                               Py_ssize_t step, int rows, int length) noexcept nogil
    void adla_tangent_dot_rows_d(double* s, double* t, const double* a, const double* d,
                                 Py_ssize_t row_step, const double* y, const double* e, int rows,
                                 int length) noexcept nogil
    void adla_tangent_dot_rows_f(float* s, float* t, const float* a, const float* d,
                                 Py_ssize_t row_step, const float* y, const float* e, int rows,
                                 int length) noexcept nogil
    void adla_minus_scaled_rows_d(double* x, const double* s, const double* y,
                                  Py_ssize_t row_step, int rows, int length) noexcept nogil
    void adla_minus_scaled_rows_f(float* x, const float* s, const float* y,
                                  Py_ssize_t row_step, int rows, int length) noexcept nogil
    void adla_lane_pivots_d(double* largest, double* best, const double* x, Py_ssize_t step,
                            int length) noexcept nogil
    void adla_lane_pivots_f(float* largest, float* best, const float* x, Py_ssize_t step,
                            int length) noexcept nogil
    void adla_eliminate_rows_d(double* x, Py_ssize_t row_step, const double* r, const double* y,
                               int width, int rows) noexcept nogil
    void adla_eliminate_rows_f(float* x, Py_ssize_t row_step, const float* r, const float* y,
                               int width, int rows) noexcept nogil
    void adla_rotate_rows_d(double* x, Py_ssize_t row_step, const double* c, const double* s,
                            int rows, int length) noexcept nogil
    void adla_rotate_rows_f(float* x, Py_ssize_t row_step, const float* c, const float* s,
                            int rows, int length) noexcept nogil

cdef inline void subtract_rows(floating* x, const floating* y, Py_ssize_t step,
                               const floating* t, int terms) noexcept nogil:
    # 8 entries: x -= t[0] y, then t[1] y[step], ... (_lane_update.h).
    if floating is double:
        if terms == 4:
            adla_subtract4_d(x, y, step, t)
        else:
            adla_subtract_d(x, y, step, t, terms)
    else:
        if terms == 4:
            adla_subtract4_f(x, y, step, t)
        else:
            adla_subtract_f(x, y, step, t, terms)

cdef void solve_rows(const floating* a, Py_ssize_t a_row, Py_ssize_t a_col, floating* x,
                     Py_ssize_t x_row, int t, int c, floating alpha,
                     bint unit_diagonal) noexcept nogil:
    """x := alpha T^-1 x in place: T lower triangular, T[i, k] = a[i a_row + k a_col] (its
    diagonal read as ones with unit_diagonal); x has t rows of c entries, row i at
    x + i x_row (steps may be negative). x is scaled first; then,
    column by column of T, four at a time, x_k is final (its block's terms, times 1/T[k, k])
    before the block's terms leave every row below, each row subtracting its terms in order of
    k: one row's chain of updates is four rows' work in flight, 8 entries to a vector step
    (subtract_rows), the last c % 8 the same operations one by one. Up to order fma_solve_max
    (16 on CPUs with AVX-512 and FMA, else 0) _fma_product.h's loops run instead: all t rows of
    a vector of columns in registers, each multiply-add rounded once; against these loops (A/B,
    batches of trsm and potrs, Intel Xeon) 1.1-1.3x faster at order 24-128, level for one
    matrix of 1000."""
    cdef int i, k, kk, k0, k1, j, r, terms, vector_end = c - c % 8
    cdef floating inverse, s
    cdef floating coefficient[4]
    cdef floating* x_i
    cdef floating* x_k0
    if t <= fma_solve_max:
        if floating is double:
            adla_fma_solve_d(a, a_row, a_col, x, x_row, t, c, alpha, unit_diagonal)
        else:
            adla_fma_solve_f(a, a_row, a_col, x, x_row, t, c, alpha, unit_diagonal)
        return
    if alpha != 1:
        for i in range(t):
            for j in range(c):
                x[i * x_row + j] = alpha * x[i * x_row + j]
    k0 = 0
    while k0 < t:
        k1 = min(k0 + 4, t)
        x_k0 = x + k0 * x_row
        for i in range(k0, t):
            # Row i: the block's terms (those of k < i only, inside the block), and while
            # inside it, the diagonal.
            terms = min(i, k1) - k0
            for kk in range(terms):
                coefficient[kk] = a[i * a_row + (k0 + kk) * a_col]
            x_i = x + i * x_row
            if terms > 0:
                for j in range(0, vector_end, 8):
                    subtract_rows(x_i + j, x_k0 + j, x_row, coefficient, terms)
                for j in range(vector_end, c):
                    s = x_i[j]
                    for r in range(terms):
                        s = s - coefficient[r] * x_k0[r * x_row + j]
                    x_i[j] = s
            if i < k1 and not unit_diagonal:
                inverse = <floating>1 / a[i * (a_row + a_col)]
                for j in range(c):
                    x_i[j] = x_i[j] * inverse
        k0 = k1


cdef void solve_columns(char uplo, char trans, char diag, int m, int n, floating alpha,
                        floating* a, int lda, floating* b, int ldb) noexcept nogil:
    """trsm_recursive's leaf on the left (column-major, same arguments, m at most TRSM_LEAF):
    op(A) X = alpha B is X^T op(A)^T = alpha B^T, a solve on the right in row-major rows. B's
    columns go LANES (8) at a time, up to SOLVE_COLUMNS_WIDTH to a pass, transposed into rows in
    register tiles (lanes_from_rows), solved there by trsm_recursive (solve_rows' leaves, the
    FMA loops' updates) and transposed back. The last group repeats column n - 1 in its spare
    lanes (same input, same result written). Against ?trsm leaves (A/B in one process, Zen 4,
    both dtypes): potrf's lower factor 1.05-1.15x faster for one matrix of 500-1000, the
    direct route 1.15-1.2x faster in batches of 7 x 128 to 2 x 2000 than the transposed one
    it replaced (the column-major lower factorisation, transposed back); potrf_backward
    1.3-1.4x at 30 x 300, 1.1x at 4 x 1000 and 1.05-1.15x for one matrix; inverse 1.05-1.25x
    at the same sizes; trsm on the right of a tall B 1.1-1.25x; nothing slower beyond noise.
    Columns per pass: 16 1.02-1.06x slower than 32, 64 level; leaves of 32 or 128 no faster."""
    cdef floating w[TRSM_LEAF * SOLVE_COLUMNS_WIDTH]
    cdef floating* column[SOLVE_COLUMNS_WIDTH]
    cdef int j0, width, g
    j0 = 0
    while j0 < n:
        width = min(SOLVE_COLUMNS_WIDTH, (n - j0 + LANES - 1) // LANES * LANES)
        for g in range(width):
            column[g] = b + min(j0 + g, n - 1) * <Py_ssize_t>ldb
        for g in range(0, width, 8):         # LANES
            lanes_from_rows(w + g, width, <const floating* const*>(column + g), 0, m)
        trsm_recursive(c'R', uplo, flipped(trans), diag, width, m, alpha, a, lda, w, width)
        for g in range(0, width, 8):
            rows_from_lanes(column + g, w + g, width, m)
        j0 += width

cdef inline int split_point(int order) noexcept nogil:
    # Where the recursive kernels split a triangle or a matrix of this order: half, rounded down
    # to a multiple of 16 (whole vector steps in the leading half), or plain half below order 32.
    cdef int h = order // 2 // 16 * 16
    return h if h > 0 else order // 2


cdef inline void update_gemm(char transa, char transb, int m, int n, int k, floating alpha,
                             floating* a, int lda, floating* b, int ldb, floating beta,
                             floating* c, int ldc) noexcept nogil:
    """?gemm (column-major, same arguments) for the updates of the recursive kernels: in
    _fma_product.h's loops where the CPU has them, they take the size and op(A)'s columns are
    contiguous (transa 'N'), else ?gemm. The updates are small products in cache, where a ?gemm
    call costs more than its arithmetic."""
    # Row-major, C is C^T (n x m, rows ldc apart) = op(B)^T op(A)^T: X = op(B)^T read through
    # strides, and op(A)^T's rows are A's columns.
    if transa == c'N' and alpha != 0 and fma_product(n, m, k):
        fma_into(c, ldc, b, ldb if transb == c'N' else 1, 1 if transb == c'N' else ldb, a, lda,
                 n, m, k, alpha, beta, c if beta != 0 else NULL, ldc, 0, False)
    else:
        xgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef void trsm_recursive(char side, char uplo, char trans, char diag, int m, int n,
                         floating alpha, floating* a, int lda, floating* b,
                         int ldb) noexcept nogil:
    """BLAS trsm (column-major, same arguments), split in halves while the triangle's order is
    above TRSM_LEAF: each split is two solves of half the order and one gemm, so that most of
    the work runs at the gemm rate. SciPy's OpenBLAS solves at 40-65% of its gemm rate at order
    500-1000; split, 1.3-1.7x faster there (A/B, order 500 and 1000). A row-major solve on the
    left (column-major side 'R') with SOLVE_ROWS_MIN to SOLVE_ROWS_MAX right-hand sides splits
    down to SOLVE_ROWS_LEAF and solves the leaves with solve_rows instead: 1.3-1.8x faster than
    ?trsm leaves of 64 at orders 32-256 with 8-256 right-hand sides (A/B, batches), level with
    them for one matrix of order 1000 with 1000; with a unit diagonal too (gesv's L: its
    per-matrix solves 1.1-1.15x faster at order 64-128). With many more (a whole batch folded
    into one call) ?trsm's leaves win: they run on BLAS's threads, solve_rows on the caller's
    alone. A solve on the left with SOLVE_ROWS_MIN or more right-hand sides solves its leaves
    of TRSM_LEAF with solve_columns (see there)."""
    cdef int order = m if side == c'L' else n
    cdef int h, r
    cdef floating* off
    cdef floating* a22
    cdef floating* b2
    cdef bint lower_op = (uplo == c'L') == (trans == c'N')      # op(A) is lower triangular
    cdef bint lower_rows = (uplo == c'U') == (trans == c'N')    # the row-major view is lower
    cdef bint rows = side == c'R' and SOLVE_ROWS_MIN <= m <= SOLVE_ROWS_MAX
    cdef bint columns = side == c'L' and n >= SOLVE_ROWS_MIN
    cdef Py_ssize_t a_row = lda if trans == c'N' else 1, a_col = 1 if trans == c'N' else lda
    if m == 0 or n == 0:
        return
    if order <= (SOLVE_ROWS_LEAF if rows else TRSM_LEAF):
        if rows:
            # Row-major, B^T is n rows of m: op(A)^T B^T = alpha B^T, op(A)^T[i, k] at
            # a[i a_row + k a_col], lower or, rows and columns reversed, upper.
            if lower_rows:
                solve_rows(a, a_row, a_col, b, ldb, n, m, alpha, diag == c'U')
            else:
                solve_rows(a + (n - 1) * (a_row + a_col), -a_row, -a_col,
                           b + <Py_ssize_t>(n - 1) * ldb, -<Py_ssize_t>ldb, n, m, alpha,
                           diag == c'U')
        elif columns:
            solve_columns(uplo, trans, diag, m, n, alpha, a, lda, b, ldb)
        else:
            xtrsm(side, uplo, trans, diag, m, n, alpha, a, lda, b, ldb)
        return
    h = split_point(order)
    r = order - h
    a22 = a + h + <Py_ssize_t>h * lda
    # The stored off-diagonal block (A21 below the diagonal, A12 right of it): op() of it is
    # op(A)'s off-diagonal block, in whichever corner op(A) has it.
    off = a + h if uplo == c'L' else a + <Py_ssize_t>h * lda
    if side == c'L':                    # op(A) X = alpha B; X's rows split h, r
        if lower_op:
            trsm_recursive(side, uplo, trans, diag, h, n, alpha, a, lda, b, ldb)
            update_gemm(trans, c'N', r, n, h, -1, off, lda, b, ldb, alpha, b + h, ldb)
            trsm_recursive(side, uplo, trans, diag, r, n, 1, a22, lda, b + h, ldb)
        else:
            trsm_recursive(side, uplo, trans, diag, r, n, alpha, a22, lda, b + h, ldb)
            update_gemm(trans, c'N', h, n, r, -1, off, lda, b + h, ldb, alpha, b, ldb)
            trsm_recursive(side, uplo, trans, diag, h, n, 1, a, lda, b, ldb)
    else:                               # X op(A) = alpha B; X's columns split h, r
        b2 = b + <Py_ssize_t>h * ldb
        if lower_op:
            trsm_recursive(side, uplo, trans, diag, m, r, alpha, a22, lda, b2, ldb)
            update_gemm(c'N', trans, m, h, r, -1, b2, ldb, off, lda, alpha, b, ldb)
            trsm_recursive(side, uplo, trans, diag, m, h, 1, a, lda, b, ldb)
        else:
            trsm_recursive(side, uplo, trans, diag, m, h, alpha, a, lda, b, ldb)
            update_gemm(c'N', trans, m, r, h, -1, b, ldb, off, lda, alpha, b2, ldb)
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
    h = split_point(n)
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


cdef int getrf_recursive(int m, int n, floating* a, int lda, int* ipiv) noexcept nogil:
    """LAPACK getrf (column-major, same arguments, 1-based pivots and info), split in column
    halves while both sides are above getrf_leaf (GETRF_LEAF): factor the left half (all m
    rows), apply its row interchanges to the right half, solve for U12 (unit L11) and update the
    trailing block with one gemm, factor that block, then apply its interchanges to L21. This
    is the recursive LU (Toledo 1997; LAPACK's getrf2 splits the same way), here with getrf
    leaves, so that most of the work runs at the gemm rate. Like getrf it factors on past a
    zero pivot and reports the first. One matrix on both threads (A/B against one getrf call,
    SciPy's OpenBLAS on an Intel Xeon): 1.15-1.3x faster at order 200-400, 1.3-1.4x at 500-1000;
    in batches, where each matrix has one thread, level from order 128 (split at 65-128, 5-7%
    slower: hence the leaf of 128)."""
    cdef int k = min(m, n), h, r, info, trailing, i
    cdef floating* a12
    if k <= getrf_leaf:
        return xgetrf(m, n, a, lda, ipiv)
    h = split_point(k)
    r = n - h
    a12 = a + <Py_ssize_t>h * lda
    info = getrf_recursive(m, h, a, lda, ipiv)
    xlaswp(r, a12, lda, 1, h, ipiv)
    trsm_recursive(c'L', c'L', c'N', c'U', h, r, 1, a, lda, a12, lda)
    xgemm(c'N', c'N', m - h, r, h, -1, a + h, lda, a12, lda, 1, a12 + h, lda)
    trailing = getrf_recursive(m - h, r, a12 + h, lda, ipiv + h)
    for i in range(h, k):
        ipiv[i] += h
    xlaswp(h, a, lda, h + 1, k, ipiv)
    return info if info != 0 or trailing == 0 else trailing + h


cdef int trtri_recursive(int n, floating* a, int lda) noexcept nogil:
    """LAPACK trtri for an upper triangular, non-unit matrix (column-major, in place, same info),
    split in halves above getri_leaf (GETRI_LEAF):
    inv(U) = [inv(U11), -inv(U11) U12 inv(U22); 0, inv(U22)], the corner by two split
    triangular solves before the halves are inverted."""
    cdef int h, r, info
    cdef floating* a12
    if n <= getri_leaf:
        return xtrtri(c'U', n, a, lda)
    h = split_point(n)
    r = n - h
    a12 = a + <Py_ssize_t>h * lda
    trsm_recursive(c'L', c'U', c'N', c'N', h, r, -1, a, lda, a12, lda)
    trsm_recursive(c'R', c'U', c'N', c'N', h, r, 1, a12 + h, lda, a12, lda)
    info = trtri_recursive(h, a, lda)
    if info != 0:
        return info
    info = trtri_recursive(r, a12 + h, lda)
    return info + h if info != 0 else 0


cdef void lauum_recursive(int n, floating* a, int lda) noexcept nogil:
    """LAPACK lauum for an upper triangular U (column-major, in place): the upper triangle of
    U U^T, split in halves above getri_leaf (GETRI_LEAF): [U11 U11^T + U12 U12^T, U12 U22^T;
    ., U22 U22^T], the leading corner first (it reads U12 before the trmm overwrites it)."""
    cdef int h, r
    cdef floating* a12
    if n <= getri_leaf:
        xlauum(c'U', n, a, lda)
        return
    h = split_point(n)
    r = n - h
    a12 = a + <Py_ssize_t>h * lda
    lauum_recursive(h, a, lda)
    xsyrk(c'U', c'N', h, r, 1, a12, lda, 1, a, lda)
    xtrmm(c'R', c'U', c'T', h, r, 1, a12 + h, lda, a12, lda)
    lauum_recursive(r, a12 + h, lda)


cdef int potri_recursive(int n, floating* a, int lda) noexcept nogil:
    """LAPACK potri for the upper factor U of A = U^T U (column-major, in place, same info): the
    upper triangle of A^-1 = U^-1 U^-T, as potri computes it (trtri, then lauum), with the
    split kernels above getri_leaf. SciPy's OpenBLAS potri runs unblocked loops of
    matrix-vector products up to order 64 at least."""
    cdef int info = trtri_recursive(n, a, lda)
    if info == 0:
        lauum_recursive(n, a, lda)
    return info


cdef int getri_recursive(int n, floating* a, const int* ipiv, floating* work,
                         int lwork) noexcept nogil:
    """LAPACK getri (column-major n x n, in place, same info) from getrf's LU of A: inv(A) =
    inv(U) inv(L) P, as getri computes it, with trtri_recursive for inv(U) and one split
    triangular solve for the product (the LU copied out first: inv(U) overwrites L; the solve
    reads only its strict lower part), so that most of the work runs at the gemm rate. work:
    lwork elements, at least n * n (getri's own call at or below getri_leaf (GETRI_LEAF) takes
    them as its workspace). Against getrf + getri (A/B, inverse, SciPy's OpenBLAS on an Intel
    Xeon): in batches 1.1x faster at order 57-64, 1.25-1.3x at 96-500 (getri's unblocked loops
    of matrix-vector products up to its block of 64); one matrix 1.1x at 128-200, level at
    500-1000."""
    cdef int j, info
    if n <= getri_leaf:
        return xgetri(n, a, n, <int*>ipiv, work, lwork)
    copy(work, a, <Py_ssize_t>n * n)
    info = trtri_recursive(n, a, n)
    if info != 0:
        return info
    zero_triangle(a, n, True)           # column-major strict lower part: inv(U) alone
    trsm_recursive(c'R', c'L', c'N', c'U', n, n, 1, work, n, a, n)
    for j in range(n - 2, -1, -1):      # X P: the interchanges on columns, last to first
        if ipiv[j] - 1 != j:
            swap_vectors(a + <Py_ssize_t>j * n, a + <Py_ssize_t>(ipiv[j] - 1) * n, n)
    return 0
