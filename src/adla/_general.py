"""General (non-symmetric) matrices: the thin SVD and the LU solve, with their reverse-mode
and forward-mode rules, each right below its forward.

The SVD gradient is the one of Townsend, "Differentiating the singular value decomposition"
(2016), with the degenerate-subspace rule of :func:`syevd_backward`; the solve's is that of
``trsm`` with the LU in place of the triangle (Giles, "An extended collection of matrix
derivative results", 2008).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_rules import degenerate_tolerance
from ._frontend import backward_call, forward_call, jvp_call, not_converged
from ._spec import documented_jvp

Array = NDArray[np.floating]      # what every operator returns


def zero_pivot(code):
    return f"is singular: pivot {code - 1} of its LU factorization is exactly zero"


# ---- gesvd --------------------------------------------------------------------------------------

def gesvd(A: ArrayLike, *, check: bool = True) -> tuple[Array, Array, Array]:
    """Thin singular value decomposition ``A = U@diag(s)@Vt``, batched.

    For an m x n ``A`` and ``k = min(m, n)``: ``U`` is m x k with orthonormal columns, ``s`` has
    ``k`` non-negative entries in descending order (NumPy's order) and ``Vt`` is k x n with
    orthonormal rows. Signs are fixed so that the output is deterministic: in each row of
    ``Vt`` the entry of largest magnitude is positive (the first one on ties), and ``U``'s
    column follows it. For batches of small matrices (both sides up to 32, or in batches of at
    least 8 the short side up to 32 and the long side up to 1024) one-sided Jacobi on 8 matrices
    at once; otherwise, and for a matrix Jacobi does not settle,
    LAPACK ``gesdd`` per matrix, ``gesvd`` where it does not converge.

    Parameters
    ----------
    A : array_like, shape (..., m, n)
        Matrices of any shape.
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    U : ndarray, shape (..., m, k)
    s : ndarray, shape (..., k)
    Vt : ndarray, shape (..., k, n)

    Raises
    ------
    LinAlgError
        With `check`, for a non-finite entry or a failure to converge.
    ValueError
        If ``A`` is not a matrix.
    TypeError
        If its dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> U, s, Vt = adla.gesvd(np.array([[3.0, 0.0], [0.0, -4.0], [0.0, 0.0]]))
    >>> s
    array([4., 3.])
    >>> Vt
    array([[0., 1.],
           [1., 0.]])
    >>> U
    array([[ 0.,  1.],
           [-1.,  0.],
           [ 0.,  0.]])
    """
    f = forward_call("gesvd", dict(A=A))
    U, s, Vt, status = f.backend.gesvd(f.stack("A"))
    return f.finish((U, s, Vt), status, check, not_converged)


def gesvd_backward(dU: Optional[ArrayLike], ds: Optional[ArrayLike], dVt: Optional[ArrayLike],
                   U: ArrayLike, s: ArrayLike, Vt: ArrayLike) -> Array:
    """Gradient of :func:`gesvd`; any of ``dU``, ``ds``, ``dVt`` may be None (zero).

    With ``V = Vt^T``, ``dV = dVt^T`` and ``F[i, j] = 1/(s[j]^2 - s[i]^2)``::

        dA = U@(J@S + diag(ds) + S@K)@Vt + (I - U@U^T)@dU@S^-1@Vt + U@S^-1@dVt@(I - V@Vt)
        J = F*(U^T@dU - dU^T@U),   K = F*(Vt@dV - dV^T@V)

    (the last two terms vanish for square ``A``). Singular values closer than the tolerance
    ``64*k*eps*max(s)`` (:func:`degenerate_tolerance` of ``s``) form one singular subspace and
    ``F`` is zero between them; a term divided by a singular value below the tolerance is
    dropped. The result is finite for every finite input, and exact for losses of the singular
    values and of the projectors onto singular subspaces (``U_i@U_i^T``, ``V_i@V_i^T`` of a
    subspace); single singular vectors inside a repeated singular value depend on the basis,
    and so does their gradient.

    Parameters
    ----------
    dU, ds, dVt : array_like or None
        Cotangents of ``U``, ``s``, ``Vt``; each must broadcast to its output's shape.
    U, s, Vt : array_like
        The forward's results.

    Returns
    -------
    ndarray, shape (..., m, n)
        ``dA``.

    Raises
    ------
    ValueError
        If the shapes of ``U``, ``s`` and ``Vt`` disagree, or a cotangent does not broadcast to
        its output's shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0], [0.0, 1.0]])
    >>> U, s, Vt = adla.gesvd(A)
    >>> dA = adla.gesvd_backward(None, np.ones(2), None, U, s, Vt)   # d sum(s)
    >>> np.allclose(dA, U @ Vt)
    True
    """
    f = backward_call("gesvd", dict(dU=dU, ds=ds, dVt=dVt, U=U, s=s, Vt=Vt))
    m, k = f.core_shape("U")
    n = f.core_shape("Vt")[-1]
    f.require("Vt", -2, k, "rows (the columns of U)")
    f.require("s", -1, k, "entries (the columns of U)")
    if k != min(m, n):
        raise f.shape_error("U", f"must have min(m, n) = {min(m, n)} columns (Vt has {n})")
    f.cotangent("dU", (m, k))
    f.cotangent("ds", (k,))
    f.cotangent("dVt", (k, n))
    s_ = f.stack("s")
    dA = f.backend.gesvd_backward(*(f.stack(c) if x is not None else None
                                    for c, x in (("dU", dU), ("ds", ds), ("dVt", dVt))),
                                  f.stack("U"), s_, f.stack("Vt"),
                                  degenerate_tolerance(s_, f.dtype))
    return f.batch_gradient(dA)


@documented_jvp("gesvd")
def gesvd_jvp(A: ArrayLike, dA: Optional[ArrayLike], *,
              check: bool = True) -> tuple[tuple[Array, Array, Array],
                                           tuple[Array, Array, Array]]:
    """:func:`gesvd` and its forward-mode derivative.

    With ``P = U^T@dA@V``: ``ds = diag(P)``, ``dU = U@(F*(P@S + S@P^T)) + (I - U@U^T)@dA@V@S^-1``
    and ``dV = V@(F*(S@P + P^T@S)) + (I - V@V^T)@dA^T@U@S^-1``, ``F[i, j] = 1/(s[j]^2 - s[i]^2)``
    (the projections only for a tall or wide ``A``). Singular values within
    :func:`degenerate_tolerance` of each other or of zero drop their terms, as in
    :func:`gesvd_backward`: always finite, exact for symmetric functions of the singular values
    and for the projectors onto singular subspaces.

    Examples
    --------
    >>> import numpy as np, adla
    >>> (U, s, Vt), (dU, ds, dVt) = adla.gesvd_jvp(np.diag([3.0, 1.0]), np.eye(2))
    >>> ds
    array([1., 1.])
    """
    f = jvp_call("gesvd", dict(A=A, dA=dA))
    xp, be = f.xp, f.backend
    U, s, Vt, status = be.gesvd(f.stack("A"))
    if check:
        f.raise_failed(status, not_converged)
    dA_ = f.tangent("dA")
    if dA_ is None:
        return f.finish_jvp((U, s, Vt), tuple(xp.zeros_like(x[:1]) for x in (U, s, Vt)), status)
    dU, ds, dVt = be.gesvd_tangent(dA_, U, s, Vt, degenerate_tolerance(s, f.dtype))
    return f.finish_jvp((U, s, Vt), (dU, ds, dVt), status)


# ---- gesv ---------------------------------------------------------------------------------------

def gesv(A: ArrayLike, B: ArrayLike, *, transpose: bool = False, check: bool = True) -> Array:
    """General solve ``X = op(A)^-1@B`` (``op(A) = A^T`` with `transpose`), batched.

    LU with partial pivoting of ``A`` itself (also with `transpose`), then triangular solves:
    LAPACK ``getrf`` and two BLAS-3 solves per matrix, or, for order and right-hand sides up
    to 32 (in batches of at least 8: order up to 64 with up to 32 right-hand sides, or both up
    to 40), the same algorithm on 8 matrices at once, interleaved so that each step is a vector
    operation.
    A matrix fails on an exactly zero pivot of that LU (the message names its 0-based position)
    or on a non-finite entry of ``A`` or ``B``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Square matrices.
    B : array_like, shape (..., n, k)
        Right-hand sides as columns; a single vector is an n x 1 matrix (1-D ``B`` is an error).
    transpose : bool, default False
        Solve with ``A^T``.
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, shape (..., n, k)
        ``X``.

    Raises
    ------
    LinAlgError
        With `check`, for a singular matrix (naming the zero pivot) or a non-finite entry.
    ValueError
        If ``A`` is not square, ``B`` has the wrong number of rows or is not a matrix, or the
        batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.gesv(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[3.0], [5.0]]))
    array([[0.8],
           [1.4]])
    """
    f = forward_call("gesv", dict(A=A, B=B))
    n = f.square("A")
    f.require("B", -2, n, "rows (the order of A)")
    X, status = f.backend.gesv(f.stack("A"), f.stack("B"), transpose=transpose)
    return f.finish(X, status, check, zero_pivot)


def gesv_backward(dX: ArrayLike, A: ArrayLike, B: ArrayLike, X: ArrayLike, *,
                  transpose: bool = False) -> tuple[Array, Array]:
    """Gradient of :func:`gesv`: ``dB = op(A)^-T@dX`` and ``d op(A) = -dB@X^T``.

    A singular ``A`` gives NaN in both gradients of that matrix, without raising (as
    :func:`slogdet_backward`).

    Parameters
    ----------
    dX : array_like, shape (..., n, k)
        Cotangent of ``X``; it must broadcast to its shape.
    A, B : array_like
        The forward's operands.
    X : array_like, shape (..., n, k)
        The forward's result.
    transpose : bool, default False
        As in the forward.

    Returns
    -------
    dA : ndarray, shape of ``A``
    dB : ndarray, shape of ``B``

    Raises
    ------
    ValueError
        If the operands' shapes disagree, or ``dX`` does not broadcast to ``X``'s shape.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A, B = np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[3.0], [5.0]])
    >>> dA, dB = adla.gesv_backward(np.ones((2, 1)), A, B, adla.gesv(A, B))
    >>> dB
    array([[0.4],
           [0.2]])
    """
    f = backward_call("gesv", dict(dX=dX, A=A, B=B, X=X))
    n = f.square("A")
    f.require("B", -2, n, "rows (the order of A)")
    f.same_core_shape("X", "B")
    f.cotangent("dX", f.core_shape("X"))
    be = f.backend
    A_, X_ = f.stack("A"), f.stack("X")
    dB, status = be.gesv(A_, f.stack("dX"), transpose=not transpose)
    dB = be.fill_failed(dB, status)
    # d op(A) = -dB X^T; dA is its transpose with transpose.
    if transpose:
        dA = be.gemm(X_, dB, transpose_b=True, alpha=-1.0)
    else:
        dA = be.gemm(dB, X_, transpose_b=True, alpha=-1.0)
    return f.gradient(dA, "A"), f.gradient(dB, "B")


@documented_jvp("gesv")
def gesv_jvp(A: ArrayLike, B: ArrayLike, dA: Optional[ArrayLike], dB: Optional[ArrayLike], *,
             transpose: bool = False, check: bool = True) -> tuple[Array, Array]:
    """:func:`gesv` and its forward-mode derivative, ``dX = op(A)^-1@(dB - op(dA)@X)``: a
    product and a second solve with the same LU factors.

    Examples
    --------
    >>> import numpy as np, adla
    >>> X, dX = adla.gesv_jvp(2 * np.eye(2), np.ones((2, 1)), np.eye(2), None)
    >>> dX
    array([[-0.25],
           [-0.25]])
    """
    f = jvp_call("gesv", dict(A=A, B=B, dA=dA, dB=dB))
    n = f.square("A")
    f.require("B", -2, n, "rows (the order of A)")
    be, A_ = f.backend, f.stack("A")
    dA_, R = f.tangent("dA"), f.tangent("dB")
    fused = (be.gesv_jvp(A_, f.stack("B"), dA_, R, transpose=transpose)
             if dA_ is not None or R is not None else None)
    if fused is not None:
        X, dX, status = fused
        if check:
            f.raise_failed(status, zero_pivot)
        return f.finish_jvp(X, dX, status)
    X, status = be.gesv(A_, f.stack("B"), transpose=transpose)
    if check:
        f.raise_failed(status, zero_pivot)
    if dA_ is not None:
        R = be.gemm(dA_, X, R, transpose_a=transpose, alpha=-1.0, beta=1.0)
    if R is None:
        return f.finish_jvp(X, f.zero_tangent(f.core_shape("B")), status)
    return f.finish_jvp(X, f.nan_where_failed(*be.gesv(A_, R, transpose=transpose)), status)
