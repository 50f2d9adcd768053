# LU-based kernels: inverse, slogdet, general solve, and the cofactor matrix (det's gradient,
# exact at singular matrices).
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef int inverse_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # The inverse of the transpose LAPACK sees is the transpose of the inverse: no flip needed,
    # except for A^-T (TRANS_A), transposed in place while in cache; then times the optional
    # scalar p[1] (scale_matrix). work: job.lwork elements of workspace (getri_recursive's),
    # then n pivots.
    cdef int n = job.n, info
    cdef int* ipiv = <int*>(work + job.lwork)
    cdef floating* x = p[2]
    if n == 0:
        return 0
    if not all_finite(p[0], <Py_ssize_t>n * n):
        return NONFINITE
    copy(x, p[0], <Py_ssize_t>n * n)
    info = getrf_recursive(n, n, x, n, ipiv)
    if info == 0:
        info = getri_recursive(n, x, ipiv, work, job.lwork)
    if info == 0 and job.flags & TRANS_A:
        transpose_square(x, n)
    if info == 0:
        scale_matrix(x, <Py_ssize_t>n * n, p[1])
    return info


cdef inline void scale_matrix(floating* x, Py_ssize_t count, const floating* factor) noexcept nogil:
    """x times the scalar *factor, where one is given: slogdet's and det's gradients scaled by
    their cotangent while in cache, which saves the front end a pass over the batch."""
    cdef Py_ssize_t i
    cdef floating f
    if factor == NULL:
        return
    f = factor[0]
    for i in range(count):
        x[i] = x[i] * f


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


cdef int slogdet_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # det(A^T) = det(A): LAPACK's view of the row-major matrix is fine as it is. work: the LU
    # factors (n x n), then n pivots.
    cdef int n = job.n
    cdef floating* lu = work
    cdef int* ipiv = <int*>(work + <Py_ssize_t>n * n)
    if n == 0:
        p[1][0] = 1
        p[2][0] = 0
        return 0
    if not all_finite(p[0], <Py_ssize_t>n * n):
        p[1][0] = NAN
        p[2][0] = NAN
        return NONFINITE
    copy(lu, p[0], <Py_ssize_t>n * n)
    getrf_recursive(n, n, lu, n, ipiv)   # info > 0 (singular) shows as a zero pivot below
    p[1][0] = lu_sign_logabs(lu, n, ipiv, p[2])
    return 0


cdef inline floating largest_column_sum(floating* x, int n, floating* total,
                                        floating scale) noexcept nogil:
    """The largest absolute column sum of the row-major n x n x (NaN if any is), x then scaled
    by ``scale`` in the same pass. total: n elements of scratch."""
    cdef int i, j
    cdef Py_ssize_t row
    cdef floating largest = 0
    for j in range(n):
        total[j] = 0
    for i in range(n):
        row = <Py_ssize_t>i * n
        for j in range(n):
            total[j] = total[j] + fabs(x[row + j])
        if scale != 1:
            for j in range(n):
                x[row + j] = scale * x[row + j]
    for j in range(n):
        if total[j] > largest or total[j] != total[j]:      # a NaN sticks
            largest = total[j]
    return largest


cdef int cofactor_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """The cofactor matrix adj(A)^T = d det(A) / dA, exact also for singular A.

    Where the LU shows A comfortably invertible (reciprocal condition number 1 / (||A||_inf
    ||A^-1||_inf), computed exactly from the inverse, at least sqrt(eps)), adj(A)^T = det(A) A^-T
    from the LU, factored and inverted in the output (error at most about eps / rcond; measured
    far less, the inverse's error lying along what det(A) scales down). Otherwise
    the SVD A = X S Y^T gives adj(A)^T = det(X) det(Y) X adj(S) Y^T, where adj(S) is diagonal
    with entries prod_{j != i} s_j: no division, so rank n-1 is exact and nearly singular A loses
    nothing to the small singular value. Either way, then times the optional scalar p[1]
    (scale_matrix). work: three n x n matrices, s and adj(s), job.lwork elements of LAPACK
    workspace, then 8 n ints (the LU route touches only s, the workspace and the ints).
    """
    cdef int n = job.n, info, i, j
    cdef Py_ssize_t nn = <Py_ssize_t>n * n
    cdef floating running, sign, logabs, anorm, inverse_norm, det
    cdef floating eps = DBL_EPSILON if floating is double else FLT_EPSILON
    cdef floating* a = work
    cdef floating* u = work + nn
    cdef floating* vt = work + 2 * nn
    cdef floating* s = work + 3 * nn
    cdef floating* adj = work + 3 * nn + n
    cdef floating* lapack_work = work + 3 * nn + 2 * n
    cdef floating* x = p[2]
    cdef int* iwork = <int*>(lapack_work + job.lwork)
    if n == 0:
        return 0
    if not all_finite(p[0], nn):
        return NONFINITE
    # LU route. With x = A^T row-major, LAPACK factors A itself and getri leaves A^-1 in
    # column-major order, which read row-major is A^-T. Column sums of x are then row sums of A
    # and of A^-1: the infinity-norms, summed in a loop that vectorises (s holds them). Scaling
    # by det(A) in the pass that measures ||A^-1|| costs nothing if the SVD route then
    # overwrites x.
    transpose_into(x, p[0], n, n)
    anorm = largest_column_sum(x, n, s, 1)
    if getrf_recursive(n, n, x, n, iwork) == 0:
        sign = lu_sign_logabs(x, n, iwork, &logabs)
        det = sign * exp(logabs)
        if getri_recursive(n, x, iwork, lapack_work, job.lwork) == 0:
            inverse_norm = largest_column_sum(x, n, s, det)
            if anorm * inverse_norm * sqrt(eps) <= 1:      # false for a NaN or infinity too
                scale_matrix(x, nn, p[1])
                return 0
    # SVD route.
    copy(a, p[0], nn)
    info = xgesdd(c'A', n, n, a, n, s, u, n, vt, n, lapack_work, job.lwork, iwork)
    if info == 0:
        # Column-major, LAPACK factors A^T = u s vt; the row-major result C satisfies
        # C^T = det(u) det(vt) u adj(s) vt, which is what gemm writes into x.
        running = 1
        for i in range(n):
            adj[i] = running
            running *= s[i]
        running = 1
        for i in range(n - 1, -1, -1):
            adj[i] *= running
            running *= s[i]
        copy(a, u, nn)
        getrf_recursive(n, n, a, n, iwork)
        sign = lu_sign_logabs(a, n, iwork, &logabs)
        copy(a, vt, nn)
        getrf_recursive(n, n, a, n, iwork)
        sign *= lu_sign_logabs(a, n, iwork, &logabs)
        for j in range(n):
            for i in range(n):
                u[i + j * n] *= sign * adj[j]
        xgemm(c'N', c'N', n, n, n, <floating>1, u, n, vt, n, <floating>0, x, n)
        scale_matrix(x, nn, p[1])
    return info


