"""CPU backend: the batched kernels of ``_lapack.pyx`` behind the backend contract of
``_backend.py`` (stacks in, fresh stacks and per-matrix status out), which the GPU backend
implements alike.
"""
import contextlib
import math
import os
import threading

import numpy as np

from . import _lapack, _memory  # type: ignore[attr-defined]  # compiled, no stubs
from ._array_rules import part_length, shared, stacked_rows, unstacked


def _kernels():
    """The AVX2 build of ``_lapack`` where the CPU runs it (same code and results, twice the
    vector width), else the baseline build; ``ADLA_CPU=baseline`` in the environment forces the
    baseline."""
    if os.environ.get("ADLA_CPU", "").lower() != "baseline" and _lapack.cpu_has_avx2():
        try:
            from . import _lapack_avx2
            return _lapack_avx2
        except ImportError:         # built without it (not x86-64, or an old compiler)
            pass
    return _lapack


K = _kernels()
FLAG_ZEROED = K.FLAG_ZEROED
K.use_output_cache(_memory.cache_handler)         # the kernels' scratch too
_lapack.use_output_cache(_memory.cache_handler)   # (the baseline build, where tests pick it)
xp = np


def fill_failed(out, status):
    if np.count_nonzero(status):        # (a C loop, without a ufunc reduction's setup)
        out[status != 0] = np.nan
    return out


_NONE_FAILED = np.empty(0, np.intp)


def failed(status):
    return np.flatnonzero(status) if np.count_nonzero(status) else _NONE_FAILED


def out_of_memory(status):
    return bool(np.count_nonzero(status) and (status == K.STATUS_NO_MEMORY).any())


_blas_libraries = None     # threadpoolctl's controllers of the BLAS libraries loaded, found once
_controller_lock = threading.Lock()
_blas_threads = None        # their own thread counts while any call keeps BLAS to one thread
_blas_users = 0
_local = threading.local()  # .threads: this thread's share of the cores (thread_share);
                            # .destinations: memory for outputs (outputs_into)


@contextlib.contextmanager
def _single_threaded_blas():
    """Keep BLAS to one thread while the block runs: OpenBLAS called from several threads while
    threading itself can deadlock. The limit is process-wide, so concurrent callers share it:
    the first one sets it, the last one out restores BLAS's own setting."""
    global _blas_libraries, _blas_threads, _blas_users
    with _controller_lock:
        if _blas_users == 0:
            if _blas_libraries is None:
                from threadpoolctl import ThreadpoolController
                _blas_libraries = [library for library in ThreadpoolController().lib_controllers
                                   if library.user_api == "blas"]
            # Straight to each library's get/set (a few microseconds), not threadpoolctl's
            # limit(), which queries every library's whole description first (40 us a call).
            _blas_threads = [library.get_num_threads() for library in _blas_libraries]
            for library in _blas_libraries:
                library.set_num_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _controller_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for library, threads in zip(_blas_libraries, _blas_threads):
                    library.set_num_threads(threads)
                _blas_threads = None


@contextlib.contextmanager
def thread_share(threads):
    """Within the block, adla's calls from this thread run on at most ``threads`` threads, and
    with ``threads == 1`` BLAS runs single-threaded too: for callers that run many adla calls
    side by side (a dask worker's task threads), each with its share of the cores."""
    previous = getattr(_local, "threads", None)
    _local.threads = threads
    try:
        if threads == 1:
            with _single_threaded_blas():
                yield
        else:
            yield
    finally:
        _local.threads = previous


_redirecting = 0             # outputs_into blocks open on any thread: while none is, _run
_redirect_lock = threading.Lock()   # skips the thread-local lookup (a microsecond of each call)


@contextlib.contextmanager
def outputs_into(destinations):
    """Within the block, a kernel output of the same dtype and size as one of the C-contiguous
    arrays ``destinations`` is computed in that array's memory (each used once), so that a caller
    who must deliver results in given memory (an XLA handler) need not copy them there. Which
    output lands where is not fixed: the caller still stores each result, skipping those already
    in place (and must copy aside any result that lives in another result's memory)."""
    global _redirecting
    previous = getattr(_local, "destinations", None)
    _local.destinations = [d for d in destinations if d.flags.c_contiguous and d.size]
    with _redirect_lock:
        _redirecting += 1
    try:
        yield
    finally:
        with _redirect_lock:
            _redirecting -= 1
        _local.destinations = previous


