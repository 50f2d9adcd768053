# The thin singular value decomposition: LAPACK gesdd per matrix, gesvd where gesdd does not
# converge; one-sided Jacobi on interleaved lanes for batches of small matrices.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef int gesvd_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """A = U diag(s) Vt for a row-major m x n A, k = min(m, n): U m x k, s descending, Vt k x n.

    LAPACK sees the column-major view M = A^T (n x m) and factors M = Um Sm VTm, so that
    A = VTm^T Sm Um^T: Um (n x k, ld n) read row-major is Vt, and VTm (k x m, ld k) read
    row-major is U, each written in place. Signs: in each row of Vt the entry of largest
    magnitude (the first on ties) is made positive, and U's column with it. work: a copy of
    A, job.lwork elements of LAPACK workspace, then 8 k ints.
    """
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), info
    cdef Py_ssize_t mn = <Py_ssize_t>m * n
    cdef floating* a = work
    cdef floating* lapack_work = work + mn
    cdef int* iwork = <int*>(lapack_work + job.lwork)
    cdef floating* u = p[1]
    cdef floating* s = p[2]
    cdef floating* vt = p[3]
    if k == 0:
        return 0
    if not all_finite(p[0], mn):
        return NONFINITE
    copy(a, p[0], mn)
    info = xgesdd(c'S', n, m, a, n, s, vt, n, u, k, lapack_work, job.lwork, iwork)
    if info > 0:                # divide and conquer did not converge: QR iteration instead
        copy(a, p[0], mn)
        info = xgesvd(c'S', c'S', n, m, a, n, s, vt, n, u, k, lapack_work, job.lwork)
    if info != 0:
        return info
    fix_signs(u, vt, m, n, k)
    return 0


cdef inline void fix_signs(floating* u, floating* vt, int m, int n, int k) noexcept nogil:
    """gesvd's sign rule on a row-major U (m x k) and Vt (k x n): in each row of Vt the entry of
    largest magnitude (the first on ties) made positive, and U's column with it."""
    cdef int i, j, big
    for i in range(k):
        big = 0
        for j in range(1, n):
            if fabs(vt[i * n + j]) > fabs(vt[i * n + big]):
                big = j
        if vt[i * n + big] < 0:
            for j in range(n):
                vt[i * n + j] = -vt[i * n + j]
            for j in range(m):
                u[j * k + i] = -u[j * k + i]


