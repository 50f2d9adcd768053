# Parts of a matrix moved to and from a vector: its offset diagonal, or a packed triangle (the
# lower one row by row, the upper one column by column), for extractdiag/makediag and
# extracttrian/maketrian. Memory moves only, one pass over each matrix: the scatter writes its
# zeros while the matrix is in cache, into output memory the backend keeps warm.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef void plan_part(Job* job) noexcept nogil:
    job.calls_blas = False

cdef inline void move_part(const Job* job, floating* a, floating* v, bint embed) noexcept nogil:
    """Walk the part of the n x n matrix a (n = job.m, offset d = job.k) in its packed order,
    copying it into the vector v, or with ``embed`` v into it: with DIAGONAL the offset
    diagonal; with LOWER (d <= 0) the lower triangle from diagonal d down, row by row; else
    (d >= 0) the upper one from diagonal d up, column by column. Inlined into both kernels,
    where ``embed`` is a constant."""
    cdef int n = job.m, d = job.k, i, j
    cdef Py_ssize_t t = 0, at
    if job.flags & DIAGONAL:
        at = <Py_ssize_t>max(-d, 0) * n + max(d, 0)
        for i in range(n - abs(d)):
            if embed:
                a[at + <Py_ssize_t>i * (n + 1)] = v[i]
            else:
                v[i] = a[at + <Py_ssize_t>i * (n + 1)]
    elif job.flags & LOWER:
        for i in range(-d, n):              # row i: columns 0 .. i + d
            at = <Py_ssize_t>i * n
            for j in range(i + d + 1):
                if embed:
                    a[at + j] = v[t + j]
                else:
                    v[t + j] = a[at + j]
            t += i + d + 1
    else:
        for j in range(d, n):               # column j: rows 0 .. j - d
            for i in range(j - d + 1):
                if embed:
                    a[<Py_ssize_t>i * n + j] = v[t + i]
                else:
                    v[t + i] = a[<Py_ssize_t>i * n + j]
            t += j - d + 1

cdef int extract_part_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # The part of the n x n matrix p[0] into the vector p[1] (move_part).
    move_part(job, p[0], p[1], False)
    return 0

cdef int embed_part_one(const Job* job, floating** p, floating* work) noexcept nogil:
    # The vector p[0] into its part of the n x n matrix p[1], zeros elsewhere (written here,
    # unless the caller has, ZEROED).
    if not job.flags & ZEROED:
        memset(p[1], 0, <size_t>job.m * job.m * sizeof(floating))
    move_part(job, p[1], p[0], True)
    return 0
