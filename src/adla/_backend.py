"""The backend contract: what the front end (``_frontend.Call`` and the operators' rules) may call
on a backend, and nothing more. ``_cpu`` (NumPy, the kernels of ``_lapack.pyx``) and
``_gpu.backend`` (CuPy) are modules that implement it alike; ``tests/test_architecture.py`` checks
that each defines every function here with the same parameters.

Every array argument is a C-contiguous stack ``(nbatch, rows, cols)`` (``(nbatch, n)`` for
vectors such as eigenvalues and tolerances) of one float dtype; a stack of length 1 is broadcast
over the batch. Every array result is a fresh stack of the batch length. A primitive that can fail
numerically returns its output(s) and then an int32 ``status`` per matrix, kept where the arrays
live (no host synchronisation): 0 for success, :data:`STATUS_NONFINITE` for a non-finite entry
among those it reads, :data:`STATUS_NO_MEMORY` where workspace could not be allocated, and
otherwise a positive LAPACK-style code whose meaning each operator's rule states. Turning status
into exceptions or NaN is the front end's job (through :meth:`Backend.fill_failed`,
:meth:`Backend.failed` and :meth:`Backend.out_of_memory`).

A backend imports nothing of the layers above it; rules that both backends share and that are
written against the array module live in ``_array_rules``.
"""
from typing import Any, Optional, Protocol, Tuple

STATUS_NONFINITE = -1
STATUS_NO_MEMORY = -2

Stack = Any             # a NumPy or CuPy array, per the stack convention above