cdef int gesvd_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """dA of gesvd from (dU, ds, dVt, U, s, Vt, tolerance), any cotangent possibly absent (NULL =
    zero), k = min(m, n):

        dA = U (J S + diag(ds) + S K) Vt + (dU - U U^T dU) S^-1 Vt + U S^-1 (dVt - Vt dVt^T Vt)
        J = F * (U^T dU - dU^T U),  K = F * (Vt dVt^T - dVt Vt^T),  F[i, j] = 1/(s[j]^2 - s[i]^2)

    (the second term only for a tall A, the third only for a wide one), F zero where two
    singular values are within the matrix's tolerance, 1/s zero for a singular value within
    it of zero (the front end computes it). Each matrix's products in cache instead of a pass
    over the batch for each step. work: U^T dU, Vt dVt^T and the inner matrix (k x k each),
    the m x k or k x n product it is multiplied into, another for the projection, and
    product_into's scratch."""
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), i, j
    cdef floating* du = p[0]
    cdef floating* ds = p[1]
    cdef floating* dvt = p[2]
    cdef floating* u = p[3]
    cdef floating* s = p[4]
    cdef floating* vt = p[5]
    cdef floating tolerance = p[6][0]
    cdef floating* da = p[7]
    cdef Py_ssize_t kk = <Py_ssize_t>k * k, side = <Py_ssize_t>max(m, n) * k
    cdef floating* utdu = work
    cdef floating* vtdv = work + kk
    cdef floating* inner = work + 2 * kk
    cdef floating* outer = work + 3 * kk                # U inner (m x k) or inner Vt (k x n)
    cdef floating* projected = outer + side             # U U^T dU or Vt dVt^T Vt
    cdef floating* scratch = projected + side
    cdef floating value, inverse_s
    if k == 0:
        return 0
    if du != NULL:
        product_into(utdu, u, du, k, k, m, TRANS_A, 1, scratch)
    if dvt != NULL:
        product_into(vtdv, vt, dvt, k, k, n, TRANS_B, 1, scratch)
    for i in range(k):
        for j in range(k):
            value = 0
            if du != NULL:
                value = (utdu[i * k + j] - utdu[j * k + i]) * s[j]
            if dvt != NULL:
                value = value + s[i] * (vtdv[i * k + j] - vtdv[j * k + i])
            inner[i * k + j] = svd_coupling(s, i, j, tolerance) * value    # x * 0 keeps NaN
        if ds != NULL:
            inner[i * k + i] = inner[i * k + i] + ds[i]
    if n > k:                   # wide (m == k): dA = U (inner Vt + S^-1 (dVt - Vt dVt^T Vt))
        product_into(outer, inner, vt, k, n, k, 0, 1, scratch)
        if dvt != NULL:
            product_into(projected, vtdv, vt, k, n, k, TRANS_A, 1, scratch)
            for i in range(k):
                inverse_s = <floating>1 / s[i] if s[i] > tolerance else 0
                for j in range(n):
                    outer[i * n + j] = (outer[i * n + j]
                                        + (dvt[i * n + j] - projected[i * n + j]) * inverse_s)
        product_into(da, u, outer, m, n, k, 0, 1, scratch)
    else:                       # tall or square: dA = (U inner + (dU - U U^T dU) S^-1) Vt
        product_into(outer, u, inner, m, k, k, 0, 1, scratch)
        if m > k and du != NULL:
            product_into(projected, u, utdu, m, k, k, 0, 1, scratch)
            for j in range(k):
                inverse_s = <floating>1 / s[j] if s[j] > tolerance else 0
                for i in range(m):
                    outer[i * k + j] = (outer[i * k + j]
                                        + (du[i * k + j] - projected[i * k + j]) * inverse_s)
        product_into(da, outer, vt, m, n, k, 0, 1, scratch)
    return 0


cdef inline floating svd_coupling(const floating* s, int i, int j,
                                  floating tolerance) noexcept nogil:
    # F[i, j] = 1/(s[j]^2 - s[i]^2), zero for singular values within the tolerance.
    return <floating>1 / ((s[j] - s[i]) * (s[j] + s[i])) if fabs(s[j] - s[i]) > tolerance else 0


