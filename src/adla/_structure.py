"""Diagonal and triangle helpers: extractdiag, makediag, extracttrian, maketrian.

Each is a gather or a scatter of fixed positions of the matrix, so each backward is the other
one: the gradient of a gather scatters the cotangent back, and the gradient of a scatter gathers
it.
"""
import math
import operator

import numpy as np

from ._frontend import backward_call, forward_call


def _offset(fname, offset):
    try:
        return operator.index(offset)
    except TypeError:
        raise TypeError(f"adla.{fname}: offset must be an integer, got {offset!r}") from None


def _diagonal_positions(n, offset):
    i = np.arange(max(n - abs(offset), 0))
    return i + max(-offset, 0), i + max(offset, 0)


def _triangle_positions(n, offset, lower):
    """Lower triangle row by row, or upper triangle column by column (the documented packing)."""
    if offset < 0 or (offset == 0 and lower):
        return np.tril_indices(n, offset)
    cols, rows = np.tril_indices(n, -offset)
    return rows, cols


def _gather(f, name, positions):
    rows, cols = positions
    xp = f.xp
    return f.stack(name)[:, xp.asarray(rows), xp.asarray(cols)]


def _scatter(f, name, positions, n):
    rows, cols = positions
    xp = f.xp
    out = f.zeros((n, n))
    out[:, xp.asarray(rows), xp.asarray(cols)] = f.stack(name)
    return out


def _order_from_diagonal(f, name, offset):
    return f.core_shape(name)[0] + abs(offset)


def _order_from_packed(f, name, offset):
    length = f.core_shape(name)[0]
    side = (math.isqrt(8 * length + 1) - 1) // 2
    if side * (side + 1) // 2 != length:
        raise f.shape_error(name, "must have a triangular number of entries t*(t+1)/2 in its "
                            "last axis")
    return side + abs(offset)


# ---- diagonal -----------------------------------------------------------------------------------

def extractdiag(A, *, offset=0):
    """The ``offset`` diagonal of square matrices (``offset > 0`` above the main diagonal),
    shape ``(..., n - |offset|)``; as in ``numpy.diagonal``, empty when ``|offset| >= n``."""
    offset = _offset("extractdiag", offset)
    f = forward_call("extractdiag", dict(A=A))
    n = f.square("A")
    return f.result(_gather(f, "A", _diagonal_positions(n, offset)))


def extractdiag_backward(dd, A, *, offset=0):
    """Gradient ``dA`` of ``extractdiag``: ``dd`` placed on the ``offset`` diagonal."""
    offset = _offset("extractdiag_backward", offset)
    f = backward_call("extractdiag", dict(dd=dd, A=A))
    n = f.square("A")
    f.cotangent("dd", (max(n - abs(offset), 0),))
    return f.gradient(_scatter(f, "dd", _diagonal_positions(n, offset), n), "A")


def makediag(d, *, offset=0):
    """Square matrices of order ``k + |offset|`` with ``d`` (shape ``(..., k)``) on the
    ``offset`` diagonal and zeros elsewhere."""
    offset = _offset("makediag", offset)
    f = forward_call("makediag", dict(d=d))
    n = _order_from_diagonal(f, "d", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    return f.result(_scatter(f, "d", _diagonal_positions(n, offset), n))


def makediag_backward(dA, d, *, offset=0):
    """Gradient ``dd`` of ``makediag``: the ``offset`` diagonal of ``dA``."""
    offset = _offset("makediag_backward", offset)
    f = backward_call("makediag", dict(dA=dA, d=d))
    n = _order_from_diagonal(f, "d", offset)
    f.cotangent("dA", (n, n))
    return f.gradient(_gather(f, "dA", _diagonal_positions(n, offset)), "d")


# ---- triangle -----------------------------------------------------------------------------------

def extracttrian(A, *, offset=0, lower=True):
    """A triangle of square matrices packed into a vector.

    The lower triangle is packed row by row, the upper one column by column. ``offset < 0``
    takes the lower triangle from that subdiagonal down, ``offset > 0`` the upper triangle from
    that superdiagonal up; ``lower`` chooses only for ``offset == 0``. The result has
    ``t*(t+1)/2`` entries, ``t = max(n - |offset|, 0)``.
    """
    offset = _offset("extracttrian", offset)
    f = forward_call("extracttrian", dict(A=A))
    n = f.square("A")
    return f.result(_gather(f, "A", _triangle_positions(n, offset, lower)))


def extracttrian_backward(dv, A, *, offset=0, lower=True):
    """Gradient ``dA`` of ``extracttrian``: ``dv`` unpacked into its triangle."""
    offset = _offset("extracttrian_backward", offset)
    f = backward_call("extracttrian", dict(dv=dv, A=A))
    n = f.square("A")
    positions = _triangle_positions(n, offset, lower)
    f.cotangent("dv", (len(positions[0]),))
    return f.gradient(_scatter(f, "dv", positions, n), "A")


def maketrian(v, *, offset=0, lower=True):
    """The inverse of :func:`extracttrian`: square matrices of order ``t + |offset|`` holding the
    packed vector ``v`` (``t*(t+1)/2`` entries) in that triangle and zeros elsewhere."""
    offset = _offset("maketrian", offset)
    f = forward_call("maketrian", dict(v=v))
    n = _order_from_packed(f, "v", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    return f.result(_scatter(f, "v", _triangle_positions(n, offset, lower), n))


def maketrian_backward(dA, v, *, offset=0, lower=True):
    """Gradient ``dv`` of ``maketrian``: ``dA``'s triangle, packed."""
    offset = _offset("maketrian_backward", offset)
    f = backward_call("maketrian", dict(dA=dA, v=v))
    n = _order_from_packed(f, "v", offset)
    f.cotangent("dA", (n, n))
    return f.gradient(_gather(f, "dA", _triangle_positions(n, offset, lower)), "v")
