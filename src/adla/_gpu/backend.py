"""GPU backend: the backend contract of ``_backend.py`` on CuPy arrays, as ``_cpu.py`` implements
it on NumPy arrays.

Same functions, same arguments, same results: C-contiguous ``(nbatch, rows, cols)`` stacks in (a
stack of length 1 is broadcast), fresh stacks out, and an int32 status per matrix (0, -1 for a
non-finite entry read, or a positive LAPACK-style code) kept on the device, so that nothing here
but ``failed`` synchronises with the host. Batches of small matrices (order <= 32) run the fused RawKernels of
``kernels.cu`` (one warp per matrix); everything else uses cuSOLVER/cuBLAS through CuPy.
"""
import functools
from importlib import resources

import cupy as cp
import numpy as np

# Absolute imports: the tests also load this file on NumPy under another name.
from adla._array_rules import (gemm_operand_gradients, symmetric_from,
                               triangular_operand_gradient)

xp = cp
SMALL_ORDER = 32
FEW_LARGE = 8           # up to this many matrices above SMALL_ORDER, factor one by one
NONFINITE = -1


def _batch(*stacks):
    lengths = [s.shape[0] for s in stacks if s is not None]
    return 0 if 0 in lengths else max(lengths)


def _full(stack, nbatch):
    if stack.shape[0] == nbatch:
        return stack
    return cp.broadcast_to(stack, (nbatch,) + stack.shape[1:])


def _t(a):
    return cp.swapaxes(a, -1, -2)


def _c(a):
    return cp.ascontiguousarray(a)


def _triangle(a, lower):
    return cp.tril(a) if lower else cp.triu(a)


# ---- the RawKernels ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _module():
    code = resources.files("adla._gpu").joinpath("kernels.cu").read_text()
    names = [f"{k}<{t}>" for k in ("potrf_small", "potrf_backward_small", "fill_failed")
             for t in ("float", "double")]
    return cp.RawModule(code=code, options=("-std=c++17",), name_expressions=names)