cdef inline void interchange_rows(floating* x, int k, const int* ipiv, int n,
                                  bint backwards) noexcept nogil:
    """getrf's row interchanges (1-based ``ipiv``) applied to the row-major x (rows of k
    contiguous elements), first to last (P x) or, ``backwards``, last to first (P^T x)."""
    cdef int a, i
    for a in range(n):
        i = n - 1 - a if backwards else a
        if ipiv[i] - 1 != i:
            swap_vectors(x + <Py_ssize_t>i * k, x + <Py_ssize_t>(ipiv[i] - 1) * k, k)

cdef int gesv_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """X = op(A)^-1 B for a general n x n A (TRANS_A: op(A) = A^T) and B n x k, by the LU with
    partial pivoting of A itself (also with TRANS_A; so that the zero pivot a failure names is
    A's, as in gesv_lanes): A goes through scratch transposed (column-major A for getrf). The
    row-major B and X are column-major B^T and X^T, solved from the right in place, with no
    transposes: from P A = L U, X^T = B^T P^T L^-T U^-T, and with TRANS_A X^T = B^T U^-1 L^-1 P.
    Status: non-finite entries, else the position of the first exactly zero pivot. work: the
    LU (n x n), then n pivots."""
    cdef int n = job.m, k = job.n, info
    cdef Py_ssize_t nn = <Py_ssize_t>n * n, nk = <Py_ssize_t>n * k
    cdef floating* lu = work
    cdef int* ipiv = <int*>(work + nn)
    if n == 0 or k == 0:
        return 0
    if not all_finite(p[0], nn) or not all_finite(p[1], nk):
        return NONFINITE
    transpose_into(lu, p[0], n, n)
    info = getrf_recursive(n, n, lu, n, ipiv)
    if info > 0:
        return info
    copy(p[2], p[1], nk)
    lu_solve_one(lu, ipiv, p[2], n, k, (job.flags & TRANS_A) != 0)
    return 0

cdef inline void lu_solve_one(const floating* lu, const int* ipiv, floating* x, int n, int k,
                              bint transpose) noexcept nogil:
    # In place x := op(A)^-1 x from getrf's column-major P A = L U (see gesv_one).
    if not transpose:
        interchange_rows(x, k, ipiv, n, False)              # P B
        trsm_recursive(c'R', c'L', c'T', c'U', k, n, 1, lu, n, x, k)
        trsm_recursive(c'R', c'U', c'T', c'N', k, n, 1, lu, n, x, k)
    else:
        trsm_recursive(c'R', c'U', c'N', c'N', k, n, 1, lu, n, x, k)
        trsm_recursive(c'R', c'L', c'N', c'U', k, n, 1, lu, n, x, k)
        interchange_rows(x, k, ipiv, n, True)               # P^T

