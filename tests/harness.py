"""The operator table shared by the tests: one row per operator.

A row names the operator's matrix operands with their core shapes and kinds (the test data) and
a NumPy reference for one matrix; what the backward takes comes from the operator's declaration
in ``adla._spec``. The tests in ``test_operators.py`` turn every row into forward, backward
(finite differences), float32, layout and empty-batch checks, those in ``test_jvp.py`` into the
same checks of its forward mode; a new operator joins by adding a row here.
"""
import itertools
from dataclasses import dataclass, field, replace

import numpy as np

import adla
from adla._spec import SPECS


def tri(a, lower):
    return np.tril(a) if lower else np.triu(a)


def sym_from(a, lower):
    """The symmetric matrix whose ``lower`` triangle is read from ``a``."""
    t = tri(a, lower)
    return t + tri(a, lower).T - np.diag(np.diag(a))


def op(a, transpose):
    return a.T if transpose else a


@dataclass
class Row:
    """Test cases of one operator. What the operator takes and returns (its backward's primals,
    its differentiable inputs, the outputs with cotangents, how each operand is read) comes from
    its declaration in ``adla._spec``; a row adds the test data and a reference."""
    name: str
    # operands(opts, dims) -> {name: (core shape, kind)}; kinds: see make_operand
    operands: callable
    reference: callable              # reference(opts, **one matrix per operand) -> output(s)
    options: list = field(default_factory=lambda: [{}])
    label: str = ""                  # tells apart two rows of one operator
    dims: dict = None                # matrix sizes, default DIMS (to test both sides of a
    #                                  kernel's size threshold)

    def __post_init__(self):
        self.forward = getattr(adla, self.name)
        self.backward = getattr(adla, self.name + "_backward")
        self.jvp = getattr(adla, self.name + "_jvp")
        self.spec = SPECS[self.name]

    @property
    def primals(self):
        """The backward's primal arguments: operand names, "out" for a single output, "out0",
        "out1", ... for several."""
        outputs = [o.name for o in self.spec.outputs]
        def label(name):
            if name not in outputs:
                return name
            return "out" if len(outputs) == 1 else f"out{outputs.index(name)}"
        return tuple(label(p) for p in self.spec.backward_primals)

    @property
    def differentiable(self):
        return self.spec.differentiable

    @property
    def cotangents(self):
        """Positions of the outputs whose cotangents the backward takes (None: all)."""
        if self.spec.cotangents is None:
            return None
        return tuple(i for i, o in enumerate(self.spec.outputs) if o.name in self.spec.cotangents)

    def structure(self, name, opts):
        """How finite-difference perturbations of operand ``name`` are shaped: "sym", "lower",
        "upper" or "full"."""
        operand = self.spec.operand(name)
        if operand.reads == "symmetric":
            return "sym"
        if operand.reads == "triangular":
            return "lower" if operand.lower(opts) else "upper"
        return "full"

    def ids(self):
        return [f"{self.name}{self.label}-"
                + ("-".join(f"{k}={v}" for k, v in o.items()) or "default")
                for o in self.options]


DIMS = dict(n=4, m=3, k=5)


def at_sizes(row, *variants):
    """``row`` at DIMS and again at each variant of DIMS (for both sides of a kernel's size
    threshold), labelled by the sizes that change."""
    def label(d):
        return row.label + "_" + "_".join(f"{k}{v}" for k, v in d.items())
    return [row] + [replace(row, label=label(d), dims=dict(DIMS, **d)) for d in variants]


def gemm_operands(o, d, with_c=True):
    m, k, n = d["m"], d["k"], d["n"]
    A = (k, m) if o.get("transpose_a") else (m, k)
    B = (n, k) if o.get("transpose_b") else (k, n)
    out = dict(A=(A, "general"), B=(B, "general"))
    if with_c:
        out["C"] = ((m, n), "general")
    return out


def triangular_operands(o, d):
    n, m = d["n"], d["m"]
    kind = "tri:lower" if o.get("lower", True) else "tri:upper"
    return dict(A=((n, n), kind), B=((m, n) if o.get("rightside") else (n, m), "general"))


def cholesky_kind(o, base):
    return f"{base}:{'lower' if o.get('lower', True) else 'upper'}"


def ref_triangular(o, A, B, solve):
    T = op(tri(A, o.get("lower", True)), o.get("transpose", False))
    if solve:
        T = np.linalg.inv(T)
    return o.get("alpha", 1.0) * (B @ T if o.get("rightside") else T @ B)