cdef int gesvd_tangent_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dU, ds, dVt) of gesvd along dA from (dA, U, s, Vt, tolerance), k = min(m, n): with
    P = U^T dA V and F, 1/s as in gesvd_backward_one,

        ds = diag(P),  dU = U (F * (P S + S P^T)) + (dA V - U P) S^-1,
        dVt = (F * (S P + P^T S))^T Vt + S^-1 (U^T dA - P Vt)

    (the projections only for a tall or a wide A). Each matrix's products in cache. work:
    U^T dA (k x n), P and the coupled matrix (k x k each), two m x k or k x n products, and
    product_into's scratch."""
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), i, j
    cdef floating* da = p[0]
    cdef floating* u = p[1]
    cdef floating* s = p[2]
    cdef floating* vt = p[3]
    cdef floating tolerance = p[4][0]
    cdef floating* du = p[5]
    cdef floating* ds = p[6]
    cdef floating* dvt = p[7]
    cdef Py_ssize_t kk = <Py_ssize_t>k * k, side = <Py_ssize_t>max(m, n) * k
    cdef floating* utda = work
    cdef floating* pm = utda + <Py_ssize_t>k * n
    cdef floating* coupled = pm + kk
    cdef floating* first = coupled + kk
    cdef floating* second = first + side
    cdef floating* scratch = second + side
    cdef floating inverse_s
    if k == 0:
        return 0
    product_into(utda, u, da, k, n, m, TRANS_A, 1, scratch)
    product_into(pm, utda, vt, k, k, n, TRANS_B, 1, scratch)
    for i in range(k):
        ds[i] = pm[i * k + i]
        for j in range(k):      # F * (P S + S P^T); x * 0 keeps a NaN tangent NaN
            coupled[i * k + j] = svd_coupling(s, i, j, tolerance) * (
                pm[i * k + j] * s[j] + pm[j * k + i] * s[i])
    product_into(du, u, coupled, m, k, k, 0, 1, scratch)
    if m > k:
        product_into(first, da, vt, m, k, n, TRANS_B, 1, scratch)
        product_into(second, u, pm, m, k, k, 0, 1, scratch)
        for j in range(k):
            inverse_s = <floating>1 / s[j] if s[j] > tolerance else 0
            for i in range(m):
                du[i * k + j] = du[i * k + j] + (first[i * k + j] - second[i * k + j]) * inverse_s
    for i in range(k):          # (F * (S P + P^T S))^T
        for j in range(k):
            coupled[i * k + j] = svd_coupling(s, j, i, tolerance) * (
                s[j] * pm[j * k + i] + pm[i * k + j] * s[i])
    product_into(dvt, coupled, vt, k, n, k, 0, 1, scratch)
    if n > k:
        product_into(first, pm, vt, k, n, k, 0, 1, scratch)
        for i in range(k):
            inverse_s = <floating>1 / s[i] if s[i] > tolerance else 0
            for j in range(n):
                dvt[i * n + j] = dvt[i * n + j] + inverse_s * (utda[i * n + j] - first[i * n + j])
    return 0


