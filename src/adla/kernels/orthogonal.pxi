# Orthogonal factorisations: LQ and QR with a non-negative diagonal and their gradient, per
# matrix and interleaved (Householder reflectors).
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef inline void fill_nan(floating* a, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        a[i] = NAN


# ---- blocked Householder QR with the updates in _fma_product.h's loops -------------------------
# LAPACK factors below order 128 column by column (geqr2, org2r: matrix-vector steps), and its
# blocked code builds each block's T (larft) and applies it (larfb) through several BLAS calls of
# a few dozen columns each, which cost more than their arithmetic at these orders (order 64:
# blocked with LAPACK's own pieces was 1.1x slower than geqrf + orgqr, larft alone a third).
# Here: geqr2 on panels of 8 or 16 columns (householder_width), each block's T from V^T V, the
# updates three products each, and Q from the block reflectors alone (products again, where
# org2r on each panel was 1.05-1.1x slower). (geqr2's work in plain loops instead of its BLAS
# calls was slower still: the dot products do not vectorise in order.)

cdef extern from "_householder.h":
    int adla_panel_qr_d(int rows, int cols, double* a, int lda, double* tau, double low,
                        double high) noexcept nogil
    int adla_panel_qr_f(int rows, int cols, float* a, int lda, float* tau, float low,
                        float high) noexcept nogil

cdef inline void panel_qr(int rows, int cols, floating* a, int lda, floating* tau,
                          floating* work) noexcept nogil:
    # geqr2 on a panel, in _householder.h's vector loops where every column's norm is in a
    # range where they need no scaling (there no square overflows, and a partial norm that
    # underflows lies far below the column's rounding error), else LAPACK's. work: geqr2's.
    # In one process against geqr2 (fwd+bwd): gelqf and geqrf 1.05-1.06x faster at 1000 x 64
    # in float64, 1.02x at 300 x 128, float32 1.04-1.05x there (level at 64, interleaved).
    if floating is double:
        if adla_panel_qr_d(rows, cols, a, lda, tau, 1e-100, 1e100) == 0:
            return
    else:
        if adla_panel_qr_f(rows, cols, a, lda, tau, 1e-9, 1e15) == 0:
            return
    xgeqr2(rows, cols, a, lda, tau, work)

cdef int householder_max = HOUSEHOLDER_MAX

def set_householder_max(int order):
    """gelqf/geqrf per matrix through the blocked Householder code below for short sides from
    HOUSEHOLDER_MIN up to ``order`` (on CPUs with AVX-512; LAPACK elsewhere and outside);
    returns the previous bound. For tests and benchmarks."""
    global householder_max
    previous, householder_max = householder_max, order
    return previous

cdef inline bint blocked_householder(int rows, int cols) noexcept nogil:
    # A column-major rows x cols (rows >= cols) QR here rather than geqrf + orgqr. Measured
    # against them (A/B, float64 and float32): 1.4x faster at 1000 x 64 (float64; float32
    # batches of 64 run interleaved), 1.5-1.8x at 96-256, 1.2-1.7x for one matrix of 300-512,
    # 1.3x for 64 x 1000 and 1000 x 64; 0.7x for one of 1000, where LAPACK runs on its threads.
    return HOUSEHOLDER_MIN <= cols <= householder_max and fma_product_max > 0

cdef inline int householder_width(int cols, bint single) noexcept nogil:
    # Panel width: geqr2 on the panels is most of the time, and narrower panels have
    # less of their work (A/B, 1000 x 64: panels of 8 1.1x faster than 16, 1.3x than 32; level
    # at 96-128; 16 1.1x faster at 256). With the panels in vector loops (panel_qr), in one
    # process: float32 1.1-1.16x faster in panels of 16 at 96-192 (level at 48-64), float64
    # level at 48 and 96-192 and 1.04x slower at 64.
    return (HOUSEHOLDER_BLOCK // 2
            if cols <= (HOUSEHOLDER_NARROW_SINGLE_MAX if single else HOUSEHOLDER_NARROW_MAX)
            else HOUSEHOLDER_BLOCK)

cdef inline Py_ssize_t householder_work(int rows, int cols) noexcept nogil:
    # blocked_householder's scratch: the T of every block, V twice and two products (ib wide),
    # and geqr2's workspace.
    return (<Py_ssize_t>(cols + HOUSEHOLDER_BLOCK) * HOUSEHOLDER_BLOCK
            + <Py_ssize_t>2 * (rows + cols) * HOUSEHOLDER_BLOCK + cols)

cdef void block_reflector(int rows, int ib, const floating* a, int lda, const floating* tau,
                          floating* vr, floating* vc, floating* t) noexcept nogil:
    """The ib reflectors geqr2 left in a (column-major, below the diagonal; unit diagonal) as
    V written out (rows x ib, zeros above the diagonal): vr row-major, vc column-major; and,
    where t is not NULL, T (ib x ib upper triangular, row-major) with H_1 ... H_ib =
    I - V T V^T (LAPACK's larft, forward and columnwise), from G = V^T V:
    T[:i, i] = -tau_i T[:i, :i] G[:i, i], T[i, i] = tau_i."""
    cdef floating g[HOUSEHOLDER_BLOCK * HOUSEHOLDER_BLOCK]
    cdef floating y[HOUSEHOLDER_BLOCK]
    cdef floating value, sum_
    cdef int i, j, r, q
    for j in range(ib):
        for i in range(rows):
            value = a[i + <Py_ssize_t>j * lda] if i > j else (1 if i == j else 0)
            vc[i + <Py_ssize_t>j * rows] = value
            vr[<Py_ssize_t>i * ib + j] = value
    if t == NULL:
        return
    fma_into(g, ib, vr, 1, ib, vr, ib, ib, ib, rows, <floating>1, <floating>0, NULL, ib,
             ADLA_RIGHT_LOWER, False)
    for i in range(ib):
        for r in range(i):
            sum_ = 0
            for q in range(r, i):
                sum_ = sum_ + t[r * ib + q] * g[q * ib + i]
            y[r] = sum_
        for r in range(ib):
            t[r * ib + i] = -tau[i] * y[r] if r < i else (tau[i] if r == i else 0)

cdef void apply_block_reflector(bint transposed, int rows, int cols, int ib,
                                const floating* vr, const floating* vc, const floating* t,
                                floating* c, int ldc, floating* w, floating* w2) noexcept nogil:
    """C := (I - V T^T V^T) C (transposed: the factorisation's update) or (I - V T V^T) C (Q's),
    C rows x cols column-major, V and T as block_reflector leaves them: W = V^T C, T^T W (or
    T W), C -= V that; row-major the three are products of C^T. w, w2: cols x ib each."""
    cdef floating tt[HOUSEHOLDER_BLOCK * HOUSEHOLDER_BLOCK]
    cdef int i, j
    fma_into(w, ib, c, ldc, 1, vr, ib, cols, ib, rows, <floating>1, <floating>0, NULL, ib,
             ADLA_RIGHT_LOWER, False)                           # W^T = C^T V
    if transposed:                                              # (T^T W)^T = W^T T
        fma_into(w2, ib, w, ib, 1, t, ib, cols, ib, ib, <floating>1, <floating>0, NULL, ib,
                 ADLA_RIGHT_UPPER, False)
    else:                                                       # (T W)^T = W^T T^T
        for i in range(ib):
            for j in range(ib):
                tt[i * ib + j] = t[j * ib + i]
        fma_into(w2, ib, w, ib, 1, tt, ib, cols, ib, ib, <floating>1, <floating>0, NULL, ib,
                 ADLA_RIGHT_LOWER, False)
    fma_into(c, ldc, w2, ib, 1, vc, rows, cols, rows, ib, <floating>-1, <floating>1, c, ldc,
             ADLA_RIGHT_UPPER, False)                           # C^T -= (..)^T V^T

cdef void householder_qr(int m, int n, floating* a, int lda, floating* tau,
                         floating* work) noexcept nogil:
    """geqrf (column-major m x n, m >= n) in blocks of householder_width columns: geqr2 on each
    panel, the rest of the matrix updated by its block reflector. Leaves each block's T in
    work for householder_q. work: householder_work(m, n)."""
    cdef int i, ib, rows
    cdef floating* ts = work
    cdef floating* vr = ts + <Py_ssize_t>(n + HOUSEHOLDER_BLOCK) * HOUSEHOLDER_BLOCK
    cdef floating* vc = vr + <Py_ssize_t>m * HOUSEHOLDER_BLOCK
    cdef floating* w = vc + <Py_ssize_t>m * HOUSEHOLDER_BLOCK
    cdef floating* w2 = w + <Py_ssize_t>n * HOUSEHOLDER_BLOCK
    cdef floating* lapack_work = w2 + <Py_ssize_t>n * HOUSEHOLDER_BLOCK
    cdef int width = householder_width(n, floating is float)
    i = 0
    while i < n:
        ib, rows = min(width, n - i), m - i
        panel_qr(rows, ib, a + i + <Py_ssize_t>i * lda, lda, tau + i, lapack_work)
        block_reflector(rows, ib, a + i + <Py_ssize_t>i * lda, lda, tau + i, vr, vc,
                        ts + <Py_ssize_t>i * width)
        if i + ib < n:
            apply_block_reflector(True, rows, n - i - ib, ib, vr, vc, ts + <Py_ssize_t>i * width,
                                  a + i + <Py_ssize_t>(i + ib) * lda, lda, w, w2)
        i += ib

cdef void householder_q(int m, int n, floating* a, int lda, floating* tau,
                        floating* work) noexcept nogil:
    """orgqr after householder_qr (same work, its T's kept): the blocks from the last one
    back, each block's columns set to the identity's (its reflectors copied out first) and its
    block reflector applied to them and to the columns already formed: every step a product,
    where org2r on each panel would apply the reflectors one at a time."""
    cdef int i, ib, rows, j
    cdef floating* ts = work
    cdef floating* vr = ts + <Py_ssize_t>(n + HOUSEHOLDER_BLOCK) * HOUSEHOLDER_BLOCK
    cdef floating* vc = vr + <Py_ssize_t>m * HOUSEHOLDER_BLOCK
    cdef floating* w = vc + <Py_ssize_t>m * HOUSEHOLDER_BLOCK
    cdef floating* w2 = w + <Py_ssize_t>n * HOUSEHOLDER_BLOCK
    cdef int width = householder_width(n, floating is float)
    i = (n - 1) // width * width
    while i >= 0:
        ib, rows = min(width, n - i), m - i
        block_reflector(rows, ib, a + i + <Py_ssize_t>i * lda, lda, tau + i, vr, vc, NULL)
        for j in range(i, i + ib):
            memset(a + <Py_ssize_t>j * lda, 0, m * sizeof(floating))
            a[j + <Py_ssize_t>j * lda] = 1
        apply_block_reflector(False, rows, n - i, ib, vr, vc, ts + <Py_ssize_t>i * width,
                              a + i + <Py_ssize_t>i * lda, lda, w, w2)
        i -= width


# ---- through LAPACK's compact WY QR (geqrt) ------------------------------------------------
# Where the blocked code above does not run: LAPACK's geqrf and orgqr take their block of 32
# columns from ilaenv, so their updates are products only 32 deep and each panel is factored
# column by column; geqrt factors its panels recursively (geqrt3) and keeps each block's T, in
# blocks of our choosing, and Q is then built from those T's by larfb alone. Against geqrf +
# orgqr (A/B, SciPy's OpenBLAS, Intel Xeon, 2 threads, float64 / float32): one matrix of 1000
# 1.53x / 1.6x faster, 2000 1.36x / 1.54x, 2000 x 500 2.1x / 2.3x, 256-500 1.56-1.62x, 128
# 3.2x; batches of 128-256 level to 1.16x faster, of 96 1.4-1.8x slower (so not below 128).

cdef int compact_householder_min = COMPACT_HOUSEHOLDER_MIN

def set_compact_householder_min(int order):
    """gelqf/geqrf per matrix through LAPACK's geqrt and larfb from short side ``order`` on
    (where the blocked Householder code does not run), geqrf + orgqr below; returns the
    previous bound. For tests and benchmarks."""
    global compact_householder_min
    previous, compact_householder_min = compact_householder_min, order
    return previous

cdef inline int compact_block(int cols) noexcept nogil:
    # geqrt's block: 32 columns below order 400, 64 below 800, 128 above (each the fastest
    # of the three there, 1000-2000 square and tall: within 3% of the best elsewhere).
    return min(cols, 32 if cols < 400 else (64 if cols < 800 else 128))

cdef inline Py_ssize_t compact_work(int rows, int cols) noexcept nogil:
    # T (nb x cols), then the larger of geqrt's workspace (nb x cols) and compact_q's V and
    # larfb's workspace ((rows + cols) x nb).
    cdef Py_ssize_t nb = compact_block(cols)
    return nb * cols + nb * max(cols, rows + cols)

cdef void compact_q(int rows, int cols, floating* a, int lda, floating* work) noexcept nogil:
    """orgqr after geqrt (column-major rows x cols, its T's at the start of work, where
    orthogonal_factor has geqrt leave them): the blocks from the last one back, each block's
    reflectors copied out, its columns set to the identity's and its block reflector applied
    (larfb) to them and to the columns already formed, as householder_q."""
    cdef int nb = compact_block(cols), i, ib, c, j, r
    cdef floating* t = work
    cdef floating* v = work + <Py_ssize_t>nb * cols
    cdef floating* w
    i = (cols - 1) // nb * nb
    while i >= 0:
        ib, c = min(nb, cols - i), rows - i
        w = v + <Py_ssize_t>c * ib
        for j in range(ib):
            for r in range(c):
                v[r + <Py_ssize_t>j * c] = (a[i + r + <Py_ssize_t>(i + j) * lda] if r > j
                                            else (1 if r == j else 0))
            for r in range(rows):
                a[r + <Py_ssize_t>(i + j) * lda] = 1 if r == i + j else 0
        xlarfb(c, cols - i, ib, v, c, t + <Py_ssize_t>i * nb, nb,
               a + i + <Py_ssize_t>i * lda, lda, w, cols - i)
        i -= nb


cdef int orthogonal_factor(const Job* job, floating** p, floating* work) noexcept nogil:
    """Thin LQ (gelqf: A = L Q, m <= n) or QR (A = Q R, m >= n) of a row-major m x n matrix.

    Row-major A is column-major A^T, so the LQ of A is the QR of what LAPACK sees: the factored
    buffer already holds Q, and the triangle LAPACK leaves is, read row-major, the transposed
    triangular factor we want. The QR of A goes the same way through the transpose: LAPACK's
    geqrf/orgqr on A^T (copied out), Q transposed back. (Its LQ, gelqf/orglq on the buffer as
    it is, ran 1.1-1.3x slower than geqrf/orgqr plus the two copies: 1000 x 1000 in float32,
    batches of 64 to 256.) Signs are then flipped so that the triangular factor has a
    non-negative diagonal. work: job.lwork elements of LAPACK workspace, then the r reflector
    scalars, then (QR) m x n for A^T.
    """
    cdef bint lq = job.op == OP_GELQF
    cdef int m = job.m, n = job.n, r = m if lq else n    # r: order of the triangular factor
    cdef floating* q = p[1]
    cdef floating* t = p[2]
    cdef int lwork = job.lwork, i, j, info, nb
    cdef bint blocked, compact
    cdef floating* tau = work + lwork
    cdef floating* a = q if lq else tau + r
    if r == 0:
        return 0
    if not all_finite(p[0], <Py_ssize_t>m * n):
        fill_nan(q, <Py_ssize_t>m * n)
        fill_nan(t, <Py_ssize_t>r * r)
        return NONFINITE
    # Column-major, a is then the c x r matrix (c = max(m, n), ld c) whose QR LAPACK takes: A^T
    # for lq, A for qr.
    if lq:
        copy(a, p[0], <Py_ssize_t>m * n)
    else:
        transpose_into(a, p[0], m, n)
    blocked = blocked_householder(n if lq else m, r)
    compact = not blocked and r >= compact_householder_min
    if blocked:
        householder_qr(n if lq else m, r, a, n if lq else m, tau, work)
        info = 0
    elif compact:                       # T's first in work (compact_q's), then workspace
        nb = compact_block(r)
        info = xgeqrt(n if lq else m, r, nb, a, n if lq else m, work, nb,
                      work + <Py_ssize_t>nb * r)
    elif lq:
        info = xgeqrf(n, m, a, n, tau, work, lwork)
    else:
        info = xgeqrf(m, n, a, m, tau, work, lwork)
    # Column-major element (i, j) lies at a[i + j*c]; its upper triangle is, read row-major
    # into t[j*r + i], L (lq) or R^T; R itself is t[i*r + j].
    for j in range(r):
        for i in range(r):
            if lq:
                t[j * r + i] = a[i + j * n] if i <= j else 0
            else:
                t[i * r + j] = a[i + j * m] if i <= j else 0
    if blocked:
        householder_q(n if lq else m, r, a, n if lq else m, tau, work)
    elif compact:
        compact_q(n if lq else m, r, a, n if lq else m, work)
    elif lq:
        info = xorgqr(n, m, m, a, n, tau, work, lwork)
    else:
        info = xorgqr(m, n, n, a, m, tau, work, lwork)
    if not lq:
        transpose_into(q, a, n, m)         # column-major m x n Q, row-major
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


cdef inline void solve_in_place(int m, int n, const floating* t, int flags, floating* b,
                                floating* work) noexcept nogil:
    # b (m x n) := op(T)^-1 b, or b op(T)^-1 with RIGHT (trsm's flags, alpha 1), as trsm_one
    # solves: a solve on the right runs on the left through b^T (work: m x n), where the
    # row-major solve's leaves are faster.
    cdef Job solve
    cdef floating* q[3]
    solve.m, solve.n, solve.flags, solve.alpha = m, n, flags, 1
    q[0], q[1], q[2] = <floating*>t, NULL, b
    triangular_call(&solve, q, True, work)


cdef int orthogonal_backward_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """dA of gelqf (flag LOWER: A = L Q, m <= n) or geqrf (A = Q R) for one matrix from
    (dQ, dT, Q, T), either cotangent possibly absent (NULL: zero): the rule of
    orthogonal_backward_lanes with products in cache (product_in_cache) and a recursive solve.
    LQ: M = L^T tril(dL) - dQ Q^T, W = dQ + copyltu(M) Q, dA = L^-T W; QR: M = R triu(dR)^T
    - dQ^T Q, W = dQ + Q copyltu(M), dA = W R^-T. Only the triangles of T and dT are read.
    work: M, T's triangle and dT's (c x c each), then the products' scratch (r x c). Status as
    trsm_one on (T, W)."""
    cdef bint lq = (job.flags & LOWER) != 0
    cdef int m = job.m, n = job.n, c = m if lq else n, r = n if lq else m
    cdef int status
    cdef floating* dq = p[0]
    cdef floating* dt = p[1]
    cdef floating* q = p[2]
    cdef floating* t = p[3]
    cdef floating* out = p[4]
    cdef floating* sym = work
    cdef floating* tri = sym + <Py_ssize_t>c * c
    cdef floating* dtri = tri + <Py_ssize_t>c * c
    cdef floating* scratch = dtri + <Py_ssize_t>c * c
    if m == 0 or n == 0:
        return 0
    # M, row-major: LQ tril(L)^T tril(dL), QR triu(R) triu(dR)^T (both operands triangular,
    # the second written out that way), then minus dQ Q^T (dQ^T Q) on top. Above
    # TRIANGLE_PRODUCT_LEAF only M's lower triangle, all that copyltu reads (A/B: one matrix of
    # 1000 1.15x faster). Each call's flags are constants (a flag variable cost 1.1x at 64-128:
    # product_in_cache is inlined), hence a call per route.
    if dt != NULL:
        triangle_into(tri, t, c, lq, False)
        triangle_into(dtri, dt, c, lq, not lq)
        if c > TRIANGLE_PRODUCT_LEAF:
            product_in_cache(sym, tri, dtri, c, c, c, (TRANS_A if lq else 0) | TRIANGLE | LOWER,
                             1, 0, NULL, scratch)
        else:
            product_in_cache(sym, tri, dtri, c, c, c, (TRANS_A if lq else 0) | TRIANGULAR_A, 1,
                             0, NULL, scratch)
    if dq != NULL and c > TRIANGLE_PRODUCT_LEAF:
        product_in_cache(sym, dq, q, c, c, r, (TRANS_B if lq else TRANS_A) | TRIANGLE | LOWER,
                         -1, 1 if dt != NULL else 0, sym if dt != NULL else NULL, scratch)
    elif dq != NULL:
        product_in_cache(sym, dq, q, c, c, r, TRANS_B if lq else TRANS_A, -1,
                         1 if dt != NULL else 0, sym if dt != NULL else NULL, scratch)
    elif dt == NULL:
        memset(sym, 0, <Py_ssize_t>c * c * sizeof(floating))
    mirror_triangle(sym, c, True)                # copyltu(M)
    if lq:                                       # W = dQ + S Q
        product_in_cache(out, sym, q, m, n, m, 0, 1, 1 if dq != NULL else 0, dq, scratch)
    else:                                        # W = dQ + Q S
        product_in_cache(out, q, sym, m, n, n, 0, 1, 1 if dq != NULL else 0, dq, scratch)
    status = solve_status(t, c, lq, out, <Py_ssize_t>m * n)
    if status == 0:                              # dA = L^-T W, or W R^-T
        solve_in_place(m, n, t, TRANS_A | (LOWER if lq else RIGHT), out, scratch)
    return status


cdef void orthogonal_tangent(bint lq, int m, int n, const floating* da, floating* q,
                             floating* t, floating* dq, floating* dt, floating* x,
                             floating* scratch) noexcept nogil:
    """The tangent of gelqf (lq) or geqrf at its factors (Q, T) for one matrix, the rule of
    orthogonal_jvp_lanes with products in cache. LQ: Y = L^-1 dA, X = tril(C) + tril(C^T, -1)
    for C = Y Q^T, dL = L X, dQ = Y - X Q; QR: Y = dA R^-1, X = triu(C) + triu(C^T, 1) for
    C = Q^T Y, dR = X R, dQ = Y - Q X. A zero on T's diagonal (A rank deficient) or a
    non-finite dA gives NaN tangents, not a failure. x: c x c, scratch: r x c; T has zeros off
    its triangle (the factorisation's)."""
    cdef int c = m if lq else n
    if first_zero_diagonal(t, c) or not all_finite(da, <Py_ssize_t>m * n):
        fill_nan(dq, <Py_ssize_t>m * n)
        nan_triangle(dt, c, lq)
        return
    copy(dq, da, <Py_ssize_t>m * n)              # Y = L^-1 dA, or dA R^-1
    solve_in_place(m, n, t, LOWER if lq else RIGHT, dq, scratch)
    if lq:
        product_in_cache(x, dq, q, m, m, n, TRANS_B, 1, 0, NULL, scratch)       # C = Y Q^T
        pair_entries(x, x, c, c, PAIRS_ONTO_LOWER)
        product_in_cache(dt, t, x, m, m, m, TRIANGULAR_A | LOWER, 1, 0, NULL, scratch)
        product_in_cache(dq, x, q, m, n, m, TRIANGULAR_A | LOWER, -1, 1, dq, scratch)
    else:
        product_in_cache(x, q, dq, n, n, m, TRANS_A, 1, 0, NULL, scratch)       # C = Q^T Y
        pair_entries(x, x, c, c, PAIRS_ONTO_UPPER)
        product_in_cache(dt, x, t, n, n, n, TRIANGULAR_A, 1, 0, NULL, scratch)
        product_in_cache(dq, q, x, m, n, n, TRIANGULAR_B, -1, 1, dq, scratch)
    zero_triangle(dt, c, lq)                 # (T and X have exact zeros there already)

cdef int orthogonal_tangent_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """(dQ, dT) of gelqf (flag LOWER) or geqrf from (Q, T, dA): orthogonal_tangent, for factors
    that the interleaved factorisation computed. work: (c + r) c."""
    cdef bint lq = (job.flags & LOWER) != 0
    cdef int c = job.m if lq else job.n
    if job.m > 0 and job.n > 0:
        orthogonal_tangent(lq, job.m, job.n, p[2], p[0], p[1], p[3], p[4], work,
                           work + <Py_ssize_t>c * c)
    return 0

cdef int orthogonal_jvp_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """gelqf (flag LOWER) or geqrf and its tangent for one matrix, (A, dA) -> (Q, T, dQ, dT):
    orthogonal_factor, then orthogonal_tangent while the factors are in cache. work: the
    factorisation's, then the tangent's, the last (c + r) c of job.work. Status as
    orthogonal_factor's (a failed matrix gets NaN tangents)."""
    cdef bint lq = (job.flags & LOWER) != 0
    cdef int m = job.m, n = job.n, c = m if lq else n, r = n if lq else m
    cdef Job factor = job[0]
    cdef floating* operands[3]
    cdef floating* x = work + job.work - <Py_ssize_t>(c + r) * c
    cdef int status
    if m == 0 or n == 0:
        return 0
    factor.op = OP_GELQF if lq else OP_GEQRF
    operands[0], operands[1], operands[2] = p[0], p[2], p[3]
    status = orthogonal_factor(&factor, operands, work)
    if status:
        fill_nan(p[4], <Py_ssize_t>m * n)
        nan_triangle(p[5], c, lq)
        return status
    orthogonal_tangent(lq, m, n, p[1], p[2], p[3], p[4], p[5], x, x + <Py_ssize_t>c * c)
    return 0


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
        inverse[v] = <floating>1 / (largest[v] + (1 if largest[v] < tiny else 0))
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
        inverse[v] = <floating>1 / (alpha - norm) if squares[v] != 0 else 0
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

cdef inline void spread_rows(floating* w, int rows, int cols, int ld) noexcept nogil:
    """Every lane's dense rows x cols w laid out again with row stride ld >= cols, in place."""
    cdef int i, j, v
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            for v in range(LANES):
                w[(i * ld + j) * LANES + v] = w[(i * cols + j) * LANES + v]

cdef inline void pack_rows(floating* w, int rows, int cols, int ld) noexcept nogil:
    """The inverse of spread_rows."""
    cdef int i, j, v
    for i in range(rows):
        for j in range(cols):
            for v in range(LANES):
                w[(i * cols + j) * LANES + v] = w[(i * ld + j) * LANES + v]

cdef void factor_lanes(const Job* job, bint lq, floating** a_src, floating** q_dst,
                       floating** t_dst, int count, floating* w, int* status) noexcept nogil:
    """orthogonal_factor for LANES small matrices: Householder QR of M (r x c, r >= c), where M
    is A for QR and A^T for LQ (A = L Q is A^T = Q^T L^T), then the thin Q accumulated from the
    reflectors backwards; signs flipped so that the triangular factor's diagonal is
    non-negative (reflectors: householder). The scratch rows are c + 1 apart: at c = 64 a
    column's entries would otherwise lie 4 KiB apart, in one cache set (1000 x 64: 2x slower
    than at 62). Scattered to q_dst and t_dst; left in w: R (c x c, upper, zeros below), then
    Q (r x c) r (c + 1) lanes further on."""
    cdef int m = job.m, n = job.n, i, j, k, v
    cdef int r = n if lq else m, c = m if lq else n, ld = c + 1
    cdef Py_ssize_t row_step = 1 if lq else n, col_step = n if lq else 1
    cdef floating* a = w
    cdef floating* q = w + <Py_ssize_t>r * ld * LANES
    cdef floating tau[ORTHOGONAL_ORDER_MAX * LANES]
    cdef floating beta[LANES]
    cdef floating scale[LANES]
    gather(a, a_src, r, c, 0, row_step, col_step, False)
    mark_nonfinite(a, r, c, False, status)
    spread_rows(a, r, c, ld)
    for k in range(c):
        householder(a + (k * ld + k) * LANES, ld * LANES, r - k, tau + k * LANES, beta)
        for v in range(LANES):
            a[(k * ld + k) * LANES + v] = beta[v]
        for j in range(k + 1, c):                # H applied to the columns on the right
            reflect(a + (k * ld + k) * LANES, ld * LANES, tau + k * LANES,
                    a + (k * ld + j) * LANES, ld * LANES, r - k)
    for i in range(r):                           # Q = H_0 ... H_{c-1} [I; 0]
        for j in range(c):
            for v in range(LANES):
                q[(i * ld + j) * LANES + v] = 1 if i == j else 0
    for k in range(c - 1, -1, -1):
        for j in range(k, c):
            reflect(a + (k * ld + k) * LANES, ld * LANES, tau + k * LANES,
                    q + (k * ld + j) * LANES, ld * LANES, r - k)
    for k in range(c):                           # non-negative diagonal
        for v in range(LANES):
            scale[v] = -1 if a[(k * ld + k) * LANES + v] < 0 else 1
        for j in range(k, c):
            for v in range(LANES):
                a[(k * ld + j) * LANES + v] = a[(k * ld + j) * LANES + v] * scale[v]
        for i in range(r):
            for v in range(LANES):
                q[(i * ld + k) * LANES + v] = q[(i * ld + k) * LANES + v] * scale[v]
    pack_rows(q, r, c, ld)
    scatter(q_dst, count, q, r, c, 0, row_step, col_step, job.stream_out)
    pack_rows(a, c, c, ld)                       # R: the top c x c of a, reflectors dropped
    keep_triangle(a, c, c, False)
    scatter(t_dst, count, a, c, c, 0, 1 if lq else c, c if lq else 1, job.stream_out)    # L = R^T

cdef void orthogonal_lanes(const Job* job, floating** p, int count, floating* w,
                           int* status) noexcept nogil:
    factor_lanes(job, job.op == OP_GELQF, p, p + LANES, p + 2 * LANES, count, w, status)

cdef void orthogonal_jvp_lanes(const Job* job, floating** p, int count, floating* w,
                               int* status) noexcept nogil:
    """gelqf (flag LOWER) or geqrf and its tangent for LANES small matrices, (A, dA) ->
    (Q, T, dQ, dT): factor_lanes, then, with its factors still in the scratch, the tangent of
    M = Q R (M = A^T for LQ) from dM = dQ R + Q dR: Y = dM R^-1 and C = Q^T Y = Q^T dQ + dR R^-1,
    an antisymmetric plus an upper triangular part, so X = dR R^-1 = triu(C) + triu(C^T, 1),
    dR = X R and dQ = Y - Q X. A lane with a zero on R's diagonal (A rank deficient) or a
    non-finite dA gets NaN tangents; neither is a failure."""
    cdef bint lq = (job.flags & LOWER) != 0
    cdef int m = job.m, n = job.n, i, j, k, v
    cdef int r = n if lq else m, c = m if lq else n
    cdef Py_ssize_t row_step = 1 if lq else n, col_step = n if lq else 1
    cdef floating* rf = w                                   # R, c x c
    cdef floating* q = w + <Py_ssize_t>r * (c + 1) * LANES  # Q, r x c
    cdef floating* y = w + <Py_ssize_t>2 * r * (c + 1) * LANES     # dM, then Y, then dQ
    cdef floating* x = y + <Py_ssize_t>r * c * LANES
    cdef floating* dr = x + <Py_ssize_t>c * c * LANES
    cdef floating inverse_diagonal[ORTHOGONAL_ORDER_MAX * LANES]
    cdef floating acc[LANES]
    cdef floating other[LANES]
    cdef floating invalid[LANES]
    factor_lanes(job, lq, p, p + 2 * LANES, p + 3 * LANES, count, w, status)
    gather(y, p + LANES, r, c, 0, row_step, col_step, False)
    nonfinite_lanes(invalid, y, r, c, False)
    for j in range(c):
        for v in range(LANES):
            if rf[(j * c + j) * LANES + v] == 0:
                invalid[v] = NAN
    reciprocal_diagonal(inverse_diagonal, rf, c)
    for i in range(r):                           # Y = dM R^-1, row by row
        for j in range(c):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, y + i * c * LANES, LANES, rf + j * LANES, c * LANES, j)
            for v in range(LANES):
                y[(i * c + j) * LANES + v] = ((y[(i * c + j) * LANES + v] - acc[v])
                                              * inverse_diagonal[j * LANES + v])
    for i in range(c):                           # X = triu(C) + triu(C^T, 1), C = Q^T Y
        for j in range(c):
            for v in range(LANES):
                acc[v] = 0
                other[v] = 0
            if j >= i:
                add_dot(acc, q + i * LANES, c * LANES, y + j * LANES, c * LANES, r)
            if j > i:
                add_dot(other, q + j * LANES, c * LANES, y + i * LANES, c * LANES, r)
            for v in range(LANES):
                x[(i * c + j) * LANES + v] = acc[v] + other[v]
    for i in range(c):                           # dR = X R, upper triangular
        for j in range(c):
            for v in range(LANES):
                acc[v] = 0
            if j >= i:
                add_dot(acc, x + (i * c + i) * LANES, LANES, rf + (i * c + j) * LANES,
                        c * LANES, j - i + 1)
                for v in range(LANES):
                    acc[v] = acc[v] + invalid[v]
            for v in range(LANES):
                dr[(i * c + j) * LANES + v] = acc[v]
    for k in range(r):                           # dQ = Y - Q X, over Y
        for j in range(c):
            for v in range(LANES):
                acc[v] = 0
            add_dot(acc, q + k * c * LANES, LANES, x + j * LANES, c * LANES, j + 1)
            for v in range(LANES):
                y[(k * c + j) * LANES + v] = y[(k * c + j) * LANES + v] - acc[v] + invalid[v]
    scatter(p + 4 * LANES, count, y, r, c, 0, row_step, col_step, job.stream_out)
    scatter(p + 5 * LANES, count, dr, c, c, 0, 1 if lq else c, c if lq else 1, job.stream_out)

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
    cdef floating inverse_diagonal[ORTHOGONAL_ORDER_MAX * LANES]
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
    scatter(p + 4 * LANES, count, dq, c, r, 0, q_row, q_col, job.stream_out)