def ref_potrf(o, A):
    lower = o.get("lower", True)
    L = np.linalg.cholesky(sym_from(A, lower))
    return L if lower else L.T


def ref_gram(o, L):
    lower = o.get("lower", True)
    T = tri(L, lower)
    return T @ T.T if lower else T.T @ T


def sign_fixed_rows(U):
    """Each row's entry of largest magnitude (first on ties) made positive."""
    if U.size == 0:
        return U
    big = U[np.arange(len(U)), np.argmax(np.abs(U), axis=1)]
    return U * np.where(big < 0, -1.0, 1.0)[:, None]


def ref_lq(o, A):
    Qt, Rt = np.linalg.qr(A.T)                      # A^T = Qt Rt  =>  A = Rt^T Qt^T
    signs = np.where(np.diag(Rt) < 0, -1.0, 1.0)
    return signs[:, None] * Qt.T, Rt.T * signs[None, :]


def ref_qr(o, A):
    Q, R = np.linalg.qr(A)
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * signs[None, :], signs[:, None] * R


def ref_syevd(o, A):
    lam, V = np.linalg.eigh(sym_from(A, True))
    return sign_fixed_rows(V.T), lam


def svd_kind(d):
    return "general" if max(d["m"], d["k"]) <= 8 else "separated"


def ref_svd(o, A):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    if Vt.size == 0:
        return U, s, Vt
    big = np.take_along_axis(Vt, np.abs(Vt).argmax(axis=1)[:, None], axis=1)[:, 0]
    sign = np.where(big < 0, -1.0, 1.0)
    return U * sign, s, Vt * sign[:, None]


def ref_triangle(A, offset, lower):
    n = len(A)
    if offset < 0 or (offset == 0 and lower):
        return np.array([A[i, j] for i in range(n) for j in range(n) if j <= i + offset])
    return np.array([A[i, j] for j in range(n) for i in range(n) if j >= i + offset])


def ref_maketrian(o, v):
    t = int((np.sqrt(8 * len(v) + 1) - 1) / 2)
    n = t + abs(o["offset"])
    marker = np.arange(n * n, dtype=float).reshape(n, n)
    positions = ref_triangle(marker, o["offset"], o["lower"]).astype(int)
    A = np.zeros(n * n)
    A[positions] = v
    return A.reshape(n, n)


BOOLS = (False, True)
TRIANGLE_OPTIONS = [dict(offset=0, lower=True), dict(offset=0, lower=False),
                    dict(offset=1, lower=True), dict(offset=-1, lower=False),
                    dict(offset=-2, lower=True)]