cdef int gesv_jvp_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """gesv and its tangent, (A, B, dA, dB) -> (X, dX), dA or dB NULL (zero): X as gesv_one,
    then dX = op(A)^-1 (dB - op(dA) X) from the same LU. A non-finite tangent is no failure: it
    gives that matrix a NaN dX, as the composed rule does. Status as gesv_one's."""
    cdef int n = job.m, k = job.n, status
    cdef Py_ssize_t nk = <Py_ssize_t>n * k
    cdef bint transposed = (job.flags & TRANS_A) != 0
    cdef floating* dx = p[5]
    cdef floating* q[4]
    cdef Job product
    q[0], q[1], q[2] = p[0], p[1], p[4]
    status = gesv_one(job, q, work)
    if status or n == 0 or k == 0:
        return status
    if p[3] != NULL:
        copy(dx, p[3], nk)
    else:
        memset(dx, 0, nk * sizeof(floating))
    if p[2] != NULL:            # dB - op(dA) X, accumulated in place
        product.m, product.n, product.k = n, k, n
        product.flags, product.alpha, product.beta = TRANS_A if transposed else 0, -1, 1
        q[0], q[1], q[2], q[3] = p[2], p[4], dx, dx
        gemm_one(&product, q, NULL)      # op(X) untransposed: gemm_one needs no scratch
    if not all_finite(dx, nk):
        fill_nan(dx, nk)
    else:
        lu_solve_one(work, <int*>(work + <Py_ssize_t>n * n), dx, n, k, transposed)
    return 0


cdef inline void pivot_lanes(floating* a, int n, int cols, int c, int* pivot,
                             floating* inverse_pivot, int* status) noexcept nogil:
    """Step c of lu_lanes' partial pivoting: in every lane, the row at or below c of largest
    magnitude in column c (the first of equals, as getrf) swapped into row c, recorded in
    ``pivot``; its inverse in ``inverse_pivot``; status c + 1 where it is exactly zero."""
    cdef floating largest[LANES]
    cdef floating best[LANES]      # the pivot's row, counted from c, as a float (exact)
    cdef floating* a_c = a + <Py_ssize_t>c * cols * LANES
    cdef int v, row
    lane_pivots(largest, best, a_c + c * LANES, <Py_ssize_t>cols * LANES, n - c)
    for v in range(LANES):
        row = c + <int>best[v]
        pivot[c * LANES + v] = row
        if row != c:
            swap_rows(a, cols, c, row, v)
        if largest[v] == 0 and status[v] == 0:
            status[v] = c + 1
    for v in range(LANES):
        inverse_pivot[c * LANES + v] = <floating>1 / a_c[c * LANES + v]

cdef enum:
    LU_PANEL = 4        # lu_lanes' pivot steps per pass over the trailing rows (8: no faster)

cdef void lu_lanes(floating* a, int n, int cols, int* pivot, floating* inverse_pivot,
                   int* status) noexcept nogil:
    """In place, every lane of ``a`` (n x n, in rows ``cols`` entries apart: padded_columns
    spreads a column over the L1 sets) becomes its LU with partial pivoting P A = L U (the
    pivot of largest magnitude, the first of equals, as getrf): U on and above the diagonal, L's
    multipliers below, the row of step c's pivot in ``pivot`` (lane v at c * LANES + v), U's
    diagonal inverted in ``inverse_pivot``. Each lane swaps its own rows, element by element:
    n^2 scalar moves against n^3/3 vector multiply-adds. A lane whose pivot is exactly zero gets
    that pivot's 1-based position as its status (if it had none) and goes on with inf and NaN.
    LU_PANEL steps at a time: their columns first (pivots, multipliers, the panel's own
    updates), then their rows of U, then one pass over the trailing rows applies all the
    rank-one updates, each row read and written once per panel (at order 64 the block of LANES
    matrices is 256 KiB in float64, so the pass streams from L2: four steps a pass made the LU
    1.13x faster than two). A step's pivot search and multipliers run across the lanes in
    vectors (_lane_update.h), the panel's rows of U and the trailing rows through the scaled
    rows loop. The sums are rounded in the order of one step after the other: the same bits."""
    cdef floating* a_s
    cdef floating* a_t
    cdef floating* a_i
    cdef int c, end, w, s, i
    c = 0
    while c < n:
        w = LU_PANEL if n - c >= LU_PANEL else n - c
        end = c + w
        adla_prefetch_share(end - 1, n)
        for s in range(c, end):             # the panel: columns c .. end-1
            pivot_lanes(a, n, cols, s, pivot, inverse_pivot, status)
            a_s = a + <Py_ssize_t>s * cols * LANES
            # multipliers below the pivot, and their updates of the panel's columns right of it
            eliminate_rows(a_s + (cols + s) * LANES, <Py_ssize_t>cols * LANES,
                           inverse_pivot + s * LANES, a_s + s * LANES, end - s, n - s - 1)
        a_t = a + <Py_ssize_t>c * cols * LANES
        for s in range(c + 1, end):         # the panel's rows of U, right of it
            a_s = a + <Py_ssize_t>s * cols * LANES
            subtract_scaled_rows(a_s + end * LANES, a_s + c * LANES, a_t + end * LANES,
                                 <Py_ssize_t>cols * LANES, s - c, n - end)
        for i in range(end, n):             # the trailing rows, once for the panel
            a_i = a + <Py_ssize_t>i * cols * LANES
            # all w rank-one updates in one pass, each entry's terms in step order
            subtract_scaled_rows(a_i + end * LANES, a_i + c * LANES, a_t + end * LANES,
                                 <Py_ssize_t>cols * LANES, w, n - end)
        c = end