def _empty(shape, dtype):
    spare = getattr(_local, "destinations", None) if _redirecting else None
    if spare:
        size = math.prod(shape)
        for i, d in enumerate(spare):
            if d.dtype == dtype and d.size == size:
                return spare.pop(i).reshape(shape)
    return _memory.empty(shape, dtype)


def _flags(transpose_a=False, transpose_b=False, rightside=False, lower=False):
    return ((K.FLAG_TRANS_A if transpose_a else 0) | (K.FLAG_TRANS_B if transpose_b else 0)
            | (K.FLAG_RIGHT if rightside else 0) | (K.FLAG_LOWER if lower else 0))


def _precision(dtype):
    """The flag of planners that route by precision (run sets it itself)."""
    return K.FLAG_SINGLE if dtype == np.float32 else 0


def _batch_and_dtype(stacks):
    """The batch the stacks (None: absent; length 1: broadcast) make together, and their dtype
    (one loop: a small call's cost is mostly such bookkeeping)."""
    nbatch, dtype = -1, None
    for s in stacks:
        if s is not None:
            length, dtype = s.shape[0], s.dtype
            if length == 0 or nbatch == 0:
                nbatch = 0
            elif length > nbatch:
                nbatch = length
    return nbatch, dtype


def _batch_length(stacks):
    return _batch_and_dtype(stacks)[0]


def _threads():
    """The threads a call may use: OpenMP's setting, or this thread's share (thread_share)."""
    share = getattr(_local, "threads", None)
    return K.max_threads() if share is None else min(K.max_threads(), share)


def _run(op, inputs, shapes, m, n, k=0, flags=0, alpha=1.0, beta=0.0):
    """Allocate one output stack per core shape in ``shapes``; return ``(*outputs, status)``.
    With FLAG_ZEROED in ``flags`` the outputs are zeroed first, on all the call's threads."""
    nbatch, dtype = _batch_and_dtype(inputs)
    allocate = _empty if _redirecting else _memory.empty
    outputs = tuple([allocate((nbatch,) + shape, dtype) for shape in shapes])
    if flags & FLAG_ZEROED:
        for out in outputs:
            K.zero_fill(out, _threads())
    threads = _threads() if nbatch > 1 else 1
    if threads > 1 and K.calls_blas_from_threads(op, m, n, k, nbatch,
                                                 flags | _precision(dtype)):
        with _single_threaded_blas():
            status = K.run(op, tuple(inputs), outputs, m, n, k, flags, alpha, beta, threads)
    else:
        status = K.run(op, tuple(inputs), outputs, m, n, k, flags, alpha, beta, threads)
    return outputs + (status,)


def _foldable(op, stacked, m, n, k=0):
    """Whether a batch with one shared operand runs as one call on the ``stacked`` operand's
    matrices one below the other: where each matrix would cost a BLAS call, and the stacked
    rows (of the operand and of the result) fit BLAS's 32-bit integers."""
    return (min(m, n, k or 1) > 0 and K.calls_blas(op, m, n, k)
            and stacked.shape[0] * max(stacked.shape[1:] + (m, n)) < 2**31)


def gemm(a, b, c=None, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0,
         triangle=None):
    """``alpha op(a) op(b) + beta c``; ``c`` may be None (then beta is ignored). ``triangle``
    ("lower" or "upper"): keep only that triangle of the (square) result, the rest zero."""
    m, k = (a.shape[2], a.shape[1]) if transpose_a else (a.shape[1], a.shape[2])
    n = b.shape[1] if transpose_b else b.shape[2]
    which = shared(a, b) if triangle is None else None
    if which is not None and _foldable(K.GEMM, a if which else b, m, n, k):
        nbatch = max(a.shape[0], b.shape[0])
        if c is not None:
            c = np.broadcast_to(c, (nbatch, m, n))
        if which == 1:      # D_b = alpha op(A_b) op(B) + beta C_b, all op(A_b) stacked
            d = gemm(stacked_rows(a, transpose_a), b,
                     None if c is None else stacked_rows(c), transpose_b=transpose_b,
                     alpha=alpha, beta=beta)
            return unstacked(d, nbatch)
        # D_b^T = alpha op(B_b)^T op(A)^T + beta C_b^T, all op(B_b)^T stacked
        e = gemm(stacked_rows(b, not transpose_b), a,
                 None if c is None else stacked_rows(c, True), transpose_b=not transpose_a,
                 alpha=alpha, beta=beta)
        return unstacked(e, nbatch, True)
    flags = _flags(transpose_a=transpose_a, transpose_b=transpose_b, lower=triangle == "lower")
    if triangle is not None:
        flags |= K.FLAG_TRIANGLE
    return _run(K.GEMM, (a, b, c), [(m, n)], m, n, k, flags, alpha, beta)[0]