ROWS = [
    # Sizes on both sides of the interleaved gemm (every dimension up to 8, columns no multiple
    # of 4, at most 100 multiply-adds: 5 x 3 x 6 interleaved, 7 x 7 x 7 not), of the direct
    # loops (up to 32, or 8 with AVX-512; 15 columns: blocks of 8 and 4 and 3 padded columns,
    # 9 rows: full row blocks and a short one), BLAS above, with a transposed B copied out up
    # to 96 (test_kernel_routes_agree moves the loops' bound); gemm_jvp's tangent in one FMA
    # pass with AVX-512 up to 24 (13 x 20 x 19: short blocks of rows and of columns).
    *at_sizes(Row("gemm", gemm_operands,
                  lambda o, A, B, C: o["alpha"] * op(A, o.get("transpose_a"))
                  @ op(B, o.get("transpose_b")) + o["beta"] * C,
                  options=[dict(transpose_a=ta, transpose_b=tb, alpha=0.7, beta=1.3)
                           for ta, tb in itertools.product(BOOLS, BOOLS)]
                  + [dict(alpha=-1.1, beta=0.0), dict(alpha=0.0, beta=0.5)]),
              dict(m=5, k=3, n=6), dict(m=7, k=7, n=7), dict(m=8, k=8, n=8), dict(m=2, k=9, n=3),
              dict(m=9, k=32, n=15), dict(m=3, k=33, n=2), dict(m=2, k=97, n=3),
              dict(m=13, k=20, n=19), dict(m=50, k=61, n=70)),
    # And from order 48 the batches larger than the caches run _fma_product.h's loops on
    # AVX-512 CPUs (test_kernel_routes_agree lowers that bound to any batch): 70 columns are
    # blocks of 4 vectors and a short one, 50 rows full blocks and a short one.
    *at_sizes(Row("gemm2", lambda o, d: gemm_operands(o, d, with_c=False),
                  lambda o, A, B: o["alpha"] * op(A, o.get("transpose_a"))
                  @ op(B, o.get("transpose_b")),
                  options=[dict(transpose_a=ta, transpose_b=tb, alpha=-0.6)
                           for ta, tb in itertools.product(BOOLS, BOOLS)]),
              dict(m=50, k=61, n=70)),
    # Sizes on both sides of the direct syrk loops (order and inner dimension up to 32).
    *at_sizes(Row("syrk",
                  lambda o, d: dict(A=((d["k"], d["n"]) if o["transpose"] else (d["n"], d["k"]),
                                       "general")),
                  lambda o, A: o["alpha"] * (A.T @ A if o["transpose"] else A @ A.T),
                  options=[dict(transpose=t, alpha=0.8) for t in BOOLS]),
              dict(n=32, k=9), dict(n=33), dict(k=33), dict(n=50, k=61)),
    # Sizes on both sides of the interleaved triangular kernels (both sides of B up to 16, and
    # for a batch of at least 8 (batch19 interleaved, batch3 not) up to 24 for trmm, 20 for
    # trsm; trmm only where order and right-hand sides are below 8 or the right-hand sides
    # below 4, a plain product per matrix elsewhere up to order 64, ?trmm above), of the
    # per-matrix solve_rows route (8 or more right-hand sides, a last group of fewer than 8,
    # splits above order 16; on the right through B transposed) and of trsm_recursive's split
    # with ?trsm leaves (fewer right-hand sides, above order 64).
    *[row for name, solve, alpha in (("trmm", False, 1.5), ("trsm", True, 0.9))
      for row in at_sizes(
          Row(name, triangular_operands,
              lambda o, A, B, solve=solve: ref_triangular(o, A, B, solve),
              options=[dict(transpose=t, rightside=r, lower=lo, alpha=alpha)
                       for t, r, lo in itertools.product(BOOLS, BOOLS, BOOLS)]),
          dict(n=16, m=16), dict(n=17), dict(m=17), dict(n=17, m=7), dict(n=17, m=8),
          dict(n=20, m=20), dict(n=21, m=9), dict(n=24, m=24), dict(n=24, m=25),
          dict(n=40, m=12), dict(n=33, m=3), dict(n=65, m=3), dict(n=7, m=7), dict(n=8, m=4),
          dict(n=64, m=5), dict(n=50, m=37))],
    # Sizes on both sides of the interleaved Cholesky kernels (order up to 32, and up to 192
    # for a batch of at least 8: batch19 and batch3 at n=33 and n=192 take both routes), and
    # with each remainder of their groups of four rows (n=4, 5, 6, 7), and of the tangent's
    # groups of three in float64 from order 64 (n=64, 65; at 192 none).
    *at_sizes(Row("potrf", lambda o, d: dict(A=((d["n"], d["n"]), cholesky_kind(o, "spd"))),
                  ref_potrf, options=[dict(lower=lo) for lo in (True, False)]),
              dict(n=5), dict(n=6), dict(n=7), dict(n=32), dict(n=33), dict(n=64), dict(n=65),
              dict(n=192), dict(n=193)),
    # Both sides of the interleaved potri/potrs kernel: order (and right-hand sides) up to 16,
    # and for a batch of at least 8 (batch19 interleaved, batch3 not) up to 32, potri up to 160;
    # its gradient below 24 (potri_backward; and potrs from 24 with 16 or more right-hand
    # sides); the per-matrix potri's split kernels above order 32, its gradient's split
    # triangular solve above order 64.
    *at_sizes(Row("potri", lambda o, d: dict(L=((d["n"], d["n"]), cholesky_kind(o, "tri"))),
                  lambda o, L: np.linalg.inv(ref_gram(o, L)),
                  options=[dict(lower=lo) for lo in (True, False)]),
              dict(n=16), dict(n=17), dict(n=23), dict(n=24), dict(n=32), dict(n=33),
              dict(n=65), dict(n=160), dict(n=161)),
    # And of potrs_backward's thin route (4 k < n: no n x n intermediate), and of the split
    # triangular solves (above order 64).
    *at_sizes(Row("potrs",
                  lambda o, d: dict(L=((d["n"], d["n"]), cholesky_kind(o, "tri")),
                                    B=((d["n"], d["m"]), "general")),
                  lambda o, L, B: np.linalg.solve(ref_gram(o, L), B),
                  options=[dict(lower=lo) for lo in (True, False)]),
              dict(n=9, m=2), dict(n=17, m=3), dict(n=32, m=2), dict(n=33, m=2),
              dict(n=4, m=17), dict(n=65, m=20), dict(n=23, m=16), dict(n=24, m=16)),
    Row("sumlogdiag", lambda o, d: dict(A=((d["n"], d["n"]), "posdiag")),
        lambda o, A: np.sum(np.log(np.diag(A)))),
    # Sizes on both sides of the interleaved LQ/QR kernels and gradients: long side up to 16,
    # and for a batch of at least 8 (batch19 interleaved, batch3 not) the factorisation up to
    # 48 (64 in float32), the gradient up to 20, the jvp in one kernel up to 18 (above, to the
    # factorisation's bound, that and a tangent kernel); and short sides from 32, where the
    # per-matrix factorisation runs blocked (panels of 8, a last short one).
    *at_sizes(Row("gelqf", lambda o, d: dict(A=((d["m"], d["k"]), "general")), ref_lq),
              dict(k=16), dict(k=17), dict(k=20), dict(k=21), dict(k=48), dict(k=49),
              dict(k=64), dict(k=65)),
    *at_sizes(Row("gelqf", lambda o, d: dict(A=((d["n"], d["n"]), "general")), ref_lq,
                  label="_square"), dict(n=24), dict(n=33), dict(n=66)),
    *at_sizes(Row("geqrf", lambda o, d: dict(A=((d["k"], d["m"]), "general")), ref_qr),
              dict(k=16), dict(k=17), dict(k=20), dict(k=21), dict(k=48), dict(k=49),
              dict(k=64), dict(k=65), dict(k=70, m=35)),
    # Sizes on both sides of the interleaved eigensolver (order up to 32, and up to 96 for a
    # batch of at least 8: batch19 interleaved, batch3 not, at n=33 and n=96).
    # (Eigenvalues 1, 2, ..., n from order 33 on: random matrices have close pairs there, whose
    # eigenvectors finite differences cannot follow.)
    *at_sizes(Row("syevd", lambda o, d: dict(A=((d["n"], d["n"]),
                                                "sym:lower" if d["n"] <= 32 else "symsep:lower")),
                  ref_syevd),
              dict(n=32), dict(n=33), dict(n=96), dict(n=97)),
    # Both sides of the interleaved LU kernels: order 32 (inverse, det, slogdet), for a batch
    # of at least 8 (batch19 interleaved, batch3 not) order 64, and for one that fills the lanes
    # on every thread order 128 (batch19 on up to 2 threads; test_kernel_routes_agree takes
    # 65 and 128 both ways on any machine).
    *at_sizes(Row("inverse", lambda o, d: dict(A=((d["n"], d["n"]), "posdiag")),
                  lambda o, A: np.linalg.inv(A)),
              dict(n=32), dict(n=33), dict(n=64), dict(n=65),
              dict(n=128), dict(n=129)),
    *at_sizes(Row("det", lambda o, d: dict(A=((d["n"], d["n"]), "near_identity")),
                  lambda o, A: np.linalg.det(A)),
              dict(n=32), dict(n=33), dict(n=64), dict(n=65),
              dict(n=128), dict(n=129)),
    # (General matrices at order 4, for negative determinants and pivoting; diagonally dominant
    # from 32 on, which float32 gradients of random matrices would not match to 1e-4.)
    *at_sizes(Row("slogdet", lambda o, d: dict(A=((d["n"], d["n"]),
                                                  "general" if d["n"] < 32 else "posdiag")),
                  lambda o, A: tuple(np.linalg.slogdet(A))),
              dict(n=32), dict(n=33), dict(n=64), dict(n=65),
              dict(n=128), dict(n=129)),
    # Both sides of the interleaved Jacobi SVD: both sides up to 64 (it starts from the
    # eigenvectors of G^T G from short side 6 on), and for a batch under 8 (batch3) short side up
    # to 8 (9 x 12: interleaved in batch19 only); for a batch of at least 8 (batch19) short side
    # up to 64 with long side up to 1024 (8 x 65 and 64 x 65 interleaved in batch19 only,
    # 65 x 72 in neither; 1024 x 2 in batch19 only, 1025 x 2 in neither).
    # Larger matrices with separated singular values: random ones have close pairs, whose
    # singular vectors finite differences cannot follow.
    *at_sizes(Row("gesvd", lambda o, d: dict(A=((d["m"], d["k"]), svd_kind(d))), ref_svd,
                  label="_wide"),
              dict(m=5, k=64), dict(m=6, k=32), dict(m=8, k=65), dict(m=9, k=12)),
    *at_sizes(Row("gesvd", lambda o, d: dict(A=((d["k"], d["m"]), svd_kind(d))), ref_svd,
                  label="_tall"),
              dict(m=64, k=64), dict(m=65, k=64), dict(m=6, k=12), dict(m=72, k=65),
              dict(k=1024, m=2), dict(k=1025, m=2)),
    Row("gesvd", lambda o, d: dict(A=((d["n"], d["n"]), "general")), ref_svd, label="_square"),
    # Both sides of the interleaved solver: order and right-hand sides up to 32, and for a
    # batch of at least 8 (batch19 interleaved, batch3 not) order up to 64 with up to 32
    # right-hand sides, or both up to 40, or for one that fills the lanes on every thread order
    # up to 128 with up to 16 (batch19 on up to 2 threads; test_kernel_routes_agree takes them
    # both ways on any machine); and of the split triangular solves after getrf (above order
    # 64).
    *at_sizes(Row("gesv", lambda o, d: dict(A=((d["n"], d["n"]), "posdiag"),
                                            B=((d["n"], d["m"]), "general")),
                  lambda o, A, B: np.linalg.solve(A.T if o["transpose"] else A, B),
                  options=[dict(transpose=t) for t in BOOLS]),
              dict(n=32, m=32), dict(n=33), dict(m=33), dict(n=64, m=32), dict(n=64, m=33),
              dict(n=40, m=40), dict(n=41, m=40), dict(n=40, m=41), dict(n=65, m=3),
              dict(n=128, m=16), dict(n=128, m=17), dict(n=129, m=3)),
    Row("extractdiag", lambda o, d: dict(A=((d["n"], d["n"]), "general")),
        lambda o, A: np.diagonal(A, o["offset"]).copy(),
        options=[dict(offset=k) for k in (0, 1, -2)]),
    Row("makediag", lambda o, d: dict(d=((d["m"],), "general")),
        lambda o, d: np.diag(d, o["offset"]),
        options=[dict(offset=k) for k in (0, 2, -1)]),
    Row("extracttrian", lambda o, d: dict(A=((d["n"], d["n"]), "general")),
        lambda o, A: ref_triangle(A, o["offset"], o["lower"]),
        options=TRIANGLE_OPTIONS),
    Row("maketrian", lambda o, d: dict(v=((d["m"] * (d["m"] + 1) // 2,), "general")),
        ref_maketrian, options=TRIANGLE_OPTIONS),
]

def structured(row, opts, name, t, tril, triu, transpose, diagonal_part):
    """``t`` (a tensor of any framework) shaped as ``row``'s operator reads operand ``name``: the
    symmetric matrix mirrored from the triangle read, or that triangle, so that a framework's
    gradient check perturbs only what the operator sees. The framework's ``tril``, ``triu``,
    ``transpose`` (last two axes) and ``diagonal_part`` (the diagonal as a matrix) are passed in."""
    kind = row.structure(name, opts)
    if kind == "sym":
        part = tril(t, -1) if row.spec.operand(name).lower(opts) else triu(t, 1)
        return part + transpose(part) + diagonal_part(t)
    if kind == "lower":
        return tril(t)
    if kind == "upper":
        return triu(t)
    return t


CASES = [(row, opts) for row in ROWS for opts in row.options]
CASE_IDS = [i for row in ROWS for i in row.ids()]


def make_operand(rng, kind, shape):
    """A well-conditioned operand; the triangle an operator must not read holds large junk."""
    n = shape[-1]
    eye = np.eye(n) if n else np.zeros((0, 0))
    if kind == "general":
        return rng.standard_normal(shape)
    if kind == "posdiag":
        return rng.standard_normal(shape) + eye * (1.0 + n)
    if kind == "near_identity":        # determinant of order 1 at any size (float32 holds it)
        return 0.5 * rng.standard_normal(shape) / np.sqrt(max(n, 1)) + eye
    if kind == "separated":            # singular values 1, 2, ..., k: the vectors well-conditioned
        p, k = shape[-2], min(shape[-2:])
        U = np.linalg.qr(rng.standard_normal(shape[:-2] + (p, k)))[0]
        V = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, k)))[0]
        return (U * (1.0 + np.arange(k))) @ np.swapaxes(V, -1, -2)
    base, _, side = kind.partition(":")
    lower = side == "lower"
    junk = tri(10.0 * rng.standard_normal(shape), not lower) * (1 - eye)
    if base == "sym":
        X = rng.standard_normal(shape)
        return tri(X + np.swapaxes(X, -1, -2), lower) + junk
    if base == "symsep":               # eigenvalues 1, 2, ..., n: the vectors well-conditioned
        Q = np.linalg.qr(rng.standard_normal(shape))[0]
        return tri((Q * (1.0 + np.arange(n))) @ np.swapaxes(Q, -1, -2), lower) + junk
    if base == "spd":
        X = rng.standard_normal(shape)
        S = X @ np.swapaxes(X, -1, -2) / max(n, 1) + eye
        return tri(S, lower) + junk
    if base == "tri":
        T = 0.5 * rng.standard_normal(shape) / np.sqrt(max(n, 1)) + eye * (1.0 + rng.random(shape))
        return tri(T, lower) + junk
    raise ValueError(kind)