cdef void lu_solve_lanes(const floating* lu, int lu_cols, const int* pivot,
                         const floating* inverse_pivot, floating* x, int n, int k, bint transpose,
                         bint identity, bint rows_elsewhere=False) noexcept nogil:
    """In place x := A^-1 x (A^-T x with ``transpose``) for every lane, from lu_lanes'
    P A = L U (rows lu_cols long): x n x k. ``identity``: x is I on entry (k = n), so the first
    solve's result is lower triangular (solve_triangle's from_identity); without ``transpose``,
    P's row interchanges of I then become column interchanges at the end, last first (as
    getri), which give each column the same bits as solving with the interchanged identity.
    ``rows_elsewhere``: P's row interchanges are the caller's (x gathered as P x; or, with
    ``transpose``, scattered as P^T x in interchanged_rows' order), which saves each lane's
    swaps, n k scalar moves a lane (gesv and det 1.05-1.1x faster at 10000 x 16)."""
    cdef int c, v
    if not transpose:                   # A^-1 = U^-1 L^-1 P
        if not identity and not rows_elsewhere:
            for c in range(n):
                for v in range(LANES):
                    if pivot[c * LANES + v] != c:
                        swap_rows(x, k, c, pivot[c * LANES + v], v)
        solve_triangle(lu, lu_cols, NULL, x, n, k, True, False, identity)
        solve_triangle(lu, lu_cols, inverse_pivot, x, n, k, False, False, False)
        if identity:
            interchange_columns(x, n, pivot)
    else:                               # A^-T = P^T L^-T U^-T
        solve_triangle(lu, lu_cols, inverse_pivot, x, n, k, True, True, identity)
        solve_triangle(lu, lu_cols, NULL, x, n, k, False, True, False)
        if not rows_elsewhere:
            for c in range(n - 1, -1, -1):
                for v in range(LANES):
                    if pivot[c * LANES + v] != c:
                        swap_rows(x, k, c, pivot[c * LANES + v], v)

cdef inline void interchanged_rows(const int* pivot, int n, bint backwards,
                                   int* order) noexcept nogil:
    """For every lane, lu_lanes' row interchanges as an order of rows: first to last (P x),
    order[i * LANES + v] is the row of x that becomes row i of P x (a gather from order's rows
    is P x); ``backwards``, last to first (P^T y), the row of P^T y that row i of y becomes (a
    scatter to order's rows is P^T y)."""
    cdef int c, v, t, a, b
    cdef int where[LU_LANES_MAX]
    for v in range(LANES):
        for c in range(n):
            where[c] = c
        for a in range(n):
            c = n - 1 - a if backwards else a
            b = pivot[c * LANES + v]
            t = where[c]
            where[c] = where[b]
            where[b] = t
        # where[r]: the row of x now at row r (the interchanges on the identity's rows)
        for c in range(n):
            if backwards:
                order[where[c] * LANES + v] = c
            else:
                order[c * LANES + v] = where[c]

cdef void gesv_lanes(const Job* job, floating** p, int count, floating* w,
                     int* status) noexcept nogil:
    """gesv_one for LANES small matrices at once: lu_lanes on A itself, then lu_solve_lanes for
    A or A^T. Status as gesv_one's. work: A (becoming its LU), then B (becoming X), interleaved."""
    cdef int n = job.m, k = job.n
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>n * n * LANES
    cdef floating inverse_pivot[LU_LANES_MAX * LANES]
    cdef int pivot[LU_LANES_MAX * LANES]
    cdef int order[LU_LANES_MAX * LANES]
    cdef bint transposed = (job.flags & TRANS_A) != 0
    gather(a, p, n, n, 0, n, 1, False)
    mark_nonfinite(a, n, n, False, status)
    lu_lanes(a, n, n, pivot, inverse_pivot, status)
    # B gathered after the LU, so that P B is its gather (B's non-finite entries marked after the
    # LU's zero pivots take precedence over them, as gesv_one's checks do); P^T X its scatter.
    interchanged_rows(pivot, n, transposed, order)
    if transposed:
        gather(x, p + LANES, n, k, 0, k, 1, False)
    else:
        gather(x, p + LANES, n, k, 0, k, 1, False, order)
    mark_nonfinite(x, n, k, False, status)
    lu_solve_lanes(a, n, pivot, inverse_pivot, x, n, k, transposed, False, True)
    if transposed:
        scatter(p + 2 * LANES, count, x, n, k, 0, k, 1, job.stream_out, order)
    else:
        scatter(p + 2 * LANES, count, x, n, k, 0, k, 1, job.stream_out)

