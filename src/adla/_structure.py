"""Diagonal and triangle helpers: extractdiag, makediag, extracttrian, maketrian.

Each is a gather or a scatter of fixed positions of the matrix, so each backward is the other
one: the gradient of a gather scatters the cotangent back, and the gradient of a scatter gathers
it. Both are the backend's (``extract_part``, ``embed_part``): on the CPU a kernel that moves
each matrix in one pass (the packed triangles' forward+backward 5-15x faster than through
NumPy's fancy indexing).
"""
from __future__ import annotations

import math
import operator

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._array_rules import part_length
from ._frontend import backward_call, forward_call, jvp_call
from ._spec import documented_jvp

Array = NDArray[np.floating]      # what every operator returns


def _offset(fname, offset):
    try:
        return operator.index(offset)
    except TypeError:
        raise TypeError(f"adla.{fname}: offset must be an integer, got {offset!r}") from None


def _triangle(offset, lower):
    """The part a triangle helper moves: the lower triangle (packed row by row) or the upper one
    (column by column), as documented in :func:`extracttrian`."""
    return "lower" if offset < 0 or (offset == 0 and lower) else "upper"


def _extract(f, name, part, offset):
    return f.backend.extract_part(f.stack(name), part, offset)


def _embed(f, name, part, offset, n):
    return f.backend.embed_part(f.stack(name), n, part, offset)


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

def extractdiag(A: ArrayLike, *, offset: int = 0) -> Array:
    """The `offset` diagonal of square matrices, batched.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    offset : int, default 0
        The diagonal: 0 the main one, positive above it, negative below (as in
        ``numpy.diagonal``).

    Returns
    -------
    ndarray, shape (..., n - abs(offset))
        Empty when ``abs(offset) >= n``.

    Raises
    ------
    ValueError
        If an operand has the wrong shape.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.extractdiag(A, offset=1)
    array([2., 6.])
    """
    offset = _offset("extractdiag", offset)
    f = forward_call("extractdiag", dict(A=A))
    n = f.square("A")
    return f.result(_extract(f, "A", "diagonal", offset))


def extractdiag_backward(dd: ArrayLike, A: ArrayLike, *, offset: int = 0) -> Array:
    """Gradient of :func:`extractdiag`: ``dd`` placed on the `offset` diagonal, zeros elsewhere.

    Parameters
    ----------
    dd : array_like, shape (..., n - abs(offset))
        Cotangent of the diagonal; it must broadcast to its shape.
    A : array_like, shape (..., n, n)
        The forward's operand.
    offset
        The forward's option.

    Returns
    -------
    ndarray, shape of ``A``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or the cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.extractdiag_backward(np.array([1.0, 2.0]), A, offset=-1)
    array([[0., 0., 0.],
           [1., 0., 0.],
           [0., 2., 0.]])
    """
    offset = _offset("extractdiag_backward", offset)
    f = backward_call("extractdiag", dict(dd=dd, A=A))
    n = f.square("A")
    f.cotangent("dd", (part_length(n, "diagonal", offset),))
    return f.gradient(_embed(f, "dd", "diagonal", offset, n), "A")


@documented_jvp("extractdiag")
def extractdiag_jvp(A: ArrayLike, dA: Optional[ArrayLike], *,
                    offset: int = 0) -> tuple[Array, Array]:
    """:func:`extractdiag` and its forward-mode derivative (the same diagonal of ``dA``).

    Examples
    --------
    >>> import numpy as np, adla
    >>> d, dd = adla.extractdiag_jvp(np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> dd
    array([1., 4.])
    """
    offset = _offset("extractdiag_jvp", offset)
    f = jvp_call("extractdiag", dict(A=A, dA=dA))
    n = f.square("A")
    dd = (_extract(f, "dA", "diagonal", offset) if "dA" in f.arrays
          else f.zero_tangent((part_length(n, "diagonal", offset),)))
    return f.result(_extract(f, "A", "diagonal", offset)), f.result(dd)


