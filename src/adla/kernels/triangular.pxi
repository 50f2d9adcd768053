# Triangular products and solves (trmm, trsm), the fused trsm gradient and tangent, per matrix
# and interleaved.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef inline void triangular_call(const Job* job, floating** p, bint solve,
                                 floating* work) noexcept nogil:
    # C = alpha op(A) B (or alpha B op(A) when RIGHT) on C, which holds a copy of B (m x n).
    # work: m x n scratch, or NULL.
    cdef int m = job.m, n = job.n
    cdef int na = n if job.flags & RIGHT else m
    cdef char side = c'L' if job.flags & RIGHT else c'R'
    cdef char uplo = c'U' if job.flags & LOWER else c'L'
    cdef char trans = c'T' if job.flags & TRANS_A else c'N'
    if solve and job.flags & RIGHT and work != NULL and SOLVE_ROWS_MIN <= m <= SOLVE_ROWS_MAX:
        # X op(A) = alpha B as op(A)^T X^T = alpha B^T, solved on the left, where solve_rows
        # runs along the rows of X^T: with the two transposes, 1.6-2.2x faster at order 16-64.
        transpose_into(work, p[2], m, n)
        trsm_recursive(c'R', uplo, c'N' if job.flags & TRANS_A else c'T', c'N', m, n,
                       <floating>job.alpha, p[0], ld(na), work, ld(m))
        transpose_into(p[2], work, n, m)
    elif solve:
        trsm_recursive(side, uplo, trans, c'N', n, m, <floating>job.alpha, p[0], ld(na), p[2],
                       ld(n))
    else:
        xtrmm(side, uplo, trans, n, m, <floating>job.alpha, p[0], ld(na), p[2], ld(n))

cdef int trmm_one(const Job* job, floating** p, floating* work) noexcept nogil:
    cdef int order = job.n if job.flags & RIGHT else job.m, flags
    cdef bint product = order <= TRMM_PRODUCT_MAX or job.flags & STREAM
    if job.m == 0 or job.n == 0:
        return 0
    if product and job.alpha == 0:
        memset(p[2], 0, <Py_ssize_t>job.m * job.n * sizeof(floating))     # as BLAS: A, B unread
    elif product:
        # op(A) written out in full, zeros off its triangle, then a plain product: twice the
        # multiply-adds, but the direct loops or ?gemm run them 2-4x faster than ?trmm up to
        # order 48 (level at 64, float64; 1.15x faster in float32) and than the interleaved
        # kernel from 8 (1.3-2x at 8-24 in batches; A/B, SciPy's OpenBLAS on an Intel Xeon).
        # _fma_product.h's loops (STREAM, up to order FMA_PRODUCT_MAX) skip op(A)'s zeros: at
        # 1000 x 64 1.4-1.5x faster than the whole product, and than ?trmm 1.3-1.8x at 128
        # and 1.05-1.3x at 256 (A/B, Zen 4, either side).
        prefetch_for_blas(job)
        triangle_into(work, p[0], order, (job.flags & LOWER) != 0, (job.flags & TRANS_A) != 0)
        flags = job.flags & STREAM
        if ((job.flags & LOWER) != 0) != ((job.flags & TRANS_A) != 0):     # op(A) lower
            flags |= LOWER
        if job.flags & RIGHT:
            product_into(p[2], p[1], work, job.m, job.n, job.n, flags | TRIANGULAR_B, job.alpha,
                         NULL)
        else:
            product_into(p[2], work, p[1], job.m, job.n, job.m, flags | TRIANGULAR_A, job.alpha,
                         NULL)
    else:
        copy(p[2], p[1], <Py_ssize_t>job.m * job.n)
        triangular_call(job, p, False, NULL)
    return 0