cdef void svd_lanes(const Job* job, floating** p, int count, floating* w,
                    int* status) noexcept nogil:
    """gesvd_one for LANES small matrices at once, by one-sided Jacobi (Hestenes): the columns
    of G (A, or A^T when A is wide) are rotated in pairs until every pair is orthogonal to
    working precision, the rotations accumulated in V, so that G V = X S with orthonormal X.
    Then A = X S V^T (tall) or V S X^T (wide): errors of order eps |A|, as gesdd's. Each lane
    is scaled by a power of two first (no overflow in the sums of squares), and from order
    SVD_PRECONDITION on, V starts at the eigenvectors of G^T G. A lane that has
    not converged after SVD_SWEEPS sweeps, or with a column so small that its direction is
    lost to underflow, is done again by gesvd_one. Order and signs as gesvd_one. work: V^T
    (k x k), G^T (k x r, a row per column of G) and room for G V and the Gram matrix after it,
    interleaved; then gesvd_one's scratch."""
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), r = max(job.m, job.n)
    cdef int sweep_count, i, j, q, v
    cdef bint wide = m < n
    cdef int pending_first, pending_count
    cdef floating pending[4 * LANES]
    cdef int any_rotated, rotated_any
    cdef floating* vt = w
    cdef floating* g = w + <Py_ssize_t>k * k * LANES
    cdef floating* spare = g + <Py_ssize_t>k * r * LANES       # G V; then the Gram matrix
    cdef floating* one_work = spare + <Py_ssize_t>k * (r + k) * LANES
    cdef floating* gram
    cdef floating diagonal[SVD_LANES_MAX * LANES]
    cdef floating off_diagonal[SVD_LANES_MAX * LANES]
    cdef floating tau[SVD_LANES_MAX * LANES]
    cdef int eigen_status[LANES]
    cdef floating* g_i
    cdef floating* g_j
    cdef floating* row
    cdef floating* column
    cdef floating* v_i
    cdef floating* v_j
    cdef floating alpha[LANES]
    cdef floating beta[LANES]
    cdef floating gamma[LANES]
    cdef floating c[LANES]
    cdef floating s[LANES]
    cdef floating norm[SVD_LANES_MAX * LANES]
    cdef floating turn[LANES]          # 1 where the pair is rotated, else 0
    cdef floating tangent[LANES]
    cdef int unsettled[LANES]           # rotated in this sweep; after the last, LAPACK's turn
    cdef int exponent[LANES]
    cdef int order[SVD_LANES_MAX]
    cdef floating eps = DBL_EPSILON if floating is double else FLT_EPSILON
    cdef floating tiny = (DBL_MIN / DBL_EPSILON) if floating is double else (FLT_MIN / FLT_EPSILON)
    # |cos| of the angle between columns: LAPACK's eps sqrt(r) (gesvj), but at most 8 eps, its
    # value at r = 64. X is only as orthogonal as this: with eps sqrt(r) the median
    # orthogonality ratio of ill-conditioned 260 x 32 matrices was 5.4x gesdd's
    # (tests/accuracy.py); capped, at most 2.9x, for 1.0-1.15x the time (A/B, tall shapes up to
    # 1024 x 32 and 512 x 64). Jacobi on R after G = Q R (as gejsv), X = Q X_R, was 1.15-1.9x
    # slower than either.
    cdef floating tolerance = eps * min(sqrt(<floating>r), <floating>SVD_COS_MAX)
    cdef floating zeta, t
    cdef floating* one[4]
    if wide:                            # G^T's row j: A's row j
        gather(g, p, k, r, 0, n, 1, False)
    else:                               # G^T's row j: A's column j
        gather(g, p, k, r, 0, 1, n, False)
    mark_nonfinite(g, k, r, False, status)
    scale_lanes(g, <Py_ssize_t>k * r, exponent)
    if k >= SVD_PRECONDITION:
        # Start from V = the eigenvectors of G^T G (the interleaved eigensolver): G V then has
        # nearly orthogonal columns and Jacobi settles in 2-4 sweeps instead of 8-10. Jacobi,
        # not the eigensolver, decides the result (and its accuracy): V only has to be
        # orthogonal, which the eigensolver's rotations keep it to rounding.
        gram = spare + <Py_ssize_t>k * r * LANES
        for i in range(k):
            g_i = g + <Py_ssize_t>i * r * LANES
            for j in range(0, i + 1, 4):        # columns j .. j + 3 with g_i, four sums at once
                pending_count = min(4, i + 1 - j)
                for v in range(pending_count * LANES):
                    pending[v] = 0
                add_dot_rows(pending, g + <Py_ssize_t>j * r * LANES, <Py_ssize_t>r * LANES, g_i,
                             LANES, pending_count, r)
                for q in range(pending_count):
                    for v in range(LANES):
                        gram[(i * k + j + q) * LANES + v] = pending[q * LANES + v]
                        gram[((j + q) * k + i) * LANES + v] = pending[q * LANES + v]
        tridiagonalise_lanes(gram, k, diagonal, off_diagonal, tau)
        transposed_q_lanes(vt, gram, tau, k)
        for v in range(LANES):
            eigen_status[v] = status[v]
        tridiagonal_ql_lanes(diagonal, off_diagonal, vt, k, eigen_status)
        for v in range(LANES):
            if eigen_status[v] != status[v]:        # not converged: plain Jacobi for this lane
                for i in range(k):
                    for j in range(k):
                        vt[(i * k + j) * LANES + v] = 1 if i == j else 0
        # G := G V, by rows of G^T: row j becomes sum over i of V[i, j] g_i = vt[j, i] g_i.
        for j in range(k):
            g_j = spare + <Py_ssize_t>j * r * LANES
            for q in range(r):
                for v in range(LANES):
                    g_j[q * LANES + v] = 0
            for i in range(k):
                g_i = g + <Py_ssize_t>i * r * LANES
                for v in range(LANES):
                    c[v] = vt[(j * k + i) * LANES + v]
                for q in range(r):
                    for v in range(LANES):
                        g_j[q * LANES + v] = g_j[q * LANES + v] + c[v] * g_i[q * LANES + v]
        g, spare = spare, g
    else:
        set_identity(vt, k, k)
    for sweep_count in range(SVD_SWEEPS):
        # The columns' squared norms, afresh each sweep and updated through it.
        for j in range(k):
            g_j = g + <Py_ssize_t>j * r * LANES
            for v in range(LANES):
                norm[j * LANES + v] = 0
            add_dot(norm + j * LANES, g_j, LANES, g_j, LANES, r)
        for v in range(LANES):
            unsettled[v] = 0
        any_rotated = 0
        for i in range(k - 1):
            g_i = g + <Py_ssize_t>i * r * LANES
            v_i = vt + <Py_ssize_t>i * k * LANES
            # The dot products of column i with columns j: up to four at once (add_dot_rows)
            # while g_i stays, since they are independent until a pair rotates; a rotation
            # leaves the rest stale and gives the next pair's itself (rotate_dot). One sum at a
            # time, each waited on the latency of its additions (A/B in one process, Zen 4,
            # fwd: float32 1.05-1.1x faster at 8-64, float64 1.02-1.08x). Each sum in order:
            # the same bits.
            pending_first, pending_count = i + 1, 0
            for j in range(i + 1, k):
                g_j = g + <Py_ssize_t>j * r * LANES
                v_j = vt + <Py_ssize_t>j * k * LANES
                if j >= pending_first + pending_count:
                    pending_first, pending_count = j, min(4, k - j)
                    for v in range(pending_count * LANES):
                        pending[v] = 0
                    add_dot_rows(pending, g_j, <Py_ssize_t>r * LANES, g_i, LANES, pending_count,
                                 r)
                for v in range(LANES):
                    gamma[v] = pending[(j - pending_first) * LANES + v]
                for v in range(LANES):
                    alpha[v], beta[v] = norm[i * LANES + v], norm[j * LANES + v]
                for v in range(LANES):
                    # The rotation that makes columns i and j orthogonal, t = tan of its angle
                    # (the smaller root), none where they are orthogonal to the tolerance.
                    # Selects of floating values, and norm read apart from its writes: gcc
                    # keeps this vector code (with -fno-trapping-math, meson.build); scalar,
                    # it cost gesvd 1.25x the time at 1000 x 32 x 32. (The norms' square
                    # roots, not the squares: those underflow for tiny columns.)
                    turn[v] = (1 if fabs(gamma[v]) > tolerance * sqrt(alpha[v]) * sqrt(beta[v])
                               else 0)
                    zeta = (beta[v] - alpha[v]) / (2 * (gamma[v] if turn[v] != 0 else 1))
                    t = copysign(1, zeta) / (fabs(zeta) + sqrt(1 + zeta * zeta))
                    tangent[v] = t if turn[v] != 0 else 0
                    c[v] = 1 / sqrt(1 + tangent[v] * tangent[v])
                    s[v] = c[v] * tangent[v]
                for v in range(LANES):          # the new squared norms
                    norm[i * LANES + v] = alpha[v] - tangent[v] * gamma[v]
                    norm[j * LANES + v] = beta[v] + tangent[v] * gamma[v]
                rotated_any = 0
                for v in range(LANES):
                    rotated_any = rotated_any | (turn[v] != 0)
                    unsettled[v] = unsettled[v] | (turn[v] != 0)
                if not rotated_any:
                    continue
                any_rotated = 1
                if j + 1 < k:                   # and the next pair's dot, (i, j + 1)
                    rotate_dot(g_i, g_j, c, s, g_j + <Py_ssize_t>r * LANES, pending, r)
                    pending_first, pending_count = j + 1, 1
                else:
                    rotate_lanes(g_i, g_j, c, s, r)
                rotate_lanes(v_i, v_j, c, s, k)
        if not any_rotated:
            break
    # Singular values: the columns' norms; X's columns: the columns normalised.
    for j in range(k):
        g_j = g + <Py_ssize_t>j * r * LANES
        for v in range(LANES):
            alpha[v] = 0
        add_dot(alpha, g_j, LANES, g_j, LANES, r)
        for v in range(LANES):
            norm[j * LANES + v] = sqrt(alpha[v])
            if not alpha[v] > tiny:
                unsettled[v] = 1        # lost to underflow: LAPACK's turn
            c[v] = <floating>1 / norm[j * LANES + v] if alpha[v] > tiny else 0
        for q in range(r):
            for v in range(LANES):
                g_j[q * LANES + v] = g_j[q * LANES + v] * c[v]
    for v in range(count):
        if status[v] != 0:
            continue
        if unsettled[v]:                # not converged, or underflow
            one[0], one[1], one[2], one[3] = p[v], p[LANES + v], p[2 * LANES + v], p[3 * LANES + v]
            status[v] = gesvd_one(job, one, one_work)
            continue
        lane_order(norm, k, v, True, order)
        for i in range(k):
            # Row i of Vt: X's column (wide) or V's column (tall) order[i].
            row = (g + (<Py_ssize_t>order[i] * r) * LANES) if wide else (
                vt + (<Py_ssize_t>order[i] * k) * LANES)
            column = (vt + (<Py_ssize_t>order[i] * k) * LANES) if wide else (
                g + (<Py_ssize_t>order[i] * r) * LANES)
            for j in range(n):
                p[3 * LANES + v][<Py_ssize_t>i * n + j] = row[j * LANES + v]
            for j in range(m):
                p[LANES + v][<Py_ssize_t>j * k + i] = column[j * LANES + v]
            p[2 * LANES + v][i] = ldexp(norm[order[i] * LANES + v], exponent[v])
        fix_signs(p[LANES + v], p[3 * LANES + v], m, n, k)


