"""The GPU backend module loaded on any machine, with NumPy standing in for CuPy: its definitions
and its array-level rules can then be checked against the CPU backend without a GPU. Its calls
into device libraries are replaced by stand-ins that take the same arguments: SciPy's BLAS and
LAPACK for cuBLAS trsm and cuSOLVER potrf (column-major conventions included), NumPy for the
take_triangle kernel, and step-by-step emulations of the trsm_tiles and lq_tiles kernels (also
standing in for lq_block); the Cholesky kernels run on a GPU only. So the rules that lead to
those arguments are checked too."""
import importlib.util
import sys
import types

import numpy as np
import scipy.linalg.blas
import scipy.linalg.lapack


def take_triangle(stack, nbatch, triangle, out=None, transpose=False):
    """``_take_triangle`` of the backend (a RawKernel there)."""
    part = np.broadcast_to(stack, (nbatch,) + stack.shape[1:])
    if transpose:
        part = np.swapaxes(part, 1, 2)
    if triangle == "symmetric":
        part = np.tril(part) + np.swapaxes(np.tril(part, -1), 1, 2)
    elif triangle is not None:
        part = np.tril(part) if triangle == "lower" else np.triu(part)
    if out is not None:
        out[...] = part
    return (~np.isfinite(part)).any(axis=(1, 2)).astype(np.int32) if nbatch else \
        np.zeros(0, np.int32)


def trsm_tiles(a, b, out, status, nbatch, n, count, a_step, b_step, lower, transpose, rightside,
               alpha):
    """The ``trsm_tiles`` RawKernel, statement by statement for one matrix at a time (the tile,
    its padding and reversal, the vectors read and written in reverse), from the arguments the
    backend launches it with."""
    N = next(p for p in (4, 8, 16, 32) if p >= n)
    A_all, B_all, X_all = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    reversed_ = (bool(lower) == bool(transpose)) != bool(rightside)
    offset = N - n if reversed_ else 0
    along, across = (1, n) if rightside else (count, 1)
    for m in range(nbatch):
        A = A_all[m * a_step:m * a_step + n * n].reshape(n, n)
        R = np.zeros((N, N))
        ok = True
        for g in range(n):
            for i in range(n):
                if (g <= i) if lower else (g >= i):
                    r, c = (i, g) if lower else (g, i)
                    if reversed_:
                        r, c = N - 1 - c, N - 1 - r
                    R[r, c] = A[i, g]
                    ok = ok and np.isfinite(A[i, g])
        for g in range(N):
            if not offset <= g < offset + n:
                R[g, g] = 1.0
        for v in range(count):
            x = np.zeros(N)
            for i in range(N):
                e = N - 1 - i if reversed_ else i
                x[i] = B_all[m * b_step + v * across + e * along] if e < n else 0.0
            ok = ok and np.isfinite(x).all()
            with np.errstate(divide="ignore", invalid="ignore"):
                for i in range(N):
                    x[i] = (x[i] - R[i, :i] @ x[:i]) / R[i, i]
            for i in range(N):
                e = N - 1 - i if reversed_ else i
                if e < n:
                    X_all[m * n * count + v * across + e * along] = alpha * x[i]
        zero = np.flatnonzero(np.diagonal(A) == 0)
        status[m] = -1 if not ok else (zero[0] + 1 if zero.size else 0)


def lq_tiles(a, q_out, l_out, status, nbatch, m, n, a_step, transposed):
    """The ``lq_tiles`` RawKernel step by step (lane g's column of B as column g of an array),
    from the arguments the backend launches it with; ``lq_block`` takes the same arguments and
    computes the same reflectors (B's rows in shared memory, a warp per row)."""
    N = next((p for p in (4, 8, 16, 32) if p >= n), n)      # lq_block: no padding
    A_all, Q_all, L_all = a.reshape(-1), q_out.reshape(-1), l_out.reshape(-1)
    for k in range(nbatch):
        src = A_all[k * a_step:k * a_step + m * n]
        B = np.zeros((N, N))
        for i in range(m):
            for g in range(n):
                B[i, g] = src[g * m + i] if transposed else src[i * n + g]
        ok = np.isfinite(B).all()
        taus, signs = np.zeros(N), np.ones(N)
        with np.errstate(invalid="ignore", divide="ignore"):
            for t in range(m):
                alpha, tail = B[t, t], np.sum(B[t, t + 1:] ** 2)
                beta, tau, scale = alpha, 0.0, 0.0
                if tail > 0:
                    norm = np.sqrt(alpha * alpha + tail)
                    beta = -norm if alpha >= 0 else norm
                    tau, scale = (beta - alpha) / beta, 1.0 / (alpha - beta)
                v = np.where(np.arange(N) > t, B[t] * scale, 0.0)
                v[t] = 1.0
                for r in range(t + 1, m):
                    B[r] -= tau * (B[r] @ v) * v
                B[t, t + 1:] = v[t + 1:]
                B[t, t] = beta
                taus[t], signs[t] = tau, -1.0 if beta < 0 else 1.0
            Q = np.eye(N)
            for t in range(m - 1, -1, -1):
                v = np.where(np.arange(N) > t, B[t], 0.0)
                v[t] = 1.0
                for r in range(t, m):
                    Q[r] -= taus[t] * (Q[r] @ v) * v
        L = np.tril(B[:m, :m]) * signs[:m]
        Q = Q[:m, :n] * signs[:m, None]
        if transposed:
            L, Q = L.T, Q.T
        L_all[k * m * m:(k + 1) * m * m] = L.ravel()
        Q_all[k * m * n:(k + 1) * m * n] = Q.ravel()
        status[k] = 0 if ok else -1