# Planning (the operator table in _lapack.pyx).

cdef inline int orthogonal_factor_lanes_max(const Job* job) noexcept nogil:
    return (ORTHOGONAL_FACTOR_LANES_MAX_SINGLE if job.flags & SINGLE
            else ORTHOGONAL_FACTOR_LANES_MAX)

cdef void plan_orthogonal(Job* job) noexcept nogil:
    # gelqf and geqrf: interleaved up to ORTHOGONAL_FACTOR_LANES_MAX (_SINGLE in float32) in a
    # batch that fills the lanes. Measured against LAPACK's unblocked geqr2/orgqr per matrix
    # (which it runs below order 128), 1000 x n, 2 threads: 1.2-1.6x faster at 32-40, even at
    # 48 in float64, 1.15x slower at 56 and 1.4x at 64; in float32 1.8-1.9x faster at 48-64
    # (against the blocked per-matrix code, householder_qr: 1.3-1.4x at 52-64).
    if job.m > 0 and job.n > 0 and fills_lanes(job, orthogonal_factor_lanes_max(job)):
        # a and Q, r x (c + 1) each (orthogonal_lanes)
        job.lanes, job.work = LANES, <Py_ssize_t>2 * (job.m * job.n + max(job.m, job.n)) * LANES

cdef void plan_orthogonal_jvp(Job* job) noexcept nogil:
    # Interleaved only where the factorisation is (so the factors have gelqf's/geqrf's bits),
    # up to ORTHOGONAL_JVP_LANES_MAX: against the interleaved factorisation followed by the
    # tangent per matrix (orthogonal_tangent_one, which the caller runs between the two
    # bounds), 1.13x faster at 17 (float64; level in float32), 1.05-1.6x slower at 20-48 and
    # both dtypes. factor_lanes' scratch, then dM, X, dR. Per matrix (orthogonal_jvp_one)
    # where the factorisation is too.
    cdef Py_ssize_t c = min(job.m, job.n)
    if job.m > 0 and job.n > 0 and fills_lanes(job, min(orthogonal_factor_lanes_max(job),
                                                        ORTHOGONAL_JVP_LANES_MAX)):
        job.lanes = LANES
        job.work = (2 * (<Py_ssize_t>job.m * job.n + max(job.m, job.n)) + <Py_ssize_t>job.m * job.n
                    + 2 * c * c) * LANES

