"""Cholesky-based operators and their reverse-mode rules: potrf, potri, potrs, sumlogdiag.

Throughout, ``lower=True`` means ``A = L@L^T`` with ``L`` lower triangular and ``lower=False``
means ``A = U^T@U`` with ``U = L^T`` upper triangular; each upper-case rule is the lower-case one
with ``L = U^T`` substituted, expressed through transpose flags rather than transposed copies.
"""
from __future__ import annotations

import math

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_rules import symmetric_from, transposed, triangle
from ._frontend import backward_call, forward_call, jvp_call, not_positive_definite, singular
from ._spec import documented_jvp

Array = NDArray[np.floating]      # what every operator returns


# ---- potrf --------------------------------------------------------------------------------------

def potrf(A: ArrayLike, *, lower: bool = True, check: bool = True) -> Array:
    """Cholesky factor of symmetric positive definite matrices, batched.

    Returns ``L`` with ``A = L@L^T`` (`lower`) or ``U`` with ``A = U^T@U``; the other triangle of
    the result is zero. Only the triangle of ``A`` chosen by `lower` is read. Orders up to 32 (up
    to 192 for a batch of at least 8 matrices) run 8 matrices at a time without LAPACK; larger
    ones through LAPACK ``potrf``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Symmetric positive definite matrices.
    lower : bool, default True
        Read the lower triangle and return ``L`` (True), or the upper one and return ``U``.
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, shape (..., n, n)

    Raises
    ------
    LinAlgError
        With `check`, for a matrix that is not positive definite (the message names the order
        of its first leading minor that is not) or has a non-finite entry in the triangle read;
        ``.indices`` lists every failing matrix.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> adla.potrf(K)
    array([[2., 0.],
           [1., 2.]])
    >>> adla.potrf(-K, check=False)
    array([[nan, nan],
           [nan, nan]])
    """
    f = forward_call("potrf", dict(A=A))
    f.square("A")
    L, status = f.backend.potrf(f.stack("A"), lower=lower)
    return f.finish(L, status, check, not_positive_definite)


def potrf_backward(dL: ArrayLike, L: ArrayLike, *, lower: bool = True) -> Array:
    """Gradient of :func:`potrf` with respect to the symmetric matrix ``A``, given the factor.

    Entries of ``dL`` outside the factor's triangle are ignored. With ``Phi`` taking the lower
    triangle and halving the diagonal (Murray 2016; Seeger et al. 2017):
    ``G = L^-T@Phi(L^T@dL)@L^-1`` and ``dA = (G + G^T)/2``, so that ``sum(dA*E)`` is the
    first-order change of the loss for any symmetric perturbation ``E`` of ``A``. Computed with
    triangular solves, never an inverse. A factor with a zero on its diagonal gives NaN.

    Parameters
    ----------
    dL : array_like, shape (..., n, n)
        Cotangent of the factor; it must broadcast to the factor's shape.
    L : array_like, shape (..., n, n)
        The factor ``potrf`` returned.
    lower
        The forward's option.

    Returns
    -------
    ndarray, shape of ``L``
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
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> L = adla.potrf(K)
    >>> adla.potrf_backward(np.diag(1 / np.diag(L)), L)     # d log det(K) / 2 = K^-1 / 2
    array([[ 0.15625, -0.0625 ],
           [-0.0625 ,  0.125  ]])
    """
    f = backward_call("potrf", dict(dL=dL, L=L))
    f.square("L")
    f.cotangent("dL", f.core_shape("L"))
    dA = f.nan_where_failed(*f.backend.potrf_backward(f.stack("dL"), f.stack("L"), lower=lower))
    return f.gradient(dA, "L")