cdef void gesv_jvp_lanes(const Job* job, floating** p, int count, floating* w,
                         int* status) noexcept nogil:
    """gesv_jvp_one for LANES small matrices at once: gesv_lanes' X, then from the same LU
    dX = op(A)^-1 (dB - op(dA) X). work: A (its LU), X, dA, dX, interleaved."""
    cdef int n = job.m, k = job.n, i, j, v
    cdef bint transposed = (job.flags & TRANS_A) != 0
    cdef floating* a = w
    cdef floating* x = a + <Py_ssize_t>n * n * LANES
    cdef floating* da = x + <Py_ssize_t>n * k * LANES
    cdef floating* dx = da + <Py_ssize_t>n * n * LANES
    cdef floating inverse_pivot[LU_LANES_MAX * LANES]
    cdef int pivot[LU_LANES_MAX * LANES]
    cdef floating acc[LANES]
    cdef floating invalid[LANES]
    cdef Py_ssize_t e
    gather(a, p, n, n, 0, n, 1, False)
    gather(x, p + LANES, n, k, 0, k, 1, False)
    mark_nonfinite(a, n, n, False, status)
    mark_nonfinite(x, n, k, False, status)
    lu_lanes(a, n, n, pivot, inverse_pivot, status)
    lu_solve_lanes(a, n, pivot, inverse_pivot, x, n, k, transposed, False)
    scatter(p + 4 * LANES, count, x, n, k, 0, k, 1, job.stream_out)
    gather_or_zero(dx, p + 3 * LANES, n, k, k, 1, False)
    if p[2 * LANES] != NULL:     # dB - op(dA) X
        gather(da, p + 2 * LANES, n, n, 0, 1 if transposed else n, n if transposed else 1,
               False)
        for i in range(n):
            for j in range(k):
                for v in range(LANES):
                    acc[v] = 0
                add_dot(acc, da + i * n * LANES, LANES, x + j * LANES, k * LANES, n)
                for v in range(LANES):
                    dx[(i * k + j) * LANES + v] = dx[(i * k + j) * LANES + v] - acc[v]
    nonfinite_lanes(invalid, dx, n, k, False)
    lu_solve_lanes(a, n, pivot, inverse_pivot, dx, n, k, transposed, False)
    for e in range(<Py_ssize_t>n * k):
        for v in range(LANES):
            dx[e * LANES + v] = dx[e * LANES + v] + invalid[v]
    scatter(p + 5 * LANES, count, dx, n, k, 0, k, 1, job.stream_out)

cdef void inverse_lanes(const Job* job, floating** p, int count, floating* w,
                        int* status) noexcept nogil:
    """inverse_one for LANES small matrices at once: A^-1 = lu_solve_lanes(I), times the
    optional scalars p[LANES + v], scattered transposed for A^-T (TRANS_A). Status: non-finite
    entries, else the first exactly zero pivot of A's LU. work: A (its LU, rows padded), then
    A^-1."""
    cdef int n = job.n, cols = padded_columns(n, floating is float)
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>n * cols * LANES
    cdef floating inverse_pivot[LU_LANES_MAX * LANES]
    cdef int pivot[LU_LANES_MAX * LANES]
    gather(a, p, n, n, 0, n, 1, False, NULL, cols)
    mark_nonfinite(a, n, n, False, status, cols)
    lu_lanes(a, n, cols, pivot, inverse_pivot, status)
    set_identity(x, n, n)
    lu_solve_lanes(a, cols, pivot, inverse_pivot, x, n, n, False, True)
    scale_matrix_lanes(x, <Py_ssize_t>n * n, p + LANES)
    if job.flags & TRANS_A:
        scatter(p + 2 * LANES, count, x, n, n, 0, 1, n, job.stream_out)
    else:
        scatter(p + 2 * LANES, count, x, n, n, 0, n, 1, job.stream_out)


cdef inline void scale_matrix_lanes(floating* x, Py_ssize_t count,
                                    floating** factors) noexcept nogil:
    """scale_matrix for LANES interleaved matrices: lane v times *factors[v], where the
    optional operand is given (factors[0] not NULL)."""
    cdef floating factor[LANES]
    cdef int v
    if factors[0] == NULL:
        return
    for v in range(LANES):
        factor[v] = factors[v][0]
    multiply_lanes(x, count, factor)

cdef inline void lu_sign_logabs_lanes(const floating* lu, int cols, const int* pivot, int n,
                                      floating* sign, floating* logabs) noexcept nogil:
    """For every lane, from lu_lanes' P A = L U: the sign of det(A) without the zero-pivot case
    (U's diagonal and the row swaps) and the sum of log|U_ii| (-inf at a zero pivot); lu's rows
    ``cols`` entries long."""
    cdef floating d
    cdef int i, v
    for v in range(LANES):
        sign[v], logabs[v] = 1, 0
    for i in range(n):
        for v in range(LANES):
            d = lu[(<Py_ssize_t>i * cols + i) * LANES + v]
            sign[v] = -sign[v] if (d < 0) != (pivot[i * LANES + v] != i) else sign[v]
            logabs[v] = logabs[v] + log(fabs(d))