cdef void plan_orthogonal_tangent(Job* job) noexcept nogil:
    job.work = <Py_ssize_t>(job.m + job.n) * min(job.m, job.n)     # X and the products' scratch

cdef void workspace_orthogonal(floating* kind, Job* job) noexcept nogil:
    cdef bint lq = job.op == OP_GELQF if job.op != OP_ORTHOGONAL_JVP else job.flags & LOWER
    cdef int m = job.m, n = job.n
    cdef floating query = 0, query2 = 0
    cdef floating dummy[1]
    dummy[0] = 0
    if lq:
        xgeqrf(n, m, dummy, max(n, 1), NULL, &query, -1)
        xorgqr(n, m, m, dummy, max(n, 1), NULL, &query2, -1)
        job.lwork = workspace_size(query if query > query2 else query2, n)
        if blocked_householder(n, m):
            job.lwork = max(job.lwork, householder_work(n, m))
        elif m >= compact_householder_min:
            job.lwork = max(job.lwork, compact_work(n, m))
        job.work = job.lwork + m                    # and the reflector scalars
    else:
        xgeqrf(m, n, dummy, max(m, 1), NULL, &query, -1)
        xorgqr(m, n, n, dummy, max(m, 1), NULL, &query2, -1)
        job.lwork = workspace_size(query if query > query2 else query2, n)
        if blocked_householder(m, n):
            job.lwork = max(job.lwork, householder_work(m, n))
        elif n >= compact_householder_min:
            job.lwork = max(job.lwork, compact_work(m, n))
        job.work = job.lwork + n + <Py_ssize_t>m * n    # the reflector scalars, A^T
    if job.op == OP_ORTHOGONAL_JVP:                 # and orthogonal_jvp_one's X and scratch
        job.work += <Py_ssize_t>(m + n) * min(m, n)

cdef void plan_orthogonal_backward(Job* job) noexcept nogil:
    # Interleaved up to ORTHOGONAL_LANES_MAX, per matrix above: against orthogonal_backward_one
    # (A/B, 1000-2000 x n, 2 threads) 1.1x faster at 17, level at 20-22, 1.1-1.3x slower at 24
    # and 1.5-2.2x at 32-56, both dtypes. The per-matrix scratch: M, T's and dT's triangles,
    # the products' transposes.
    if fills_lanes(job, ORTHOGONAL_LANES_MAX):
        job.lanes, job.work = LANES, <Py_ssize_t>5 * job.m * job.n * LANES
    else:
        job.work = <Py_ssize_t>(3 * min(job.m, job.n) + max(job.m, job.n)) * min(job.m, job.n)