class Backend(Protocol):
    """The functions a backend module defines (``xp`` is its array module)."""

    xp: Any

    # ---- status ------------------------------------------------------------------------------
    def fill_failed(self, out: Stack, status: Stack) -> Stack:
        """``out`` with the matrices whose status is not 0 set to NaN, in place; no host
        synchronisation."""

    def failed(self, status: Stack) -> Any:
        """The flat batch indices of the failing matrices, as a NumPy array (synchronises on a
        device)."""

    def out_of_memory(self, status: Stack) -> bool:
        """Whether any matrix failed for want of workspace (a backend that never reports
        :data:`STATUS_NO_MEMORY` answers False without looking)."""

    # ---- products ----------------------------------------------------------------------------
    def gemm(self, a: Stack, b: Stack, c: Optional[Stack] = None, *, transpose_a: bool = False,
             transpose_b: bool = False, alpha: float = 1.0, beta: float = 0.0,
             triangle: Optional[str] = None) -> Stack:
        """``alpha op(a) op(b) + beta c`` (``c`` None: no C, beta ignored); ``triangle``
        ("lower"/"upper") keeps that triangle of the square result, zero elsewhere."""

    def gemm_jvp(self, a: Stack, b: Stack, c: Optional[Stack], da: Optional[Stack],
                 db: Optional[Stack], dc: Optional[Stack], *, transpose_a: bool = False,
                 transpose_b: bool = False, alpha: float = 1.0,
                 beta: float = 0.0) -> Optional[Tuple[Stack, Stack]]:
        """``(D, dD)``: gemm and its tangent ``alpha (op(da) op(b) + op(a) op(db)) + beta dc``
        from one fused kernel (None operands: zero), or None where the backend has none at this
        size (the rule composes it then)."""

    def sandwich(self, x: Stack, y: Stack, *, transpose: bool = False,
                 alpha: float = 1.0) -> Optional[Stack]:
        """``alpha op(x) y op(x)`` of square matrices from one fused kernel (the inverse's
        gradient and tangent), or None where the backend has none at this size (the rule
        composes it of two gemm calls then)."""

    def gemm_backward(self, dd: Stack, a: Stack, b: Stack, *, transpose_a: bool = False,
                      transpose_b: bool = False, alpha: float = 1.0,
                      beta: Optional[float] = None) -> Tuple[Stack, ...]:
        """``(dA, dB)`` of ``alpha op(a) op(b)`` from ``dd``, and ``dC = beta dd`` too when
        ``beta`` is given."""

    def syrk(self, a: Stack, *, transpose: bool = False, alpha: float = 1.0) -> Stack:
        """``alpha a a^T`` (``alpha a^T a`` if transpose), both triangles."""

    def syrk_backward(self, dc: Stack, a: Stack, *, transpose: bool = False,
                      alpha: float = 1.0) -> Stack:
        """``alpha (dc + dc^T) a`` (``alpha a (dc + dc^T)`` if transpose)."""

    def trmm(self, a: Stack, b: Stack, *, transpose: bool = False, rightside: bool = False,
             lower: bool = True, alpha: float = 1.0) -> Stack:
        """``alpha op(a) b`` (``alpha b op(a)`` if rightside), ``a`` read in one triangle."""

    def trmm_backward(self, a: Stack, b: Stack, dc: Stack, *, transpose: bool = False,
                      rightside: bool = False, lower: bool = True,
                      alpha: float = 1.0) -> Optional[Tuple[Stack, Stack]]:
        """``(dA, dB)`` of trmm from one fused kernel, ``dA`` on the triangle that is read, or
        None where the backend has none at this size (the rule composes it then)."""

    # ---- triangular solves and Cholesky ------------------------------------------------------
    def trsm(self, a: Stack, b: Stack, *, transpose: bool = False, rightside: bool = False,
             lower: bool = True, alpha: float = 1.0) -> Tuple[Stack, Stack]:
        """``(alpha op(a)^-1 b, status)`` (``alpha b op(a)^-1`` if rightside); status: the
        1-based position of the first zero on the diagonal."""

    def trsm_backward(self, a: Stack, x: Stack, dx: Stack, *, transpose: bool = False,
                      rightside: bool = False, lower: bool = True,
                      alpha: float = 1.0) -> Tuple[Stack, Stack, Stack]:
        """``(dA, dB, status)`` of trsm from its output ``x`` and cotangent ``dx``."""

    def trsm_jvp(self, a: Stack, b: Stack, da: Optional[Stack], db: Optional[Stack], *,
                 transpose: bool = False, rightside: bool = False, lower: bool = True,
                 alpha: float = 1.0) -> Optional[Tuple[Stack, Stack, Stack]]:
        """``(X, dX, status)`` of trsm from one fused kernel (a tangent None: zero), or None
        where the backend has none (the rule composes it then); status as trsm's."""

    def potrf(self, a: Stack, *, lower: bool = True) -> Tuple[Stack, Stack]:
        """``(factor, status)``; status: the order of the first leading minor that is not
        positive definite."""

    def potrf_jvp(self, a: Stack, da: Stack, *,
                  lower: bool = True) -> Optional[Tuple[Stack, Stack, Stack]]:
        """``(factor, tangent, status)`` of potrf from one fused kernel, or None where the
        backend has none (the rule composes it then); status as potrf's (a non-finite tangent
        is no failure)."""

    def potrf_backward(self, dl: Stack, l: Stack, *, lower: bool = True) -> Tuple[Stack, Stack]:
        """``(dA, status)``, the symmetric gradient of potrf; status as trsm's."""

    def potri(self, l: Stack, *, lower: bool = True) -> Tuple[Stack, Stack]:
        """``(A^-1, status)`` from the factor, both triangles; status as trsm's."""

    def potrs(self, l: Stack, b: Stack, *, lower: bool = True) -> Tuple[Stack, Stack]:
        """``(A^-1 b, status)`` from the factor; status as trsm's."""

    def potri_backward(self, l: Stack, ainv: Stack, dainv: Stack, *,
                       lower: bool = True) -> Optional[Tuple[Stack, Stack]]:
        """``(dL, status)`` of potri from one fused kernel, or None where the backend has none
        at this size (the rule composes it then); status as trsm's on ``l``."""

    def potrs_backward(self, l: Stack, x: Stack, dx: Stack, *,
                       lower: bool = True) -> Optional[Tuple[Stack, Stack, Stack]]:
        """``(dL, dB, status)`` of potrs from one fused kernel, or None where the backend has
        none at this size (the rule composes it then); status as potrs's on ``(l, dx)``."""

    # ---- decompositions ----------------------------------------------------------------------
    def gelqf(self, a: Stack) -> Tuple[Stack, Stack, Stack]:
        """``(Q, L, status)``, thin LQ with a non-negative diagonal."""

    def geqrf(self, a: Stack) -> Tuple[Stack, Stack, Stack]:
        """``(Q, R, status)``, thin QR with a non-negative diagonal."""

    def orthogonal_backward(self, dq: Optional[Stack], dt: Optional[Stack], q: Stack, t: Stack,
                            lq: bool) -> Optional[Tuple[Stack, Stack]]:
        """``(dA, status)`` of gelqf (``lq``) or geqrf from one fused kernel, or None where the
        backend has none at this size (the rule composes it then); status: the 1-based position
        of a zero on the triangular factor's diagonal."""

    def orthogonal_jvp(self, a: Stack, da: Stack,
                       lq: bool) -> Optional[Tuple[Stack, Stack, Stack, Stack, Stack]]:
        """``(Q, T, dQ, dT, status)`` of gelqf (``lq``) or geqrf and its tangent from one fused
        kernel, or None where the backend has none at this size (the rule composes it then);
        status as the factorisation's (a rank-deficient matrix or a non-finite tangent gives
        NaN tangents, no failure)."""

    def syevd(self, a: Stack) -> Tuple[Stack, Stack, Stack]:
        """``(U, lam, status)``: eigenvectors as rows, sign-normalised, ascending eigenvalues;
        reads the lower triangle; status: a positive count where the solver did not converge."""

    def syevd_backward(self, du: Optional[Stack], dlam: Optional[Stack], u: Stack, lam: Stack,
                       tolerance: Stack) -> Stack:
        """The symmetric gradient of syevd; eigenvalues of a matrix closer than its
        ``tolerance`` (a stack ``(nbatch,)``) are one eigenspace."""

    def syevd_tangent(self, da: Stack, u: Stack, lam: Stack,
                      tolerance: Stack) -> Tuple[Stack, Stack]:
        """``(dU, dlam)``, syevd's tangent along ``da`` (its lower triangle read) from the
        factorisation; the coupling within ``tolerance`` dropped, as in syevd_backward."""

    def inverse(self, a: Stack, *, transpose: bool = False,
                scale: Optional[Stack] = None) -> Tuple[Stack, Stack]:
        """``(a^-1, status)``, ``(a^-T, status)`` with ``transpose``; status 1 for an exactly
        zero pivot. ``scale``: a stack of one scalar per matrix in ``a``'s dtype (length 1:
        shared), each result multiplied by its own (the product's rounding, as a separate
        multiply's)."""

    def slogdet(self, a: Stack) -> Tuple[Stack, Stack, Stack]:
        """``(sign, logabsdet, status)``; a singular matrix is not a failure."""

    def cofactor(self, a: Stack, *, scale: Optional[Stack] = None) -> Tuple[Stack, Stack]:
        """``(adj(a)^T, status)``, exact for singular matrices too; ``scale`` as
        :meth:`inverse`'s."""

    def gesvd(self, a: Stack) -> Tuple[Stack, Stack, Stack, Stack]:
        """``(U, s, Vt, status)``: thin SVD, ``s`` descending, each row of ``Vt`` with its entry
        of largest magnitude positive; status: non-finite input, or a positive code where the
        solver did not converge."""

    def gesv(self, a: Stack, b: Stack, *, transpose: bool = False) -> Tuple[Stack, Stack]:
        """``(op(a)^-1 b, status)`` by LU with partial pivoting; status: non-finite input, else
        the 1-based position of the first exactly zero pivot."""

    def gesv_jvp(self, a: Stack, b: Stack, da: Optional[Stack], db: Optional[Stack], *,
                 transpose: bool = False) -> Optional[Tuple[Stack, Stack, Stack]]:
        """``(X, dX, status)`` of gesv from one fused kernel (one LU for both solves; a tangent
        None: zero), or None where the backend has none (the rule composes it then); status as
        gesv's (a non-finite tangent is no failure: NaN in that matrix's dX)."""

    # ---- parts of matrices -------------------------------------------------------------------
    def extract_part(self, a: Stack, part: str, offset: int) -> Stack:
        """``(nbatch, length)``: the part of each square matrix that ``part`` names, read in
        order: "diagonal", the ``offset`` diagonal; "lower" (``offset <= 0``), the lower
        triangle from diagonal ``offset`` down, row by row; "upper" (``offset >= 0``), the upper
        one from diagonal ``offset`` up, column by column."""

    def embed_part(self, v: Stack, n: int, part: str, offset: int) -> Stack:
        """``(nbatch, n, n)``: each vector of ``v`` placed in the part of an n x n matrix that
        :meth:`extract_part` reads, zeros elsewhere."""


FUNCTIONS = tuple(name for name in vars(Backend) if not name.startswith("_")
                  and callable(vars(Backend)[name]))
