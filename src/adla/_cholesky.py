"""Cholesky-based operators and their reverse-mode rules: potrf, potri, potrs, sumlogdiag.

Throughout, ``lower=True`` means ``A = L@L^T`` with ``L`` lower triangular and ``lower=False``
means ``A = U^T@U`` with ``U = L^T`` upper triangular; each upper-case rule is the lower-case one
with ``L = U^T`` substituted, expressed through transpose flags rather than transposed copies.
"""
import numpy as np

from ._array_rules import triangle
from ._frontend import backward_call, forward_call, not_positive_definite, singular


# ---- potrf --------------------------------------------------------------------------------------

def potrf(A, *, lower=True, check=True):
    """Cholesky factor of symmetric positive definite matrices, batched.

    Returns ``L`` with ``A = L@L^T`` (``lower=True``) or ``U`` with ``A = U^T@U``; the other
    triangle of the result is zero. Only the triangle of ``A`` chosen by ``lower`` is read. A
    matrix that is not positive definite, or has a non-finite entry in that triangle, fails:
    ``check=True`` raises :class:`adla.LinAlgError` (naming the batch index and the order of the
    failing leading minor; ``.indices`` lists every failing matrix), ``check=False`` returns NaN
    for exactly those matrices.
    """
    f = forward_call("potrf", dict(A=A))
    f.square("A")
    L, status = f.backend.potrf(f.stack("A"), lower=lower)
    return f.finish(L, status, check, not_positive_definite)


def potrf_backward(dL, L, *, lower=True):
    """Gradient ``dA`` (symmetric) of ``potrf`` given the cotangent ``dL`` of the factor.

    Entries of ``dL`` outside the factor's triangle are ignored. With ``Phi`` taking the lower
    triangle and halving the diagonal (Murray 2016; Seeger et al. 2017):
    ``G = L^-T@Phi(L^T@dL)@L^-1`` and ``dA = (G + G^T)/2``, so that ``<dA, E>`` is the first-order
    change of the loss for any symmetric perturbation ``E`` of ``A``. One fused kernel per
    matrix: unblocked loops for small orders, a product and two triangular solves (BLAS-3)
    above; no inverse.
    """
    f = backward_call("potrf", dict(dL=dL, L=L))
    f.square("L")
    f.cotangent("dL", f.core_shape("L"))
    dA = f.nan_where_failed(*f.backend.potrf_backward(f.stack("dL"), f.stack("L"), lower=lower))
    return f.gradient(dA, "L")


# ---- potri --------------------------------------------------------------------------------------

def potri(L, *, lower=True, check=True):
    """Inverse ``A^-1`` of ``A = L@L^T`` (``U^T@U`` if not lower) from its Cholesky factor.

    The result is full symmetric. Only the triangle of ``L`` chosen by ``lower`` is read; a zero
    or non-finite entry there fails the matrix (see :func:`potrf` for ``check``).
    """
    f = forward_call("potri", dict(L=L))
    f.square("L")
    Ainv, status = f.backend.potri(f.stack("L"), lower=lower)
    return f.finish(Ainv, status, check, singular)


def potri_backward(dAinv, L, Ainv, *, lower=True):
    """Gradient ``dL`` (triangular) of ``potri``; ``dAinv`` counts both triangles separately.

    With ``S = dAinv + dAinv^T``: ``dL = -tril(Ainv@S@L^-T)`` (upper:
    ``dU = -triu(U^-T@S@Ainv)``), one product and one triangular solve.
    """
    f = backward_call("potri", dict(dAinv=dAinv, L=L, Ainv=Ainv))
    f.square("L")
    f.same_core_shape("Ainv", "L")
    f.cotangent("dAinv", f.core_shape("L"))
    be, L_, Ainv_, S = f.backend, f.stack("L"), f.stack("Ainv"), f.stack("dAinv")
    S = S + S.transpose(0, 2, 1)
    if lower:
        R, status = be.trsm(L_, be.gemm(Ainv_, S), transpose=True, rightside=True, lower=True)
    else:
        R, status = be.trsm(L_, be.gemm(S, Ainv_), transpose=True, lower=False)
    R = f.nan_where_failed(R, status)
    return f.gradient(-triangle(f.xp, R, lower), "L")