cdef void slogdet_lanes(const Job* job, floating** p, int count, floating* w,
                        int* status) noexcept nogil:
    """slogdet_one for LANES small matrices at once, from lu_lanes: the sign from U's diagonal
    and the row swaps, log|det| as the sum of log|U_ii|; a zero pivot gives sign 0 and -inf (no
    failure). work: A (its LU), then sign and log|det|."""
    cdef int n = job.n, cols = padded_columns(n, floating is float), v
    cdef floating* a = w
    cdef floating* sign = w + <Py_ssize_t>n * cols * LANES
    cdef floating* logabs = sign + LANES
    cdef floating inverse_pivot[LU_LANES_MAX * LANES]
    cdef int pivot[LU_LANES_MAX * LANES]
    cdef int singular[LANES]
    gather(a, p, n, n, 0, n, 1, False, NULL, cols)
    mark_nonfinite(a, n, n, False, status, cols)
    for v in range(LANES):
        singular[v] = 0
    lu_lanes(a, n, cols, pivot, inverse_pivot, singular)
    lu_sign_logabs_lanes(a, cols, pivot, n, sign, logabs)
    for v in range(LANES):
        if status[v] == NONFINITE:
            sign[v], logabs[v] = NAN, NAN
        elif singular[v]:
            sign[v], logabs[v] = 0, -INFINITY
    scatter(p + LANES, count, sign, 1, 1, 0, 1, 1, False)
    scatter(p + 2 * LANES, count, logabs, 1, 1, 0, 1, 1, False)

cdef void cofactor_lanes(const Job* job, floating** p, int count, floating* w,
                         int* status) noexcept nogil:
    """cofactor_one for LANES small matrices at once, decided per lane as there: lu_lanes and
    lu_solve_lanes(I, transposed) give det(A) A^-T, kept where the LU has no zero pivot and the
    reciprocal condition number 1 / (||A||_1 ||A^-1||_1), computed exactly here (cofactor_one
    estimates it), is at least sqrt(eps); every other lane is done again by cofactor_one (the
    SVD adjugate, exact at singular matrices). Then times the optional scalars p[LANES + v], as
    cofactor_one. work: A (its LU, rows padded), then A^-T, interleaved; then cofactor_one's
    scratch."""
    cdef int n = job.n, cols = padded_columns(n, floating is float), v
    cdef floating* a = w
    cdef floating* x = w + <Py_ssize_t>n * cols * LANES
    cdef floating* one_work = x + <Py_ssize_t>n * n * LANES
    cdef floating inverse_pivot[LU_LANES_MAX * LANES]
    cdef int pivot[LU_LANES_MAX * LANES]
    cdef int singular[LANES]
    cdef floating norm[LANES]
    cdef floating inverse_norm[LANES]
    cdef int order[LU_LANES_MAX * LANES]
    cdef floating sign[LANES]
    cdef floating logabs[LANES]
    cdef floating eps = DBL_EPSILON if floating is double else FLT_EPSILON
    cdef floating* one[3]
    gather(a, p, n, n, 0, n, 1, False, NULL, cols)
    mark_nonfinite(a, n, n, False, status, cols)
    for v in range(LANES):
        singular[v] = 0
    one_norm_lanes(a, n, cols, False, norm)
    lu_lanes(a, n, cols, pivot, inverse_pivot, singular)
    set_identity(x, n, n)
    lu_solve_lanes(a, cols, pivot, inverse_pivot, x, n, n, True, True, True)  # P^T: the scatter's
    lu_sign_logabs_lanes(a, cols, pivot, n, sign, logabs)
    one_norm_lanes(x, n, n, True, inverse_norm)     # x holds A^-T, rows not yet interchanged
    for v in range(LANES):
        sign[v] = sign[v] * exp(logabs[v])      # det(A)
    multiply_lanes(x, <Py_ssize_t>n * n, sign)
    scale_matrix_lanes(x, <Py_ssize_t>n * n, p + LANES)
    interchanged_rows(pivot, n, True, order)
    scatter(p + 2 * LANES, count, x, n, n, 0, n, 1, job.stream_out, order)
    for v in range(count):
        if status[v] == 0 and (singular[v] or not norm[v] * inverse_norm[v] * sqrt(eps) <= 1):
            one[0], one[1], one[2] = p[v], p[LANES + v], p[2 * LANES + v]
            status[v] = cofactor_one(job, one, one_work)

cdef inline void one_norm_lanes(const floating* w, int n, int cols, bint of_transpose,
                                floating* norm) noexcept nogil:
    """The 1-norm (largest absolute column sum) of every lane of the n x n ``w`` (rows ``cols``
    long), or of its transpose (largest absolute row sum)."""
    cdef floating total[LANES]
    cdef int i, j, v
    cdef Py_ssize_t at
    for v in range(LANES):
        norm[v] = 0
    for j in range(n):
        for v in range(LANES):
            total[v] = 0
        for i in range(n):
            at = (<Py_ssize_t>j * cols + i if of_transpose else <Py_ssize_t>i * cols + j) * LANES
            for v in range(LANES):
                total[v] = total[v] + fabs(w[at + v])
        for v in range(LANES):
            norm[v] = total[v] if total[v] > norm[v] else norm[v]

cdef inline void swap_rows(floating* w, int cols, int first, int second, int v) noexcept nogil:
    """Swap rows ``first`` and ``second`` of lane v of w (rows of ``cols`` elements)."""
    cdef floating t
    cdef floating* one = w + <Py_ssize_t>first * cols * LANES + v
    cdef floating* other = w + <Py_ssize_t>second * cols * LANES + v
    cdef int j
    for j in range(cols):
        t = one[j * LANES]
        one[j * LANES] = other[j * LANES]
        other[j * LANES] = t