def sandwich(x, y, *, transpose=False, alpha=1.0):
    """``alpha op(x) y op(x)`` (square) from one kernel per matrix, the intermediate product in
    cache; None where ``x`` is one matrix shared by a batch of ``y`` (two gemm calls fold that
    batch into single products)."""
    if x.shape[0] == 1 and y.shape[0] > 1:
        return None
    n = x.shape[1]
    return _run(K.SANDWICH, (x, y), [(n, n)], n, n, n, _flags(transpose_a=transpose),
                alpha)[0]


def gemm_jvp(a, b, c, da, db, dc, *, transpose_a=False, transpose_b=False, alpha=1.0,
             beta=0.0):
    """``(D, dD)`` of gemm and its tangent from one fused kernel (``c``, ``da``, ``db``, ``dc``
    may be None: zero), or None where the forward would not run gemm's per-matrix kernel (an
    operand shared by a batch of BLAS-sized products, or interleaved small ones): D must have
    gemm's bits, and the caller composes the rule then."""
    m, k = (a.shape[2], a.shape[1]) if transpose_a else (a.shape[1], a.shape[2])
    n = b.shape[1] if transpose_b else b.shape[2]
    nbatch = _batch_length((a, b, c, da, db, dc))
    which = shared(a, b)
    if ((which is not None and _foldable(K.GEMM, a if which else b, m, n, k))
            or K.interleaved(K.GEMM, m, n, k, nbatch)):
        return None
    flags = _flags(transpose_a=transpose_a, transpose_b=transpose_b)
    return tuple(_run(K.GEMM_JVP, (a, b, c, da, db, dc), [(m, n), (m, n)], m, n, k, flags, alpha,
                      beta)[:2])


def gemm_backward(dd, a, b, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=None):
    """``(dA, dB)`` of ``alpha op(a) op(b)`` from the cotangent ``dd``, and ``dC = beta dd`` too
    when ``beta`` is given (gemm with a C), all three from one pass over the batch."""
    m, n = dd.shape[1:]
    k = a.shape[1] if transpose_a else a.shape[2]
    flags = _flags(transpose_a=transpose_a, transpose_b=transpose_b)
    shapes = [a.shape[1:], b.shape[1:]]
    if beta is not None:
        flags |= K.FLAG_WITH_C
        shapes.append((m, n))
    return _run(K.GEMM_BACKWARD, (dd, a, b), shapes, m, n, k, flags, alpha,
                0.0 if beta is None else beta)[:-1]


def syrk(a, *, transpose=False, alpha=1.0):
    """``alpha a a^T`` (``alpha a^T a`` if transpose), both triangles filled."""
    m, k = (a.shape[2], a.shape[1]) if transpose else (a.shape[1], a.shape[2])
    return _run(K.SYRK, (a,), [(m, m)], m, m, k, _flags(transpose_a=transpose), alpha)[0]


def syrk_backward(dc, a, *, transpose=False, alpha=1.0):
    """``alpha (dc + dc^T) a`` (``alpha a (dc + dc^T)`` if transpose), the gradient of syrk."""
    m, k = (a.shape[2], a.shape[1]) if transpose else (a.shape[1], a.shape[2])
    return _run(K.SYRK_BACKWARD, (dc, a), [a.shape[1:]], m, m, k, _flags(transpose_a=transpose),
                alpha)[0]


def _folded_triangular(op, a, b, transpose, rightside, lower, alpha):
    """trmm/trsm of a shared ``a`` with the whole batch ``b`` as one call on stacked rows:
    ``B_b op(A)`` stacks as it is, ``op(A) B_b`` as its transpose ``B_b^T op(A)^T``. Returns
    ``(out, status)`` with the one status repeated for every matrix."""
    m, n = b.shape[1:]
    rows = stacked_rows(b, not rightside)
    flags = _flags(transpose_a=transpose != (not rightside), rightside=True, lower=lower)
    out, status = _run(op, (a, rows), [rows.shape[1:]], rows.shape[1], rows.shape[2], 0, flags,
                       alpha)
    return unstacked(out, b.shape[0], not rightside), np.repeat(status, b.shape[0])


