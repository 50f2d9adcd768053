"""BLAS level-3 operators and their reverse-mode rules: gemm, gemm2, syrk, trmm, trsm.

Each forward is followed by its backward. Backward rules are written with the backend's batched
primitives (no explicit inverses), following Seeger et al., "Auto-Differentiating Linear Algebra"
(2017). ``op(A)`` is ``A``, or ``A^T`` when the matching ``transpose`` flag is set.
"""
from ._frontend import backward_call, forward_call, scalar, singular
from ._array_rules import summed_product, triangular_operand_gradient


# ---- gemm ---------------------------------------------------------------------------------------

def _gemm_shapes(f, transpose_a, transpose_b, names=("A", "B")):
    a, b = names
    m, k = f.core_shape(a)[::-1] if transpose_a else f.core_shape(a)
    kb, n = f.core_shape(b)[::-1] if transpose_b else f.core_shape(b)
    if kb != k:
        raise f.shape_error(b, f"must have {k} {'columns' if transpose_b else 'rows'} to match "
                            f"op({a}) of shape {(m, k)}")
    f.check_lapack_size((m, n), f"the result of shape {(m, n)}")
    return m, n


def gemm(A, B, C, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0):
    """General matrix multiply-add ``D = alpha*op(A)@op(B) + beta*C``, batched.

    ``A``, ``B``, ``C`` are ``(..., m, k)``, ``(..., k, n)`` and ``(..., m, n)`` (with ``op``
    applied); their batch axes broadcast. As in BLAS, ``beta == 0`` ignores ``C`` (NaN in ``C``
    does not propagate) and ``alpha == 0`` ignores ``A`` and ``B``.
    """
    f = forward_call("gemm", dict(A=A, B=B, C=C))
    alpha, beta = scalar("gemm", "alpha", alpha), scalar("gemm", "beta", beta)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    f.require("C", -2, m, "rows (the rows of op(A)@op(B))")
    f.require("C", -1, n, "columns (the columns of op(A)@op(B))")
    D = f.backend.gemm(f.stack("A"), f.stack("B"), f.stack("C"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha, beta=beta)
    return f.result(D)


def gemm_backward(dD, A, B, C, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0):
    """Gradients ``(dA, dB, dC)`` of ``gemm`` given the cotangent ``dD`` of its output:
    ``d op(A) = alpha*dD@op(B)^T``, ``d op(B) = alpha*op(A)^T@dD``, ``dC = beta*dD``."""
    f = backward_call("gemm", dict(dD=dD, A=A, B=B, C=C))
    alpha, beta = scalar("gemm_backward", "alpha", alpha), scalar("gemm_backward", "beta", beta)
    m, n = _gemm_shapes(f, transpose_a, transpose_b)
    f.require("C", -2, m, "rows (the rows of op(A)@op(B))")
    f.require("C", -1, n, "columns (the columns of op(A)@op(B))")
    f.cotangent("dD", (m, n))
    if f.shared("A") != f.shared("B"):
        dD_ = f.stack("dD")
        return _shared_operand_gradients(f, dD_, transpose_a, transpose_b, alpha) + (
            f.gradient(beta * dD_, "C"),)
    dA, dB, dC = f.backend.gemm_backward(f.stack("dD"), f.stack("A"), f.stack("B"),
                                         transpose_a=transpose_a, transpose_b=transpose_b,
                                         alpha=alpha, beta=beta)
    return f.gradient(dA, "A"), f.gradient(dB, "B"), f.gradient(dC, "C")


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


def gemm2(A, B, *, transpose_a=False, transpose_b=False, alpha=1.0):
    """Matrix product ``alpha*op(A)@op(B)``, batched; batch axes broadcast."""
    f = forward_call("gemm2", dict(A=A, B=B))
    alpha = scalar("gemm2", "alpha", alpha)
    _gemm_shapes(f, transpose_a, transpose_b)
    D = f.backend.gemm(f.stack("A"), f.stack("B"), transpose_a=transpose_a,
                       transpose_b=transpose_b, alpha=alpha)
    return f.result(D)


def gemm2_backward(dD, A, B, *, transpose_a=False, transpose_b=False, alpha=1.0):
    """Gradients ``(dA, dB)`` of ``gemm2`` given the cotangent ``dD`` of its output."""
    f = backward_call("gemm2", dict(dD=dD, A=A, B=B))
    alpha = scalar("gemm2_backward", "alpha", alpha)
    f.cotangent("dD", _gemm_shapes(f, transpose_a, transpose_b))
    if f.shared("A") != f.shared("B"):
        return _shared_operand_gradients(f, f.stack("dD"), transpose_a, transpose_b, alpha)
    dA, dB = f.backend.gemm_backward(f.stack("dD"), f.stack("A"), f.stack("B"),
                                     transpose_a=transpose_a, transpose_b=transpose_b,
                                     alpha=alpha)
    return f.gradient(dA, "A"), f.gradient(dB, "B")


# ---- syrk ---------------------------------------------------------------------------------------

def syrk(A, *, transpose=False, alpha=1.0):
    """Symmetric rank-k product ``alpha*A@A^T`` (``alpha*A^T@A`` if transpose), both triangles
    filled."""
    f = forward_call("syrk", dict(A=A))
    alpha = scalar("syrk", "alpha", alpha)
    order = f.core_shape("A")[1 if transpose else 0]
    f.check_lapack_size((order, order), f"the result of shape {(order, order)}")
    return f.result(f.backend.syrk(f.stack("A"), transpose=transpose, alpha=alpha))


def syrk_backward(dC, A, *, transpose=False, alpha=1.0):
    """Gradient ``dA`` of ``syrk``; ``dC`` counts both triangles separately (no symmetry
    assumed): ``dA = alpha*(dC + dC^T)@A`` (``alpha*A@(dC + dC^T)`` if transpose)."""
    f = backward_call("syrk", dict(dC=dC, A=A))
    alpha = scalar("syrk_backward", "alpha", alpha)
    order = f.core_shape("A")[1 if transpose else 0]
    f.cotangent("dC", (order, order))
    return f.gradient(f.backend.syrk_backward(f.stack("dC"), f.stack("A"), transpose=transpose,
                                              alpha=alpha), "A")


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


def trmm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """Triangular matrix multiply ``alpha*op(A)@B`` (``alpha*B@op(A)`` if rightside).

    Only the triangle of ``A`` chosen by ``lower`` is read.
    """
    f = forward_call("trmm", dict(A=A, B=B))
    alpha = scalar("trmm", "alpha", alpha)
    _triangular_shapes(f, rightside)
    C = f.backend.trmm(f.stack("A"), f.stack("B"), transpose=transpose, rightside=rightside,
                       lower=lower, alpha=alpha)
    return f.result(C)


def trmm_backward(dC, A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """Gradients ``(dA, dB)`` of ``trmm``; ``dA`` is zero outside the triangle that is read."""
    f = backward_call("trmm", dict(dC=dC, A=A, B=B))
    alpha = scalar("trmm_backward", "alpha", alpha)
    _triangular_shapes(f, rightside)
    f.cotangent("dC", f.core_shape("B"))
    be, A_, B_, dC_ = f.backend, f.stack("A"), f.stack("B"), f.stack("dC")
    flags = dict(rightside=rightside, lower=lower)
    dB = be.trmm(A_, dC_, transpose=not transpose, alpha=alpha, **flags)
    # C = alpha op(A) B:  d op(A) = alpha dC B^T;  C = alpha B op(A):  d op(A) = alpha B^T dC.
    dA = _triangular_gradient(f, dC_, B_, transpose=transpose, alpha=alpha, **flags)
    return dA, f.gradient(dB, "B")


def trsm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0, check=True):
    """Triangular solve ``X = alpha*op(A)^-1@B`` (``alpha*B@op(A)^-1`` if rightside).

    Only the triangle of ``A`` chosen by ``lower`` is read. A matrix fails when its diagonal has
    an exact zero or when ``A``'s triangle or ``B`` has a non-finite entry: ``check=True`` raises
    :class:`adla.LinAlgError` naming the batch indices, ``check=False`` returns NaN for it.
    """
    f = forward_call("trsm", dict(A=A, B=B))
    alpha = scalar("trsm", "alpha", alpha)
    _triangular_shapes(f, rightside)
    X, status = f.backend.trsm(f.stack("A"), f.stack("B"), transpose=transpose,
                               rightside=rightside, lower=lower, alpha=alpha)
    return f.finish(X, status, check, singular)


def trsm_backward(dX, A, B, X, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    """Gradients ``(dA, dB)`` of ``trsm`` given ``dX`` and the forward's ``X``.

    With ``Y = op(A)^-T@dX``: ``dB = alpha*Y`` and ``d op(A) = -Y@X^T`` (rightside:
    ``Y = dX@op(A)^-T``, ``d op(A) = -X^T@Y``); ``dA`` is zero outside the triangle that is read.
    Both gradients are zero when ``alpha == 0``. A matrix with a zero on ``A``'s diagonal gets
    NaN gradients.
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
