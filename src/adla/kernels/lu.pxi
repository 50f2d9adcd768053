# LU-based kernels: inverse, slogdet, and the cofactor matrix (det's gradient, exact at
# singular matrices).
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

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
