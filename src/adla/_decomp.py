"""Decompositions and their reverse-mode rules: gelqf, geqrf, syevd, inverse, det, slogdet.

Each forward is followed by its backward (Seeger et al., "Auto-Differentiating Linear Algebra",
2017, for LQ and the symmetric eigendecomposition; QR is LQ of the transpose).
"""
import numpy as np

from ._array_rules import degenerate_tolerance, triangle
from ._frontend import (backward_call, forward_call, lu_singular, not_converged,
                        rank_deficient)


def _copy_lower_to_upper(xp, M):
    """The symmetric matrix whose lower triangle (diagonal included) is that of ``M``."""
    lower = xp.tril(M)
    return lower + xp.tril(M, -1).transpose(0, 2, 1)


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

def gelqf(A):
    """Thin LQ factorisation ``A = L@Q`` of ``(..., m, n)`` matrices with ``m <= n``.

    Returns ``(Q, L)``: ``Q`` is ``m x n`` with orthonormal rows, ``L`` is ``m x m`` lower
    triangular with a non-negative diagonal (LAPACK ``geqrf`` + ``orgqr`` on the column-major view,
    signs flipped in pairs). A matrix with a non-finite entry gives NaN factors.
    """
    f = forward_call("gelqf", dict(A=A))
    m, n = f.core_shape("A")
    if m > n:
        raise f.shape_error("A", "must have at most as many rows as columns (use geqrf)")
    Q, L, status = f.backend.gelqf(f.stack("A"))
    return f.finish((Q, L), status, False, str)


def gelqf_backward(dQ, dL, Q, L):
    """Gradient ``dA`` of ``gelqf``; ``dQ`` or ``dL`` may be None (zero).

    With ``M = L^T@dL - dQ@Q^T``: ``dA = L^-T@(dQ + copyltu(M)@Q)``, where ``copyltu`` mirrors the
    lower triangle onto the upper one. Needs full rank: a zero on the diagonal of ``L`` raises
    :class:`adla.LinAlgError`. Entries of ``dL`` above the diagonal are ignored.
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
    M = (be.gemm(T_, dT_, transpose_a=lq, transpose_b=not lq)
         - be.gemm(dQ_, Q_, transpose_a=not lq, transpose_b=lq))
    S = _copy_lower_to_upper(xp, M)
    W = dQ_ + (be.gemm(S, Q_) if lq else be.gemm(Q_, S))
    return f.gradient(_solve_full_rank(f, W, T_, lq), "Q")


def geqrf(A):
    """Thin QR factorisation ``A = Q@R`` of ``(..., m, n)`` matrices with ``m >= n``.

    Returns ``(Q, R)``: ``Q`` is ``m x n`` with orthonormal columns, ``R`` is ``n x n`` upper
    triangular with a non-negative diagonal (LAPACK ``gelqf`` + ``orglq`` on the column-major
    view). A matrix with a non-finite entry gives NaN factors.
    """
    f = forward_call("geqrf", dict(A=A))
    m, n = f.core_shape("A")
    if m < n:
        raise f.shape_error("A", "must have at least as many rows as columns (use gelqf)")
    Q, R, status = f.backend.geqrf(f.stack("A"))
    return f.finish((Q, R), status, False, str)


def geqrf_backward(dQ, dR, Q, R):
    """Gradient ``dA`` of ``geqrf``; ``dQ`` or ``dR`` may be None (zero).

    The LQ rule applied to ``A^T = R^T@Q^T``: with ``M = R@dR^T - dQ^T@Q``,
    ``dA = (dQ + Q@copyltu(M))@R^-T``. Needs full rank: a zero on the diagonal of ``R`` raises
    :class:`adla.LinAlgError`. Entries of ``dR`` below the diagonal are ignored.
    """
    return _orthogonal_backward("geqrf", dQ, dR, Q, R, lq=False)


# ---- syevd --------------------------------------------------------------------------------------

def syevd(A, *, check=True):
    """Symmetric eigendecomposition ``A = U^T@diag(lam)@U``, reading the lower triangle.

    Returns ``(U, lam)``: the rows of ``U`` are orthonormal eigenvectors, ``lam`` ascends, and
    each row's entry of largest magnitude is positive (the first one on ties), so the output is
    deterministic. Order up to 32: adla's tridiagonal QL on 8 matrices at once (eigenvalues
    accurate to ``eps * |A|``, as LAPACK's); above: LAPACK ``syevd``. A non-finite entry in the
    lower triangle or a failure to converge fails the matrix (``check=True`` raises
    :class:`adla.LinAlgError`, ``check=False`` returns NaN for it).
    """
    f = forward_call("syevd", dict(A=A))
    f.square("A")
    U, lam, status = f.backend.syevd(f.stack("A"))
    return f.finish((U, lam), status, check, not_converged)


def syevd_backward(dU, dlam, U, lam):
    """Gradient ``dA`` (symmetric) of ``syevd``; ``dU`` or ``dlam`` may be None (zero).

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