# ---- potrs --------------------------------------------------------------------------------------

def potrs(L, B, *, lower=True, check=True):
    """Solve ``A@X = B`` for ``A = L@L^T`` (``U^T@U`` if not lower) given its Cholesky factor.

    ``B`` is ``(..., n, k)``; batch axes of ``L`` and ``B`` broadcast. Only the triangle of ``L``
    chosen by ``lower`` is read. A zero on the diagonal of ``L``, or a non-finite entry in its
    triangle or in ``B``, fails the matrix (see :func:`potrf` for ``check``).
    """
    f = forward_call("potrs", dict(L=L, B=B))
    n = f.square("L")
    f.require("B", -2, n, "rows (the order of L)")
    X, status = f.backend.potrs(f.stack("L"), f.stack("B"), lower=lower)
    return f.finish(X, status, check, singular)


def potrs_backward(dX, L, B, X, *, lower=True):
    """Gradients ``(dL, dB)`` of ``potrs`` given ``dX`` and the forward's ``X``.

    ``dB = A^-1@dX`` (a ``potrs`` solve) and, with ``S = dB@X^T + X@dB^T``, ``dL = -tril(S@L)``
    (upper: ``dU = -triu(U@S)``).
    """
    f = backward_call("potrs", dict(dX=dX, L=L, B=B, X=X))
    n = f.square("L")
    f.require("B", -2, n, "rows (the order of L)")
    f.same_core_shape("X", "B")
    f.cotangent("dX", f.core_shape("B"))
    xp, be, L_, X_ = f.xp, f.backend, f.stack("L"), f.stack("X")
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


# ---- sumlogdiag ---------------------------------------------------------------------------------

def _diagonal(f, name):
    """The main diagonals of operand ``name`` in the call's dtype, shape ``its batch + (n,)``: a
    view where the dtype already fits, no copy of the matrices."""
    return f.xp.diagonal(f.arrays[name], axis1=-2, axis2=-1).astype(f.dtype, copy=False)


def sumlogdiag(A):
    """``sum(log(diag(A)))`` over the last two axes; shape ``A.shape[:-2]`` (a 0-d array for a
    single matrix). A zero diagonal entry gives ``-inf``, a negative one NaN, without warnings.
    With ``L = potrf(K)``, ``2*sumlogdiag(L)`` is ``log(det(K))``."""
    f = forward_call("sumlogdiag", dict(A=A))
    f.square("A")
    with np.errstate(divide="ignore", invalid="ignore"):
        s = f.xp.log(_diagonal(f, "A")).sum(axis=-1)
    return f.xp.array(s, dtype=f.dtype).reshape(f.batch)


def sumlogdiag_backward(ds, A):
    """Gradient ``dA`` of ``sumlogdiag``: diagonal, ``dA[..., i, i] = ds / A[..., i, i]``."""
    f = backward_call("sumlogdiag", dict(ds=ds, A=A))
    n = f.square("A")
    f.cotangent("ds", ())
    xp, shape = f.xp, f.arrays["A"].shape
    with np.errstate(divide="ignore", invalid="ignore"):
        diagonal = f.arrays["ds"].astype(f.dtype, copy=False)[..., None] / _diagonal(f, "A")
    # ds broadcasts to A's batch (checked), so this is the gradient in A's own shape.
    dtype = f.arrays["A"].dtype if f.arrays["A"].dtype.kind == "f" else f.dtype
    dA = xp.zeros(shape, dtype=dtype)
    if n:
        dA.reshape(-1, n * n)[:, ::n + 1] = xp.broadcast_to(diagonal, shape[:-1]).reshape(-1, n)
    return dA