cdef inline void triangular_operand_product(const Job* job, floating* da, floating* g,
                                            floating* x, double alpha, bint stream,
                                            floating* work) noexcept nogil:
    # dA of trmm or trsm whose d op(A) is alpha G X^T (on the right alpha X^T G), as one
    # row-major product transposed back to dA where TRANS_A (left: G X^T, or X G^T when
    # transposed; right: X^T G, or G^T X), kept on the triangle that is read; zero for an empty B.
    cdef bint right = (job.flags & RIGHT) != 0, transposed = (job.flags & TRANS_A) != 0
    cdef int t = job.n if right else job.m, columns = job.m if right else job.n
    cdef int flags = (TRIANGLE | (job.flags & LOWER) | (TRANS_A if right else TRANS_B)
                      | (STREAM if stream else 0))
    if columns == 0:
        memset(da, 0, <Py_ssize_t>t * t * sizeof(floating))
    elif transposed != right:
        product_into(da, x, g, t, t, columns, flags, alpha, work)
    else:
        product_into(da, g, x, t, t, columns, flags, alpha, work)

cdef int trmm_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dA, dB) of trmm from (A, B, dC), the forward's flags and alpha, each matrix's dC read
    while it is in cache: dB = alpha op(A)^T dC (on the right: alpha dC op(A)^T) by trmm_one's
    route, and d op(A) = alpha dC B^T (right: alpha B^T dC), kept on the triangle that is read.
    Against the two batched kernels it replaces (A/B, 10000 x 16, float64): the gradient 7.1
    -> 6.0 ms, 5.4 with prefetch_for_blas's bursts; 1000 x 64 1.2x faster."""
    cdef Job product = job[0]
    cdef floating* q[3]
    cdef int t = job.n if job.flags & RIGHT else job.m
    cdef int columns = job.m if job.flags & RIGHT else job.n
    product.flags = job.flags ^ TRANS_A
    q[0], q[1], q[2] = p[0], p[2], p[4]
    trmm_one(&product, q, work)
    prefetch_for_blas(job)          # the rest of the next matrix's operands
    triangular_operand_product(job, p[3], p[2], p[1], job.alpha,
                               (job.flags & STREAM) != 0 and fma_product(t, t, columns), work)
    return 0

cdef int trsm_one(const Job* job, floating** p, floating* work) noexcept nogil:
    cdef int na = job.n if job.flags & RIGHT else job.m
    # STREAM (plan_triangular): X solved in work, then written past the caches.
    cdef int status
    cdef bint stream = (job.flags & STREAM) != 0
    cdef Py_ssize_t count = <Py_ssize_t>job.m * job.n
    cdef floating* q[3]
    if job.m == 0 or job.n == 0:
        return 0
    status = solve_status(p[0], na, (job.flags & LOWER) != 0, p[1], count)
    if status:
        return status
    q[0], q[1], q[2] = p[0], p[1], work if stream else p[2]
    copy(q[2], p[1], count)
    triangular_call(job, q, True, NULL if stream else work)
    if stream:
        copy_stream(p[2], work, count)
    return 0