def makediag(d: ArrayLike, *, offset: int = 0) -> Array:
    """Square matrices with ``d`` on the `offset` diagonal and zeros elsewhere, batched.

    Parameters
    ----------
    d : array_like, shape (..., k)
    offset : int, default 0
        The diagonal: 0 the main one, positive above it, negative below (as in
        ``numpy.diagonal``).

    Returns
    -------
    ndarray, shape (..., k + abs(offset), k + abs(offset))

    Raises
    ------
    ValueError
        If an operand has the wrong shape.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.makediag(np.array([1.0, 2.0]), offset=1)
    array([[0., 1., 0.],
           [0., 0., 2.],
           [0., 0., 0.]])
    """
    offset = _offset("makediag", offset)
    f = forward_call("makediag", dict(d=d))
    n = _order_from_diagonal(f, "d", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    return f.result(_embed(f, "d", "diagonal", offset, n))


def makediag_backward(dA: ArrayLike, d: ArrayLike, *, offset: int = 0) -> Array:
    """Gradient of :func:`makediag`: the `offset` diagonal of ``dA``.

    Parameters
    ----------
    dA : array_like, shape (..., n, n)
        Cotangent of the matrices; it must broadcast to their shape.
    d : array_like, shape (..., k)
        The forward's operand.
    offset
        The forward's option.

    Returns
    -------
    ndarray, shape of ``d``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or the cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.makediag_backward(A, np.zeros(2), offset=1)
    array([2., 6.])
    """
    offset = _offset("makediag_backward", offset)
    f = backward_call("makediag", dict(dA=dA, d=d))
    n = _order_from_diagonal(f, "d", offset)
    f.cotangent("dA", (n, n))
    return f.gradient(_extract(f, "dA", "diagonal", offset), "d")


@documented_jvp("makediag")
def makediag_jvp(d: ArrayLike, dd: Optional[ArrayLike], *,
                 offset: int = 0) -> tuple[Array, Array]:
    """:func:`makediag` and its forward-mode derivative (``dd`` on the same diagonal).

    Examples
    --------
    >>> import numpy as np, adla
    >>> A, dA = adla.makediag_jvp(np.ones(2), np.array([5.0, 6.0]))
    >>> dA
    array([[5., 0.],
           [0., 6.]])
    """
    offset = _offset("makediag_jvp", offset)
    f = jvp_call("makediag", dict(d=d, dd=dd))
    n = _order_from_diagonal(f, "d", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    dA = _embed(f, "dd", "diagonal", offset, n) if "dd" in f.arrays else f.zero_tangent((n, n))
    return f.result(_embed(f, "d", "diagonal", offset, n)), f.result(dA)


# ---- triangle -----------------------------------------------------------------------------------

def extracttrian(A: ArrayLike, *, offset: int = 0, lower: bool = True) -> Array:
    """A triangle of square matrices packed into a vector, batched.

    The lower triangle is packed row by row, the upper one column by column.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    offset : int, default 0
        ``offset < 0``: the lower triangle from that subdiagonal down; ``offset > 0``: the upper
        triangle from that superdiagonal up.
    lower : bool, default True
        For ``offset == 0``: the lower (True) or upper triangle, diagonal included.

    Returns
    -------
    ndarray, shape (..., t*(t+1)/2)
        ``t = max(n - abs(offset), 0)``.

    Raises
    ------
    ValueError
        If an operand has the wrong shape.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.extracttrian(A)
    array([1., 4., 5., 7., 8., 9.])
    >>> adla.extracttrian(A, lower=False)
    array([1., 2., 5., 3., 6., 9.])
    """
    offset = _offset("extracttrian", offset)
    f = forward_call("extracttrian", dict(A=A))
    n = f.square("A")
    return f.result(_extract(f, "A", _triangle(offset, lower), offset))


def extracttrian_backward(dv: ArrayLike, A: ArrayLike, *, offset: int = 0,
                          lower: bool = True) -> Array:
    """Gradient of :func:`extracttrian`: ``dv`` unpacked into its triangle, zeros elsewhere.

    Parameters
    ----------
    dv : array_like, shape (..., t*(t+1)/2)
        Cotangent of the packed triangle; it must broadcast to its shape.
    A : array_like, shape (..., n, n)
        The forward's operand.
    offset, lower
        The forward's options.

    Returns
    -------
    ndarray, shape of ``A``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or the cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.extracttrian_backward(np.ones(3), A, offset=-1)
    array([[0., 0., 0.],
           [1., 0., 0.],
           [1., 1., 0.]])
    """
    offset = _offset("extracttrian_backward", offset)
    f = backward_call("extracttrian", dict(dv=dv, A=A))
    n = f.square("A")
    part = _triangle(offset, lower)
    f.cotangent("dv", (part_length(n, part, offset),))
    return f.gradient(_embed(f, "dv", part, offset, n), "A")


@documented_jvp("extracttrian")
def extracttrian_jvp(A: ArrayLike, dA: Optional[ArrayLike], *, offset: int = 0,
                     lower: bool = True) -> tuple[Array, Array]:
    """:func:`extracttrian` and its forward-mode derivative (the same entries of ``dA``).

    Examples
    --------
    >>> import numpy as np, adla
    >>> v, dv = adla.extracttrian_jvp(np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> dv
    array([1., 3., 4.])
    """
    offset = _offset("extracttrian_jvp", offset)
    f = jvp_call("extracttrian", dict(A=A, dA=dA))
    n = f.square("A")
    part = _triangle(offset, lower)
    dv = (_extract(f, "dA", part, offset) if "dA" in f.arrays
          else f.zero_tangent((part_length(n, part, offset),)))
    return f.result(_extract(f, "A", part, offset)), f.result(dv)


def maketrian(v: ArrayLike, *, offset: int = 0, lower: bool = True) -> Array:
    """The inverse of :func:`extracttrian`: square matrices holding the packed vector ``v`` in
    that triangle and zeros elsewhere, batched.

    Parameters
    ----------
    v : array_like, shape (..., t*(t+1)/2)
    offset : int, default 0
        ``offset < 0``: the lower triangle from that subdiagonal down; ``offset > 0``: the upper
        triangle from that superdiagonal up.
    lower : bool, default True
        For ``offset == 0``: the lower (True) or upper triangle, diagonal included.

    Returns
    -------
    ndarray, shape (..., t + abs(offset), t + abs(offset))

    Raises
    ------
    ValueError
        If the last axis of ``v`` is not a triangular number.
    ValueError
        If an operand has the wrong shape.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> adla.maketrian(np.array([1.0, 2.0, 3.0]))
    array([[1., 0.],
           [2., 3.]])
    """
    offset = _offset("maketrian", offset)
    f = forward_call("maketrian", dict(v=v))
    n = _order_from_packed(f, "v", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    return f.result(_embed(f, "v", _triangle(offset, lower), offset, n))


def maketrian_backward(dA: ArrayLike, v: ArrayLike, *, offset: int = 0,
                       lower: bool = True) -> Array:
    """Gradient of :func:`maketrian`: ``dA``'s triangle, packed.

    Parameters
    ----------
    dA : array_like, shape (..., n, n)
        Cotangent of the matrices; it must broadcast to their shape.
    v : array_like, shape (..., t*(t+1)/2)
        The forward's operand.
    offset, lower
        The forward's options.

    Returns
    -------
    ndarray, shape of ``v``

    Raises
    ------
    ValueError
        If an operand has the wrong shape, or the cotangent does not broadcast to its output's
        shape without changing it.
    TypeError
        If an operand's dtype is not a real float, integer or bool type, or `offset` is not an
        integer.

    Examples
    --------
    >>> import numpy as np, adla
    >>> A = np.arange(1.0, 10.0).reshape(3, 3)
    >>> adla.maketrian_backward(A, np.zeros(6))
    array([1., 4., 5., 7., 8., 9.])
    """
    offset = _offset("maketrian_backward", offset)
    f = backward_call("maketrian", dict(dA=dA, v=v))
    n = _order_from_packed(f, "v", offset)
    f.cotangent("dA", (n, n))
    return f.gradient(_extract(f, "dA", _triangle(offset, lower), offset), "v")


@documented_jvp("maketrian")
def maketrian_jvp(v: ArrayLike, dv: Optional[ArrayLike], *, offset: int = 0,
                  lower: bool = True) -> tuple[Array, Array]:
    """:func:`maketrian` and its forward-mode derivative (``dv`` in the same places).

    Examples
    --------
    >>> import numpy as np, adla
    >>> A, dA = adla.maketrian_jvp(np.ones(3), np.array([1.0, 2.0, 3.0]))
    >>> dA
    array([[1., 0.],
           [2., 3.]])
    """
    offset = _offset("maketrian_jvp", offset)
    f = jvp_call("maketrian", dict(v=v, dv=dv))
    n = _order_from_packed(f, "v", offset)
    f.check_lapack_size((n, n), f"the result of shape {(n, n)}")
    part = _triangle(offset, lower)
    dA = _embed(f, "dv", part, offset, n) if "dv" in f.arrays else f.zero_tangent((n, n))
    return f.result(_embed(f, "v", part, offset, n)), f.result(dA)
