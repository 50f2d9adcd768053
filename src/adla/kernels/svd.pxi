# The thin singular value decomposition: LAPACK gesdd per matrix, gesvd where gesdd does not
# converge.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef int gesvd_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """A = U diag(s) Vt for a row-major m x n A, k = min(m, n): U m x k, s descending, Vt k x n.

    LAPACK sees the column-major view M = A^T (n x m) and factors M = Um Sm VTm, so that
    A = VTm^T Sm Um^T: Um (n x k, ld n) read row-major is Vt, and VTm (k x m, ld k) read
    row-major is U, each written in place. Signs: in each row of Vt the entry of largest
    magnitude (the first on ties) is made positive, and U's column with it. work: a copy of
    A, job.lwork elements of LAPACK workspace, then 8 k ints.
    """
    cdef int m = job.m, n = job.n, k = min(job.m, job.n), info, i, j, big
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
    return 0


# Workspace (the operator table in _lapack.pyx).

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