def _triangular(op, a, b, transpose, rightside, lower, alpha):
    """trmm or trsm: ``(out, status)``. One triangle ``a`` for a batch of ``b`` runs interleaved
    with the triangle read in place where that kernel takes the size (a gathered triangle, or
    one BLAS call on the stacked batch, costs more), else as one call on the stacked batch where
    each matrix would cost a BLAS call."""
    m, n = b.shape[1:]
    flags = _flags(transpose_a=transpose, rightside=rightside, lower=lower)
    if shared(a, b) == 0:
        if K.interleaved(op, m, n, 0, b.shape[0], flags | K.FLAG_SHARED_A):
            return _run(op, (a, b), [(m, n)], m, n, 0, flags | K.FLAG_SHARED_A, alpha)
        if _foldable(op, b, m, n):
            out, status = _folded_triangular(op, a, b, transpose, rightside, lower, alpha)
            # trsm's finiteness check saw the whole stack: a non-finite entry fails only its
            # own matrix, so such a batch (rare) is solved again matrix by matrix.
            if status[0] != K.STATUS_NONFINITE:
                return out, status
    return _run(op, (a, b), [(m, n)], m, n, 0, flags, alpha)


def trmm(a, b, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    return _triangular(K.TRMM, a, b, transpose, rightside, lower, alpha)[0]


def trmm_backward(a, b, dc, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """``(dA, dB)`` of ``trmm`` from one fused kernel per matrix, or None where trmm itself runs
    interleaved (the rule composes it there from those kernels)."""
    m, n = b.shape[1:]
    order = n if rightside else m
    flags = _flags(transpose_a=transpose, rightside=rightside, lower=lower)
    if K.interleaved(K.TRMM, m, n, 0, _batch_length((a, b, dc)), flags):
        return None
    return _run(K.TRMM_BACKWARD, (a, b, dc), [(order, order), (m, n)], m, n, 0, flags,
                alpha)[:2]


def trsm(a, b, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    return _triangular(K.TRSM, a, b, transpose, rightside, lower, alpha)


def trsm_backward(a, x, dx, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """``(dA, dB, status)`` of ``trsm`` from its output ``x`` and cotangent ``dx``."""
    m, n = x.shape[1:]
    order = n if rightside else m
    flags = _flags(transpose_a=transpose, rightside=rightside, lower=lower)
    return _run(K.TRSM_BACKWARD, (a, x, dx), [(order, order), (m, n)], m, n, 0, flags, alpha)


def trsm_jvp(a, b, da, db, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """``(X, dX, status)`` of ``trsm`` from one fused kernel; ``da`` or ``db`` may be None
    (zero)."""
    m, n = b.shape[1:]
    flags = _flags(transpose_a=transpose, rightside=rightside, lower=lower)
    return _run(K.TRSM_JVP, (a, b, da, db), [(m, n), (m, n)], m, n, 0, flags, alpha)


def potrf(a, *, lower=True):
    n = a.shape[1]
    return _run(K.POTRF, (a,), [(n, n)], n, n, 0, _flags(lower=lower))


def potrf_jvp(a, da, *, lower=True):
    """``(factor, tangent, status)`` from one fused kernel (the tangent while the factor is in
    cache); status as potrf's."""
    n = a.shape[1]
    return _run(K.POTRF_JVP, (a, da), [(n, n), (n, n)], n, n, 0, _flags(lower=lower))


def potrf_backward(dl, l, *, lower=True):
    """The symmetric gradient of ``potrf`` from the factor's cotangent: ``(dA, status)``; a
    zero on the factor's diagonal or a non-finite entry fails the matrix."""
    n = l.shape[1]
    return _run(K.POTRF_BACKWARD, (dl, l), [(n, n)], n, n, 0, _flags(lower=lower))


def potri(l, *, lower=True):
    n = l.shape[1]
    return _run(K.POTRI, (l,), [(n, n)], n, n, 0, _flags(lower=lower))


def potrs(l, b, *, lower=True):
    m, n = b.shape[1:]
    return _run(K.POTRS, (l, b), [(m, n)], m, n, 0, _flags(lower=lower))


def potrs_backward(l, x, dx, *, lower=True):
    """``(dL, dB, status)`` of potrs from one fused kernel, or None for thin right-hand sides
    (``4 k < n``) where that kernel is not interleaved: the caller's composed rule never forms
    the n x n S there; status as potrs's on ``(l, dx)``."""
    m, n = x.shape[1:]
    if 4 * n < m and not K.interleaved(K.POTRS_BACKWARD, m, n, 0, _batch_length((l, x, dx))):
        return None
    return _run(K.POTRS_BACKWARD, (l, x, dx), [(m, m), (m, n)], m, n, 0, _flags(lower=lower))


def potri_backward(l, ainv, dainv, *, lower=True):
    """``(dL, status)`` of potri from one fused kernel (interleaved for batches of small
    matrices, else per matrix); status as trsm's on ``l``."""
    n = l.shape[1]
    return _run(K.POTRI_BACKWARD, (l, ainv, dainv), [(n, n)], n, n, 0, _flags(lower=lower))


def gelqf(a):
    """Thin LQ ``a = L Q`` (m <= n) with a non-negative diagonal: ``(Q, L, status)``."""
    m, n = a.shape[1:]
    return _run(K.GELQF, (a,), [(m, n), (m, m)], m, n)


def geqrf(a):
    """Thin QR ``a = Q R`` (m >= n) with a non-negative diagonal: ``(Q, R, status)``."""
    m, n = a.shape[1:]
    return _run(K.GEQRF, (a,), [(m, n), (n, n)], m, n)


def orthogonal_jvp(a, da, lq):
    """``(Q, T, dQ, dT, status)`` of ``gelqf`` (``lq``) or ``geqrf`` and its tangent: one fused
    kernel, or, where the forward factors interleaved and the fused kernel does not, the
    forward's kernel and a tangent kernel per matrix (so that the factors have the forward's
    bits); status as the factorisation's."""
    m, n = a.shape[1:]
    nbatch, precision = _batch_length((a, da)), _precision(a.dtype)
    r = min(m, n)
    if (K.interleaved(K.GELQF if lq else K.GEQRF, m, n, 0, nbatch, precision)
            and not K.interleaved(K.ORTHOGONAL_JVP, m, n, 0, nbatch, precision)):
        q, t, status = (gelqf if lq else geqrf)(a)
        dq, dt, _ = _run(K.ORTHOGONAL_TANGENT, (q, t, da), [(m, n), (r, r)], m, n, 0,
                         _flags(lower=lq))
        return q, t, dq, dt, status
    return _run(K.ORTHOGONAL_JVP, (a, da), [(m, n), (r, r), (m, n), (r, r)], m, n, 0,
                _flags(lower=lq))


def orthogonal_backward(dq, dt, q, t, lq):
    """``(dA, status)`` of ``gelqf`` (``lq``) or ``geqrf`` from one fused kernel (interleaved
    for small matrices, BLAS per matrix above). ``dq``/``dt`` may be None (zero)."""
    m, n = q.shape[1:]
    return _run(K.ORTHOGONAL_BACKWARD, (dq, dt, q, t), [(m, n)], m, n, 0, _flags(lower=lq))


def syevd(a):
    """Eigenvectors as rows (sign-normalised) and ascending eigenvalues: ``(U, lam, status)``;
    reads the lower triangle."""
    n = a.shape[1]
    return _run(K.SYEVD, (a,), [(n, n), (n,)], n, n)


def syevd_backward(du, dlam, u, lam, tolerance):
    """The symmetric gradient of ``syevd`` (see ``_decomp.syevd_backward``); ``du`` or ``dlam``
    may be None (zero); eigenvalues of a matrix closer than its ``tolerance`` are one
    eigenspace. Returns ``dA``."""
    n = u.shape[1]
    return _run(K.SYEVD_BACKWARD, (du, dlam, u, lam, tolerance), [(n, n)], n, n)[0]


def syevd_tangent(da, u, lam, tolerance):
    """``(dU, dlam)`` of ``syevd`` along ``da`` (read in its lower triangle) from the
    factorisation; eigenvalues of a matrix closer than its ``tolerance`` are one eigenspace."""
    n = u.shape[1]
    return _run(K.SYEVD_TANGENT, (da, u, lam, tolerance), [(n, n), (n,)], n, n)[:2]


def inverse(a, *, transpose=False, scale=None):
    n = a.shape[1]
    return _run(K.INVERSE, (a, scale), [(n, n)], n, n, 0, _flags(transpose_a=transpose))


def slogdet(a):
    """``(sign, logabsdet, status)``; singular matrices give sign 0 and -inf, not a failure."""
    n = a.shape[1]
    return _run(K.SLOGDET, (a,), [(), ()], n, n)


def cofactor(a, *, scale=None):
    """``adj(a)^T``, the derivative of ``det(a)``, exact also for singular ``a``."""
    n = a.shape[1]
    return _run(K.COFACTOR, (a, scale), [(n, n)], n, n)


def gesvd(a):
    """``(U, s, Vt, status)``: thin SVD (interleaved one-sided Jacobi for batches of small
    matrices; gesdd, gesvd where it does not converge)."""
    m, n = a.shape[1:]
    k = min(m, n)
    return _run(K.GESVD, (a,), [(m, k), (k,), (k, n)], m, n)


def gesvd_backward(du, ds, dvt, u, s, vt, tolerance):
    """``dA`` of ``gesvd`` (see ``_general.gesvd_backward``); ``du``, ``ds`` or ``dvt`` may be
    None (zero); singular values of a matrix closer than its ``tolerance`` (to each other, to
    zero) are one singular subspace."""
    m, k = u.shape[1:]
    n = vt.shape[2]
    return _run(K.GESVD_BACKWARD, (du, ds, dvt, u, s, vt, tolerance), [(m, n)], m, n)[0]


def gesvd_tangent(da, u, s, vt, tolerance):
    """``(dU, ds, dVt)`` of ``gesvd`` along ``da`` from the factorisation; singular values of a
    matrix closer than its ``tolerance`` (to each other, to zero) are one singular subspace."""
    m, k = u.shape[1:]
    n = vt.shape[2]
    return _run(K.GESVD_TANGENT, (da, u, s, vt, tolerance), [(m, k), (k,), (k, n)], m, n)[:3]


def gesv(a, b, *, transpose=False):
    """``(op(a)^-1 b, status)`` by LU with partial pivoting (getrf, then two triangular solves)."""
    n, k = b.shape[1:]
    return _run(K.GESV, (a, b), [(n, k)], n, k, 0, _flags(transpose_a=transpose))


def gesv_jvp(a, b, da, db, *, transpose=False):
    """``(X, dX, status)`` of gesv from one fused kernel (one LU for both solves); ``da`` or
    ``db`` may be None (zero); status as gesv's."""
    n, k = b.shape[1:]
    return _run(K.GESV_JVP, (a, b, da, db), [(n, k), (n, k)], n, k, 0,
                _flags(transpose_a=transpose))


_PART_FLAGS = {"diagonal": K.FLAG_DIAGONAL, "lower": K.FLAG_LOWER, "upper": 0}


def _part_job(n, part, offset):
    """The kernel's offset (clamped to the order: a part past the matrix is empty either way)
    and flags; a triangle on the wrong side of its offset would index outside the matrix."""
    if (part == "lower" and offset > 0) or (part == "upper" and offset < 0):
        raise ValueError(f"a {part} triangle cannot start at diagonal {offset}")
    return max(-n, min(offset, n)), _PART_FLAGS[part]


def extract_part(a, part, offset):
    """The diagonal or packed triangle of each matrix (one pass per matrix, output memory from
    the cache)."""
    n = a.shape[1]
    return _run(K.EXTRACT_PART, (a,), [(part_length(n, part, offset),)], n, 0,
                *_part_job(n, part, offset))[0]


_PARALLEL_ZEROS_BYTES = 1 << 20     # embed_part: zeros of a batch shorter than the threads
                                    # from this size on written by all threads first


def embed_part(v, n, part, offset):
    """Each vector placed in its part of an n x n matrix of zeros, the zeros written with it
    while the matrix is in cache; for one or a few large matrices, written by all threads first
    (1.6x faster at order 1000)."""
    k, flags = _part_job(n, part, offset)
    if 0 < v.shape[0] < _threads() and n * n * v.itemsize >= _PARALLEL_ZEROS_BYTES:
        flags |= K.FLAG_ZEROED
    return _run(K.EMBED_PART, (v,), [(n, n)], n, 0, k, flags)[0]
