# The symmetric eigensolver and its gradient: LAPACK syevd per matrix, and the interleaved
# tridiagonalisation + implicit QL for orders up to 32.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef int syevd_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # Symmetric: row-major lower triangle is LAPACK's upper. Column-major eigenvector columns
    # are row-major rows, which is the layout the API documents. work: job.lwork elements of
    # LAPACK workspace, then job.liwork ints (plan_workspace).
    cdef int n = job.n, info, i, j, big
    cdef floating* u = p[1]
    if n == 0:
        return 0
    if not triangle_finite(p[0], n, True):
        return NONFINITE
    copy(u, p[0], <Py_ssize_t>n * n)
    info = xsyevd(n, u, n, p[2], work, job.lwork, <int*>(work + job.lwork), job.liwork)
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


adla_lanes_avx512 = adla_cpu_has_avx512f()

def set_avx512_lanes(bint on):
    """The float64 QL rotations of the interleaved eigensolver (and so of the SVD's) in
    AVX-512 vectors, or in the AVX2 build's two vectors (the same bits); returns the previous
    choice. Only on CPUs that have AVX-512. For tests and benchmarks."""
    global adla_lanes_avx512
    previous = adla_lanes_avx512 != 0
    adla_lanes_avx512 = 1 if on and adla_cpu_has_avx512f() else 0
    return previous

cdef inline bint eigen_direct(int n) noexcept nogil:
    # The three products of the gradient or tangent in direct loops rather than ?gemm calls
    # (eigen_direct_max, chosen at import).
    return n <= eigen_direct_max


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
    # Small matrices in direct loops (row-major, dU^T copied out): a BLAS call costs more.
    if du == NULL:
        memset(m, 0, <Py_ssize_t>n * n * sizeof(floating))
    elif eigen_direct(n):
        transpose_into(t, du, n, n)
        small_product(m, u, n, 1, t, n, n, n, n, 1, 0, NULL)
    else:
        xgemm(c'T', c'N', n, n, n, 1, du, n, u, n, 0, m, n)
    for i in range(n):
        for j in range(n):
            gap = lam[j] - lam[i]
            m[i * n + j] = m[i * n + j] / gap if fabs(gap) > tolerance else 0
        m[i * n + i] = dlam[i] if dlam != NULL else 0
    symmetrize(m, n)
    # U^T S U: the row-major U is column-major U^T, so this is Ucm S Ucm^T column-major.
    if eigen_direct(n):
        small_product(t, m, n, 1, u, n, n, n, n, 1, 0, NULL)           # S U
        small_product(da, u, 1, n, t, n, n, n, n, 1, 0, NULL)          # U^T (S U)
        symmetrize(da, n)
    else:
        # The symmetric result in one triangle (gemm_triangle), mirrored.
        xgemm(c'N', c'N', n, n, n, 1, u, n, m, n, 0, t, n)
        gemm_triangle(c'L', c'N', c'T', n, n, 1, t, n, u, n, 0, da, n)
        mirror_triangle(da, n, False)
    return 0