# ---- inverse, det, slogdet ----------------------------------------------------------------------

def inverse(A, *, check=True):
    """Matrix inverse ``A^-1`` (LAPACK ``getrf`` + ``getri``). A singular matrix (an exactly zero
    pivot) or one with a non-finite entry fails (see ``check`` in :func:`adla.potrf`)."""
    f = forward_call("inverse", dict(A=A))
    f.square("A")
    Ainv, status = f.backend.inverse(f.stack("A"))
    return f.finish(Ainv, status, check, lu_singular)


def inverse_backward(dAinv, Ainv):
    """Gradient ``dA = -Ainv^T@dAinv@Ainv^T`` of ``inverse``."""
    f = backward_call("inverse", dict(dAinv=dAinv, Ainv=Ainv))
    f.square("Ainv")
    f.cotangent("dAinv", f.core_shape("Ainv"))
    be, Ainv_ = f.backend, f.stack("Ainv")
    left = be.gemm(Ainv_, f.stack("dAinv"), transpose_a=True)
    return f.gradient(be.gemm(left, Ainv_, transpose_b=True, alpha=-1.0), "Ainv")


def slogdet(A):
    """``(sign, logabsdet)`` of ``det(A)``, each of shape ``A.shape[:-2]`` (LAPACK ``getrf``).

    A singular matrix gives ``sign = 0`` and ``logabsdet = -inf``; a non-finite entry gives NaN
    for both."""
    f = forward_call("slogdet", dict(A=A))
    f.square("A")
    sign, logabsdet, status = f.backend.slogdet(f.stack("A"))
    return f.finish((sign, logabsdet), status, False, str)


def slogdet_backward(dlogabsdet, A):
    """Gradient ``dA = dlogabsdet * A^-T`` of ``logabsdet`` (``sign`` is piecewise constant).

    At a singular matrix the gradient does not exist: the result is non-finite, nothing is
    raised."""
    f = backward_call("slogdet", dict(dlogabsdet=dlogabsdet, A=A))
    f.square("A")
    f.cotangent("dlogabsdet", ())
    Ainv = f.nan_where_failed(*f.backend.inverse(f.stack("A")))
    with np.errstate(invalid="ignore"):
        dA = f.stack("dlogabsdet")[:, None, None] * Ainv.transpose(0, 2, 1)
    return f.gradient(dA, "A")


def det(A):
    """Determinant, of shape ``A.shape[:-2]``: ``sign * exp(logabsdet)`` from :func:`slogdet`."""
    f = forward_call("det", dict(A=A))
    f.square("A")
    sign, logabsdet, status = f.backend.slogdet(f.stack("A"))
    return f.finish(sign * f.xp.exp(logabsdet), status, False, str)


def det_backward(dd, A, d):
    """Gradient ``dA = dd * adj(A)^T`` of ``det``: the cofactor matrix, computed from the SVD
    without division, so it is exact for singular matrices too (non-zero at rank ``n-1``, zero
    below). ``d`` (the forward's result) is accepted for the uniform signature."""
    f = backward_call("det", dict(dd=dd, A=A, d=d))
    f.square("A")
    f.cotangent("dd", ())
    cof = f.nan_where_failed(*f.backend.cofactor(f.stack("A")))
    return f.gradient(f.stack("dd")[:, None, None] * cof, "A")
