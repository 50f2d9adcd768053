"""GPU backend: the backend contract of ``_backend.py`` on CuPy arrays, as ``_cpu.py`` implements
it on NumPy arrays.

Same functions, same arguments, same results: C-contiguous ``(nbatch, rows, cols)`` stacks in (a
stack of length 1 is broadcast), fresh stacks out, and an int32 status per matrix (0, -1 for a
non-finite entry read, or a positive LAPACK-style code) kept on the device, so that nothing here
but ``failed`` synchronises with the host. Matrices of order <= 32 run the fused RawKernels of
``kernels.cu`` (Cholesky and its backward, triangular solves, LQ/QR), and LQ/QR with a short side
up to 64 its block-per-matrix ``lq_block``; above that, triangular solves are cuBLAS ``trsm``
(batched, or one call per matrix for a few), Cholesky factors cuSOLVER's ``potrfBatched`` or, for
a few matrices, its 64-bit ``cusolverDnXpotrf``; the rest goes through ``cupy.linalg``.

The calls into a device library are small functions of their own (``_trsm_in_place``,
``_potrf_in_place``, ``_take_triangle``, ``_launch_tiles``, ``_launch_block``, the elementwise
kernels): the tests replace them by NumPy, SciPy and step-by-step emulations of the kernels to
check every rule built on them without a GPU.
"""
import functools
from importlib import resources

import cupy as cp
import numpy as np

# Absolute imports: the tests also load this file on NumPy under another name.
from adla._array_rules import (embed_part as _embed_part, extract_part as _extract_part,
                               gemm_operand_gradients, symmetric_from,
                               triangular_operand_gradient)

xp = cp
SMALL_ORDER = 32
BLOCK_ORDER = 64        # LQ/QR with a short side up to this (and a long side as shared memory
                        # allows) in lq_block, a thread block per matrix
FEW_LARGE = 8           # up to this many matrices above SMALL_ORDER, factor one by one
NONFINITE = -1
# cuBLAS enumerations (fixed by its ABI; named here so that the rules can be tested without it).
SIDE_LEFT, SIDE_RIGHT = 0, 1
FILL_LOWER, FILL_UPPER = 0, 1
OP_N, OP_T = 0, 1


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
    names = [f"{k}<{t}>" for k in ("fill_failed", "take_triangle") for t in ("float", "double")]
    names += [_tiles_name(k, t, lanes) for k in TILES_KERNELS for t in ("float", "double")
              for lanes in (4, 8, 16, 32)]
    names += [f"{k}<{t}>" for k in BLOCK_KERNELS for t in ("float", "double")]
    return cp.RawModule(code=code, options=("-std=c++17",), name_expressions=names)


TILES_KERNELS = ("potrf_tiles", "potrf_backward_tiles", "trsm_tiles", "lq_tiles")
BLOCK_KERNELS = ("lq_block",)
BLOCK_THREADS = 256


def _tiles_name(kernel, kind, lanes):
    return f"{kernel}<{kind}, {lanes}>"


