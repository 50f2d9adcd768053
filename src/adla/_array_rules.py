"""Rules written once against the array module (NumPy or CuPy), shared by the backends and the
operators: they sit below both and import nothing of adla.

- Stacks for a batch whose other operand is shared. When one operand of a product or triangular
  solve is shared by the whole batch (a stack of length 1) and the other is not, the batch is one
  operation on the stacked matrices: ``op(A_b) B`` for every ``b`` is the matrix of all
  ``op(A_b)`` one below the other, times ``B``. That is one BLAS call instead of one per matrix,
  and a sum over the batch of ``X_b^T Y_b`` is one product of two stacked matrices.
- Gradients built from a backend's ``gemm``: the operands of a product, the triangular operand of
  trmm/trsm.
- The tolerance below which eigenvalues count as one eigenspace in ``syevd_backward``.
- The positions of a diagonal or packed triangle, and the gather and scatter of a backend
  without kernels for them.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray


def stacked_rows(x, transposed=False):
    """The matrices of stack ``x`` (each transposed, if asked) one below the other, as a stack
    of one matrix ``(1, nbatch * rows, cols)``; a copy only where a transpose needs one."""
    y = x.transpose(0, 2, 1) if transposed else x
    return y.reshape(1, y.shape[0] * y.shape[1], y.shape[2])


def unstacked(rows, nbatch, transposed=False):
    """The inverse of :func:`stacked_rows`: ``(nbatch, rows, cols)``, C-contiguous."""
    y = rows.reshape(nbatch, rows.shape[1] // nbatch, rows.shape[2])
    if transposed:
        y = y.transpose(0, 2, 1)
    return y if y.flags.c_contiguous else y.copy()


def shared(*stacks):
    """Which of two stacks (0 or 1) is shared by a longer batch of the other, else None."""
    first, second = stacks[0].shape[0], stacks[1].shape[0]
    if first == 1 and second > 1:
        return 0
    if second == 1 and first > 1:
        return 1
    return None


def summed_product(gemm, P, Q, transpose_p, transpose_q, *, nbatch, alpha=1.0, triangle=None):
    """``alpha * sum_b op(P_b)^T op(Q_b)`` over a batch of ``nbatch`` as one product of the
    stacked ``op(P_b)`` and ``op(Q_b)`` (``op`` transposes where asked; stacks of length 1 are
    broadcast), through a backend's ``gemm``: ``(1, cols of op(P), cols of op(Q))``. The
    gradient of an operand shared by the batch, without a gradient per matrix to sum."""
    P, Q = (x.repeat(nbatch, axis=0) if x.shape[0] != nbatch else x for x in (P, Q))
    return gemm(stacked_rows(P, transpose_p), stacked_rows(Q, transpose_q), transpose_a=True,
                alpha=alpha, triangle=triangle)


def part_length(n, part, offset):
    """How many entries a backend's ``extract_part`` reads from an n x n matrix."""
    side = max(n - abs(offset), 0)
    return side if part == "diagonal" else side * (side + 1) // 2


@functools.lru_cache(maxsize=64)
def part_positions(n, part, offset):
    """Flat positions (row * n + column) of ``extract_part``'s part of an n x n matrix, in its
    order: a slice for the diagonal (a strided view), else an index array. Cached: at n = 1000
    building them costs more than the gather."""
    if part == "diagonal":
        start = max(-offset, 0) * n + max(offset, 0)
        return slice(start, start + part_length(n, part, offset) * (n + 1), n + 1)
    if part == "lower":
        rows, cols = np.tril_indices(n, offset)
    else:
        cols, rows = np.tril_indices(n, -offset)
    return rows * n + cols


def extract_part(xp, a, part, offset):
    """``extract_part`` of the stack ``a`` with ``xp``'s own operations: one take along the
    flattened matrices."""
    b, n = a.shape[0], a.shape[1]
    positions = part_positions(n, part, offset)
    flat = a.reshape(b, n * n)
    if isinstance(positions, slice):
        return xp.ascontiguousarray(flat[:, positions])
    return xp.take(flat, xp.asarray(positions), axis=1)