@documented_jvp("potrf")
def potrf_jvp(A: ArrayLike, dA: Optional[ArrayLike], *, lower: bool = True,
              check: bool = True) -> tuple[Array, Array]:
    """:func:`potrf` and its forward-mode derivative: the factor and its tangent.

    ``dL = L@Phi(L^-1@dA@L^-T)`` (upper: ``dU = dL^T`` of ``L = U^T``), with ``Phi`` taking the
    lower triangle and halving the diagonal; two triangular solves and a triangular product,
    never an inverse. ``dA`` is read as the symmetric matrix of the triangle ``A`` is read in;
    ``dL`` is zero outside the factor's triangle.

    Examples
    --------
    >>> import numpy as np, adla
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> L, dL = adla.potrf_jvp(K, np.eye(2))
    >>> h = 1e-6
    >>> np.allclose(dL, (adla.potrf(K + h * np.eye(2)) - adla.potrf(K - h * np.eye(2))) / (2 * h))
    True
    """
    f = jvp_call("potrf", dict(A=A, dA=dA))
    f.square("A")
    be, A_, dA_ = f.backend, f.stack("A"), f.tangent("dA")
    fused = be.potrf_jvp(A_, dA_, lower=lower) if dA_ is not None else None
    if fused is not None:
        L, dL, status = fused
        if check:
            f.raise_failed(status, not_positive_definite)
        return f.finish_jvp(L, dL, status)
    L, status = be.potrf(A_, lower=lower)
    if check:
        f.raise_failed(status, not_positive_definite)
    if dA_ is None:
        return f.finish_jvp(L, f.xp.zeros_like(L[:1]), status)
    return f.finish_jvp(L, _cholesky_tangent(f, L, dA_, lower), status)


def _cholesky_tangent(f, L, dA, lower):
    xp, be, flip = f.xp, f.backend, not lower
    S = symmetric_from(xp, dA, lower)
    Y = f.nan_where_failed(*be.trsm(L, S, transpose=flip, lower=lower))                # F^-1 S
    Z = f.nan_where_failed(*be.trsm(L, Y, transpose=lower, rightside=True, lower=lower))  # Y F^-T
    Phi, diagonal = xp.tril(Z), xp.arange(Z.shape[-1])
    Phi[:, diagonal, diagonal] *= 0.5
    dF = be.trmm(L, Phi, transpose=flip, lower=lower)                                   # F Phi
    return dF if lower else transposed(xp, dF)


# ---- potri --------------------------------------------------------------------------------------

def potri(L: ArrayLike, *, lower: bool = True, check: bool = True) -> Array:
    """Inverse ``A^-1`` of ``A = L@L^T`` (``U^T@U`` if not `lower`) from its Cholesky factor.

    The result is full symmetric. Only the triangle of ``L`` chosen by `lower` is read; a zero
    or non-finite entry there fails the matrix.

    Parameters
    ----------
    L : array_like, shape (..., n, n)
        Cholesky factors.
    lower : bool, default True
        ``L`` is lower triangular (True) or upper (``U``).
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, shape (..., n, n)

    Raises
    ------
    LinAlgError
        With `check`, for a zero on the factor's diagonal or a non-finite entry.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> np.allclose(adla.potri(adla.potrf(K)), np.linalg.inv(K))
    True
    """
    f = forward_call("potri", dict(L=L))
    f.square("L")
    Ainv, status = f.backend.potri(f.stack("L"), lower=lower)
    return f.finish(Ainv, status, check, singular)


def potri_backward(dAinv: ArrayLike, L: ArrayLike, Ainv: ArrayLike, *,
                   lower: bool = True) -> Array:
    """Gradient of :func:`potri` with respect to the factor ``L`` (triangular).

    ``dAinv`` counts both triangles separately. With ``S = dAinv + dAinv^T``:
    ``dL = -tril(Ainv@S@L^-T)`` (upper: ``dU = -triu(U^-T@S@Ainv)``).

    Parameters
    ----------
    dAinv : array_like, shape (..., n, n)
        Cotangent of the inverse; it must broadcast to its shape.
    L : array_like
        The forward's operand.
    Ainv : array_like
        The forward's result.
    lower
        The forward's option.

    Returns
    -------
    ndarray, shape of ``L``
        ``dL``, zero outside the triangle read.

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
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> L = adla.potrf(K)
    >>> dL = adla.potri_backward(np.eye(2), L, adla.potri(L))     # d trace(K^-1)
    >>> bool(np.all(np.triu(dL, 1) == 0))
    True
    """
    f = backward_call("potri", dict(dAinv=dAinv, L=L, Ainv=Ainv))
    f.square("L")
    f.same_core_shape("Ainv", "L")
    f.cotangent("dAinv", f.core_shape("L"))
    be, L_, Ainv_, S = f.backend, f.stack("L"), f.stack("Ainv"), f.stack("dAinv")
    fused = be.potri_backward(L_, Ainv_, S, lower=lower)
    if fused is not None:                      # NaN in its triangle where the solve fails
        return f.gradient(fused[0], "L")
    S = S + S.transpose(0, 2, 1)
    if lower:
        R, status = be.trsm(L_, be.gemm(Ainv_, S), transpose=True, rightside=True, lower=True)
    else:
        R, status = be.trsm(L_, be.gemm(S, Ainv_), transpose=True, lower=False)
    R = f.nan_where_failed(R, status)
    return f.gradient(-triangle(f.xp, R, lower), "L")