cdef int syevd_tangent_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dU, dlam) of syevd from (dA, U, lam, tolerance): with S the symmetric matrix of dA's
    lower triangle and M = U S U^T, dlam = diag(M) and dU = G U, G[i, j] = M[i, j] /
    (lam[i] - lam[j]), zero where the gap is within the matrix's tolerance. Three products in
    cache, as syevd_backward_one. A non-finite dA propagates NaN; it is no failure."""
    cdef int n = job.n, i, j
    cdef const floating* da = p[0]
    cdef floating* u = p[1]
    cdef floating* lam = p[2]
    cdef floating tolerance = p[3][0]
    cdef floating* du = p[4]
    cdef floating* dlam = p[5]
    cdef floating* s = work
    cdef floating* t = work + <Py_ssize_t>n * n
    cdef floating gap
    if n == 0:
        return 0
    pair_entries(s, da, n, n, PAIRS_FROM_LOWER)
    # The row-major U is the column-major V = U^T (eigenvectors as columns); S is symmetric, so
    # either view. M = V^T (S V), symmetric. Small matrices in direct loops, row-major: M =
    # U (S U^T), with U^T copied out.
    if eigen_direct(n):
        transpose_into(t + <Py_ssize_t>n * n, u, n, n)
        small_product(t, s, n, 1, t + <Py_ssize_t>n * n, n, n, n, n, 1, 0, NULL)
        small_product(s, u, n, 1, t, n, n, n, n, 1, 0, NULL)
    else:                               # M in one triangle, mirrored
        xgemm(c'N', c'N', n, n, n, 1, s, n, u, n, 0, t, n)
        gemm_triangle(c'L', c'T', c'N', n, n, 1, u, n, t, n, 0, s, n)
        mirror_triangle(s, n, False)
    for i in range(n):
        dlam[i] = s[i * n + i]
        for j in range(n):
            gap = lam[i] - lam[j]
            # x * 0: zero, but NaN for a non-finite tangent, which must reach dU.
            s[i * n + j] = (s[i * n + j] / gap if fabs(gap) > tolerance
                            else s[i * n + j] * <floating>0)
    # Row-major dU = G U is column-major dU^T = V G^T, and the row-major G is column-major G^T.
    if eigen_direct(n):
        small_product(du, s, n, 1, u, n, n, n, n, 1, 0, NULL)
    else:
        xgemm(c'N', c'N', n, n, n, 1, u, n, s, n, 0, du, n)
    return 0


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

cdef inline void reflector_lanes(floating* vk, const floating* a, int n, int k) noexcept nogil:
    """Reflector k of tridiagonalise_lanes (column k of a below the diagonal) into contiguous
    vk, n - k - 1 lane entries: read down the column, each entry is a cache line of its own."""
    cdef int i, v
    for i in range(n - k - 1):
        for v in range(LANES):
            vk[i * LANES + v] = a[((k + 1 + i) * n + k) * LANES + v]

cdef void tridiagonalise_lanes(floating* a, int n, floating* d, floating* e,
                               floating* tau) noexcept nogil:
    """Householder reduction of the full symmetric a (every lane) to T = Q^T a Q with diagonal d
    and subdiagonal e (e[n-1] = 0). Q = H_0 ... H_{n-3}, H_k = I - tau_k v v^T acting on indices
    > k, v[k+1] = 1 and the rest of v left in column k of a below the diagonal (householder)."""
    cdef floating acc[LANES]
    # v and w contiguous and apart from a: with v read down a column of a, and the update
    # reading a beside writing it (which kept gcc to scalar code), syevd's forward took 1.3x
    # the time at order 32.
    cdef floating vk[EIGEN_LANES_MAX * LANES]
    cdef floating wk[EIGEN_LANES_MAX * LANES]
    cdef floating* row
    cdef int i, j, k, v, m
    for k in range(n - 2):
        m = n - k - 1
        householder(a + ((k + 1) * n + k) * LANES, n * LANES, m, tau + k * LANES, e + k * LANES)
        for v in range(LANES):
            d[k * LANES + v] = a[(k * n + k) * LANES + v]
            a[((k + 1) * n + k) * LANES + v] = 1
        reflector_lanes(vk, a, n, k)
        # The trailing block B becomes H B H = B - v w^T - w v^T with
        # w = tau B v - (tau^2/2)(v^T B v) v.
        for i in range(m):                       # tau B v
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, a + ((k + 1 + i) * n + k + 1) * LANES, LANES, vk, LANES, m)
            for v in range(LANES):
                wk[i * LANES + v] = tau[k * LANES + v] * acc[v]
        for v in range(LANES):
            acc[v] = 0
        add_dot(acc, wk, LANES, vk, LANES, m)
        for v in range(LANES):
            acc[v] = acc[v] * tau[k * LANES + v] / 2
        for i in range(m):
            for v in range(LANES):
                wk[i * LANES + v] = wk[i * LANES + v] - acc[v] * vk[i * LANES + v]
        for i in range(m):
            row = a + ((k + 1 + i) * n + k + 1) * LANES
            for j in range(m):
                for v in range(LANES):
                    row[j * LANES + v] = (row[j * LANES + v]
                                          - vk[i * LANES + v] * wk[j * LANES + v]
                                          - wk[i * LANES + v] * vk[j * LANES + v])
    for k in range(max(n - 2, 0), n):
        for v in range(LANES):
            d[k * LANES + v] = a[(k * n + k) * LANES + v]
            e[k * LANES + v] = a[((k + 1) * n + k) * LANES + v] if k + 1 < n else 0

cdef void transposed_q_lanes(floating* u, const floating* a, const floating* tau,
                             int n) noexcept nogil:
    """u := Q^T = H_{n-3} ... H_0 from tridiagonalise_lanes' reflectors, by rows: u := u H_k
    for k descending touches only rows and columns > k."""
    cdef floating vk[EIGEN_LANES_MAX * LANES]
    cdef int i, k
    set_identity(u, n, n)
    for k in range(n - 3, -1, -1):
        reflector_lanes(vk, a, n, k)
        for i in range(k + 1, n):
            reflect(vk, LANES, tau + k * LANES, u + (i * n + k + 1) * LANES, LANES, n - k - 1)

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
    cdef floating rot_c[EIGEN_LANES_MAX * LANES]
    cdef floating rot_s[EIGEN_LANES_MAX * LANES]
    cdef int split[LANES]
    cdef floating b, f, g, r, t, y, z, c, s
    cdef floating eps = DBL_EPSILON if floating is double else FLT_EPSILON
    cdef floating tiny = DBL_MIN if floating is double else FLT_MIN
    cdef int i, l, v, top, sweep
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
                    y = <floating>1 / (r + (1 if r < tiny else 0))
                    c = chase[v] * y
                    s = f * y
                    t = sqrt(c * c + s * s)
                    r = r * t
                    y = <floating>1 / (t + (1 if t == 0 else 0))
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
            # The sweep's rotations on rows (i, i+1) of u, in its order, a few in each pass
            # over the columns (rotate_rows): each row is read and written once a pass.
            rotate_rows(u + <Py_ssize_t>l * n * LANES, <Py_ssize_t>n * LANES, rot_c + l * LANES,
                        rot_s + l * LANES, top - l, n)
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
    cdef floating d[EIGEN_LANES_MAX * LANES]
    cdef floating e[EIGEN_LANES_MAX * LANES]
    cdef floating tau[EIGEN_LANES_MAX * LANES]
    cdef floating largest[LANES]
    cdef floating first_at[LANES]     # where, as a float (exact)
    cdef floating sign[LANES]
    cdef int exponent[LANES]
    cdef int order[EIGEN_LANES_MAX]
    cdef int rank[EIGEN_LANES_MAX * LANES]
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
        lane_pivots(largest, first_at, row, LANES, n)
        for v in range(LANES):
            sign[v] = -1 if row[<int>first_at[v] * LANES + v] < 0 else 1
        multiply_lanes(row, n, sign)
    for v in range(count):              # ascending, scaled back
        lane_order(d, n, v, False, order)
        for i in range(n):
            p[2 * LANES + v][i] = ldexp(d[order[i] * LANES + v], exponent[v])
            rank[order[i] * LANES + v] = i
    # Row i of each lane's U to that lane's row rank[i] of the output, 8 lanes at a time
    # (through vector registers; lane by lane, each entry was a load from its own line of u).
    scatter(p + LANES, count, u, n, n, 0, n, 1, job.stream_out, rank)


# Planning (the operator table in _lapack.pyx).

cdef void plan_syevd(Job* job) noexcept nogil:
    # For a batch that fills the lanes, against syevd per matrix (forward, A/B, 400-1000
    # matrices): float64 1.4x faster at 72, 1.2x at 80, level at 96, 1.26x slower at 128;
    # float32 1.65x faster at 80, 1.4x at 96, 1.15x slower at 128.
    if 0 < job.n <= SMALL or (job.n <= EIGEN_LANES_MAX and job.nbatch >= LANES):
        job.lanes, job.work = LANES, <Py_ssize_t>2 * job.n * job.n * LANES

cdef void workspace_syevd(floating* kind, Job* job) noexcept nogil:
    cdef int n = job.n, iquery = 0
    cdef floating query = 0
    cdef floating dummy[1]
    dummy[0] = 0
    xsyevd(n, dummy, max(n, 1), dummy, &query, -1, &iquery, -1)
    job.lwork = workspace_size(query, 1 + 6 * n + 2 * n * n)
    job.liwork = iquery if iquery > 3 + 5 * n else 3 + 5 * n
    job.work = job.lwork + ints_in(kind, job.liwork)

cdef void plan_syevd_backward(Job* job) noexcept nogil:
    job.work = <Py_ssize_t>2 * job.n * job.n       # M and T
    job.calls_blas = not eigen_direct(job.n)

cdef void plan_syevd_tangent(Job* job) noexcept nogil:
    job.work = <Py_ssize_t>3 * job.n * job.n       # S (then M, then G), T and U^T
    job.calls_blas = not eigen_direct(job.n)