cdef inline void interchange_columns(floating* x, int n, const int* pivot) noexcept nogil:
    """P's column interchanges on every lane of the n x n x, last first (as getri), one row at
    a time: a row's n * LANES entries stay in L1 while all its swaps run. (Swapping whole
    columns instead strides n * LANES entries, 4 KiB at order 64 in float64, so every entry of
    a column falls into the same L1 set: the whole inverse of 1000 pivoting 64 x 64 matrices
    took 44.9 ms against 19.0.)"""
    cdef floating t
    cdef floating* row
    cdef int i, c, v, other
    for i in range(n):
        row = x + <Py_ssize_t>i * n * LANES
        for c in range(n - 1, -1, -1):
            for v in range(LANES):
                other = pivot[c * LANES + v]
                if other != c:
                    t = row[c * LANES + v]
                    row[c * LANES + v] = row[other * LANES + v]
                    row[other * LANES + v] = t

cdef inline void solve_triangle(const floating* lu, int lu_cols,
                                const floating* inverse_diagonal, floating* x, int n, int cols,
                                bint lower, bint transposed, bint from_identity) noexcept nogil:
    """In place x := T^-1 x for every lane, T from an LU in ``lu`` (rows lu_cols long): its
    unit lower triangle (``lower``), its upper triangle, or (``transposed``) the transpose of
    the other one, U^T (``lower``) or L^T; a non-unit diagonal comes inverted in
    ``inverse_diagonal``. Four columns of T at a time: their rows of x solved among themselves,
    then each remaining row of x read and written once for all four (at order 32 the lanes of x
    outgrow the L1 cache, and this halves the traffic of two at a time); the inner loops are
    independent multiply-adds along x's rows, subtracted in the order of one column after the
    other: the same bits. ``from_identity`` (lower T, x = I on entry): T^-1 is lower
    triangular, so row c's columns past c stay zero and are skipped (a third of the
    multiply-adds; the same bits)."""
    cdef bint unit = lower != transposed
    cdef int a, b, r, q, i, j, v, first, last
    cdef int width = cols                       # the columns of x an update touches
    cdef int row[4]
    cdef floating* x_r[4]
    cdef floating* x_i
    cdef Py_ssize_t at
    # Local copies: the compiler then sees that stores to x leave them alone.
    cdef floating f[4][LANES]
    a = 0
    while a < n:
        b = 4 if n - a >= 4 else n - a
        for r in range(b):                      # the block's rows among themselves
            row[r] = a + r if lower else n - 1 - a - r
            x_r[r] = x + <Py_ssize_t>row[r] * cols * LANES
            for q in range(r):
                at = (<Py_ssize_t>row[q] * lu_cols + row[r] if transposed
                      else <Py_ssize_t>row[r] * lu_cols + row[q]) * LANES
                for v in range(LANES):
                    f[0][v] = lu[at + v]
                if from_identity:
                    width = row[q] + 1
                x_i = x_r[r]
                for j in range(width):
                    for v in range(LANES):
                        x_i[j * LANES + v] = x_i[j * LANES + v] - f[0][v] * x_r[q][j * LANES + v]
            if from_identity:
                width = row[r] + 1
            if not unit:
                multiply_lanes(x_r[r], width, inverse_diagonal + row[r] * LANES)
        a += b
        if a == n:
            break
        first = a if lower else 0
        last = n if lower else n - a
        for i in range(first, last):            # the rest, once for the four
            for r in range(4):
                at = (<Py_ssize_t>row[r] * lu_cols + i if transposed
                      else <Py_ssize_t>i * lu_cols + row[r]) * LANES
                for v in range(LANES):
                    f[r][v] = lu[at + v]
            x_i = x + <Py_ssize_t>i * cols * LANES
            subtract_scaled_rows(x_i, &f[0][0], x_r[0], x_r[1] - x_r[0], 4, width)


# Planning and workspace (the operator table in _lapack.pyx); the LAPACK queries answered once
# per call.

cdef inline bint fills_every_thread(const Job* job) noexcept nogil:
    # At least LANES matrices for each thread of the pool (lu_lanes_wide_batch where set).
    return job.nbatch >= (lu_lanes_wide_batch if lu_lanes_wide_batch >= 0
                          else <Py_ssize_t>LANES * openmp.omp_get_max_threads())