@documented_jvp("potri")
def potri_jvp(L: ArrayLike, dL: Optional[ArrayLike], *, lower: bool = True,
              check: bool = True) -> tuple[Array, Array]:
    """:func:`potri` and its forward-mode derivative.

    With ``A = F@F^T`` and ``G = Ainv@dF@F^-1``: ``dAinv = -(G + G^T)``, symmetric (a product and
    a triangular solve).

    Examples
    --------
    >>> import numpy as np, adla
    >>> L = np.array([[2.0, 0.0], [1.0, 2.0]])
    >>> Ainv, dAinv = adla.potri_jvp(L, np.eye(2))
    >>> h = 1e-6
    >>> np.allclose(dAinv, (adla.potri(L + h * np.eye(2)) - adla.potri(L - h * np.eye(2))) / (2 * h))
    True
    """
    f = jvp_call("potri", dict(L=L, dL=dL))
    f.square("L")
    be, L_ = f.backend, f.stack("L")
    Ainv, status = be.potri(L_, lower=lower)
    if check:
        f.raise_failed(status, singular)
    dT = f.tangent("dL")
    if dT is None:
        return f.finish_jvp(Ainv, f.xp.zeros_like(Ainv[:1]), status)
    W = be.gemm(Ainv, triangle(f.xp, dT, lower), transpose_b=not lower)             # Ainv dF
    G = f.nan_where_failed(*be.trsm(L_, W, transpose=not lower, rightside=True, lower=lower))
    return f.finish_jvp(Ainv, -(G + G.transpose(0, 2, 1)), status)


# ---- potrs --------------------------------------------------------------------------------------

def potrs(L: ArrayLike, B: ArrayLike, *, lower: bool = True, check: bool = True) -> Array:
    """Solve ``A@X = B`` for ``A = L@L^T`` (``U^T@U`` if not `lower`) given its Cholesky factor.

    Only the triangle of ``L`` chosen by `lower` is read. A zero on its diagonal, or a
    non-finite entry in it or in ``B``, fails the matrix.

    Parameters
    ----------
    L : array_like, shape (..., n, n)
        Cholesky factors.
    B : array_like, shape (..., n, k)
        Right-hand sides; the batch axes of ``L`` and ``B`` broadcast.
    lower : bool, default True
        ``L`` is lower triangular (True) or upper (``U``).
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, shape (..., n, k)

    Raises
    ------
    LinAlgError
        With `check`, for a zero on the factor's diagonal or a non-finite entry.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> adla.potrs(adla.potrf(K), np.array([[6.0], [7.0]]))
    array([[1.],
           [1.]])
    """
    f = forward_call("potrs", dict(L=L, B=B))
    n = f.square("L")
    f.require("B", -2, n, "rows (the order of L)")
    X, status = f.backend.potrs(f.stack("L"), f.stack("B"), lower=lower)
    return f.finish(X, status, check, singular)