def make_inputs(row, opts, batches, dtype=np.float64, seed=0, dims=None):
    """Operands of ``row`` with the given batch shapes (one per operand, in order)."""
    rng = np.random.default_rng(seed)
    spec = row.operands(opts, dims or row.dims or DIMS)
    return {name: make_operand(rng, kind, tuple(batch) + core).astype(dtype)
            for (name, (core, kind)), batch in zip(spec.items(), batches)}


def call_forward(row, opts, inputs, **extra):
    return row.forward(*inputs.values(), **opts, **extra)


def call_backward(row, opts, cotangents, inputs, outputs):
    """``row``'s backward with the cotangents of its outputs (a tuple for several outputs)."""
    def primal(name):
        if name == "out":
            return outputs
        if name.startswith("out"):
            return outputs[int(name[3:])]
        return inputs[name]
    cts = cotangents if isinstance(cotangents, tuple) else (cotangents,)
    if row.cotangents is not None:
        cts = tuple(cts[i] for i in row.cotangents)
    options = {k: v for k, v in opts.items() if k != "check"}
    grads = row.backward(*cts, *[primal(p) for p in row.primals], **options)
    return grads if isinstance(grads, tuple) else (grads,)


def call_jvp(row, opts, inputs, tangents):
    """``row``'s jvp: ``(outputs, output tangents)``; ``tangents`` maps each input's name to its
    tangent (absent or None: zero)."""
    return row.jvp(*inputs.values(), *[tangents.get(name) for name in inputs], **opts)