def eigen_coupling(W, lam, dlam, tol):
    """``_eigen_coupling`` of the backend (an elementwise kernel there)."""
    assert W.shape[0] == lam.shape[0] == tol.shape[0] and W.flags.c_contiguous
    gap = lam[:, None, :] - lam[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.abs(gap) <= tol[:, None, None], 0.0, W / gap)
    if dlam is not None:
        out[:, np.arange(W.shape[1]), np.arange(W.shape[1])] += dlam
    return out


def symmetric_part(G):
    """``_symmetric_part`` of the backend (an elementwise kernel there)."""
    return 0.5 * (G + np.swapaxes(G, 1, 2))


def launch_block(name, dtype, nbatch, shared, args):
    """``_launch_block`` of the backend: lq_block as the lq_tiles emulation, after checking
    that ``shared`` bytes hold the block's matrix, Q, taus and signs."""
    assert name == "lq_block"
    m, n = args[5], args[6]
    assert shared == (2 * m * n + 2 * m) * np.dtype(dtype).itemsize
    lq_tiles(*[a.item() if isinstance(a, np.generic) else a for a in args])


def launch_tiles(name, dtype, nbatch, n, elements, args):
    """``_launch_tiles`` of the backend for the kernels emulated here."""
    kernels = {"trsm_tiles": trsm_tiles, "lq_tiles": lq_tiles}
    if name not in kernels:
        raise NotImplementedError(f"{name} runs on a GPU only")
    kernels[name](*[a.item() if isinstance(a, np.generic) else a for a in args])


def trsm_in_place(T, X, side, fill, op, alpha):
    """``_trsm_in_place`` of the backend (cuBLAS trsm there), by the column-major BLAS of SciPy
    with the same flags: each C-contiguous matrix is handed over as the Fortran-ordered view of
    its transpose, as cuBLAS would read it."""
    solve = scipy.linalg.blas.dtrsm if X.dtype == np.float64 else scipy.linalg.blas.strsm
    for i in range(X.shape[0]):
        t = T[0 if T.shape[0] == 1 else i]
        X[i] = solve(alpha, t.T, X[i].T, side=side, lower=int(fill == 0), trans_a=op).T


def potrf_in_place(stack, fill, status):
    """``_potrf_in_place`` of the backend (cuSOLVER potrf there), by LAPACK on the same
    column-major view; only the triangle ``fill`` is read and written."""
    for i in range(stack.shape[0]):
        factor = scipy.linalg.lapack.dpotrf if stack.dtype == np.float64 else \
            scipy.linalg.lapack.spotrf
        lower = fill == 0
        c, info = factor(stack[i].T, lower=int(lower), clean=0)
        keep = np.tril(np.ones(c.shape, bool)) if lower else np.triu(np.ones(c.shape, bool))
        stack[i] = np.where(keep, c, stack[i].T).T
        status[i] = info


def gpu_backend_on_numpy():
    stand_in = types.ModuleType("cupy")
    stand_in.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    origin = importlib.util.find_spec("adla._gpu.backend").origin
    spec = importlib.util.spec_from_file_location("adla_gpu_backend_on_numpy", origin)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in
    try:
        spec.loader.exec_module(module)
        module._take_triangle = take_triangle
        module._launch_tiles = launch_tiles
        module._launch_block = launch_block
        module._eigen_coupling = eigen_coupling
        module._symmetric_part = symmetric_part
        module._block_shared_limit = lambda: 227 * 1024     # an H100's
        module._trsm_in_place = trsm_in_place
        module._potrf_in_place = potrf_in_place
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
    return module
