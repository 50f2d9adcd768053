# Parts of a matrix moved to and from a vector: its offset diagonal, or a packed triangle (the
# lower one row by row, the upper one column by column), for extractdiag/makediag and
# extracttrian/maketrian. Memory moves only, one pass over each matrix: the scatter writes its
# zeros while the matrix is in cache, into output memory the backend keeps warm.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef void plan_part(Job* job) noexcept nogil:
    job.calls_blas = False

cdef int extract_part_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """The part of the n x n matrix p[0] (n = job.m, offset d = job.k) into the vector p[1]:
    with DIAGONAL the offset diagonal; with LOWER (d <= 0) the lower triangle from diagonal d
    down, row by row; else (d >= 0) the upper one from diagonal d up, column by column."""
    cdef int n = job.m, d = job.k, i, j
    cdef const floating* a = p[0]
    cdef floating* v = p[1]
    cdef Py_ssize_t t = 0, start
    if job.flags & DIAGONAL:
        start = <Py_ssize_t>max(-d, 0) * n + max(d, 0)
        for i in range(n - abs(d)):
            v[i] = a[start + <Py_ssize_t>i * (n + 1)]
    elif job.flags & LOWER:
        for i in range(-d, n):              # row i: columns 0 .. i + d
            for j in range(i + d + 1):
                v[t + j] = a[<Py_ssize_t>i * n + j]
            t += i + d + 1
    else:
        for j in range(d, n):               # column j: rows 0 .. j - d
            for i in range(j - d + 1):
                v[t + i] = a[<Py_ssize_t>i * n + j]
            t += j - d + 1
    return 0

cdef int embed_part_one(const Job* job, floating** p, floating* work) noexcept nogil:
    """The vector p[0] placed in the part of the n x n matrix p[1] that extract_part_one reads,
    zeros elsewhere."""
    cdef int n = job.m, d = job.k, i, j
    cdef const floating* v = p[0]
    cdef floating* a = p[1]
    cdef Py_ssize_t t = 0, start
    memset(a, 0, <size_t>n * n * sizeof(floating))
    if job.flags & DIAGONAL:
        start = <Py_ssize_t>max(-d, 0) * n + max(d, 0)
        for i in range(n - abs(d)):
            a[start + <Py_ssize_t>i * (n + 1)] = v[i]
    elif job.flags & LOWER:
        for i in range(-d, n):
            for j in range(i + d + 1):
                a[<Py_ssize_t>i * n + j] = v[t + j]
            t += i + d + 1
    else:
        for j in range(d, n):
            for i in range(j - d + 1):
                a[<Py_ssize_t>i * n + j] = v[t + i]
            t += j - d + 1
    return 0
