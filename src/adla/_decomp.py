"""Decompositions and their reverse-mode rules: gelqf, geqrf, syevd, inverse, det, slogdet.

Each forward is followed by its backward (Seeger et al., "Auto-Differentiating Linear Algebra",
2017, for LQ and the symmetric eigendecomposition; QR is LQ of the transpose) and its jvp.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_rules import degenerate_tolerance, triangle
from ._frontend import (backward_call, forward_call, jvp_call, lu_singular, not_converged,
                        rank_deficient)
from ._spec import documented_jvp

Array = NDArray[np.floating]      # what every operator returns


def _cotangent(f, name, like):
    """The stack of an optional cotangent; zeros for ``None``."""
    return f.stack(name) if name in f.arrays else f.xp.zeros((1,) + like, dtype=f.dtype)


def _full_rank(f, X, status):
    """``X``, NaN where a non-finite entry failed a matrix; a zero on the triangular factor's
    diagonal (status > 0) raises LinAlgError."""
    rank_failures = f.backend.failed(status > 0)
    if rank_failures.size:
        raise f.failure(status, rank_failures, rank_deficient)
    return f.nan_where_failed(X, status)


def _solve_full_rank(f, T, factor, lq):
    """``L^-T T`` (LQ) or ``T R^-T`` (QR), through :func:`_full_rank`."""
    return _full_rank(f, *f.backend.trsm(factor, T, transpose=True, rightside=not lq, lower=lq))


# ---- gelqf / geqrf ------------------------------------------------------------------------------

def gelqf(A: ArrayLike) -> tuple[Array, Array]:
    """Thin LQ factorisation ``A = L@Q`` of matrices with at most as many rows as columns.

    Householder reflections on the column-major view, as LAPACK ``geqrt`` (from a short side of
    128) or ``geqrf`` and ``Q`` from the reflectors: batches of small matrices run 8 at a time
    without LAPACK, and on CPUs with AVX-512 a short side of 32 to 512 runs in blocks of
    reflectors applied as matrix products. Signs are chosen so that ``L`` has a non-negative
    diagonal. A matrix with a non-finite entry gives NaN factors.

    Parameters
    ----------
    A : array_like, shape (..., m, n), m <= n

    Returns
    -------
    Q : ndarray, shape (..., m, n)
        Orthonormal rows.
    L : ndarray, shape (..., m, m)
        Lower triangular, non-negative diagonal.

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Q, L = adla.gelqf(np.array([[3.0, 4.0]]))
    >>> Q, L
    (array([[0.6, 0.8]]), array([[5.]]))
    """
    f = forward_call("gelqf", dict(A=A))
    m, n = f.core_shape("A")
    if m > n:
        raise f.shape_error("A", "must have at most as many rows as columns (use geqrf)")
    Q, L, status = f.backend.gelqf(f.stack("A"))
    return f.finish((Q, L), status, False, str)


def gelqf_backward(dQ: Optional[ArrayLike], dL: Optional[ArrayLike], Q: ArrayLike,
                   L: ArrayLike) -> Array:
    """Gradient of :func:`gelqf` with respect to ``A``; ``dQ`` or ``dL`` may be None (zero).

    With ``M = L^T@dL - dQ@Q^T``: ``dA = L^-T@(dQ + copyltu(M)@Q)``, where ``copyltu`` mirrors the
    lower triangle onto the upper one. Entries of ``dL`` above the diagonal are ignored.

    Parameters
    ----------
    dQ, dL : array_like or None
        Cotangents of ``Q`` and ``L``; each must broadcast to its output's shape.
    Q, L : array_like
        The forward's results.

    Returns
    -------
    ndarray, shape (..., m, n)
        ``dA``.

    Raises
    ------
    LinAlgError
        For a rank-deficient matrix (a zero on the diagonal of ``L``).
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Q, L = adla.gelqf(np.array([[3.0, 4.0]]))
    >>> adla.gelqf_backward(None, np.ones((1, 1)), Q, L)      # d |A| = A / |A|
    array([[0.6, 0.8]])
    """
    return _orthogonal_backward("gelqf", dQ, dL, Q, L, lq=True)


def _orthogonal_backward(op, dQ, dT, Q, T, lq):
    """The LQ rule (``lq``), or the QR rule as the LQ rule of ``A^T = R^T Q^T``, the transposes
    expressed as flags: ``T`` is ``L`` (lower) or ``R`` (upper)."""
    name = "L" if lq else "R"
    f = backward_call(op, {"dQ": dQ, "d" + name: dT, "Q": Q, name: T})
    order = f.square(name)
    f.require("Q", -2 if lq else -1, order, f"{'rows' if lq else 'columns'} (the order of {name})")
    f.cotangent("dQ", f.core_shape("Q"))
    f.cotangent("d" + name, f.core_shape(name))
    xp, be, Q_, T_ = f.xp, f.backend, f.stack("Q"), f.stack(name)
    fused = be.orthogonal_backward(f.stack("dQ") if dQ is not None else None,
                                   f.stack("d" + name) if dT is not None else None, Q_, T_, lq)
    if fused is not None:                    # one kernel (CPU, small orders)
        return f.gradient(_full_rank(f, *fused), "Q")
    dQ_ = _cotangent(f, "dQ", f.core_shape("Q"))
    dT_ = triangle(xp, _cotangent(f, "d" + name, f.core_shape(name)), lq)
    # LQ: M = L^T dL - dQ Q^T, W = dQ + copyltu(M) Q;
    # QR: M = R dR^T - dQ^T Q, W = dQ + Q copyltu(M).
    # copyltu reads M's lower triangle only: both products computed there alone (half the
    # multiply-adds at large orders), the second accumulated onto the first.
    M = be.gemm(dQ_, Q_, be.gemm(T_, dT_, transpose_a=lq, transpose_b=not lq, triangle="lower"),
                transpose_a=not lq, transpose_b=lq, alpha=-1.0, beta=1.0, triangle="lower")
    S = M + M.transpose(0, 2, 1)                 # copyltu(M): M is zero above its diagonal,
    diagonal = xp.arange(order)                  # so that only the diagonal came twice
    S[:, diagonal, diagonal] = M[:, diagonal, diagonal]
    W = dQ_ + (be.gemm(S, Q_) if lq else be.gemm(Q_, S))
    return f.gradient(_solve_full_rank(f, W, T_, lq), "Q")


def _orthogonal_jvp(op, A, dA, lq):
    """The jvp of gelqf (``lq``: ``A = L@Q``) or geqrf (``A = Q@R``). For LQ, with
    ``C = L^-1@dA@Q^T``: ``C = L^-1@dL + dQ@Q^T``, a lower triangular plus an antisymmetric part
    (``Q@Q^T = I``), so ``L^-1@dL = tril(C) + tril(C^T, -1)``; then ``dL = L@(L^-1@dL)`` and
    ``dQ = L^-1@dA - (L^-1@dL)@Q``. QR is the same on the transpose."""
    f = jvp_call(op, dict(A=A, dA=dA))
    m, n = f.core_shape("A")
    if lq and m > n:
        raise f.shape_error("A", "must have at most as many rows as columns (use geqrf)")
    if not lq and m < n:
        raise f.shape_error("A", "must have at least as many rows as columns (use gelqf)")
    xp, be = f.xp, f.backend
    dA_ = f.tangent("dA")
    fused = be.orthogonal_jvp(f.stack("A"), dA_, lq) if dA_ is not None else None
    if fused is not None:
        Q, T, dQ, dT, status = fused
        return f.finish_jvp((Q, T), (dQ, dT), status)
    Q, T, status = (be.gelqf if lq else be.geqrf)(f.stack("A"))
    if dA_ is None:
        return f.finish_jvp((Q, T), (xp.zeros_like(Q[:1]), xp.zeros_like(T[:1])), status)
    # A rank-deficient A has no derivative: NaN, as its factor's solve fails.
    Y = f.nan_where_failed(*be.trsm(T, dA_, rightside=not lq, lower=lq))    # L^-1 dA, dA R^-1
    if lq:
        C = be.gemm(Y, Q, transpose_b=True)
        X = xp.tril(C) + xp.tril(C.transpose(0, 2, 1), -1)
        dT = xp.tril(be.trmm(T, X))
        dQ = Y - be.gemm(X, Q)
    else:
        C = be.gemm(Q, Y, transpose_a=True)
        X = xp.triu(C) + xp.triu(C.transpose(0, 2, 1), 1)
        dT = xp.triu(be.trmm(T, X, rightside=True, lower=False))
        dQ = Y - be.gemm(Q, X)
    return f.finish_jvp((Q, T), (dQ, dT), status)


@documented_jvp("gelqf")
def gelqf_jvp(A: ArrayLike, dA: Optional[ArrayLike]) -> tuple[tuple[Array, Array],
                                                              tuple[Array, Array]]:
    """:func:`gelqf` and its forward-mode derivative.

    With ``C = L^-1@dA@Q^T`` and ``X = tril(C) + tril(C^T, -1)`` (``C`` split into the lower
    triangular ``L^-1@dL`` and the antisymmetric ``dQ@Q^T``): ``dL = L@X``, lower triangular,
    and ``dQ = L^-1@dA - X@Q``. A rank-deficient matrix gives NaN tangents.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[3.0, 0.0, 4.0]])
    >>> (Q, L), (dQ, dL) = adla.gelqf_jvp(A, A)          # scaling A scales L, keeps Q
    >>> np.allclose(dL, L), np.allclose(dQ, 0)
    (True, True)
    """
    return _orthogonal_jvp("gelqf", A, dA, lq=True)


def geqrf(A: ArrayLike) -> tuple[Array, Array]:
    """Thin QR factorisation ``A = Q@R`` of matrices with at least as many rows as columns.

    Householder reflections, as :func:`gelqf`'s on the transpose (the same kernels), signs
    chosen so that ``R`` has a non-negative diagonal. A matrix with a non-finite entry gives
    NaN factors.

    Parameters
    ----------
    A : array_like, shape (..., m, n), m >= n

    Returns
    -------
    Q : ndarray, shape (..., m, n)
        Orthonormal columns.
    R : ndarray, shape (..., n, n)
        Upper triangular, non-negative diagonal.

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Q, R = adla.geqrf(np.array([[3.0], [4.0]]))
    >>> R
    array([[5.]])
    """
    f = forward_call("geqrf", dict(A=A))
    m, n = f.core_shape("A")
    if m < n:
        raise f.shape_error("A", "must have at least as many rows as columns (use gelqf)")
    Q, R, status = f.backend.geqrf(f.stack("A"))
    return f.finish((Q, R), status, False, str)


def geqrf_backward(dQ: Optional[ArrayLike], dR: Optional[ArrayLike], Q: ArrayLike,
                   R: ArrayLike) -> Array:
    """Gradient of :func:`geqrf` with respect to ``A``; ``dQ`` or ``dR`` may be None (zero).

    The LQ rule applied to ``A^T = R^T@Q^T``: with ``M = R@dR^T - dQ^T@Q``,
    ``dA = (dQ + Q@copyltu(M))@R^-T``. Entries of ``dR`` below the diagonal are ignored.

    Parameters
    ----------
    dQ, dR : array_like or None
        Cotangents of ``Q`` and ``R``; each must broadcast to its output's shape.
    Q, R : array_like
        The forward's results.

    Returns
    -------
    ndarray, shape (..., m, n)
        ``dA``.

    Raises
    ------
    LinAlgError
        For a rank-deficient matrix (a zero on the diagonal of ``R``).
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Q, R = adla.geqrf(np.array([[3.0], [4.0]]))
    >>> adla.geqrf_backward(None, np.ones((1, 1)), Q, R)
    array([[0.6],
           [0.8]])
    """
    return _orthogonal_backward("geqrf", dQ, dR, Q, R, lq=False)


@documented_jvp("geqrf")
def geqrf_jvp(A: ArrayLike, dA: Optional[ArrayLike]) -> tuple[tuple[Array, Array],
                                                              tuple[Array, Array]]:
    """:func:`geqrf` and its forward-mode derivative: :func:`gelqf_jvp`'s rule on the
    transpose, ``C = Q^T@dA@R^-1``, ``X = triu(C) + triu(C^T, 1)``, ``dR = X@R`` and
    ``dQ = dA@R^-1 - Q@X``.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[3.0], [4.0]])
    >>> (Q, R), (dQ, dR) = adla.geqrf_jvp(A, np.array([[4.0], [-3.0]]))   # a rotation
    >>> np.allclose(dR, 0), np.allclose(dQ, [[0.8], [-0.6]])
    (True, True)
    """
    return _orthogonal_jvp("geqrf", A, dA, lq=False)


# ---- syevd --------------------------------------------------------------------------------------

def syevd(A: ArrayLike, *, check: bool = True) -> tuple[Array, Array]:
    """Symmetric eigendecomposition ``A = U^T@diag(lam)@U``, reading the lower triangle.

    The rows of ``U`` are orthonormal eigenvectors, ``lam`` ascends, and each row's entry of
    largest magnitude is positive (the first one on ties), so the output is deterministic. Order
    up to 32, and up to 64 for batches of at least 8: adla's tridiagonal QL on 8 matrices at once
    (eigenvalues accurate to ``eps * |A|``, as LAPACK's); above: LAPACK ``syevd``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Symmetric matrices; only the lower triangle is read.
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    U : ndarray, shape (..., n, n)
        Eigenvectors as rows.
    lam : ndarray, shape (..., n)
        Eigenvalues, ascending.

    Raises
    ------
    LinAlgError
        With `check`, for a non-finite entry in the lower triangle or a failure to converge.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> U, lam = adla.syevd(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> lam
    array([1., 3.])
    >>> np.allclose(U.T @ np.diag(lam) @ U, [[2.0, 1.0], [1.0, 2.0]])
    True
    """
    f = forward_call("syevd", dict(A=A))
    f.square("A")
    U, lam, status = f.backend.syevd(f.stack("A"))
    return f.finish((U, lam), status, check, not_converged)


def syevd_backward(dU: Optional[ArrayLike], dlam: Optional[ArrayLike], U: ArrayLike,
                   lam: ArrayLike) -> Array:
    """Gradient of :func:`syevd` with respect to the symmetric ``A``; ``dU`` or ``dlam`` may be
    None (zero).

    ``G = U^T@(diag(dlam) + F*(U@dU^T))@U`` with ``F[i, j] = 1/(lam[j] - lam[i])``, and
    ``dA = (G + G^T)/2``. Eigenvalues closer than :func:`degenerate_tolerance`
    (``64*n*eps*max|lam|``) form one eigenspace and ``F`` is zero between them, so the result is
    always finite. That is the exact gradient for losses of the eigenvalues that are symmetric
    within each eigenspace (``sum(g(lam))``, ``log det``) and for losses of the projectors onto
    eigenspaces.

    It is *not* exact for a matrix function ``g(A) = U^T@diag(g(lam))@U`` (``expm``, ``sqrtm``,
    ``logm``) at an exactly repeated eigenvalue, although its value does not depend on the basis:
    its gradient needs the limit ``g'(lam)`` of the divided differences
    ``(g(lam_i) - g(lam_j))/(lam_i - lam_j)`` inside the eigenspace, which the cotangents
    ``(dU, dlam)`` do not carry (at ``A = c*I`` the coupling this rule drops is the whole
    off-diagonal gradient). For such losses either break the tie (a perturbation far above the
    tolerance), or form the gradient from ``syevd``'s outputs with the rule that knows ``g'``:
    ``dA = U^T@(D*(U@W@U^T))@U`` for the cotangent ``W`` (symmetrised) of ``g(A)``, with
    ``D[i, j]`` the divided difference and ``g'(lam_i)`` where ``lam_i == lam_j``.

    Parameters
    ----------
    dU, dlam : array_like or None
        Cotangents of ``U`` and ``lam``; each must broadcast to its output's shape.
    U, lam : array_like
        The forward's results.

    Returns
    -------
    ndarray, shape (..., n, n)
        ``dA``, symmetric.

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> U, lam = adla.syevd(np.eye(3))                 # one eigenspace: still finite
    >>> adla.syevd_backward(None, np.ones(3), U, lam)  # d trace(A)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    f = backward_call("syevd", dict(dU=dU, dlam=dlam, U=U, lam=lam))
    n = f.square("U")
    f.require("lam", -1, n, "entries (the order of U)")
    f.cotangent("dU", (n, n))
    f.cotangent("dlam", (n,))
    lam_ = f.stack("lam")
    dA = f.backend.syevd_backward(f.stack("dU") if dU is not None else None,
                                  f.stack("dlam") if dlam is not None else None,
                                  f.stack("U"), lam_, degenerate_tolerance(lam_, f.dtype))
    return f.gradient(dA, "U")


@documented_jvp("syevd")
def syevd_jvp(A: ArrayLike, dA: Optional[ArrayLike], *,
              check: bool = True) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """:func:`syevd` and its forward-mode derivative.

    With the eigenvectors as the rows of ``U`` (``A = U^T@diag(lam)@U``) and ``M = U@dA@U^T``:
    ``dlam = diag(M)`` and ``dU = G@U``, ``G[i, j] = M[i, j] / (lam[i] - lam[j])``. Eigenvalues
    within :func:`degenerate_tolerance` of each other are one eigenspace, and the coupling
    between them is dropped, as in :func:`syevd_backward`: always finite, exact for symmetric
    functions of the eigenvalues of an eigenspace and for its projector.

    Examples
    --------
    >>> import numpy as np, adla
    >>> (U, lam), (dU, dlam) = adla.syevd_jvp(np.diag([1.0, 3.0]), np.ones((2, 2)))
    >>> dlam
    array([1., 1.])
    """
    f = jvp_call("syevd", dict(A=A, dA=dA))
    f.square("A")
    xp, be = f.xp, f.backend
    U, lam, status = be.syevd(f.stack("A"))
    if check:
        f.raise_failed(status, not_converged)
    dA_ = f.tangent("dA")
    if dA_ is None:
        return f.finish_jvp((U, lam), (xp.zeros_like(U[:1]), xp.zeros_like(lam[:1])), status)
    dU, dlam = be.syevd_tangent(dA_, U, lam, degenerate_tolerance(lam, f.dtype))
    return f.finish_jvp((U, lam), (dU, dlam), status)


# ---- inverse, det, slogdet ----------------------------------------------------------------------

def inverse(A: ArrayLike, *, check: bool = True) -> Array:
    """Matrix inverse ``A^-1``, batched (LU with partial pivoting: LAPACK ``getrf`` + ``getri``,
    or interleaved loops for batches of small matrices).

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, shape (..., n, n)

    Raises
    ------
    LinAlgError
        With `check`, for a singular matrix (an exactly zero pivot) or a non-finite entry.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.inverse(np.array([[2.0, 1.0], [1.0, 1.0]]))
    array([[ 1., -1.],
           [-1.,  2.]])
    """
    f = forward_call("inverse", dict(A=A))
    f.square("A")
    Ainv, status = f.backend.inverse(f.stack("A"))
    return f.finish(Ainv, status, check, lu_singular)


def inverse_backward(dAinv: ArrayLike, Ainv: ArrayLike) -> Array:
    """Gradient of :func:`inverse`: ``dA = -Ainv^T@dAinv@Ainv^T``.

    Parameters
    ----------
    dAinv : array_like, shape (..., n, n)
        Cotangent of the inverse; it must broadcast to its shape.
    Ainv : array_like, shape (..., n, n)
        The forward's result.

    Returns
    -------
    ndarray, shape of ``Ainv``
        ``dA``.

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Ainv = adla.inverse(np.array([[2.0, 1.0], [1.0, 1.0]]))
    >>> adla.inverse_backward(np.eye(2), Ainv)          # d trace(A^-1)
    array([[-2.,  3.],
           [ 3., -5.]])
    """
    f = backward_call("inverse", dict(dAinv=dAinv, Ainv=Ainv))
    f.square("Ainv")
    f.cotangent("dAinv", f.core_shape("Ainv"))
    be, Ainv_, dAinv_ = f.backend, f.stack("Ainv"), f.stack("dAinv")
    dA = be.sandwich(Ainv_, dAinv_, transpose=True, alpha=-1.0)
    if dA is None:
        dA = be.gemm(be.gemm(Ainv_, dAinv_, transpose_a=True), Ainv_, transpose_b=True,
                     alpha=-1.0)
    return f.gradient(dA, "Ainv")


@documented_jvp("inverse")
def inverse_jvp(A: ArrayLike, dA: Optional[ArrayLike], *,
                check: bool = True) -> tuple[Array, Array]:
    """:func:`inverse` and its forward-mode derivative, ``dAinv = -Ainv@dA@Ainv``.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Ainv, dAinv = adla.inverse_jvp(np.diag([2.0, 4.0]), np.eye(2))
    >>> dAinv
    array([[-0.25  ,  0.    ],
           [ 0.    , -0.0625]])
    """
    f = jvp_call("inverse", dict(A=A, dA=dA))
    f.square("A")
    be = f.backend
    Ainv, status = be.inverse(f.stack("A"))
    if check:
        f.raise_failed(status, lu_singular)
    dA_ = f.tangent("dA")
    if dA_ is None:
        return f.finish_jvp(Ainv, f.xp.zeros_like(Ainv[:1]), status)
    dAinv = be.sandwich(Ainv, dA_, alpha=-1.0)
    if dAinv is None:
        dAinv = be.gemm(be.gemm(Ainv, dA_), Ainv, alpha=-1.0)
    return f.finish_jvp(Ainv, dAinv, status)


def slogdet(A: ArrayLike) -> tuple[Array, Array]:
    """Sign and logarithm of the absolute value of ``det(A)``, batched (LU with partial pivoting:
    LAPACK ``getrf``, or interleaved loops for batches of small matrices).

    A singular matrix gives ``sign = 0`` and ``logabsdet = -inf``; a non-finite entry gives NaN
    for both.

    Parameters
    ----------
    A : array_like, shape (..., n, n)

    Returns
    -------
    sign, logabsdet : ndarray, shape (...)

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> sign, logabsdet = adla.slogdet(np.array([[0.0, 2.0], [1.0, 0.0]]))
    >>> float(sign), float(np.exp(logabsdet))
    (-1.0, 2.0)
    """
    f = forward_call("slogdet", dict(A=A))
    f.square("A")
    sign, logabsdet, status = f.backend.slogdet(f.stack("A"))
    return f.finish((sign, logabsdet), status, False, str)


def slogdet_backward(dlogabsdet: ArrayLike, A: ArrayLike) -> Array:
    """Gradient of :func:`slogdet`'s ``logabsdet``: ``dA = dlogabsdet * A^-T``.

    ``sign`` is piecewise constant, so it takes no cotangent. At a singular matrix the gradient
    does not exist: the result is non-finite, and nothing is raised.

    Parameters
    ----------
    dlogabsdet : array_like, shape (...)
        Cotangent of ``logabsdet``; it must broadcast to its shape.
    A : array_like, shape (..., n, n)
        The forward's operand.

    Returns
    -------
    ndarray, shape of ``A``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.slogdet_backward(1.0, np.array([[2.0, 1.0], [1.0, 1.0]]))     # A^-T
    array([[ 1., -1.],
           [-1.,  2.]])
    """
    f = backward_call("slogdet", dict(dlogabsdet=dlogabsdet, A=A))
    f.square("A")
    f.cotangent("dlogabsdet", ())
    dA = f.nan_where_failed(*f.backend.inverse(f.stack("A"), transpose=True,
                                               scale=f.stack("dlogabsdet")))      # ct A^-T
    return f.gradient(dA, "A")


@documented_jvp("slogdet")
def slogdet_jvp(A: ArrayLike, dA: Optional[ArrayLike]) -> tuple[tuple[Array, Array],
                                                                tuple[Array, Array]]:
    """:func:`slogdet` and its forward-mode derivative: ``dlogabsdet = trace(A^-1@dA)`` (one LU
    solve, no inverse) and a zero tangent for ``sign``. At a singular matrix ``dlogabsdet`` is
    NaN, without raising.

    Examples
    --------
    >>> import numpy as np, adla
    >>> (sign, logabsdet), (dsign, dlogabsdet) = adla.slogdet_jvp(np.diag([2.0, 4.0]), np.eye(2))
    >>> float(dlogabsdet)
    0.75
    """
    f = jvp_call("slogdet", dict(A=A, dA=dA))
    f.square("A")
    xp, be, A_ = f.xp, f.backend, f.stack("A")
    sign, logabsdet, status = be.slogdet(A_)
    dA_ = f.tangent("dA")
    if dA_ is None:
        dlogabsdet = xp.zeros_like(logabsdet[:1])
    else:
        X = f.nan_where_failed(*be.gesv(A_, dA_))
        dlogabsdet = xp.ascontiguousarray(xp.trace(X, axis1=1, axis2=2))
    return f.finish_jvp((sign, logabsdet), (xp.zeros_like(sign[:1]), dlogabsdet), status)


def det(A: ArrayLike) -> Array:
    """Determinant, batched: ``sign * exp(logabsdet)`` from :func:`slogdet`.

    Parameters
    ----------
    A : array_like, shape (..., n, n)

    Returns
    -------
    ndarray, shape (...)

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> round(float(adla.det(np.array([[1.0, 2.0], [3.0, 4.0]]))), 12)
    -2.0
    """
    f = forward_call("det", dict(A=A))
    f.square("A")
    sign, logabsdet, status = f.backend.slogdet(f.stack("A"))
    return f.finish(sign * f.xp.exp(logabsdet), status, False, str)


def det_backward(dd: ArrayLike, A: ArrayLike, d: ArrayLike) -> Array:
    """Gradient of :func:`det`: ``dA = dd * adj(A)^T``, the cofactor matrix.

    Decided per matrix: ``det(A) * A^-T`` from the LU where the LU shows ``A`` comfortably
    invertible (reciprocal condition number at least ``sqrt(eps)``), and otherwise from the SVD
    without dividing by the determinant, so it is exact for singular matrices too (non-zero at
    rank ``n-1``, zero below).

    Parameters
    ----------
    dd : array_like, shape (...)
        Cotangent of the determinant; it must broadcast to its shape.
    A : array_like, shape (..., n, n)
        The forward's operand.
    d : array_like, shape (...)
        The forward's result (taken for the uniform signature).

    Returns
    -------
    ndarray, shape of ``A``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or a cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[1.0, 2.0], [2.0, 4.0]])           # singular
    >>> np.allclose(adla.det_backward(1.0, A, adla.det(A)), [[4.0, -2.0], [-2.0, 1.0]])
    True
    """
    f = backward_call("det", dict(dd=dd, A=A, d=d))
    f.square("A")
    f.cotangent("dd", ())
    dA = f.nan_where_failed(*f.backend.cofactor(f.stack("A"), scale=f.stack("dd")))
    return f.gradient(dA, "A")


@documented_jvp("det")
def det_jvp(A: ArrayLike, dA: Optional[ArrayLike]) -> tuple[Array, Array]:
    """:func:`det` and its forward-mode derivative, ``dd = trace(adj(A)@dA)``: exact at
    singular matrices too.

    Examples
    --------
    >>> import numpy as np, adla
    >>> d, dd = adla.det_jvp(np.diag([0.0, 3.0]), np.eye(2))     # singular: dd = 0 + 3
    >>> float(dd)
    3.0
    """
    f = jvp_call("det", dict(A=A, dA=dA))
    f.square("A")
    xp, be, A_ = f.xp, f.backend, f.stack("A")
    sign, logabsdet, status = be.slogdet(A_)
    dA_ = f.tangent("dA")
    if dA_ is None:
        dd = xp.zeros_like(sign[:1])
    else:
        cofactor = f.nan_where_failed(*be.cofactor(A_))                     # adj(A)^T
        dd = xp.ascontiguousarray((cofactor * dA_).sum(axis=(1, 2)))
    return f.finish_jvp(sign * xp.exp(logabsdet), dd, status)