def _launch_tiles(name, dtype, nbatch, order, elements, args):
    """A ``*_tiles`` kernel: ``lanes`` (the power of two >= order) lanes and ``elements(lanes)``
    elements of shared memory per matrix; up to four warps per block, as many as 48 KiB hold."""
    kind = "double" if dtype == np.float64 else "float"
    lanes = next(p for p in (4, 8, 16, 32) if p >= order)
    per_warp = (32 // lanes) * elements(lanes) * np.dtype(dtype).itemsize
    warps = max(1, min(4, (48 * 1024) // per_warp))
    per_block = warps * 32 // lanes                          # matrices per block
    kernel = _module().get_function(_tiles_name(name, kind, lanes))
    kernel(((nbatch + per_block - 1) // per_block,), (32 * warps,), args,
           shared_mem=warps * per_warp)


def _launch_block(name, dtype, nbatch, shared, args):
    """A ``*_block`` kernel: a block of BLOCK_THREADS threads per matrix and ``shared`` bytes of
    dynamic shared memory (more than the default 48 KiB where the device allows it)."""
    kind = "double" if dtype == np.float64 else "float"
    kernel = _module().get_function(f"{name}<{kind}>")
    if shared > 48 * 1024:
        kernel.max_dynamic_shared_size_bytes = shared
    kernel((nbatch,), (BLOCK_THREADS,), args, shared_mem=shared)


def _block_shared_limit():
    """The most dynamic shared memory a block may take on the current device, in bytes."""
    return _shared_limit_of(cp.cuda.runtime.getDevice())


@functools.lru_cache(maxsize=None)
def _shared_limit_of(device_id):
    return cp.cuda.Device(device_id).attributes.get("MaxSharedMemoryPerBlockOptin", 48 * 1024)


def _tile(lanes):
    """Elements of one padded tile (as kernels.cu lays it out)."""
    return lanes * (lanes + 1) + 1


def _take_triangle(stack, nbatch, triangle, out=None, transpose=False):
    """Flags (int32, 1 where an entry read is not finite) of the C-contiguous ``stack`` (length 1:
    one matrix for the whole batch), reading its ``triangle``: "lower", "upper", None for all of
    it, or "symmetric" for the symmetric matrix whose lower triangle it holds; with ``out``, what
    was read is also written there (zeros outside a triangle), of the transposed matrices with
    ``transpose``. One pass."""
    flags = cp.zeros(nbatch, dtype=cp.int32)
    rows, cols = stack.shape[1:]
    if nbatch == 0 or rows * cols == 0:
        return flags
    kind = "double" if stack.dtype == np.float64 else "float"
    kernel = _module().get_function(f"take_triangle<{kind}>")
    total = nbatch * rows * cols
    code = {None: 0, "lower": 1, "upper": 2, "symmetric": 3}[triangle]
    kernel((min((total + 255) // 256, 65536),), (256,),
           (stack, out if out is not None else np.uint64(0), flags, np.int64(nbatch),
            np.int32(rows), np.int32(cols), _step(stack), np.int32(code), np.int32(transpose)))
    return flags


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


# Elementwise kernels over (nbatch, n, n) C-contiguous stacks, element i at matrix i / (n n).
_EIGEN_COUPLING = """
    long long per = (long long)n * n, b = i / per;
    int r = (int)((i % per) / n), c = (int)(i % n);
    T gap = lam[b * n + c] - lam[b * n + r];
    T v = fabs(gap) <= tol[b] ? T(0) : W[i] / gap;
    if (r == c && has_dlam) v += dlam[b * n + r];
    out = v;
"""
_SYMMETRIC_PART = """
    long long per = (long long)n * n, b = i / per;
    int r = (int)((i % per) / n), c = (int)(i % n);
    out = T(0.5) * (G[i] + G[b * per + (long long)c * n + r]);
"""


@functools.lru_cache(maxsize=None)
def _elementwise(name):
    if name == "eigen_coupling":
        return cp.ElementwiseKernel(
            "raw T W, raw T lam, raw T dlam, raw T tol, int32 n, int32 has_dlam", "T out",
            _EIGEN_COUPLING, "adla_eigen_coupling")
    return cp.ElementwiseKernel("raw T G, int32 n", "T out", _SYMMETRIC_PART,
                                "adla_symmetric_part")


def _eigen_coupling(W, lam, dlam, tol):
    """``F * W + diag(dlam)``, ``F[i, j] = 1/(lam[j] - lam[i])`` and zero within ``tol`` (all
    contiguous stacks of one length; ``dlam`` None: zero), in one pass."""
    out = cp.empty_like(W)
    _elementwise("eigen_coupling")(W, lam, lam if dlam is None else dlam, tol,
                                   np.int32(W.shape[1]), np.int32(dlam is not None), out)
    return out


def _symmetric_part(G):
    """``(G + G^T) / 2`` of each matrix of the contiguous stack, in one pass."""
    out = cp.empty_like(G)
    _elementwise("symmetric_part")(G, np.int32(G.shape[1]), out)
    return out


def failed(status):
    return cp.asnumpy(cp.flatnonzero(status))


def out_of_memory(status):
    return False            # device workspace comes from CuPy, which raises OutOfMemoryError


def _step(stack):
    return np.int64(0 if stack.shape[0] == 1 else stack.shape[1] * stack.shape[2])


# ---- status helpers (all on the device) ----------------------------------------------------------

def _nonfinite(stack, nbatch=None, triangle=None):
    """True for the matrices of the C-contiguous ``stack`` (length 1: one matrix for all
    ``nbatch``) whose ``triangle`` (None: all of it) holds a non-finite entry; one pass."""
    return _take_triangle(stack, stack.shape[0] if nbatch is None else nbatch, triangle) != 0


def _zero_diagonal_status(T):
    zero = cp.diagonal(T, axis1=-2, axis2=-1) == 0
    return cp.where(zero.any(axis=-1), zero.argmax(axis=-1) + 1, 0).astype(cp.int32)


def _triangular_status(T, nbatch, lower, *others, triangular_others=False):
    """-1 where the triangle of ``T`` or one of the ``others`` (their same triangle with
    ``triangular_others``, else all of them) holds a non-finite entry, else the 1-based position
    of the first zero on the diagonal of ``T``, else 0."""
    triangle = "lower" if lower else "upper"
    bad = _take_triangle(T, nbatch, triangle)
    for other in others:
        bad |= _take_triangle(other, nbatch, triangle if triangular_others else None)
    zero = _zero_diagonal_status(T)
    return cp.where(bad != 0, NONFINITE, zero).astype(cp.int32)


def _eye_where(bad, A):
    """``A`` with the failing matrices replaced by the identity (their results become NaN)."""
    n = A.shape[-1]
    return cp.where(bad[:, None, None], cp.eye(n, dtype=A.dtype), A)


def _matrix_pointers(stack, nbatch):
    """The device addresses of the ``nbatch`` matrices of a C-contiguous stack (length 1: the
    same matrix each time), as cuBLAS's and cuSOLVER's batched routines take them."""
    step = 0 if stack.shape[0] == 1 else stack.strides[0]
    return stack.data.ptr + cp.arange(nbatch, dtype=cp.uint64) * cp.uint64(step)


# ---- triangular solves by cuBLAS trsm ------------------------------------------------------------

def trsm_flags(lower, transpose, rightside):
    """cuBLAS's ``(side, fill, operation)`` for the row-major problem ``op(T) X = B`` (``X op(T) =
    B`` with ``rightside``). cuBLAS is column-major, so it sees each matrix transposed: ``X^T
    op(T)^T = B^T``. The side and the triangle swap; the operation stays."""
    return (SIDE_LEFT if rightside else SIDE_RIGHT, FILL_UPPER if lower else FILL_LOWER,
            OP_T if transpose else OP_N)


def _trsm_in_place(T, X, side, fill, op, alpha):
    """cuBLAS ``trsm`` on every matrix of the C-contiguous stack ``X`` (overwritten) with the
    triangle of the C-contiguous stack ``T`` (length 1: one for all): batched, or one call per
    matrix for a few."""
    cublas, _ = _cusolver()
    handle = cp.cuda.device.get_cublas_handle()
    nbatch, rows, cols = X.shape
    m, n, lda = cols, rows, T.shape[-1]                 # X^T is cols x rows to cuBLAS
    scalar = np.array(alpha, dtype=X.dtype)
    double = X.dtype == np.float64
    mode = cublas.getPointerMode(handle)
    cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
    try:
        if nbatch <= FEW_LARGE:
            solve = cublas.dtrsm if double else cublas.strsm
            step = 0 if T.shape[0] == 1 else T.strides[0]
            for i in range(nbatch):
                solve(handle, side, fill, op, 0, m, n, scalar.ctypes.data,
                      T.data.ptr + i * step, lda, X[i].data.ptr, m)
        else:
            solve = cublas.dtrsmBatched if double else cublas.strsmBatched
            T_pointers, X_pointers = _matrix_pointers(T, nbatch), _matrix_pointers(X, nbatch)
            solve(handle, side, fill, op, 0, m, n, scalar.ctypes.data, T_pointers.data.ptr, lda,
                  X_pointers.data.ptr, m, nbatch)
    finally:
        cublas.setPointerMode(handle, mode)


def _solve(T, B, *, lower, transpose=False, rightside=False, alpha=1.0, status=True):
    """``(X, status)``: ``X = alpha op(T)^-1 B`` (``alpha B op(T)^-1`` with ``rightside``) for the
    C-contiguous stacks ``T`` (its triangle alone is read) and ``B``, either of length 1 for the
    whole batch; the status as the CPU's trsm (-1 for a non-finite entry of that triangle or of
    ``B``, else the position of the first zero on the diagonal), or None without ``status`` when
    the route would need passes of its own for it. Order <= 32: the ``trsm_tiles`` kernel, status
    included; above, cuBLAS trsm on a copy of ``B``."""
    nbatch, (rows, cols) = _batch(T, B), B.shape[1:]
    X = cp.empty((nbatch, rows, cols), dtype=B.dtype)
    n = T.shape[-1]
    if nbatch == 0 or X.size == 0:
        return X, cp.zeros(nbatch, dtype=cp.int32)
    if n <= SMALL_ORDER:
        code = cp.empty(nbatch, dtype=cp.int32)
        _launch_tiles("trsm_tiles", B.dtype, nbatch, n, _tile,
                      (T, B, X, code, np.int64(nbatch), np.int32(n),
                       np.int32(rows if rightside else cols), _step(T), _step(B),
                       np.int32(lower), np.int32(transpose), np.int32(rightside),
                       B.dtype.type(alpha)))
        return X, code
    nonfinite_b = _take_triangle(B, nbatch, None, out=X)     # the copy trsm overwrites
    code = None
    if status:
        nonfinite = nonfinite_b | _take_triangle(T, nbatch, "lower" if lower else "upper")
        code = cp.where(nonfinite != 0, NONFINITE, _zero_diagonal_status(T)).astype(cp.int32)
    _trsm_in_place(T, X, *trsm_flags(lower, transpose, rightside), alpha)
    return X, code


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


def gemm_jvp(a, b, c, da, db, dc, *, transpose_a=False, transpose_b=False, alpha=1.0,
             beta=0.0):
    """No fused kernel for the product's tangent here: the front end composes it."""
    return None


def sandwich(x, y, *, transpose=False, alpha=1.0):
    """No fused kernel for ``alpha op(x) y op(x)`` here: the front end composes it."""
    return None


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
    return _solve(a, b, lower=lower, transpose=transpose, rightside=rightside, alpha=alpha)


def trmm_backward(a, b, dc, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """No fused kernel for the trmm gradient here: the front end composes it."""
    return None


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


def _cusolver64_library():
    """cuSOLVER's 64-bit API (``cusolverDnXpotrf``), which CuPy does not bind: the functions of
    the libcusolver CuPy has loaded, through ctypes; None where it cannot be found."""
    import ctypes
    _cusolver()
    cp.cuda.device.get_cusolver_handle()                      # the library is loaded by now
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "libcusolver.so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            buffer_size, factor = library.cusolverDnXpotrf_bufferSize, library.cusolverDnXpotrf
        except (OSError, AttributeError):
            continue
        pointer, size, i64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64
        buffer_size.argtypes = [pointer, pointer, ctypes.c_int, i64, ctypes.c_int, pointer, i64,
                                ctypes.c_int, ctypes.POINTER(size), ctypes.POINTER(size)]
        factor.argtypes = [pointer, pointer, ctypes.c_int, i64, ctypes.c_int, pointer, i64,
                           ctypes.c_int, pointer, size, pointer, size, pointer]
        library.cusolverDnSetStream.argtypes = [pointer, pointer]
        params = pointer()
        if library.cusolverDnCreateParams(ctypes.byref(params)) != 0:
            continue
        return library, params
    return None


_CUSOLVER64: list = []      # [(library, params)] or [None], once looked up


def _xpotrf(stack, fill, status):
    """``cusolverDnXpotrf`` on each matrix of the stack; False where the 64-bit API is missing."""
    import ctypes
    if not _CUSOLVER64:
        _CUSOLVER64.append(_cusolver64_library())
    if _CUSOLVER64[0] is None:
        return False
    library, params = _CUSOLVER64[0]
    handle = cp.cuda.device.get_cusolver_handle()
    library.cusolverDnSetStream(handle, cp.cuda.get_current_stream().ptr)
    n = stack.shape[1]
    kind = 1 if stack.dtype == np.float64 else 0              # CUDA_R_64F, CUDA_R_32F
    device_bytes, host_bytes = ctypes.c_size_t(), ctypes.c_size_t()
    code = library.cusolverDnXpotrf_bufferSize(handle, params, fill, n, kind, stack.data.ptr, n,
                                               kind, ctypes.byref(device_bytes),
                                               ctypes.byref(host_bytes))
    if code != 0:
        raise RuntimeError(f"cusolverDnXpotrf_bufferSize failed with status {code}")
    device_work = cp.empty(max(device_bytes.value, 1), dtype=cp.uint8)
    host_work = np.empty(max(host_bytes.value, 1), dtype=np.uint8)
    for i in range(stack.shape[0]):
        code = library.cusolverDnXpotrf(handle, params, fill, n, kind, stack[i].data.ptr, n, kind,
                                        device_work.data.ptr, device_bytes.value,
                                        host_work.ctypes.data, host_bytes.value,
                                        status.data.ptr + 4 * i)
        if code != 0:
            raise RuntimeError(f"cusolverDnXpotrf failed with status {code}")
    return True


def _potrf_in_place(stack, fill, status):
    """cuSOLVER's Cholesky factor, in the column-major triangle ``fill``, of every matrix of the
    C-contiguous stack, its info per matrix in ``status``: one blocked call per matrix for a few
    (potrfBatched is slow on large matrices), ``potrfBatched`` for the rest."""
    _, cusolver = _cusolver()
    handle = cp.cuda.device.get_cusolver_handle()
    nbatch, n = stack.shape[:2]
    double = stack.dtype == np.float64
    if nbatch <= FEW_LARGE:
        if _xpotrf(stack, fill, status):
            return
        factor = cusolver.dpotrf if double else cusolver.spotrf
        size = (cusolver.dpotrf_bufferSize if double else cusolver.spotrf_bufferSize)(
            handle, fill, n, stack.data.ptr, n)
        work = cp.empty(max(size, 1), dtype=stack.dtype)
        for i in range(nbatch):
            factor(handle, fill, n, stack[i].data.ptr, n, work.data.ptr, size,
                   status.data.ptr + 4 * i)
    else:
        factor = cusolver.dpotrfBatched if double else cusolver.spotrfBatched
        pointers = _matrix_pointers(stack, nbatch)
        factor(handle, fill, n, pointers.data.ptr, n, status.data.ptr, nbatch)


def potrf(a, *, lower=True):
    nbatch, n = a.shape[0], a.shape[1]
    out = cp.empty((nbatch, n, n), dtype=a.dtype)
    status = cp.zeros(nbatch, dtype=cp.int32)
    if nbatch == 0 or n == 0:
        return out, status
    if n <= SMALL_ORDER:
        _launch_tiles("potrf_tiles", a.dtype, nbatch, n, _tile,
                      (a, out, status, np.int64(nbatch), np.int32(n), _step(a), np.int32(lower)))
        return out, status
    # cuSOLVER's column-major lower factor: row-major, it reads and writes the upper triangle.
    # For an upper factor that is the triangle asked for; for a lower one, the symmetric matrix
    # goes in and the factor comes out transposed (measured on an H200, 1 x 4096 float64: 2.2 ms,
    # against 5.0 ms for the column-major upper routine on the triangle as it is; potrfBatched's
    # column-major upper gave wrong factors).
    bad = _take_triangle(a, nbatch, "symmetric" if lower else "upper", out)
    _potrf_in_place(out, FILL_LOWER, status)
    if lower:
        factor = cp.empty_like(out)
        _take_triangle(out, nbatch, "lower", factor, transpose=True)
        out = factor
    return out, cp.where(bad != 0, NONFINITE, status).astype(cp.int32)


def potrf_backward(dl, l, *, lower=True):
    nbatch, n = _batch(dl, l), l.shape[1]
    out = cp.empty((nbatch, n, n), dtype=l.dtype)
    status = cp.zeros(nbatch, dtype=cp.int32)
    if nbatch == 0 or n == 0:
        return out, status
    if n <= SMALL_ORDER:
        _launch_tiles("potrf_backward_tiles", l.dtype, nbatch, n, lambda p: 2 * _tile(p),
                      (dl, l, out, status, np.int64(nbatch), np.int32(n), _step(dl), _step(l),
                       np.int32(lower)))
        return out, status
    status = _triangular_status(l, nbatch, lower, dl, triangular_others=True)
    L, D = _triangle(l, lower), _triangle(dl, lower)
    if not lower:                                             # lower form: L = U^T
        L, D = _c(_t(L)), _t(D)
    M = cp.tril(cp.matmul(_t(L), D))
    S = _c(0.5 * (M + _t(cp.tril(M, -1))))                    # (P + P^T)/2
    X, _ = _solve(L, S, lower=True, transpose=True, status=False)     # L^-T S
    G, _ = _solve(L, X, lower=True, rightside=True, status=False)     # X L^-1
    return _c(0.5 * (G + _t(G))), status


def potri(l, *, lower=True):
    n = l.shape[1]
    W, status = _solve(l, cp.eye(n, dtype=l.dtype)[None], lower=lower)     # T^-1
    Ainv = cp.matmul(_t(W), W) if lower else cp.matmul(W, _t(W))
    return _c(cp.tril(Ainv) + _t(cp.tril(Ainv, -1))), status


def potrs(l, b, *, lower=True):
    # lower: A = L L^T, X = L^-T L^-1 B;  upper: A = U^T U, X = U^-1 U^-T B.
    Y, status = _solve(l, b, lower=lower, transpose=not lower)
    X, _ = _solve(l, Y, lower=lower, transpose=lower, status=False)
    return X, status


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


def _orthogonal_kernel(a, transposed):
    """The LQ of each matrix (``(Q, L, status)``), or with ``transposed`` the QR as the LQ of its
    transpose (``(Q, R, status)``), from ``lq_tiles`` (both sides at most SMALL_ORDER) or
    ``lq_block`` (short side at most BLOCK_ORDER, the matrix and Q in shared memory); None where
    neither fits: the caller takes cuSOLVER then."""
    nbatch, m, n = a.shape[0], min(a.shape[1:]), max(a.shape[1:])
    shared = (2 * m * n + 2 * m) * a.dtype.itemsize
    tiles = n <= SMALL_ORDER
    if not tiles and (m > BLOCK_ORDER or shared > _block_shared_limit()):
        return None
    Q, T = cp.empty(a.shape, dtype=a.dtype), cp.empty((nbatch, m, m), dtype=a.dtype)
    status = cp.zeros(nbatch, dtype=cp.int32)
    if nbatch and m:
        args = (a, Q, T, status, np.int64(nbatch), np.int32(m), np.int32(n), np.int64(m * n),
                np.int32(transposed))
        if tiles:
            _launch_tiles("lq_tiles", a.dtype, nbatch, n, lambda p: p * (p + 2), args)
        else:
            _launch_block("lq_block", a.dtype, nbatch, shared, args)
    return Q, T, status


def geqrf(a):
    factors = _orthogonal_kernel(a, True)
    if factors is not None:
        return factors
    bad = _nonfinite(a)
    Q, R = _qr(cp.where(bad[:, None, None], 0, a))
    s = _positive_diagonal_signs(R)
    Q, R = Q * s[:, None, :], R * s[:, :, None]
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    return _c(Q), _c(R), status


def gelqf(a):
    factors = _orthogonal_kernel(a, False)
    if factors is not None:
        return factors
    Qt, Rt, status = geqrf(_c(_t(a)))                         # A^T = Q' R'  =>  A = R'^T Q'^T
    return _c(_t(Qt)), _c(_t(Rt)), status


def trsm_jvp(a, b, da, db, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """No fused kernel for the triangular solve's tangent here: the front end composes it."""
    return None


def potri_backward(l, ainv, dainv, *, lower=True):
    """No fused kernel for the potri gradient here: the front end composes it."""
    return None


def potrs_backward(l, x, dx, *, lower=True):
    """No fused kernel for the potrs gradient here: the front end composes it."""
    return None


def potrf_jvp(a, da, *, lower=True):
    """No fused kernel for the Cholesky tangent here: the front end composes it."""
    return None


def orthogonal_backward(dq, dt, q, t, lq):
    """No fused kernel for the gelqf/geqrf gradient here: the front end composes it."""
    return None


def orthogonal_jvp(a, da, lq):
    """No fused kernel for the gelqf/geqrf tangent here: the front end composes it."""
    return None


def syevd(a):
    nbatch, n = a.shape[0], a.shape[1]
    bad = _nonfinite(a, triangle="lower")
    if nbatch == 0 or n == 0:
        return (cp.empty((nbatch, n, n), a.dtype), cp.empty((nbatch, n), a.dtype),
                cp.zeros(nbatch, dtype=cp.int32))
    A = _eye_where(bad, a)
    if nbatch <= FEW_LARGE:
        # cupy.linalg.eigh takes any stack to syevjBatched (Jacobi), which is slow on large
        # matrices (H200, 1 x 1024 float64: 128 ms with the backward); one matrix at a time it
        # calls the divide-and-conquer syevd.
        parts = [cp.linalg.eigh(A[i], UPLO="L") for i in range(nbatch)]
        lam, V = cp.stack([p[0] for p in parts]), cp.stack([p[1] for p in parts])
    else:
        lam, V = cp.linalg.eigh(A, UPLO="L")
    U = _t(V)
    big = cp.take_along_axis(U, cp.abs(U).argmax(axis=2)[:, :, None], axis=2)
    U = U * cp.where(big < 0, -1.0, 1.0).astype(a.dtype)
    return _c(U), _c(lam), cp.where(bad, NONFINITE, 0).astype(cp.int32)


def syevd_backward(du, dlam, u, lam, tolerance):
    """dA = U^T S U, S the symmetric part of diag(dlam) + F * (U dU^T) (see the CPU kernel): two
    elementwise kernels around the batched products (0.65 -> 0.24 ms at 10000 x 16 on an H200)."""
    n, nbatch = u.shape[1], _batch(du, dlam, u, lam)
    if du is None:
        W = cp.zeros((nbatch, n, n), u.dtype)
    else:
        W = _c(_full(cp.matmul(u, _t(du)), nbatch))
    inner = _eigen_coupling(W, _c(_full(lam, nbatch)),
                            None if dlam is None else _c(_full(dlam, nbatch)),
                            _c(_full(tolerance.astype(u.dtype, copy=False), nbatch)))
    return _symmetric_part(cp.matmul(cp.matmul(_t(u), inner), u))


def _svd_couplings(s, tolerance):
    """``F[i, j] = 1/(s[j]^2 - s[i]^2)`` and ``1/s``, zero within each matrix's tolerance."""
    gap = s[:, None, :] - s[:, :, None]                        # s[j] - s[i] at [i, j]
    close = abs(gap) <= tolerance[:, None, None]
    F = 1.0 / cp.where(close, cp.inf, gap * (s[:, None, :] + s[:, :, None]))
    return F, 1.0 / cp.where(s > tolerance[:, None], s, cp.inf)


def gesvd_tangent(da, u, s, vt, tolerance):
    """ds = diag(P), dU, dVt from P = U^T dA V (see the CPU kernel), from batched products."""
    m, k = u.shape[1], u.shape[2]
    n, nbatch = vt.shape[2], _batch(da, u, s, vt)
    s = _full(s, nbatch)
    F, inverse_s = _svd_couplings(s, _full(tolerance, nbatch))
    UtdA = cp.matmul(_t(u), da)
    P = cp.matmul(UtdA, _t(vt))
    PS, SP = P * s[:, None, :], s[:, :, None] * P
    dU = cp.matmul(u, F * (PS + _t(PS)))
    if m > k:
        dU = dU + (cp.matmul(da, _t(vt)) - cp.matmul(u, P)) * inverse_s[:, None, :]
    dVt = cp.matmul(_t(F * (SP + _t(SP))), vt)
    if n > k:
        dVt = dVt + inverse_s[:, :, None] * (UtdA - cp.matmul(P, vt))
    ds = cp.diagonal(P, axis1=1, axis2=2)
    return tuple(_c(cp.broadcast_to(x, (nbatch,) + x.shape[1:])) for x in (dU, ds, dVt))


def gesvd_backward(du, ds, dvt, u, s, vt, tolerance):
    """dA = U (J S + diag(ds) + S K) Vt plus the projections of a tall or wide A (see the CPU
    kernel), from batched products."""
    m, k = u.shape[1], u.shape[2]
    n, nbatch = vt.shape[2], _batch(du, ds, dvt, u, s, vt)
    s = _full(s, nbatch)
    F, inverse_s = _svd_couplings(s, _full(tolerance, nbatch))
    inner = cp.zeros((nbatch, k, k), dtype=u.dtype)
    if du is not None:
        UtdU = cp.matmul(_t(u), du)
        inner = inner + F * (UtdU - _t(UtdU)) * s[:, None, :]
    if dvt is not None:
        VtdV = cp.matmul(vt, _t(dvt))
        inner = inner + s[:, :, None] * (F * (VtdV - _t(VtdV)))
    if ds is not None:
        inner = inner + _full(ds, nbatch)[:, :, None] * cp.eye(k, dtype=u.dtype)
    dA = cp.matmul(cp.matmul(u, inner), vt)
    if du is not None and m > k:
        dA = dA + cp.matmul((du - cp.matmul(u, UtdU)) * inverse_s[:, None, :], vt)
    if dvt is not None and n > k:
        dA = dA + cp.matmul(u, inverse_s[:, :, None] * (dvt - cp.matmul(_t(VtdV), vt)))
    return _c(cp.broadcast_to(dA, (nbatch, m, n)))


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


def inverse(a, *, transpose=False, scale=None):
    bad = _nonfinite(a)
    A = _eye_where(bad, a)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return _c(A.copy()), cp.zeros(a.shape[0], dtype=cp.int32)
    sign, _ = _slogdet(A)
    singular = sign == 0
    Ainv = cp.linalg.inv(_eye_where(singular, A))
    status = cp.where(bad, NONFINITE, cp.where(singular, 1, 0)).astype(cp.int32)
    return _c(_scaled(_t(Ainv) if transpose else Ainv, scale)), status


def slogdet(a):
    bad = _nonfinite(a)
    sign, logabsdet = _slogdet(_eye_where(bad, a))
    nan = cp.asarray(np.nan, dtype=a.dtype)
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    return (_c(cp.where(bad, nan, sign).astype(a.dtype)),
            _c(cp.where(bad, nan, logabsdet).astype(a.dtype)), status)


def cofactor(a, *, scale=None):
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
    return _c(_scaled(C, scale)), cp.where(bad, NONFINITE, 0).astype(cp.int32)


def _scaled(x, scale):
    """Each matrix of x times its own scalar of ``scale`` (length 1: shared; None: x)."""
    return x if scale is None else x * scale.reshape(-1, 1, 1)


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


def gesv_jvp(a, b, da, db, *, transpose=False):
    """No fused kernel for the solve's tangent here: the front end composes it."""
    return None


def gesv(a, b, *, transpose=False):
    """``op(a)^-1 b`` by batched LU (cupy.linalg.solve: getrfBatched, getrsBatched)."""
    nbatch = _batch(a, b)
    n, k = b.shape[1:]
    A0, B = _full(a, nbatch), _full(b, nbatch)
    A = _t(A0) if transpose else A0
    if nbatch == 0 or n == 0 or k == 0:
        return cp.zeros((nbatch, n, k), b.dtype), cp.zeros(nbatch, dtype=cp.int32)
    bad = _nonfinite(a, nbatch) | _nonfinite(b, nbatch)      # A^T has the same entries
    sign, _ = _slogdet(_eye_where(bad, A))
    singular = (sign == 0) & ~bad
    X = cp.linalg.solve(_eye_where(bad | singular, A), cp.where(bad[:, None, None], 0, B))
    status = cp.where(bad, NONFINITE, 0).astype(cp.int32)
    if bool(singular.any()):
        # The zero pivot of A's own LU (also with transpose), as the CPU kernels name it.
        status = cp.where(singular, _first_zero_pivots(A0, singular),
                          status).astype(cp.int32)
    return _c(X), status


def extract_part(a, part, offset):
    """The diagonal or packed triangle of each matrix: one ``take`` along the flattened
    matrices."""
    return _extract_part(cp, a, part, offset)


def embed_part(v, n, part, offset):
    """Each vector placed in its part of an n x n matrix of zeros: one scatter."""
    return _embed_part(cp, v, n, part, offset)