cdef int trsm_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dA, dB) of trsm from (A, X, dX), the forward's flags and alpha: Y = op(A)^-T dX (on the
    right: dX op(A)^-T), dB = alpha Y and d op(A) = -Y X^T (right: -X^T Y), kept on the triangle
    that is read. Status as trsm_one on (A, dX)."""
    cdef Job solve = job[0]
    cdef floating* q[3]
    cdef int t = job.n if job.flags & RIGHT else job.m, status
    cdef Py_ssize_t i, count = <Py_ssize_t>job.m * job.n
    solve.flags, solve.alpha = (job.flags ^ TRANS_A) & ~STREAM, 1
    q[0], q[1], q[2] = p[0], p[2], p[4]
    status = trsm_one(&solve, q, work)                 # Y, in dB's place
    if status or t == 0:
        return status
    prefetch_for_blas(job)          # the rest of the next matrix's operands
    triangular_operand_product(job, p[3], p[4], p[1], -1, (job.flags & STREAM) != 0, work)
    if job.alpha != 1:
        for i in range(count):
            p[4][i] = p[4][i] * <floating>job.alpha
    return 0


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

cdef inline void forward_substitute(const floating* a, const floating* inverse_diagonal,
                                    floating* x, int t, int c, floating alpha) noexcept nogil:
    """x := alpha T^-1 x in every lane, T the lower triangle of a (t x t), x t x c; row by row."""
    cdef floating s[LANES]
    cdef int i, j, k, v
    cdef Py_ssize_t ij
    for i in range(t):
        adla_prefetch_share(i, t)
        for j in range(c):
            ij = (i * c + j) * LANES
            for v in range(LANES):
                s[v] = alpha * x[ij + v]
            for k in range(i):
                for v in range(LANES):
                    s[v] = s[v] - a[(i * t + k) * LANES + v] * x[(k * c + j) * LANES + v]
            for v in range(LANES):
                x[ij + v] = s[v] * inverse_diagonal[i * LANES + v]

cdef void solve_shared_lanes(const Job* job, floating** p, int count, floating* w,
                             int* status) noexcept nogil:
    """trsm for LANES right-hand sides of one triangular matrix that the whole batch shares
    (SHARED_A), in triangular_lanes' lower form but with T read in place, each entry once for
    all lanes, where a gathered T would cost more than the solve: solve_rows on the lanes side
    by side (forward_substitute's operations in its order: its bits). Status as
    triangular_lanes'."""
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, v, shared_status
    cdef const floating* a = p[0] + g.a_at
    cdef floating* x = w
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    mark_nonfinite(x, t, c, False, status)
    # A itself, once for all lanes: its read triangle, then the first zero on its diagonal.
    shared_status = (first_zero_diagonal(p[0], t)
                     if triangle_finite(p[0], t, (job.flags & LOWER) != 0) else NONFINITE)
    for v in range(LANES):
        if shared_status == NONFINITE or (shared_status and status[v] >= 0):
            status[v] = shared_status
    solve_rows(a, g.a_row, g.a_col, x, <Py_ssize_t>c * LANES, t, c * LANES,
               <floating>job.alpha, False)
    scatter(p + 2 * LANES, count, x, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)

cdef void multiply_shared_lanes(const Job* job, floating** p, int count, floating* w,
                                int* status) noexcept nogil:
    """trmm for LANES right-hand sides of one triangular matrix that the whole batch shares
    (SHARED_A), as solve_shared_lanes reads it: C' = alpha T B' into separate scratch, column by
    column of T, four at a time, every row of C' still adding its terms in order of k from zero
    (adding T[i, k] x_k as subtracting -T[i, k] x_k, which rounds the same), so the bits of
    triangular_lanes' product; no status."""
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, i, j, kk, k0, k1, terms
    cdef const floating* a = p[0] + g.a_at
    cdef floating* x = w
    cdef floating* y = w + <Py_ssize_t>t * c * LANES
    cdef floating alpha = <floating>job.alpha
    cdef floating coefficient[4]
    cdef Py_ssize_t e
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    for e in range(<Py_ssize_t>t * c * LANES):
        y[e] = 0
    k0 = 0
    while k0 < t:
        k1 = min(k0 + 4, t)
        for i in range(k0, t):                   # row i's terms k0 <= k < k1, k <= i
            terms = min(k1, i + 1) - k0
            for kk in range(terms):
                coefficient[kk] = -a[i * g.a_row + (k0 + kk) * g.a_col]
            for j in range(c):
                subtract_rows(y + (i * c + j) * LANES, x + (k0 * c + j) * LANES, c * LANES,
                              coefficient, terms)
        k0 = k1
    for e in range(<Py_ssize_t>t * c * LANES):
        y[e] = alpha * y[e]
    scatter(p + 2 * LANES, count, y, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)

cdef void triangular_lanes(const Job* job, floating** p, int count, floating* w,
                           int* status) noexcept nogil:
    """trsm or trmm for LANES small matrices: C = alpha op(A)^-1 B, or alpha op(A) B,
    with B @ op(A) instead when RIGHT. Every variant becomes C' = alpha T^-1 B' (or T B') with T
    lower triangular: the right side transposes the problem (C^T = op(A)^T... B^T), and an
    upper T is turned lower by reversing its row and column order (J T J, J the reversal),
    which reverses the rows of B' and C'. Status as trsm_one: non-finite entries, then the
    first zero on A's diagonal."""
    cdef bint solve = job.op == OP_TRSM
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, i, j, k, v
    cdef floating alpha = <floating>job.alpha
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>t * t * LANES
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef floating s[LANES]
    cdef Py_ssize_t ij
    if job.flags & SHARED_A:
        if solve:
            solve_shared_lanes(job, p, count, w, status)
        else:
            multiply_shared_lanes(job, p, count, w, status)
        return
    gather(a, p, t, t, g.a_at, g.a_row, g.a_col, True)
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    if solve:
        mark_nonfinite(a, t, t, True, status)
        mark_nonfinite(x, t, c, False, status)
        mark_zero_diagonal(a, t, g.reversed, status)
        reciprocal_diagonal(inverse_diagonal, a, t)
        forward_substitute(a, inverse_diagonal, x, t, c, alpha)
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
    scatter(p + 2 * LANES, count, x, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)

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
    scatter(p + 3 * LANES, count, a, t, t, g.a_at, g.a_row, g.a_col, job.stream_out)
    scatter(p + 4 * LANES, count, y, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)


cdef int trsm_jvp_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """trsm and its tangent, (A, B, dA, dB) -> (X, dX), either tangent possibly absent (NULL):
    dX = op(A)^-1 (alpha dB - op(dA) X) (on the right, (alpha dB - X op(dA)) op(A)^-1), a
    triangular product and a second solve while op(A) is in cache. Status as trsm_one on
    (A, B); a non-finite tangent is no failure: it propagates into dX. work: m x n."""
    cdef Job tangent = job[0]
    cdef floating* q[3]
    cdef Py_ssize_t i, count = <Py_ssize_t>job.m * job.n
    cdef floating* dx = p[5]
    cdef int status
    q[0], q[1], q[2] = p[0], p[1], p[4]
    status = trsm_one(job, q, work)                              # X
    if status or count == 0:
        return status
    if p[3] != NULL:
        for i in range(count):
            dx[i] = <floating>job.alpha * p[3][i]
    else:
        memset(dx, 0, count * sizeof(floating))
    tangent.alpha = 1
    if p[2] != NULL:
        copy(work, p[4], count)                                  # op(dA) X into the scratch
        q[0], q[2] = p[2], work
        triangular_call(&tangent, q, False, NULL)
        for i in range(count):
            dx[i] = dx[i] - work[i]
    q[0], q[2] = p[0], dx
    triangular_call(&tangent, q, True, work)                  # work is free again
    return 0

cdef void trsm_jvp_lanes(const Job* job, floating** p, int count, floating* w,
                         int* status) noexcept nogil:
    """trsm_jvp_one for LANES small matrices, in the lower form of triangular_lanes:
    X' = alpha T^-1 B' as the forward computes it (the same bits), then
    dX' = T^-1 (alpha dB' - dT X'), dT the same index map of dA."""
    cdef LowerForm g = lower_form(job)
    cdef int t = g.t, c = g.c, i, j, k, v
    cdef floating alpha = <floating>job.alpha
    cdef floating* a = w
    cdef floating* x = a + <Py_ssize_t>t * t * LANES
    cdef floating* da = x + <Py_ssize_t>t * c * LANES
    cdef floating* y = da + <Py_ssize_t>t * t * LANES
    cdef floating inverse_diagonal[SMALL * LANES]
    cdef floating s[LANES]
    cdef Py_ssize_t ij
    gather(a, p, t, t, g.a_at, g.a_row, g.a_col, True)
    gather(x, p + LANES, t, c, g.b_at, g.b_row, g.b_col, False)
    mark_nonfinite(a, t, t, True, status)
    mark_nonfinite(x, t, c, False, status)
    mark_zero_diagonal(a, t, g.reversed, status)
    reciprocal_diagonal(inverse_diagonal, a, t)
    forward_substitute(a, inverse_diagonal, x, t, c, alpha)      # X'
    if p[3 * LANES] != NULL:
        gather(y, p + 3 * LANES, t, c, g.b_at, g.b_row, g.b_col, False)
        for i in range(t * c):
            for v in range(LANES):
                y[i * LANES + v] = alpha * y[i * LANES + v]
    else:
        memset(y, 0, <Py_ssize_t>t * c * LANES * sizeof(floating))
    if p[2 * LANES] != NULL:
        gather(da, p + 2 * LANES, t, t, g.a_at, g.a_row, g.a_col, True)
        for i in range(t):                       # y -= dT X', dT's lower triangle
            for j in range(c):
                ij = (i * c + j) * LANES
                for v in range(LANES):
                    s[v] = 0
                for k in range(i + 1):
                    for v in range(LANES):
                        s[v] = s[v] + da[(i * t + k) * LANES + v] * x[(k * c + j) * LANES + v]
                for v in range(LANES):
                    y[ij + v] = y[ij + v] - s[v]
    forward_substitute(a, inverse_diagonal, y, t, c, 1)
    scatter(p + 4 * LANES, count, x, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)
    scatter(p + 5 * LANES, count, y, t, c, g.b_at, g.b_row, g.b_col, job.stream_out)


# Planning (the operator table in _lapack.pyx).

cdef inline bint triangular_fits_lanes(const Job* job) noexcept nogil:
    # Batches that fill the lanes, against a BLAS call per matrix (A/B, 1000 matrices, fwd+bwd):
    # trmm 1.4x faster at 20, even at 24, 1.6x slower at 32; against op(A) written out and a plain
    # product per matrix (trmm_one), faster only where the product's loops run short: order
    # and right-hand sides below 8 (1.5-2.5x at 4-7), or fewer than 4 right-hand sides (1.1-1.5x
    # at order 16), 1.2-2x slower elsewhere (8 to 24). trsm against the per-matrix route
    # with solve_rows (1366-3750 matrices, each direction alone): even at 20 (the gradient 1.3x
    # slower, the tangent 1.1-1.5x faster), 1.1-1.5x slower at 24 and 28 in every direction.
    # One triangle shared by a batch (solve_shared_lanes), against one BLAS call for the whole
    # batch (2000 matrices, or 500 with more than 1024 entries): 1.5-5x faster at orders 24-128
    # with 4-64 right-hand sides each, where the batch is transposed to stack; with one,
    # stacked as it is, 1.05-1.5x faster up to order 52 and 1.7-2x slower from 56. trmm
    # (multiply_shared_lanes) the same: 1.2-3x faster with 2-64 right-hand sides at orders
    # 24-128; with one, 1.2-1.5x faster up to 24 and 2x slower from 32.
    cdef int order = job.n if job.flags & RIGHT else job.m
    cdef int columns = job.m if job.flags & RIGHT else job.n
    if job.op == OP_TRMM and not job.flags & SHARED_A:
        return (fills_lanes(job, TRMM_LANES_MAX)
                and (max(order, columns) < TRMM_PRODUCT_MIN or columns < TRMM_PRODUCT_COLUMNS))
    if job.flags & SHARED_A:
        return (job.nbatch >= LANES and order <= TRSM_SHARED_MAX
                and columns <= TRSM_SHARED_COLUMNS
                and (columns > 1 or order <= (TRSM_SHARED_VECTOR_MAX if job.op == OP_TRSM
                                              else TRMM_LANES_MAX)))
    return fills_lanes(job, TRSM_LANES_MAX)

cdef inline Py_ssize_t triangular_lanes_work(const Job* job) noexcept nogil:
    return <Py_ssize_t>2 * (job.m + job.n) * (job.m + job.n) * LANES

cdef void plan_triangular(Job* job) noexcept nogil:
    # trsm and trmm
    cdef int order = job.n if job.flags & RIGHT else job.m
    if triangular_fits_lanes(job):
        job.lanes, job.work = LANES, triangular_lanes_work(job)
    elif job.op == OP_TRSM:
        if job.flags & RIGHT:
            job.work = <Py_ssize_t>job.m * job.n       # B transposed (triangular_call)
        # trsm_recursive's updates in _fma_product.h's loops fetch the next matrix meanwhile
        job.prefetch_next = fma_stream(job, job.m, job.n, order, 3)
        if job.prefetch_next and not job.flags & RIGHT:
            # and the solve runs in work, whence X is written past the caches (no line of X
            # read before it is written): A/B, Zen 4, float64 1.07x faster at 1000 x 64,
            # 1.02x at 300 x 128, float32 level
            job.flags |= STREAM
            job.work = <Py_ssize_t>job.m * job.n
    elif job.op == OP_TRMM:
        plan_trmm_product(job, order)

cdef void plan_trmm_product(Job* job, int order) noexcept nogil:
    # trmm_one's product route (op(A) in full, then as gemm's batch) where it takes the size.
    if order <= TRMM_PRODUCT_MAX or fma_stream(job, job.m, job.n, order, 3):
        job.work = <Py_ssize_t>order * order
        plan_products(job, order, 3, direct_product(job.m, job.n, order))
        plan_prefetch_for_blas(job, order)

cdef void plan_trmm_backward(Job* job) noexcept nogil:
    # Per matrix at every size (_cpu.trmm_backward composes the rule where trmm itself runs
    # interleaved): trmm's route for dB, a product's for dA, scratch for the larger of the two.
    cdef int order = job.n if job.flags & RIGHT else job.m
    plan_trmm_product(job, order)
    job.work = max(<Py_ssize_t>order * order, <Py_ssize_t>job.m * job.n)

cdef void plan_trsm_jvp(Job* job) noexcept nogil:
    job.work = <Py_ssize_t>job.m * job.n           # op(dA) X
    if triangular_fits_lanes(job):
        job.lanes, job.work = LANES, triangular_lanes_work(job)

cdef void plan_trsm_backward(Job* job) noexcept nogil:
    # Against the per-matrix kernel (solve_rows, then a product) in batches (A/B, 5000-10000
    # matrices, either side): 1.1-1.8x slower from order 12 with 8 or more right-hand sides
    # (f64 16 x 16: 8.8 against 5.8 ms on the left), level or faster below.
    cdef int order = job.n if job.flags & RIGHT else job.m
    cdef int columns = job.m if job.flags & RIGHT else job.n
    job.work = <Py_ssize_t>job.m * job.n           # its gemm's transposed operand
    if triangular_fits_lanes(job) and (job.flags & SHARED_A or order < TRSM_GRADIENT_LANES_BELOW
                                       or columns < SOLVE_ROWS_MIN):
        job.lanes, job.work = LANES, triangular_lanes_work(job)
    elif (order > 64 or (order >= FMA_ORDER_MIN and not job.flags & SINGLE)) and fma_stream(
            job, order, order, columns, 3):
        # d op(A)'s triangle in _fma_product.h's loops, as potri_backward's: against ?gemm's
        # whole product (A/B, either side, float64 and float32) 1.1-1.2x faster at 96, 1.2-1.35x
        # at 128, 1.1-1.2x at 256; float64 1.1x at 48-64 (Zen 4; level at 40), where float32
        # was 1.04x slower (56) or level (64).
        job.flags |= STREAM
    else:
        # As trmm's gradient: A/B in float64, 10000 x 16 to 3000 x 32, 1.05-1.1x faster.
        plan_prefetch_for_blas(job, order)