cdef void plan_gesv(Job* job) noexcept nogil:
    # For a batch that fills the lanes, measured against a getrf and solves per matrix (1000
    # matrices, fwd+bwd): 1.15x faster at 40 x 40, 1.3x at order 64 with up to 16 right-hand
    # sides, 1.05x with 32; even at 48-56 square, and 1.05x slower at 64 x 64. At 80 to 128
    # (batches of 16 to 500, 2 threads, in one process), with a block of LANES for every
    # thread: 1.5-2.2x faster with one right-hand side, 1.2-1.9x with 8, 0.98-1.27x with 32 and
    # 0.84-1.03x with n; a batch with one block for two threads loses there, as inverse's.
    cdef bint full = job.nbatch >= LANES
    if ((job.m <= SMALL_SOLVE and job.n <= SMALL_SOLVE)
            or (full and job.m <= SOLVE_LANES_MAX and job.n <= SMALL_SOLVE)
            or (full and job.m <= SOLVE_LANES_SQUARE and job.n <= SOLVE_LANES_SQUARE)
            or (full and job.m <= LU_LANES_MAX and job.n <= SOLVE_LANES_THIN
                and fills_every_thread(job))):
        job.lanes = LANES
        job.work = (<Py_ssize_t>job.m * job.m + <Py_ssize_t>job.m * job.n) * LANES

cdef void plan_gesv_jvp(Job* job) noexcept nogil:
    # Interleaved where gesv is (so that X has its bits), with room for dA and dX too.
    plan_gesv(job)
    if job.lanes > 1:
        job.work = 2 * job.work

cdef inline bint lu_interleaved(const Job* job) noexcept nogil:
    """The interleaved LU kernels' rule: any batch up to SMALL_INVERSE, a batch that fills the
    lanes up to LU_LANES_FULL, and up to LU_LANES_MAX one that gives every thread of the pool
    a block of LANES (fills_every_thread). Against a getrf per matrix at 65 to 128 (2 threads,
    in one process): slogdet, inverse and det_backward 1.3-1.9x faster in float64 and 1.35-2.3x
    in float32 in batches of 125 to 954, 1.25-1.8x in batches of 16; but 0.67-0.93 for a batch
    of 8, one block on one thread, and 0.57-0.84 at order 192 in float64."""
    return job.n <= SMALL_INVERSE or (job.nbatch >= LANES and (
        job.n <= LU_LANES_FULL or (job.n <= LU_LANES_MAX and fills_every_thread(job))))

cdef void plan_inverse(Job* job) noexcept nogil:
    # For a batch that fills the lanes, against getrf and getri per matrix (1000 matrices,
    # fwd+bwd): 1.4x faster at 40, 1.2x at 48 and 56. Against getrf and getri_recursive (A/B,
    # forward, 1000 matrices): 1.15-1.3x faster at 57-63 in float64, 1.4-1.9x in float32; at
    # 64, where a row of 8 lanes is 4 KiB, 1.27x faster in float64 and 1.7x in float32 (an
    # earlier build measured 1.4x slower there), though 1.23x the time of 63 before the LU's
    # rows were padded (padded_columns).
    if lu_interleaved(job):
        job.lanes, job.work = LANES, lu_inverse_work(job)

cdef void plan_cofactor(Job* job) noexcept nogil:
    # The lanes' fallback, cofactor_one, calls LAPACK (its scratch: plan_workspace).
    if lu_interleaved(job):
        job.lanes, job.work = LANES, lu_inverse_work(job)
        job.lanes_call_blas = True

cdef inline Py_ssize_t lu_inverse_work(const Job* job) noexcept nogil:
    # inverse_lanes' and cofactor_lanes' scratch: the LU (rows padded), then the inverse
    return <Py_ssize_t>job.n * (padded_columns(job.n, job.flags & SINGLE) + job.n) * LANES

cdef void plan_slogdet(Job* job) noexcept nogil:
    # Measured against a getrf per matrix: 1.5-6x faster up to order 32, still 1.3x at 64 for a
    # batch that fills the lanes (a lone matrix would be factored LANES times over).
    if lu_interleaved(job):
        job.lanes = LANES
        job.work = (<Py_ssize_t>job.n * padded_columns(job.n, job.flags & SINGLE) + 2) * LANES

cdef void workspace_inverse(floating* kind, Job* job) noexcept nogil:
    cdef int n = job.n
    cdef floating query = 0
    cdef floating dummy[1]
    dummy[0] = 0
    xgetri(n, dummy, max(n, 1), NULL, &query, -1)
    job.lwork = max(workspace_size(query, n), n * n)        # getri_recursive
    job.work = job.lwork + ints_in(kind, n)

cdef void workspace_slogdet(floating* kind, Job* job) noexcept nogil:
    job.work = <Py_ssize_t>job.n * job.n + ints_in(kind, job.n)

cdef void workspace_cofactor(floating* kind, Job* job) noexcept nogil:
    cdef int n = job.n
    cdef floating query = 0
    cdef floating dummy[1]
    dummy[0] = 0
    xgesdd(c'A', n, n, dummy, max(n, 1), NULL, NULL, max(n, 1), NULL, max(n, 1), &query, -1, NULL)
    job.lwork = workspace_size(query, 5 * n * n + 7 * n)
    xgetri(n, dummy, max(n, 1), NULL, &query, -1)
    job.lwork = max(job.lwork, workspace_size(query, n), n * n)         # getri(_recursive)
    job.work = <Py_ssize_t>3 * n * n + 2 * n + job.lwork + ints_in(kind, 8 * n)

cdef void workspace_gesv(floating* kind, Job* job) noexcept nogil:
    job.work = <Py_ssize_t>job.m * job.m + ints_in(kind, job.m)