def potrs_backward(dX: ArrayLike, L: ArrayLike, B: ArrayLike, X: ArrayLike, *,
                   lower: bool = True) -> tuple[Array, Array]:
    """Gradients of :func:`potrs` with respect to ``L`` and ``B``, given its result ``X``.

    ``dB = A^-1@dX`` (a ``potrs`` solve) and, with ``S = dB@X^T + X@dB^T``, ``dL = -tril(S@L)``
    (upper: ``dU = -triu(U@S)``). For thin right-hand sides (``4k < n``) ``S`` is never formed:
    the cost is O(n^2 k), not O(n^3).

    Parameters
    ----------
    dX : array_like, shape (..., n, k)
        Cotangent of the solution; it must broadcast to its shape.
    L, B : array_like
        The forward's operands (``B`` gives the shape of its gradient).
    X : array_like
        The forward's result.
    lower
        The forward's option.

    Returns
    -------
    dL, dB : ndarray
        Each of its operand's shape and float dtype; ``dL`` zero outside the triangle read.

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
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> L, b = adla.potrf(K), np.array([[6.0], [7.0]])
    >>> x = adla.potrs(L, b)
    >>> dL, db = adla.potrs_backward(np.ones_like(x), L, b, x)     # d sum(x)
    >>> np.allclose(db, np.linalg.solve(K, np.ones((2, 1))))
    True
    """
    f = backward_call("potrs", dict(dX=dX, L=L, B=B, X=X))
    n = f.square("L")
    f.require("B", -2, n, "rows (the order of L)")
    f.same_core_shape("X", "B")
    f.cotangent("dX", f.core_shape("B"))
    xp, be, L_, X_ = f.xp, f.backend, f.stack("L"), f.stack("X")
    fused = be.potrs_backward(L_, X_, f.stack("dX"), lower=lower)
    if fused is not None:
        dL, dB, status = fused                 # dL is NaN in its triangle where status fails
        return f.gradient(dL, "L"), f.gradient(f.nan_where_failed(dB, status), "B")
    dB = f.nan_where_failed(*be.potrs(L_, f.stack("dX"), lower=lower))
    k = f.core_shape("B")[1]
    if 4 * k >= n:
        S = be.gemm(dB, X_, transpose_b=True)
        S = S + S.transpose(0, 2, 1)
        dL = be.trmm(L_, S, rightside=lower, lower=lower, alpha=-1.0)
        return f.gradient(triangle(xp, dL, lower), "L"), f.gradient(dB, "B")
    # Thin right-hand sides: S is a sum of 2k outer products, so form S L (U S) without S, in
    # O(n^2 k) instead of O(n^3), reading L once more:
    # S L = [dB, X] [L^T X, L^T dB]^T  and  U S = [U dB, U X] [X, dB]^T.
    plain = xp.concatenate([dB, xp.broadcast_to(X_, dB.shape)], axis=2)           # [dB, X]
    product = be.trmm(L_, plain, transpose=lower, lower=lower)     # L^T [dB, X] or U [dB, X]
    if lower:
        left, right = plain, xp.concatenate([product[:, :, k:], product[:, :, :k]], axis=2)
    else:
        left, right = product, xp.concatenate([plain[:, :, k:], plain[:, :, :k]], axis=2)
    dL = be.gemm(left, right, transpose_b=True, alpha=-1.0,
                 triangle="lower" if lower else "upper")
    return f.gradient(dL, "L"), f.gradient(dB, "B")


@documented_jvp("potrs")
def potrs_jvp(L: ArrayLike, B: ArrayLike, dL: Optional[ArrayLike], dB: Optional[ArrayLike], *,
              lower: bool = True, check: bool = True) -> tuple[Array, Array]:
    """:func:`potrs` and its forward-mode derivative.

    ``dX = A^-1@(dB - dA@X)`` with ``dA@X = dF@(F^T@X) + F@(dF^T@X)``: four triangular products
    and one more solve with the factor.

    Examples
    --------
    >>> import numpy as np, adla
    >>> L, b = np.array([[2.0, 0.0], [1.0, 2.0]]), np.array([[6.0], [7.0]])
    >>> X, dX = adla.potrs_jvp(L, b, None, np.ones((2, 1)))     # dX = A^-1 db
    >>> np.allclose(dX, adla.potrs(L, np.ones((2, 1))))
    True
    """
    f = jvp_call("potrs", dict(L=L, B=B, dL=dL, dB=dB))
    n = f.square("L")
    f.require("B", -2, n, "rows (the order of L)")
    be, L_ = f.backend, f.stack("L")
    X, status = be.potrs(L_, f.stack("B"), lower=lower)
    if check:
        f.raise_failed(status, singular)
    R, dT = f.tangent("dB"), f.tangent("dL")
    if dT is not None:
        flip, triangular = not lower, dict(lower=lower)
        P = be.trmm(L_, X, transpose=lower, **triangular)                           # F^T X
        Q = be.trmm(dT, X, transpose=lower, **triangular)                           # dF^T X
        dAX = be.trmm(dT, P, transpose=flip, **triangular) + be.trmm(L_, Q, transpose=flip,
                                                                     **triangular)
        R = -dAX if R is None else R - dAX
    if R is None:
        return f.finish_jvp(X, f.xp.zeros_like(X[:1]), status)
    return f.finish_jvp(X, f.nan_where_failed(*be.potrs(L_, R, lower=lower)), status)