def _launch(name, dtype, nbatch, n, tiles, args):
    """One warp per matrix; as many warps per block (up to 8) as fit 48 KiB of shared memory
    (``tiles`` n x n tiles per warp)."""
    kind = "double" if dtype == np.float64 else "float"
    per_warp = tiles * n * n * np.dtype(dtype).itemsize
    warps = max(1, min(8, (48 * 1024) // per_warp)) if per_warp else 8
    kernel = _module().get_function(f"{name}<{kind}>")
    kernel(((nbatch + warps - 1) // warps,), (32 * warps,), args, shared_mem=warps * per_warp)


def fill_failed(out, status):
    """Failing matrices of the C-contiguous stack ``out`` become NaN; no host synchronisation and
    no pass over the matrices that did not fail."""
    nbatch = out.shape[0]
    if nbatch == 0 or out.size == 0:
        return out
    if not out.flags.c_contiguous or out.shape[:1] != status.shape:
        mask = (status != 0).reshape(status.shape + (1,) * (out.ndim - 1))
        cp.copyto(out, np.nan, where=mask)
        return out
    kind = "double" if out.dtype == np.float64 else "float"
    kernel = _module().get_function(f"fill_failed<{kind}>")
    kernel((min(nbatch, 8192),), (128,), (status, out, np.int64(nbatch),
                                          np.int64(out.size // nbatch), out.dtype.type(np.nan)))
    return out


def failed(status):
    return cp.asnumpy(cp.flatnonzero(status))


def out_of_memory(status):
    return False            # device workspace comes from CuPy, which raises OutOfMemoryError


def _step(stack):
    return np.int64(0 if stack.shape[0] == 1 else stack.shape[1] * stack.shape[2])


# ---- status helpers (all on the device) ----------------------------------------------------------

def _nonfinite(*arrays):
    bad = None
    for a in arrays:
        b = ~cp.isfinite(a).all(axis=tuple(range(1, a.ndim)))
        bad = b if bad is None else bad | b
    return bad


def _zero_diagonal_status(T):
    zero = cp.diagonal(T, axis1=-2, axis2=-1) == 0
    return cp.where(zero.any(axis=-1), zero.argmax(axis=-1) + 1, 0).astype(cp.int32)


def _triangular_status(T, *others):
    status = _zero_diagonal_status(T)
    return cp.where(_nonfinite(T, *others), NONFINITE, status).astype(cp.int32)


def _eye_where(bad, A):
    """``A`` with the failing matrices replaced by the identity (their results become NaN)."""
    n = A.shape[-1]
    return cp.where(bad[:, None, None], cp.eye(n, dtype=A.dtype), A)


def _solve_triangular(T, B, transpose=False):
    """``op(T)^-1 B`` for (masked) triangular ``T``, batched (LU on a triangular matrix)."""
    return cp.linalg.solve(_t(T) if transpose else T, B)


# ---- BLAS-3 ------------------------------------------------------------------------------------

def gemm(a, b, c=None, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0,
         triangle=None):
    opa, opb = (_t(a) if transpose_a else a), (_t(b) if transpose_b else b)
    nbatch = _batch(a, b, c)
    shape = (nbatch, opa.shape[1], opb.shape[2])
    out = alpha * cp.matmul(opa, opb) if alpha != 0 else cp.zeros(shape, dtype=a.dtype)
    if c is not None and beta != 0:
        out = out + beta * c
    if triangle is not None:
        out = _triangle(out, triangle == "lower")
    return _c(cp.broadcast_to(out, shape))


def gemm_backward(dd, a, b, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=None):
    """``(dA, dB)`` of ``alpha op(a) op(b)`` from ``dd``, and ``dC = beta dd`` when ``beta`` is
    given."""
    grads = gemm_operand_gradients(gemm, dd, a, b, transpose_a=transpose_a,
                                   transpose_b=transpose_b, alpha=alpha)
    return grads if beta is None else grads + (beta * dd,)


def syrk(a, *, transpose=False, alpha=1.0):
    C = alpha * (cp.matmul(_t(a), a) if transpose else cp.matmul(a, _t(a)))
    return _c(cp.tril(C) + _t(cp.tril(C, -1)))


def syrk_backward(dc, a, *, transpose=False, alpha=1.0):
    S = dc + _t(dc)
    return _c(alpha * (cp.matmul(a, S) if transpose else cp.matmul(S, a)))


def trmm(a, b, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    T = _triangle(a, lower)
    T = _t(T) if transpose else T
    return _c(alpha * (cp.matmul(b, T) if rightside else cp.matmul(T, b)))


def trsm(a, b, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    nbatch = _batch(a, b)
    T, B = _triangle(_full(a, nbatch), lower), _full(b, nbatch)
    if nbatch == 0 or B.size == 0:
        return cp.zeros(B.shape, dtype=B.dtype), cp.zeros(nbatch, dtype=cp.int32)
    status = _triangular_status(T, B)
    bad = status != 0
    T, B = _eye_where(bad, T), cp.where(bad[:, None, None], 0, B)
    if rightside:      # X = B op(T)^-1  <=>  X^T = op(T)^-T B^T
        X = _t(_solve_triangular(T, _t(B), transpose=not transpose))
    else:
        X = _solve_triangular(T, B, transpose=transpose)
    return _c(alpha * X), status


def trsm_backward(a, x, dx, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """``(dA, dB, status)`` of trsm: ``Y = op(A)^-T dX`` (right: ``dX op(A)^-T``), ``dB = alpha Y``,
    ``d op(A) = -Y X^T`` (right: ``-X^T Y``) on the triangle that is read."""
    Y, status = trsm(a, dx, transpose=not transpose, rightside=rightside, lower=lower)
    dA = triangular_operand_gradient(gemm, Y, x, transpose=transpose, rightside=rightside,
                                     lower=lower, alpha=-1.0)
    return dA, (Y if alpha == 1 else alpha * Y), status


# ---- Cholesky family -----------------------------------------------------------------------------

def _cusolver():
    try:
        from cupy_backends.cuda.libs import cublas, cusolver
    except ImportError:                                       # older CuPy
        from cupy.cuda import cublas, cusolver
    return cublas, cusolver


def potrf(a, *, lower=True):
    nbatch, n = a.shape[0], a.shape[1]
    out = cp.empty((nbatch, n, n), dtype=a.dtype)
    status = cp.zeros(nbatch, dtype=cp.int32)
    if nbatch == 0 or n == 0:
        return out, status
    if n <= SMALL_ORDER:
        _launch("potrf_small", a.dtype, nbatch, n, 0,
                (a, out, status, np.int64(nbatch), np.int32(n), _step(a), np.int32(lower)))
        return out, status
    bad = _nonfinite(_triangle(a, lower))
    out = _c(_eye_where(bad, a).copy())                       # cuSOLVER reads one triangle
    cublas, cusolver = _cusolver()
    handle = cp.cuda.device.get_cusolver_handle()
    # Row-major lower is column-major upper.
    uplo = cublas.CUBLAS_FILL_MODE_UPPER if lower else cublas.CUBLAS_FILL_MODE_LOWER
    double = a.dtype == np.float64
    if nbatch <= FEW_LARGE:
        # potrfBatched is slow for a few large matrices: the blocked single-matrix routine.
        factor = cusolver.dpotrf if double else cusolver.spotrf
        size = (cusolver.dpotrf_bufferSize if double else cusolver.spotrf_bufferSize)(
            handle, uplo, n, out.data.ptr, n)
        work = cp.empty(max(size, 1), dtype=a.dtype)
        for i in range(nbatch):
            factor(handle, uplo, n, out[i].data.ptr, n, work.data.ptr, size,
                   status.data.ptr + 4 * i)
    else:
        factor = cusolver.dpotrfBatched if double else cusolver.spotrfBatched
        pointers = cp._core._mat_ptrs(out)
        factor(handle, uplo, n, pointers.data.ptr, n, status.data.ptr, nbatch)
    status = cp.where(bad, NONFINITE, status).astype(cp.int32)
    return _c(_triangle(out, lower)), status


def potrf_backward(dl, l, *, lower=True):
    nbatch, n = _batch(dl, l), l.shape[1]
    out = cp.empty((nbatch, n, n), dtype=l.dtype)
    status = cp.zeros(nbatch, dtype=cp.int32)
    if nbatch == 0 or n == 0:
        return out, status
    if n <= SMALL_ORDER:
        _launch("potrf_backward_small", l.dtype, nbatch, n, 3,
                (dl, l, out, status, np.int64(nbatch), np.int32(n), _step(dl), _step(l),
                 np.int32(lower)))
        return out, status
    L, D = _full(_triangle(l, lower), nbatch), _full(_triangle(dl, lower), nbatch)
    if not lower:                                             # lower form: L = U^T
        L, D = _t(L), _t(D)
    status = _triangular_status(L, D)
    L = _eye_where(status != 0, L)
    M = cp.tril(cp.matmul(_t(L), D))
    S = 0.5 * (M + _t(cp.tril(M, -1)))                        # (P + P^T)/2
    X = _solve_triangular(L, S, transpose=True)               # L^-T S
    G = _solve_triangular(L, _t(X), transpose=True)           # L^-T X^T = X L^-1
    return _c(0.5 * (G + _t(G))), status


def potri(l, *, lower=True):
    n = l.shape[1]
    T = _triangle(l, lower)
    status = _triangular_status(T)
    T = _eye_where(status != 0, T)
    W = _solve_triangular(T, cp.broadcast_to(cp.eye(n, dtype=l.dtype), T.shape))   # T^-1
    Ainv = cp.matmul(_t(W), W) if lower else cp.matmul(W, _t(W))
    return _c(cp.tril(Ainv) + _t(cp.tril(Ainv, -1))), status


def potrs(l, b, *, lower=True):
    nbatch = _batch(l, b)
    T, B = _triangle(_full(l, nbatch), lower), _full(b, nbatch)
    if nbatch == 0 or B.size == 0:
        return cp.zeros(B.shape, dtype=B.dtype), cp.zeros(nbatch, dtype=cp.int32)
    status = _triangular_status(T, B)
    bad = status != 0
    T, B = _eye_where(bad, T), cp.where(bad[:, None, None], 0, B)
    # lower: A = L L^T, X = L^-T L^-1 B;  upper: A = U^T U, X = U^-1 U^-T B.
    Y = _solve_triangular(T, B, transpose=not lower)
    return _c(_solve_triangular(T, Y, transpose=lower)), status


# ---- decompositions ------------------------------------------------------------------------------

def _qr(A):
    if A.shape[0] == 0:
        m, n = A.shape[1:]
        k = min(m, n)
        return cp.empty((0, m, k), A.dtype), cp.empty((0, k, n), A.dtype)
    try:
        return cp.linalg.qr(A)
    except (ValueError, cp.linalg.LinAlgError, TypeError):    # a CuPy without batched QR
        parts = [cp.linalg.qr(a) for a in A]
        return cp.stack([q for q, _ in parts]), cp.stack([r for _, r in parts])


def _positive_diagonal_signs(R):
    d = cp.diagonal(R, axis1=-2, axis2=-1)
    return cp.where(d < 0, -1.0, 1.0).astype(R.dtype)


def geqrf(a):
    bad = _nonfinite(a)
    Q, R = _qr(cp.where(bad[:, None, None], 0, a))
    s = _positive_diagonal_signs(R)
    Q, R = Q * s[:, None, :], R * s[:, :, None]
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    return _c(Q), _c(R), status


def gelqf(a):
    Qt, Rt, status = geqrf(_c(_t(a)))                         # A^T = Q' R'  =>  A = R'^T Q'^T
    return _c(_t(Qt)), _c(_t(Rt)), status


def trsm_jvp(a, b, da, db, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """No fused kernel for the triangular solve's tangent here: the front end composes it."""
    return None


def potrf_jvp(a, da, *, lower=True):
    """No fused kernel for the Cholesky tangent here: the front end composes it."""
    return None


def orthogonal_backward(dq, dt, q, t, lq):
    """No fused kernel for the gelqf/geqrf gradient here: the front end composes it."""
    return None


def syevd(a):
    nbatch, n = a.shape[0], a.shape[1]
    bad = _nonfinite(cp.tril(a))
    if nbatch == 0 or n == 0:
        return (cp.empty((nbatch, n, n), a.dtype), cp.empty((nbatch, n), a.dtype),
                cp.zeros(nbatch, dtype=cp.int32))
    lam, V = cp.linalg.eigh(_eye_where(bad, a), UPLO="L")
    U = _t(V)
    big = cp.take_along_axis(U, cp.abs(U).argmax(axis=2)[:, :, None], axis=2)
    U = U * cp.where(big < 0, -1.0, 1.0).astype(a.dtype)
    return _c(U), _c(lam), cp.where(bad, NONFINITE, 0).astype(cp.int32)


def syevd_backward(du, dlam, u, lam, tolerance):
    """dA = U^T S U, S the symmetric part of diag(dlam) + F * (U dU^T) (see the CPU kernel)."""
    n, nbatch = u.shape[1], _batch(du, dlam, u, lam)
    gap = lam[:, None, :] - lam[:, :, None]                       # lam[j] - lam[i]
    close = abs(gap) <= tolerance[:, None, None]
    F = 1.0 / cp.where(close, cp.inf, gap)
    inner = F * cp.matmul(u, _t(du)) if du is not None else cp.zeros((nbatch, n, n), u.dtype)
    inner = cp.broadcast_to(inner, (nbatch, n, n)).copy()
    if dlam is not None:
        diagonal = cp.arange(n)
        inner[:, diagonal, diagonal] += dlam
    G = cp.matmul(cp.matmul(_t(u), inner), u)
    return _c(0.5 * (G + _t(G)))


def syevd_tangent(da, u, lam, tolerance):
    """dlam = diag(M), dU = G U with M = U S U^T (see the CPU kernel)."""
    M = cp.matmul(cp.matmul(u, symmetric_from(cp, da, True)), _t(u))
    gap = lam[:, :, None] - lam[:, None, :]                       # lam[i] - lam[j]
    close = abs(gap) <= tolerance[:, None, None]
    dlam = cp.diagonal(M, axis1=1, axis2=2).copy()
    return _c(cp.matmul(M / cp.where(close, cp.inf, gap), u)), dlam


def _slogdet(a):
    nbatch, n = a.shape[0], a.shape[1]
    if n == 0:
        return cp.ones(nbatch, a.dtype), cp.zeros(nbatch, a.dtype)
    return cp.linalg.slogdet(a)


def inverse(a):
    bad = _nonfinite(a)
    A = _eye_where(bad, a)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return _c(A.copy()), cp.zeros(a.shape[0], dtype=cp.int32)
    sign, _ = _slogdet(A)
    singular = sign == 0
    Ainv = cp.linalg.inv(_eye_where(singular, A))
    status = cp.where(bad, NONFINITE, cp.where(singular, 1, 0)).astype(cp.int32)
    return _c(Ainv), status


def slogdet(a):
    bad = _nonfinite(a)
    sign, logabsdet = _slogdet(_eye_where(bad, a))
    nan = cp.asarray(np.nan, dtype=a.dtype)
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    return (_c(cp.where(bad, nan, sign).astype(a.dtype)),
            _c(cp.where(bad, nan, logabsdet).astype(a.dtype)), status)


def cofactor(a):
    """``adj(a)^T`` from the SVD ``a = U diag(s) Vh``: ``det(U) det(Vh) U adj(s) Vh``."""
    nbatch, n = a.shape[0], a.shape[1]
    if nbatch == 0 or n == 0:
        return cp.empty((nbatch, n, n), a.dtype), cp.zeros(nbatch, dtype=cp.int32)
    bad = _nonfinite(a)
    U, s, Vh = cp.linalg.svd(_eye_where(bad, a))
    ones = cp.ones((nbatch, 1), dtype=a.dtype)
    before = cp.cumprod(cp.concatenate([ones, s[:, :-1]], axis=1), axis=1)
    after = cp.cumprod(cp.concatenate([ones, s[:, :0:-1]], axis=1), axis=1)[:, ::-1]
    sign = cp.sign(cp.linalg.det(U) * cp.linalg.det(Vh))
    C = sign[:, None, None] * cp.matmul(U * (before * after)[:, None, :], Vh)
    return _c(C), cp.where(bad, NONFINITE, 0).astype(cp.int32)


# ---- SVD and general solve ----------------------------------------------------------------------

def gesvd(a):
    """Thin SVD by cuSOLVER (through cupy.linalg.svd: gesvdj for batches of small matrices),
    signs as the CPU kernel's: each row of Vt has its entry of largest magnitude positive."""
    nbatch, m, n = a.shape
    k = min(m, n)
    if nbatch == 0 or k == 0:
        return (cp.empty((nbatch, m, k), a.dtype), cp.empty((nbatch, k), a.dtype),
                cp.empty((nbatch, k, n), a.dtype), cp.zeros(nbatch, dtype=cp.int32))
    bad = _nonfinite(a)
    U, s, Vt = cp.linalg.svd(cp.where(bad[:, None, None], 0, a), full_matrices=False)
    big = cp.take_along_axis(Vt, cp.abs(Vt).argmax(axis=2)[:, :, None], axis=2)[:, :, 0]
    sign = cp.where(big < 0, -1.0, 1.0).astype(a.dtype)
    U, Vt = U * sign[:, None, :], Vt * sign[:, :, None]
    nan = cp.asarray(np.nan, dtype=a.dtype)
    s = cp.where(bad[:, None], nan, s)
    return _c(U), _c(s.astype(a.dtype)), _c(Vt), cp.where(bad, NONFINITE, 0).astype(cp.int32)


def _first_zero_pivots(A, singular):
    """The 1-based position of the first zero pivot of LAPACK's LU (getrf, partial pivoting) of
    each singular matrix: on the host, only for the few that failed."""
    import warnings
    import scipy.linalg
    status = np.zeros(A.shape[0], dtype=np.int32)
    for i in np.flatnonzero(cp.asnumpy(singular) if hasattr(cp, "asnumpy") else singular):
        with warnings.catch_warnings():             # singular is what we know it is
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            lu = scipy.linalg.lu_factor(np.asarray(A[i].get() if hasattr(A[i], "get") else A[i]),
                                        check_finite=False)[0]
        zero = np.flatnonzero(np.diagonal(lu) == 0)
        status[i] = zero[0] + 1 if zero.size else 1
    return cp.asarray(status)


def gesv(a, b, *, transpose=False):
    """``op(a)^-1 b`` by batched LU (cupy.linalg.solve: getrfBatched, getrsBatched)."""
    nbatch = _batch(a, b)
    n, k = b.shape[1:]
    A0, B = _full(a, nbatch), _full(b, nbatch)
    A = _t(A0) if transpose else A0
    if nbatch == 0 or n == 0 or k == 0:
        return cp.zeros((nbatch, n, k), b.dtype), cp.zeros(nbatch, dtype=cp.int32)
    bad = _nonfinite(A, B)
    sign, _ = _slogdet(_eye_where(bad, A))
    singular = (sign == 0) & ~bad
    X = cp.linalg.solve(_eye_where(bad | singular, A), cp.where(bad[:, None, None], 0, B))
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    if bool(singular.any()):
        # The zero pivot of A's own LU (also with transpose), as the CPU kernels name it.
        status = cp.where(singular, _first_zero_pivots(A0, singular),
                          status).astype(cp.int32)
    return _c(X), status
