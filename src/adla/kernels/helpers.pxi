# Small helpers on row-major n x n matrices.
# Included by _lapack.pyx: one Cython module, so the kernels inline across files.

cdef inline void copy(floating* dst, const floating* src, Py_ssize_t count) noexcept nogil:
    if count > 0:
        memcpy(dst, src, count * sizeof(floating))

cdef inline bint isfinite(floating x) noexcept nogil:
    # x - x is 0 for finite x and NaN for inf/NaN (libc's isfinite here takes a long double).
    return x - x == 0

cdef inline bint all_finite(const floating* a, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        if not isfinite(a[i]):
            return False
    return True

cdef inline bint triangle_finite(const floating* a, int n, bint lower) noexcept nogil:
    cdef int i, j
    for i in range(n):
        if lower:
            for j in range(i + 1):
                if not isfinite(a[i * n + j]):
                    return False
        else:
            for j in range(i, n):
                if not isfinite(a[i * n + j]):
                    return False
    return True

cdef inline int first_zero_diagonal(const floating* a, int n) noexcept nogil:
    """1-based position of the first zero on the diagonal, or 0."""
    cdef int i
    for i in range(n):
        if a[i * n + i] == 0:
            return i + 1
    return 0

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

cdef inline void mirror_triangle(floating* a, int n, bint from_lower) noexcept nogil:
    """Make a symmetric by copying the lower triangle onto the upper one (or the reverse)."""
    cdef int i, j
    for i in range(n):
        for j in range(i + 1, n):
            if from_lower:
                a[i * n + j] = a[j * n + i]
            else:
                a[j * n + i] = a[i * n + j]

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