# Planning and workspace (the operator table in _lapack.pyx).

cdef void plan_gesvd(Job* job) noexcept nogil:
    # Measured against gesdd per matrix (batches of 1000, float64): 1.6x faster at 32 x 32, 2-5x
    # below; a lone matrix (factored LANES times over) only gains up to order 8. Jacobi's sweeps
    # cost k^2 per row of the long side, so with a short side k up to 32 a batch that fills the
    # lanes gains at any long side measured (fwd+bwd, A/B): 1.5-1.9x at 40-64 x 32, 3.2x at
    # 64 x 16, 2-3x at 128-1024 x 8-16, 1.6x at 512 x 32. Short sides 33-64 (forward, A/B,
    # float64): 2.1x at 40 x 40, 1.85x at 48 x 48, 1.2x at 64 x 64 (1.3x in float32), 1.4-2x at
    # 128-512 x 48-64, 1.25x at 256 x 64 and 1.1x at 1024 x 64; at 80 x 80 1.2x, at 96 x 96
    # level in float64 and 1.05x slower in float32.
    cdef int k = min(job.m, job.n), r = max(job.m, job.n)
    if 0 < k and ((r <= SVD_LANES_MAX and (k <= 8 or job.nbatch >= LANES))
                  or (k <= SVD_LANES_MAX and r <= SVD_LANES_LONG and job.nbatch >= LANES)):
        job.lanes = LANES
        job.work = <Py_ssize_t>2 * k * (max(job.m, job.n) + k) * LANES
        job.lanes_call_blas = True          # gesvd_one for the lanes that need it

cdef void plan_svd_gradients(Job* job) noexcept nogil:
    # gesvd_backward_one's and gesvd_tangent_one's scratch alike (k x n <= max(m, n) x k).
    cdef Py_ssize_t k = min(job.m, job.n), side = <Py_ssize_t>max(job.m, job.n) * k
    job.work = 3 * k * k + 3 * side + <Py_ssize_t>max(job.m, job.n) * max(job.m, job.n)
    job.calls_blas = not direct_product(job.m, job.n, max(job.m, job.n))

cdef void workspace_gesvd(floating* kind, Job* job) noexcept nogil:
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), iquery = 0
    cdef floating query = 0, query2 = 0
    cdef floating dummy[1]
    dummy[0] = 0
    xgesdd(c'S', n, m, dummy, n, dummy, dummy, n, dummy, k, &query, -1, &iquery)
    xgesvd(c'S', c'S', n, m, dummy, n, dummy, dummy, n, dummy, k, &query2, -1)
    job.lwork = workspace_size(query if query > query2 else query2,
                               3 * k * k + max(max(m, n), 4 * k * k + 4 * k))
    job.work = <Py_ssize_t>m * n + job.lwork + ints_in(kind, 8 * k)