def embed_part(xp, v, n, part, offset):
    """``embed_part`` of the stack ``v`` with ``xp``'s own operations."""
    out = xp.zeros((v.shape[0], n, n), dtype=v.dtype)
    positions = part_positions(n, part, offset)
    at = positions if isinstance(positions, slice) else xp.asarray(positions)
    out.reshape(v.shape[0], n * n)[:, at] = v
    return out


def triangle(xp, a, lower):
    """The lower (or upper) triangle of the matrices of ``a``, the rest zero."""
    return xp.tril(a) if lower else xp.triu(a)


def symmetric_from(xp, a, lower):
    """The symmetric matrices whose lower (or upper) triangle is read from ``a``."""
    if lower:
        return xp.tril(a) + xp.tril(a, -1).transpose(0, 2, 1)
    return xp.triu(a) + xp.triu(a, 1).transpose(0, 2, 1)


def transposed(xp, a):
    """The matrices of stack ``a`` transposed, C-contiguous."""
    return xp.ascontiguousarray(a.transpose(0, 2, 1))


def gemm_operand_gradients(gemm, dD, A, B, *, transpose_a, transpose_b, alpha):
    """``(dA, dB)`` of ``D = alpha op(A) op(B)`` as two products of a backend's ``gemm``."""
    ta, tb = transpose_a, transpose_b
    if ta:
        dA = gemm(B, dD, transpose_a=tb, transpose_b=True, alpha=alpha)
    else:
        dA = gemm(dD, B, transpose_b=not tb, alpha=alpha)
    if tb:
        dB = gemm(dD, A, transpose_a=True, transpose_b=ta, alpha=alpha)
    else:
        dB = gemm(A, dD, transpose_a=not ta, alpha=alpha)
    return dA, dB


def triangular_operand_gradient(gemm, P, Q, *, transpose, rightside, lower, alpha):
    """``dA`` of trmm/trsm whose ``d op(A)`` is ``alpha P Q^T`` (``alpha Q^T P`` if rightside),
    transposed back when ``transpose`` and kept on the triangle that is read; ``gemm`` is a
    backend's."""
    read = dict(alpha=alpha, triangle="lower" if lower else "upper")
    if not rightside:
        return (gemm(Q, P, transpose_b=True, **read) if transpose
                else gemm(P, Q, transpose_b=True, **read))
    return (gemm(P, Q, transpose_a=True, **read) if transpose
            else gemm(Q, P, transpose_a=True, **read))


def degenerate_tolerance(lam: ArrayLike, dtype: DTypeLike) -> NDArray[np.floating]:
    """The tolerance below which ``syevd_backward`` treats eigenvalues as one eigenspace.

    Per matrix, ``64 * n * eps(dtype) * max|lam|``: eigenvalues closer than this are one
    eigenspace, and the coupling between them is dropped from the gradient.

    Parameters
    ----------
    lam : array_like, shape (..., n)
        Eigenvalues (NumPy or CuPy).
    dtype : dtype
        The precision whose ``eps`` is used.

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> import numpy as np, adla
    >>> float(adla.degenerate_tolerance(np.array([1.0, -4.0]), np.float64) / np.finfo(float).eps)
    512.0
    """
    values: Any = lam if hasattr(lam, "shape") else np.asarray(lam)      # CuPy stays CuPy
    n = values.shape[-1]
    magnitudes = abs(values)
    if isinstance(values, np.ndarray) and 0 < n <= 16:
        # NumPy reduces a short last axis at ~5 ns an entry (0.4 ms at 10000 x 8); a column at
        # a time runs at the vector rate. np.maximum propagates NaN as max does.
        scale = magnitudes[..., 0].copy()
        for j in range(1, n):
            np.maximum(scale, magnitudes[..., j], out=scale)
    else:
        scale = magnitudes.max(axis=-1) if n else magnitudes.sum(axis=-1)
    return 64 * n * np.finfo(dtype).eps * scale
