"""BLAS level-3 operators and their reverse-mode rules: gemm, gemm2, syrk, trmm, trsm.

Each forward is followed by its backward. Backward rules are written with the backend's batched
primitives (no explicit inverses), following Seeger et al., "Auto-Differentiating Linear Algebra"
(2017). ``op(A)`` is ``A``, or ``A^T`` when the matching ``transpose`` flag is set.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_rules import summed_product, triangular_operand_gradient
from ._frontend import backward_call, forward_call, jvp_call, scalar, singular
from ._spec import documented_jvp

Array = NDArray[np.floating]      # what every operator returns


# ---- gemm ---------------------------------------------------------------------------------------

def _result_shape(f, name, m, n):
    """``name`` (gemm's C) must have the shape ``(m, n)`` of ``op(A)@op(B)``."""
    f.require(name, -2, m, "rows (the rows of op(A)@op(B))")
    f.require(name, -1, n, "columns (the columns of op(A)@op(B))")


def _gemm_shapes(f, transpose_a, transpose_b, names=("A", "B")):
    a, b = names
    m, k = f.core_shape(a)[::-1] if transpose_a else f.core_shape(a)
    kb, n = f.core_shape(b)[::-1] if transpose_b else f.core_shape(b)
    if kb != k:
        raise f.shape_error(b, f"must have {k} {'columns' if transpose_b else 'rows'} to match "
                            f"op({a}) of shape {(m, k)}")
    f.check_lapack_size((m, n), f"the result of shape {(m, n)}")
    return m, n


def gemm(A: ArrayLike, B: ArrayLike, C: ArrayLike, *, transpose_a: bool = False,
         transpose_b: bool = False, alpha: float = 1.0, beta: float = 1.0) -> Array:
    """General matrix multiply-add ``D = alpha*op(A)@op(B) + beta*C``, batched.

    As in BLAS, ``beta == 0`` ignores ``C`` (a NaN there does not reach the result) and
    ``alpha == 0`` ignores ``A`` and ``B``.

    Parameters
    ----------
    A : array_like, shape (..., m, k), or (..., k, m) with `transpose_a`
    B : array_like, shape (..., k, n), or (..., n, k) with `transpose_b`
    C : array_like, shape (..., m, n)
        The batch axes of the three broadcast as in ``numpy.matmul``.
    transpose_a, transpose_b : bool, default False
        Use ``op(X) = X^T`` for that operand.
    alpha, beta : float, default 1.0
        Scalars; no gradient flows to them.

    Returns
    -------
    ndarray, shape (..., m, n)

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A, B, C = np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2))
    >>> adla.gemm(A, B, C, transpose_b=True, alpha=2.0, beta=-1.0)
    array([[1., 5.],
           [3., 7.]])
    """
    f = forward_call("gemm", dict(A=A, B=B, C=C))
    alpha, beta = scalar("gemm", "alpha", alpha), scalar("gemm", "beta", beta)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    _result_shape(f, "C", m, n)
    D = f.backend.gemm(f.stack("A"), f.stack("B"), f.stack("C"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha, beta=beta)
    return f.result(D)


def gemm_backward(dD: ArrayLike, A: ArrayLike, B: ArrayLike, C: ArrayLike, *,
                  transpose_a: bool = False, transpose_b: bool = False, alpha: float = 1.0,
                  beta: float = 1.0) -> tuple[Array, Array, Array]:
    """Gradients of :func:`gemm` with respect to ``A``, ``B`` and ``C``.

    ``d op(A) = alpha*dD@op(B)^T``, ``d op(B) = alpha*op(A)^T@dD``, ``dC = beta*dD``. An
    operand shared by the batch (broadcast) gets its gradient summed over the batch.

    Parameters
    ----------
    dD : array_like, shape (..., m, n)
        Cotangent of ``gemm``'s result; it must broadcast to that result's shape.
    A, B, C : array_like
        The forward's operands.
    transpose_a, transpose_b, alpha, beta
        The forward's options.

    Returns
    -------
    dA, dB, dC : ndarray
        Each of its operand's shape and float dtype.

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
    >>> A, B, C = np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))
    >>> dA, dB, dC = adla.gemm_backward(np.ones((2, 2)), A, B, C)     # d sum(A@B + C)
    >>> dA
    array([[3., 7.],
           [3., 7.]])
    """
    f = backward_call("gemm", dict(dD=dD, A=A, B=B, C=C))
    alpha, beta = scalar("gemm_backward", "alpha", alpha), scalar("gemm_backward", "beta", beta)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    _result_shape(f, "C", m, n)
    f.cotangent("dD", (m, n))
    if f.shared("A") != f.shared("B"):
        dD_ = f.stack("dD")
        return _shared_operand_gradients(f, dD_, transpose_a, transpose_b, alpha) + (
            f.gradient(beta * dD_, "C"),)
    dA, dB, dC = f.backend.gemm_backward(f.stack("dD"), f.stack("A"), f.stack("B"),
                                         transpose_a=transpose_a, transpose_b=transpose_b,
                                         alpha=alpha, beta=beta)
    return f.gradient(dA, "A"), f.gradient(dB, "B"), f.gradient(dC, "C")


def _fused_product_jvp(f, C, dC, ta, tb, alpha, beta=0.0):
    """``(D, dD)`` from the backend's fused kernel, or None where it has none at this size or no
    tangent of A or B is given (the rule composes it then)."""
    dA, dB = f.tangent("dA"), f.tangent("dB")
    if dA is None and dB is None:
        return None
    return f.backend.gemm_jvp(f.stack("A"), f.stack("B"), C, dA, dB, dC, transpose_a=ta,
                              transpose_b=tb, alpha=alpha, beta=beta)


def _product_tangent(f, ta, tb, alpha):
    """``alpha (op(dA) op(B) + op(A) op(dB))``, None where both tangents are absent."""
    be, dA, dB = f.backend, f.tangent("dA"), f.tangent("dB")
    flags = dict(transpose_a=ta, transpose_b=tb, alpha=alpha)
    dD = be.gemm(dA, f.stack("B"), **flags) if dA is not None else None
    if dB is not None:
        dD = be.gemm(f.stack("A"), dB, dD, beta=1.0, **flags)
    return dD


@documented_jvp("gemm")
def gemm_jvp(A: ArrayLike, B: ArrayLike, C: ArrayLike, dA: Optional[ArrayLike],
             dB: Optional[ArrayLike], dC: Optional[ArrayLike], *, transpose_a: bool = False,
             transpose_b: bool = False, alpha: float = 1.0,
             beta: float = 1.0) -> tuple[Array, Array]:
    """:func:`gemm` and its forward-mode derivative,
    ``dD = alpha*(op(dA)@op(B) + op(A)@op(dB)) + beta*dC``.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A, B, C = np.eye(2), np.ones((2, 2)), np.zeros((2, 2))
    >>> D, dD = adla.gemm_jvp(A, B, C, np.eye(2), None, None, alpha=2.0)
    >>> dD
    array([[2., 2.],
           [2., 2.]])
    """
    f = jvp_call("gemm", dict(A=A, B=B, C=C, dA=dA, dB=dB, dC=dC))
    alpha, beta = scalar("gemm_jvp", "alpha", alpha), scalar("gemm_jvp", "beta", beta)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    _result_shape(f, "C", m, n)
    fused = _fused_product_jvp(f, f.stack("C"), f.tangent("dC"), transpose_a, transpose_b,
                               alpha, beta)
    if fused is not None:
        return f.result(fused[0]), f.result(fused[1])
    D = f.backend.gemm(f.stack("A"), f.stack("B"), f.stack("C"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha, beta=beta)
    dD, dC_ = _product_tangent(f, transpose_a, transpose_b, alpha), f.tangent("dC")
    if dC_ is not None and beta != 0:
        dD = beta * dC_ if dD is None else dD + beta * dC_
    return f.result(D), f.result(dD if dD is not None else f.zero_tangent((m, n)))


def _shared_operand_gradients(f, dD_, ta, tb, alpha):
    """``(dA, dB)`` of ``alpha op(A) op(B)`` when exactly one of ``A``, ``B`` is shared by the
    batch: the other's gradients through one product per batch (which a backend may fold into
    one call), the shared one's summed over the batch as one product of stacked matrices."""
    be, A_, B_, nbatch = f.backend, f.stack("A"), f.stack("B"), f.nbatch
    if f.shared("B"):
        dA = (be.gemm(B_, dD_, transpose_a=tb, transpose_b=True, alpha=alpha) if ta
              else be.gemm(dD_, B_, transpose_b=not tb, alpha=alpha))
        # d op(B) = alpha sum_b op(A_b)^T dD_b
        dB = (summed_product(be.gemm, dD_, A_, False, ta, nbatch=nbatch, alpha=alpha) if tb
              else summed_product(be.gemm, A_, dD_, ta, False, nbatch=nbatch, alpha=alpha))
        return f.gradient(dA, "A"), f.summed_gradient(dB, "B")
    dB = (be.gemm(dD_, A_, transpose_a=True, transpose_b=ta, alpha=alpha) if tb
          else be.gemm(A_, dD_, transpose_a=not ta, alpha=alpha))
    # d op(A) = alpha sum_b dD_b op(B_b)^T
    dA = (summed_product(be.gemm, B_, dD_, not tb, True, nbatch=nbatch, alpha=alpha) if ta
          else summed_product(be.gemm, dD_, B_, True, not tb, nbatch=nbatch, alpha=alpha))
    return f.summed_gradient(dA, "A"), f.gradient(dB, "B")


def gemm2(A: ArrayLike, B: ArrayLike, *, transpose_a: bool = False, transpose_b: bool = False,
          alpha: float = 1.0) -> Array:
    """Matrix product ``alpha*op(A)@op(B)``, batched.

    Where one operand is a single matrix shared by a batch of the other, the batch runs as one
    BLAS call on the stacked matrices.

    Parameters
    ----------
    A : array_like, shape (..., m, k), or (..., k, m) with `transpose_a`
    B : array_like, shape (..., k, n), or (..., n, k) with `transpose_b`
        The batch axes broadcast as in ``numpy.matmul``.
    transpose_a, transpose_b : bool, default False
        Use ``op(X) = X^T`` for that operand.
    alpha : float, default 1.0

    Returns
    -------
    ndarray, shape (..., m, n)

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> Phi = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])     # shared by the batch
    >>> Y = np.arange(6.0).reshape(2, 3, 1)                        # two right-hand sides
    >>> adla.gemm2(Phi, Y, transpose_a=True)[:, :, 0]              # Phi^T y for each
    array([[ 3.,  5.],
           [12., 14.]])
    """
    f = forward_call("gemm2", dict(A=A, B=B))
    alpha = scalar("gemm2", "alpha", alpha)
    _gemm_shapes(f, transpose_a, transpose_b)
    D = f.backend.gemm(f.stack("A"), f.stack("B"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha)
    return f.result(D)


def gemm2_backward(dD: ArrayLike, A: ArrayLike, B: ArrayLike, *, transpose_a: bool = False,
                   transpose_b: bool = False, alpha: float = 1.0) -> tuple[Array, Array]:
    """Gradients of :func:`gemm2` with respect to ``A`` and ``B``.

    ``d op(A) = alpha*dD@op(B)^T`` and ``d op(B) = alpha*op(A)^T@dD``; an operand shared by
    the batch gets its gradient summed over the batch, in one product.

    Parameters
    ----------
    dD : array_like, shape (..., m, n)
        Cotangent of ``gemm2``'s result; it must broadcast to that result's shape.
    A, B : array_like
        The forward's operands.
    transpose_a, transpose_b, alpha
        The forward's options.

    Returns
    -------
    dA, dB : ndarray
        Each of its operand's shape and float dtype.

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
    >>> A, B = np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]])
    >>> adla.gemm2_backward(1.0, A, B)          # gradient of the 1 x 1 product A@B
    (array([[3., 4.]]), array([[1.],
           [2.]]))
    """
    f = backward_call("gemm2", dict(dD=dD, A=A, B=B))
    alpha = scalar("gemm2_backward", "alpha", alpha)
    f.cotangent("dD", _gemm_shapes(f, transpose_a, transpose_b))
    if f.shared("A") != f.shared("B"):
        return _shared_operand_gradients(f, f.stack("dD"), transpose_a, transpose_b, alpha)
    dA, dB = f.backend.gemm_backward(f.stack("dD"), f.stack("A"), f.stack("B"),
                                     transpose_a=transpose_a, transpose_b=transpose_b,
                                     alpha=alpha)
    return f.gradient(dA, "A"), f.gradient(dB, "B")


@documented_jvp("gemm2")
def gemm2_jvp(A: ArrayLike, B: ArrayLike, dA: Optional[ArrayLike], dB: Optional[ArrayLike], *,
              transpose_a: bool = False, transpose_b: bool = False,
              alpha: float = 1.0) -> tuple[Array, Array]:
    """:func:`gemm2` and its forward-mode derivative,
    ``dD = alpha*(op(dA)@op(B) + op(A)@op(dB))``.

    Examples
    --------
    >>> import numpy as np, adla
    >>> D, dD = adla.gemm2_jvp(np.eye(2), np.ones((2, 1)), None, np.ones((2, 1)))
    >>> dD
    array([[1.],
           [1.]])
    """
    f = jvp_call("gemm2", dict(A=A, B=B, dA=dA, dB=dB))
    alpha = scalar("gemm2_jvp", "alpha", alpha)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    fused = _fused_product_jvp(f, None, None, transpose_a, transpose_b, alpha)
    if fused is not None:
        return f.result(fused[0]), f.result(fused[1])
    D = f.backend.gemm(f.stack("A"), f.stack("B"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha)
    dD = _product_tangent(f, transpose_a, transpose_b, alpha)
    return f.result(D), f.result(dD if dD is not None else f.zero_tangent((m, n)))


# ---- syrk ---------------------------------------------------------------------------------------

def syrk(A: ArrayLike, *, transpose: bool = False, alpha: float = 1.0) -> Array:
    """Symmetric rank-k product ``alpha*A@A^T`` (``alpha*A^T@A`` if `transpose`), batched.

    Both triangles of the result are filled, and it is exactly symmetric.

    Parameters
    ----------
    A : array_like, shape (..., m, k)
    transpose : bool, default False
        Form ``A^T@A`` (order ``k``) instead of ``A@A^T`` (order ``m``).
    alpha : float, default 1.0

    Returns
    -------
    ndarray, shape (..., m, m), or (..., k, k) with `transpose`

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.syrk(np.array([[1.0, 2.0], [0.0, 1.0]]))
    array([[5., 2.],
           [2., 1.]])
    """
    f = forward_call("syrk", dict(A=A))
    alpha = scalar("syrk", "alpha", alpha)
    order = f.core_shape("A")[1 if transpose else 0]
    f.check_lapack_size((order, order), f"the result of shape {(order, order)}")
    return f.result(f.backend.syrk(f.stack("A"), transpose=transpose, alpha=alpha))


def syrk_backward(dC: ArrayLike, A: ArrayLike, *, transpose: bool = False,
                  alpha: float = 1.0) -> Array:
    """Gradient of :func:`syrk` with respect to ``A``.

    ``dC`` counts both triangles separately (no symmetry is assumed):
    ``dA = alpha*(dC + dC^T)@A`` (``alpha*A@(dC + dC^T)`` if `transpose`).

    Parameters
    ----------
    dC : array_like, shape (..., m, m)
        Cotangent of ``syrk``'s result; it must broadcast to that result's shape.
    A : array_like
        The forward's operand.
    transpose, alpha
        The forward's options.

    Returns
    -------
    ndarray
        ``dA``, of ``A``'s shape and float dtype.

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
    >>> adla.syrk_backward(np.eye(2), np.array([[1.0, 2.0], [0.0, 1.0]]))   # d trace(A A^T)
    array([[2., 4.],
           [0., 2.]])
    """
    f = backward_call("syrk", dict(dC=dC, A=A))
    alpha = scalar("syrk_backward", "alpha", alpha)
    order = f.core_shape("A")[1 if transpose else 0]
    f.cotangent("dC", (order, order))
    return f.gradient(f.backend.syrk_backward(f.stack("dC"), f.stack("A"), transpose=transpose,
                                              alpha=alpha), "A")


@documented_jvp("syrk")
def syrk_jvp(A: ArrayLike, dA: Optional[ArrayLike], *, transpose: bool = False,
             alpha: float = 1.0) -> tuple[Array, Array]:
    """:func:`syrk` and its forward-mode derivative, ``dC = P + P^T`` with
    ``P = alpha*dA@A^T`` (``alpha*dA^T@A`` if `transpose`), exactly symmetric.

    Examples
    --------
    >>> import numpy as np, adla
    >>> C, dC = adla.syrk_jvp(np.array([[1.0], [2.0]]), np.array([[1.0], [0.0]]))
    >>> dC
    array([[2., 2.],
           [2., 0.]])
    """
    f = jvp_call("syrk", dict(A=A, dA=dA))
    alpha = scalar("syrk_jvp", "alpha", alpha)
    order = f.core_shape("A")[1 if transpose else 0]
    f.check_lapack_size((order, order), f"the result of shape {(order, order)}")
    be, A_, dA_ = f.backend, f.stack("A"), f.tangent("dA")
    C = be.syrk(A_, transpose=transpose, alpha=alpha)
    if dA_ is None:
        return f.result(C), f.result(f.zero_tangent((order, order)))
    P = be.gemm(dA_, A_, transpose_a=transpose, transpose_b=not transpose, alpha=alpha)
    return f.result(C), f.result(P + P.transpose(0, 2, 1))


# ---- trmm / trsm --------------------------------------------------------------------------------

def _triangular_shapes(f, rightside, a="A", b="B"):
    n = f.square(a)
    if rightside:
        f.require(b, -1, n, f"columns (the order of {a})")
    else:
        f.require(b, -2, n, f"rows (the order of {a})")


def _triangular_gradient(f, P, Q, *, transpose, rightside, lower, alpha):
    """``dA`` of trmm/trsm whose ``d op(A)`` is ``alpha P Q^T`` (``alpha Q^T P`` if rightside):
    for a shared ``A`` summed over the batch in one product, else one per matrix."""
    if not f.shared("A"):
        return f.gradient(triangular_operand_gradient(
            f.backend.gemm, P, Q, transpose=transpose, rightside=rightside, lower=lower,
            alpha=alpha), "A")
    # sum_b P_b Q_b^T (left) or Q_b^T P_b (right), transposed back when transpose
    first, second = (Q, P) if transpose != rightside else (P, Q)
    dA = summed_product(f.backend.gemm, first, second, not rightside, not rightside,
                        nbatch=f.nbatch, alpha=alpha, triangle="lower" if lower else "upper")
    return f.summed_gradient(dA, "A")


def trmm(A: ArrayLike, B: ArrayLike, *, transpose: bool = False, rightside: bool = False,
         lower: bool = True, alpha: float = 1.0) -> Array:
    """Triangular matrix product ``alpha*op(A)@B`` (``alpha*B@op(A)`` if `rightside`), batched.

    Only the triangle of ``A`` chosen by `lower` is read.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Triangular matrices.
    B : array_like, shape (..., n, k), or (..., k, n) with `rightside`
        The batch axes of ``A`` and ``B`` broadcast. One ``A`` for a batch of 8 or more ``B`` is
        read once for 8 of them at a time (order up to 128 with 2 to 64 columns per ``B``, up
        to 24 with one column), else one BLAS call for the whole batch.
    transpose : bool, default False
        Use ``op(A) = A^T``.
    rightside : bool, default False
        Multiply from the right.
    lower : bool, default True
        Read the lower (True) or the upper triangle of ``A``.
    alpha : float, default 1.0

    Returns
    -------
    ndarray, of ``B``'s core shape

    Raises
    ------
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[2.0, 99.0], [1.0, 3.0]])       # 99 is above the diagonal: not read
    >>> adla.trmm(A, np.ones((2, 1)))
    array([[2.],
           [4.]])
    """
    f = forward_call("trmm", dict(A=A, B=B))
    alpha = scalar("trmm", "alpha", alpha)
    _triangular_shapes(f, rightside)
    C = f.backend.trmm(f.stack("A"), f.stack("B"), transpose=transpose, rightside=rightside,
                       lower=lower, alpha=alpha)
    return f.result(C)


def trmm_backward(dC: ArrayLike, A: ArrayLike, B: ArrayLike, *, transpose: bool = False,
                  rightside: bool = False, lower: bool = True,
                  alpha: float = 1.0) -> tuple[Array, Array]:
    """Gradients of :func:`trmm` with respect to ``A`` and ``B``.

    ``dB = alpha*op(A)^T@dC`` (``alpha*dC@op(A)^T`` if `rightside`); ``dA`` is zero outside the
    triangle that is read.

    Parameters
    ----------
    dC : array_like
        Cotangent of ``trmm``'s result; it must broadcast to that result's shape.
    A, B : array_like
        The forward's operands.
    transpose, rightside, lower, alpha
        The forward's options.

    Returns
    -------
    dA, dB : ndarray
        Each of its operand's shape and float dtype.

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
    >>> A = np.array([[2.0, 0.0], [1.0, 3.0]])
    >>> dA, dB = adla.trmm_backward(np.ones((2, 1)), A, np.ones((2, 1)))
    >>> dA
    array([[1., 0.],
           [1., 1.]])
    """
    f = backward_call("trmm", dict(dC=dC, A=A, B=B))
    alpha = scalar("trmm_backward", "alpha", alpha)
    _triangular_shapes(f, rightside)
    f.cotangent("dC", f.core_shape("B"))
    be, A_, B_, dC_ = f.backend, f.stack("A"), f.stack("B"), f.stack("dC")
    flags = dict(rightside=rightside, lower=lower)
    if not f.shared("A"):
        fused = be.trmm_backward(A_, B_, dC_, transpose=transpose, alpha=alpha, **flags)
        if fused is not None:
            return f.gradient(fused[0], "A"), f.gradient(fused[1], "B")
    dB = be.trmm(A_, dC_, transpose=not transpose, alpha=alpha, **flags)
    # C = alpha op(A) B:  d op(A) = alpha dC B^T;  C = alpha B op(A):  d op(A) = alpha B^T dC.
    dA = _triangular_gradient(f, dC_, B_, transpose=transpose, alpha=alpha, **flags)
    return dA, f.gradient(dB, "B")


@documented_jvp("trmm")
def trmm_jvp(A: ArrayLike, B: ArrayLike, dA: Optional[ArrayLike], dB: Optional[ArrayLike], *,
             transpose: bool = False, rightside: bool = False, lower: bool = True,
             alpha: float = 1.0) -> tuple[Array, Array]:
    """:func:`trmm` and its forward-mode derivative, ``dC = alpha*(op(dA)@B + op(A)@dB)``
    (``alpha*(B@op(dA) + dB@op(A))`` if `rightside`), ``dA`` read in ``A``'s triangle.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.array([[1.0, 9.0], [2.0, 3.0]])          # lower: the 9 is not read
    >>> C, dC = adla.trmm_jvp(A, np.eye(2), np.ones((2, 2)), None)
    >>> dC
    array([[1., 0.],
           [1., 1.]])
    """
    f = jvp_call("trmm", dict(A=A, B=B, dA=dA, dB=dB))
    alpha = scalar("trmm_jvp", "alpha", alpha)
    _triangular_shapes(f, rightside)
    be, A_, B_, dA_, dB_ = f.backend, f.stack("A"), f.stack("B"), f.tangent("dA"), f.tangent("dB")
    flags = dict(transpose=transpose, rightside=rightside, lower=lower, alpha=alpha)
    C = be.trmm(A_, B_, **flags)
    dC = be.trmm(dA_, B_, **flags) if dA_ is not None else None
    if dB_ is not None:
        dC = be.trmm(A_, dB_, **flags) if dC is None else dC + be.trmm(A_, dB_, **flags)
    return f.result(C), f.result(dC if dC is not None else f.zero_tangent(f.core_shape("B")))


def trsm(A: ArrayLike, B: ArrayLike, *, transpose: bool = False, rightside: bool = False,
         lower: bool = True, alpha: float = 1.0, check: bool = True) -> Array:
    """Triangular solve ``X = alpha*op(A)^-1@B`` (``alpha*B@op(A)^-1`` if `rightside`), batched.

    Only the triangle of ``A`` chosen by `lower` is read. A matrix fails when that triangle has an
    exactly zero diagonal entry, or when it or ``B`` has a non-finite entry.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Triangular matrices.
    B : array_like, shape (..., n, k), or (..., k, n) with `rightside`
        Right-hand sides; the batch axes of ``A`` and ``B`` broadcast. One ``A`` for a batch of
        8 or more ``B`` is read once for 8 of them at a time (order up to 128 with up to 64
        columns per ``B``, up to 48 with one column), else one BLAS call for the whole batch.
    transpose : bool, default False
        Solve with ``op(A) = A^T``.
    rightside : bool, default False
        Solve ``X@op(A) = alpha*B``.
    lower : bool, default True
        Read the lower (True) or the upper triangle of ``A``.
    alpha : float, default 1.0
    check : bool, default True
        Raise for a failing matrix (True), or return NaN for exactly the failing ones (False).

    Returns
    -------
    ndarray, of ``B``'s core shape

    Raises
    ------
    LinAlgError
        With `check`, naming the batch index of the first failing matrix and the zero diagonal
        entry; ``.indices`` lists every failing matrix.
    ValueError
        If an operand has the wrong shape for the others, or the batch axes do not broadcast.
    TypeError
        If an operand's dtype is not a real float, integer or bool type.

    Examples
    --------
    >>> import numpy as np, adla
    >>> L = np.array([[2.0, 0.0], [1.0, 1.0]])
    >>> adla.trsm(L, np.array([[2.0], [3.0]]))
    array([[1.],
           [2.]])
    """
    f = forward_call("trsm", dict(A=A, B=B))
    alpha = scalar("trsm", "alpha", alpha)
    _triangular_shapes(f, rightside)
    X, status = f.backend.trsm(f.stack("A"), f.stack("B"), transpose=transpose,
                               rightside=rightside, lower=lower, alpha=alpha)
    return f.finish(X, status, check, singular)


def trsm_backward(dX: ArrayLike, A: ArrayLike, B: ArrayLike, X: ArrayLike, *,
                  transpose: bool = False, rightside: bool = False, lower: bool = True,
                  alpha: float = 1.0) -> tuple[Array, Array]:
    """Gradients of :func:`trsm` with respect to ``A`` and ``B``, given its result ``X``.

    With ``Y = op(A)^-T@dX``: ``dB = alpha*Y`` and ``d op(A) = -Y@X^T`` (`rightside`:
    ``Y = dX@op(A)^-T``, ``d op(A) = -X^T@Y``); ``dA`` is zero outside the triangle that is read.
    Both gradients are zero when ``alpha == 0``. A matrix with a zero on ``A``'s diagonal gets
    NaN gradients.

    Parameters
    ----------
    dX : array_like
        Cotangent of ``trsm``'s result; it must broadcast to that result's shape.
    A, B : array_like
        The forward's operands (``B`` gives the shape of its gradient).
    X : array_like
        The forward's result.
    transpose, rightside, lower, alpha
        The forward's options.

    Returns
    -------
    dA, dB : ndarray
        Each of its operand's shape and float dtype.

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
    >>> L, b = np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([[2.0], [3.0]])
    >>> x = adla.trsm(L, b)
    >>> dL, db = adla.trsm_backward(x, L, b, x)        # gradient of sum(x**2)/2
    >>> db
    array([[-0.5],
           [ 2. ]])
    """
    f = backward_call("trsm", dict(dX=dX, A=A, B=B, X=X))
    alpha = scalar("trsm_backward", "alpha", alpha)
    _triangular_shapes(f, rightside)
    f.same_core_shape("X", "B")
    f.cotangent("dX", f.core_shape("B"))
    n = f.core_shape("A")[0]
    if alpha == 0:
        return f.gradient(f.zeros((n, n)), "A"), f.gradient(f.zeros(f.core_shape("B")), "B")
    flags = dict(transpose=transpose, rightside=rightside, lower=lower)
    if f.shared("A"):
        # Y = op(A)^-T dX (right: dX op(A)^-T) for the whole batch at once, dB = alpha Y.
        Y = f.nan_where_failed(*f.backend.trsm(f.stack("A"), f.stack("dX"), lower=lower,
                                               transpose=not transpose, rightside=rightside))
        return (_triangular_gradient(f, Y, f.stack("X"), alpha=-1.0, **flags),
                f.gradient(alpha * Y if alpha != 1 else Y, "B"))
    dA, dB, status = f.backend.trsm_backward(f.stack("A"), f.stack("X"), f.stack("dX"),
                                             alpha=alpha, **flags)
    return (f.gradient(f.nan_where_failed(dA, status), "A"),
            f.gradient(f.nan_where_failed(dB, status), "B"))


@documented_jvp("trsm")
def trsm_jvp(A: ArrayLike, B: ArrayLike, dA: Optional[ArrayLike], dB: Optional[ArrayLike], *,
             transpose: bool = False, rightside: bool = False, lower: bool = True,
             alpha: float = 1.0, check: bool = True) -> tuple[Array, Array]:
    """:func:`trsm` and its forward-mode derivative, ``dX = op(A)^-1@(alpha*dB - op(dA)@X)``
    (``(alpha*dB - X@op(dA))@op(A)^-1`` if `rightside`): a triangular product and a second
    solve, ``dA`` read in ``A``'s triangle.

    Examples
    --------
    >>> import numpy as np, adla
    >>> X, dX = adla.trsm_jvp(2 * np.eye(2), np.ones((2, 1)), np.eye(2), None)
    >>> dX                                              # d(1/a) = -da/a^2
    array([[-0.25],
           [-0.25]])
    """
    f = jvp_call("trsm", dict(A=A, B=B, dA=dA, dB=dB))
    alpha = scalar("trsm_jvp", "alpha", alpha)
    _triangular_shapes(f, rightside)
    be, A_, B_ = f.backend, f.stack("A"), f.stack("B")
    flags = dict(transpose=transpose, rightside=rightside, lower=lower)
    dA_, dB_ = f.tangent("dA"), f.tangent("dB")
    # One fused kernel, unless A is shared by the batch: the forward then solves the stacked
    # right-hand sides at once, and the composed rule does the same (and gives its very bits).
    fused = (be.trsm_jvp(A_, B_, dA_, dB_, alpha=alpha, **flags)
             if not f.shared("A") and (dA_ is not None or dB_ is not None) else None)
    if fused is not None:
        X, dX, status = fused
        if check:
            f.raise_failed(status, singular)
        return f.finish_jvp(X, dX, status)
    X, status = be.trsm(A_, B_, alpha=alpha, **flags)
    if check:
        f.raise_failed(status, singular)
    R = be.trmm(dA_, X, alpha=-1.0, **flags) if dA_ is not None else None
    if dB_ is not None and R is None:
        R = alpha * dB_
    elif dB_ is not None:                          # R is a fresh stack of the batch
        R += dB_ if alpha == 1 else alpha * dB_
    if R is None:
        return f.finish_jvp(X, f.zero_tangent(f.core_shape("B")), status)
    return f.finish_jvp(X, f.nan_where_failed(*be.trsm(A_, R, **flags)), status)