# ---- sumlogdiag ---------------------------------------------------------------------------------

def _diagonal(f, name):
    """The main diagonals of operand ``name`` in the call's dtype, shape ``its batch + (n,)``: a
    view where the dtype already fits, no copy of the matrices."""
    return f.xp.diagonal(f.arrays[name], axis1=-2, axis2=-1).astype(f.dtype, copy=False)


def sumlogdiag(A: ArrayLike) -> Array:
    """``sum(log(diag(A)))`` over the last two axes, batched.

    With ``L = potrf(K)``, ``2*sumlogdiag(L)`` is ``log(det(K))``. A zero diagonal entry gives
    ``-inf`` and a negative one NaN, without warnings.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Only the diagonal is read.

    Returns
    -------
    ndarray, shape (...)
        A 0-d array for a single matrix.

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> K = np.array([[4.0, 2.0], [2.0, 5.0]])
    >>> float(2 * adla.sumlogdiag(adla.potrf(K)))       # log det(K) = log 16
    2.772588722239781
    """
    f = forward_call("sumlogdiag", dict(A=A))
    f.square("A")
    with np.errstate(divide="ignore", invalid="ignore"):
        s = f.xp.log(_diagonal(f, "A")).sum(axis=-1)
    return f.xp.array(s, dtype=f.dtype).reshape(f.batch)


def sumlogdiag_backward(ds: ArrayLike, A: ArrayLike) -> Array:
    """Gradient of :func:`sumlogdiag`: diagonal, ``dA[..., i, i] = ds / A[..., i, i]``.

    Parameters
    ----------
    ds : array_like, shape (...)
        Cotangent of the result; it must broadcast to its shape (a scalar serves a batch).
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
    >>> adla.sumlogdiag_backward(1.0, np.array([[2.0, 7.0], [7.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    f = backward_call("sumlogdiag", dict(ds=ds, A=A))
    n = f.square("A")
    f.cotangent("ds", ())
    xp, shape = f.xp, f.arrays["A"].shape
    with np.errstate(divide="ignore", invalid="ignore"):
        diagonal = f.arrays["ds"].astype(f.dtype, copy=False)[..., None] / _diagonal(f, "A")
    # ds broadcasts to A's batch (checked), so this is the gradient in A's own shape (one
    # diagonal of ds's for each matrix of A, where A has no batch axes).
    dtype = f.arrays["A"].dtype if f.arrays["A"].dtype.kind == "f" else f.dtype
    if diagonal.shape != shape[:-1]:
        diagonal = xp.broadcast_to(diagonal, shape[:-1])
    diagonals = xp.ascontiguousarray(diagonal.reshape(math.prod(shape[:-2]), n))
    dA = f.backend.embed_part(diagonals, n, "diagonal", 0).reshape(shape)
    return dA.astype(dtype, copy=False)


@documented_jvp("sumlogdiag")
def sumlogdiag_jvp(A: ArrayLike, dA: Optional[ArrayLike]) -> tuple[Array, Array]:
    """:func:`sumlogdiag` and its forward-mode derivative, ``ds = sum(diag(dA) / diag(A))``.

    Examples
    --------
    >>> import numpy as np, adla
    >>> s, ds = adla.sumlogdiag_jvp(np.diag([2.0, 4.0]), np.eye(2))
    >>> float(ds)
    0.75
    """
    f = jvp_call("sumlogdiag", dict(A=A, dA=dA))
    f.square("A")
    xp, diagonal = f.xp, _diagonal(f, "A")
    with np.errstate(divide="ignore", invalid="ignore"):
        s = xp.log(diagonal).sum(axis=-1)
        ds = ((_diagonal(f, "dA") / diagonal).sum(axis=-1) if "dA" in f.arrays
              else xp.zeros_like(s))
    return (xp.array(s, dtype=f.dtype).reshape(f.batch),
            xp.array(ds, dtype=f.dtype).reshape(f.batch))