def reference(row, opts, inputs):
    """The row's reference applied matrix by matrix (float64), broadcasting the batch axes."""
    spec = row.operands(opts, DIMS)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    cores = {k: len(spec[k][0]) for k in arrays}
    batch = np.broadcast_shapes(*[a.shape[:a.ndim - cores[k]] for k, a in arrays.items()])
    full = {k: np.broadcast_to(a, batch + a.shape[a.ndim - cores[k]:]) for k, a in arrays.items()}
    results = [row.reference(opts, **{k: a[idx] for k, a in full.items()})
               for idx in np.ndindex(*batch)]
    if not results:
        return None
    if isinstance(results[0], tuple):
        return tuple(np.reshape(np.stack(r), batch + np.shape(r[0])) for r in zip(*results))
    return np.reshape(np.stack(results), batch + np.shape(results[0]))


# Batch layouts: one batch shape per operand (the operator's operands in order).
def batch_layouts(noperands):
    # batch19: two full blocks of the interleaved small-matrix kernels and a partial one.
    layouts = {"single": [()] * noperands, "batch3": [(3,)] * noperands,
               "batch2x3": [(2, 3)] * noperands, "batch19": [(19,)] * noperands}
    if noperands > 1:
        layouts["bcast_first"] = [()] + [(4,)] * (noperands - 1)
        layouts["bcast_rest"] = [(4,)] + [()] * (noperands - 1)
        layouts["bcast_2d"] = [(2, 1)] + [(3,)] * (noperands - 1)
    return layouts
