"""LAPACK's test ratios for adla's kernels and for LAPACK itself on the same matrices.

Each kernel (the interleaved and direct ones at small sizes, the LAPACK-backed ones above) is run
on batches of matrices from five families, in float32 and float64, next to the same computation
through LAPACK/BLAS in ``scipy.linalg`` in the same precision. For every matrix it gets the ratios
LAPACK's own test suite uses (its threshold for a pass is 30):

- backward error ``||A - factors||_1 / (n ||A||_1 eps)`` of a factorisation or product;
- orthogonality ``||I - Q^T Q||_1 / (n eps)`` of its orthogonal factors;
- residual ``||B - A X||_1 / (n ||A||_1 ||X||_1 eps)`` of a solve;
- for the Cholesky backward, which LAPACK has no routine for, the forward error
  ``||dA - dA_exact||_1 / (n eps cond(L) ||dA_exact||_1)`` against the same formula in higher
  precision (float64 for float32, long double for float64), LAPACK's figure being the formula
  composed from its triangular solves.

Residuals are computed in higher precision, so the ratios show the kernels' rounding errors and
not the check's own. tests/test_accuracy.py asserts on these figures;
``python tests/accuracy.py --out docs/accuracy.md`` writes the table the docs show.
"""
import argparse
import sys
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.linalg.blas as blas

import adla

SIZES = (4, 16, 32, 64)
# and one size past 64 for the kernels whose route changes there: the per-matrix recursion down
# to leaves of adla's own triangular solves (solve_columns, solve_rows), and the Jacobi SVD's
# long sides past 64 (gesvd_tall at 260 x 32)
PAST_64_SIZE = 130
PAST_64 = ("potrf", "potrf_backward", "trsm", "potrs", "potri", "gesv", "inverse", "gesvd_tall")
BATCH = 24
DTYPES = (np.float64, np.float32)
FAMILIES = ("random", "graded", "ill-conditioned", "near-singular", "clustered")
THRESHOLD = 30          # LAPACK's test suite passes a ratio below this

# ---- matrices ---------------------------------------------------------------------------------


def _orthogonal(rng, batch, n):
    Q, R = np.linalg.qr(rng.standard_normal((batch, n, n)))
    return Q * np.sign(np.diagonal(R, axis1=1, axis2=2))[:, None, :]


def _spectrum(family, batch, n, eps, rng):
    """Positive singular values or eigenvalues, ``(batch, n)``, for the spectral families."""
    if family == "ill-conditioned":                  # condition number 1/sqrt(eps), geometric
        s = np.logspace(0, np.log10(np.sqrt(eps)), n)
    elif family == "near-singular":                  # one value just above rounding level
        s = np.ones(n)
        s[-1] = 100 * n * eps
    else:                                            # clustered: three clusters a few eps wide
        s = np.array([1.0, 2.0, 5.0])[np.arange(n) % 3] * (1 + 10 * eps * rng.random(n))
    return np.broadcast_to(s, (batch, n))


def _grading(n):
    return np.logspace(0, -3, n)


def matrices(kind, family, n, dtype, batch=BATCH, seed=0):
    """A batch of ``kind`` ('general', 'spd', 'symmetric', 'lower') matrices of ``family``."""
    rng = np.random.default_rng([seed, n, FAMILIES.index(family)])
    eps = np.finfo(dtype).eps
    if kind == "lower":                   # the Cholesky factor of an SPD matrix of the family
        return np.linalg.cholesky(matrices("spd", family, n, np.float64, batch, seed)).astype(dtype)
    G = rng.standard_normal((batch, n, n))
    if family in ("random", "graded"):
        if kind == "general":
            A = G
        elif kind == "spd":
            A = G @ G.transpose(0, 2, 1) / n + np.eye(n)
        else:
            A = (G + G.transpose(0, 2, 1)) / 2
        if family == "graded":
            d = _grading(n)
            A = d[:, None] * A * (d[None, :] if kind != "general" else 1)
        return A.astype(dtype)
    s = _spectrum(family, batch, n, eps, rng)
    X = _orthogonal(rng, batch, n)
    if kind == "general":
        return ((X * s[:, None, :]) @ _orthogonal(rng, batch, n).transpose(0, 2, 1)).astype(dtype)
    if kind == "symmetric":
        s = s * rng.choice([-1.0, 1.0], size=s.shape)
    A = (X * s[:, None, :]) @ X.transpose(0, 2, 1)
    return ((A + A.transpose(0, 2, 1)) / 2).astype(dtype)


# ---- ratios -----------------------------------------------------------------------------------

def _wide(x):
    """The higher precision residuals are computed in."""
    return x.astype(np.longdouble if x.dtype == np.float64 else np.float64)


def _norm1(x):
    return np.abs(x).sum(axis=-2).max(axis=-1).astype(np.float64)


def backward_error(A, product, n, eps):
    return _norm1(_wide(A) - product) / (n * _norm1(_wide(A)) * eps)


def orthogonality(Q, eps):
    Qw = _wide(Q)
    k = Q.shape[-1]
    return _norm1(np.eye(k) - Qw.transpose(0, 2, 1) @ Qw) / (k * eps)


def residual(A, X, B, eps):
    n = A.shape[-1]
    return _norm1(_wide(B) - _wide(A) @ _wide(X)) / (n * _norm1(_wide(A)) * _norm1(_wide(X)) * eps)


def _per_matrix(fn, *stacks):
    return np.stack([fn(*args) for args in zip(*stacks)])


def _lower_inverse(L):
    """L^-1 by forward substitution, batched, in whatever precision L has."""
    n = L.shape[-1]
    X = np.zeros_like(L)
    eye = np.eye(n, dtype=L.dtype)
    for i in range(n):
        X[:, i] = (eye[i] - np.einsum("bj,bjk->bk", L[:, i, :i], X[:, :i])) / L[:, i, i, None]
    return X


def cholesky_backward_formula(dL, L, transposed_solve):
    """dA = sym(L^-T Phi(L^T dL) L^-1), Phi: lower triangle with half the diagonal;
    ``transposed_solve(L, B)`` is L^-T B."""
    P = np.tril(L.transpose(0, 2, 1) @ np.tril(dL))
    P = P - np.einsum("bii->bi", P)[..., None] * np.eye(L.shape[-1], dtype=P.dtype) / 2
    Y = transposed_solve(L, P)                                               # L^-T P
    G = transposed_solve(L, Y.transpose(0, 2, 1)).transpose(0, 2, 1)         # Y L^-1
    return (G + G.transpose(0, 2, 1)) / 2


def _scipy_lower_solve(L, B, trans=0):
    return _per_matrix(lambda l, b: sla.solve_triangular(l, b, lower=True, trans=trans), L, B)


# Each check: the kind of matrix it takes, and a function (impl, A, rng) -> {ratio: per matrix}
# where impl is "adla" or "LAPACK" (scipy.linalg in the same precision).

def check_potrf(impl, A, rng):
    n, eps = A.shape[-1], np.finfo(A.dtype).eps
    L = adla.potrf(A) if impl == "adla" else _per_matrix(lambda a: sla.cholesky(a, lower=True), A)
    Lw = _wide(L)
    return {"backward error": backward_error(A, Lw @ Lw.transpose(0, 2, 1), n, eps)}


def check_potrf_backward(impl, L, rng):
    n, eps = L.shape[-1], np.finfo(L.dtype).eps
    dL = np.tril(rng.standard_normal(L.shape)).astype(L.dtype)
    if impl == "adla":
        dA = adla.potrf_backward(dL, L)
    else:
        dA = cholesky_backward_formula(dL, L, lambda L, B: _scipy_lower_solve(L, B, trans=1))
    Linv = _lower_inverse(_wide(L))
    exact = cholesky_backward_formula(_wide(dL), _wide(L),
                                      lambda L, B: Linv.transpose(0, 2, 1) @ B)
    cond = _norm1(_wide(L)) * _norm1(Linv)
    return {"forward error": _norm1(_wide(dA) - exact) / (n * eps * cond * _norm1(exact))}


def check_trsm(impl, L, rng):
    eps = np.finfo(L.dtype).eps
    B = rng.standard_normal(L.shape).astype(L.dtype)
    X = adla.trsm(L, B) if impl == "adla" else _scipy_lower_solve(L, B)
    return {"residual": residual(L, X, B, eps)}


def check_potrs(impl, L, rng):
    eps = np.finfo(L.dtype).eps
    B = rng.standard_normal(L.shape).astype(L.dtype)
    X = adla.potrs(L, B) if impl == "adla" else _per_matrix(
        lambda l, b: sla.cho_solve((l, True), b), L, B)
    Lw = _wide(L)
    return {"residual": residual(Lw @ Lw.transpose(0, 2, 1), X, B, eps)}


def check_potri(impl, L, rng):
    eps = np.finfo(L.dtype).eps
    if impl == "adla":
        X = adla.potri(L)
    else:
        potri = sla.lapack.dpotri if L.dtype == np.float64 else sla.lapack.spotri
        X = _per_matrix(lambda l: potri(l, lower=1)[0], L)
        X = np.tril(X) + np.tril(X, -1).transpose(0, 2, 1)
    Lw = _wide(L)
    eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
    return {"residual": residual(Lw @ Lw.transpose(0, 2, 1), X, eye, eps)}


def check_trmm(impl, L, rng):
    n, eps = L.shape[-1], np.finfo(L.dtype).eps
    B = rng.standard_normal(L.shape).astype(L.dtype)
    trmm = blas.dtrmm if L.dtype == np.float64 else blas.strmm
    C = adla.trmm(L, B) if impl == "adla" else _per_matrix(
        lambda l, b: trmm(1.0, l, b, lower=1), L, B)
    exact = _wide(L) @ _wide(B)
    scale = _norm1(_wide(L)) * _norm1(_wide(B))
    return {"backward error": _norm1(_wide(C) - exact) / (n * scale * eps)}


def check_gemm(impl, A, rng):
    n, eps = A.shape[-1], np.finfo(A.dtype).eps
    B = rng.standard_normal(A.shape).astype(A.dtype)
    C = rng.standard_normal(A.shape).astype(A.dtype)
    gemm = blas.dgemm if A.dtype == np.float64 else blas.sgemm
    D = adla.gemm(A, B, C) if impl == "adla" else _per_matrix(
        lambda a, b, c: gemm(1.0, a, b, 1.0, c), A, B, C)
    exact = _wide(A) @ _wide(B) + _wide(C)
    scale = _norm1(_wide(A)) * _norm1(_wide(B)) + _norm1(_wide(C))
    return {"backward error": _norm1(_wide(D) - exact) / (n * scale * eps)}


def check_syrk(impl, A, rng):
    n, eps = A.shape[-1], np.finfo(A.dtype).eps
    syrk = blas.dsyrk if A.dtype == np.float64 else blas.ssyrk
    if impl == "adla":
        C = adla.syrk(A)
    else:
        C = _per_matrix(lambda a: syrk(1.0, a, lower=1), A)
        C = np.tril(C) + np.tril(C, -1).transpose(0, 2, 1)
    Aw = _wide(A)
    exact = Aw @ Aw.transpose(0, 2, 1)
    return {"backward error": _norm1(_wide(C) - exact) / (n * _norm1(Aw) ** 2 * eps)}


def _orthogonal_ratios(A, Q, F, product):
    n, eps = A.shape[-1], np.finfo(A.dtype).eps
    return {"backward error": backward_error(A, product(_wide(Q), _wide(F)), n, eps),
            "orthogonality": orthogonality(Q, eps)}


def check_gelqf(impl, A, rng):
    if impl == "adla":
        Q, L = adla.gelqf(A)
    else:
        Qt, R = zip(*(sla.qr(a.T, mode="economic") for a in A))
        Q, L = np.stack(Qt).transpose(0, 2, 1), np.stack(R).transpose(0, 2, 1)
    return _orthogonal_ratios(A, Q.transpose(0, 2, 1), L,
                              lambda Qt, L: L @ Qt.transpose(0, 2, 1))


def check_geqrf(impl, A, rng):
    if impl == "adla":
        Q, R = adla.geqrf(A)
    else:
        Q, R = map(np.stack, zip(*(sla.qr(a, mode="economic") for a in A)))
    return _orthogonal_ratios(A, Q, R, lambda Q, R: Q @ R)


def check_syevd(impl, A, rng):
    if impl == "adla":
        Ut, lam = adla.syevd(A)             # eigenvectors in the rows: A = U^T diag(lam) U
        U = Ut.transpose(0, 2, 1)
    else:
        lam, U = map(np.stack, zip(*(sla.eigh(a, driver="evd") for a in A)))
    return _orthogonal_ratios(A, U, lam,
                              lambda U, lam: (U * lam[:, None, :]) @ U.transpose(0, 2, 1))


def check_gesvd(impl, A, rng):
    n, eps = A.shape[-1], np.finfo(A.dtype).eps
    if impl == "adla":
        U, s, Vt = adla.gesvd(A)
    else:
        U, s, Vt = map(np.stack, zip(*(sla.svd(a, full_matrices=False, lapack_driver="gesdd")
                                       for a in A)))
    return {"backward error": backward_error(A, (_wide(U) * _wide(s)[:, None, :]) @ _wide(Vt),
                                             n, eps),
            "orthogonality": np.maximum(orthogonality(U, eps),
                                        orthogonality(Vt.transpose(0, 2, 1), eps))}


def check_gesvd_tall(impl, A, rng):
    # A over A turned by half a turn, the first quarter of the columns: 2n x n/4, the
    # interleaved Jacobi's tall route at n = 64 and 130 (a long side above 64, a short side up
    # to 64).
    tall = np.concatenate((A, A[:, ::-1, ::-1]), axis=1)
    return check_gesvd(impl, np.ascontiguousarray(tall[:, :, :max(A.shape[-1] // 4, 1)]), rng)


def check_gesv(impl, A, rng):
    eps = np.finfo(A.dtype).eps
    B = rng.standard_normal(A.shape).astype(A.dtype)
    with warnings.catch_warnings():        # scipy's ill-conditioning warning: that is the point
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        X = adla.gesv(A, B) if impl == "adla" else _per_matrix(sla.solve, A, B)
    return {"residual": residual(A, X, B, eps)}


def check_inverse(impl, A, rng):
    eps = np.finfo(A.dtype).eps
    eye = np.broadcast_to(np.eye(A.shape[-1], dtype=A.dtype), A.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        X = adla.inverse(A) if impl == "adla" else _per_matrix(sla.inv, A)
    return {"residual": residual(A, X, eye, eps)}


# kernel name -> (matrix kind, check)
CHECKS = {
    "potrf": ("spd", check_potrf),
    "potrf_backward": ("lower", check_potrf_backward),
    "trsm": ("lower", check_trsm),
    "potrs": ("lower", check_potrs),
    "potri": ("lower", check_potri),
    "trmm": ("lower", check_trmm),
    "gemm": ("general", check_gemm),
    "syrk": ("general", check_syrk),
    "gelqf": ("general", check_gelqf),
    "geqrf": ("general", check_geqrf),
    "syevd": ("symmetric", check_syevd),
    "gesvd": ("general", check_gesvd),
    "gesv": ("general", check_gesv),
    "inverse": ("general", check_inverse),
    "gesvd_tall": ("general", check_gesvd_tall),
}


def ratios(kernel, family, n, dtype, batch=BATCH):
    """``{ratio name: (adla's per-matrix ratios, LAPACK's)}`` on one batch of matrices."""
    kind, check = CHECKS[kernel]
    A = matrices(kind, family, n, dtype, batch)
    seed = [n, FAMILIES.index(family), list(CHECKS).index(kernel)]
    ours = check("adla", A, np.random.default_rng(seed))
    theirs = check("LAPACK", A, np.random.default_rng(seed))      # the same operands
    return {name: (ours[name], theirs[name]) for name in ours}


# ---- the guard --------------------------------------------------------------------------------

def sizes_of(kernel):
    return SIZES + (PAST_64_SIZE,) if kernel in PAST_64 else SIZES


def failures(kernel, dtype, sizes=None, batch=BATCH):
    """What is wrong with ``kernel``'s accuracy in ``dtype``, as messages (none: all is well).

    Every ratio below LAPACK's threshold; over all families and sizes, adla's median at most
    twice LAPACK's; and per batch (one family, one size) at most four times, so that a kernel
    that loses a digit at one size is caught even when the others hide it in the overall median.
    """
    found, collected = [], {}
    for family in FAMILIES:
        for n in sizes or sizes_of(kernel):
            for name, (ours, theirs) in ratios(kernel, family, n, dtype, batch).items():
                where = f"{kernel} {np.dtype(dtype).name} {name}, {family} n={n}"
                if not ours.max() < THRESHOLD:
                    found.append(f"{where}: max {ours.max():.3g} (LAPACK's test passes < 30)")
                if np.median(ours) > 4 * np.median(theirs):
                    found.append(f"{where}: median {np.median(ours):.3g}, LAPACK's "
                                 f"{np.median(theirs):.3g}")
                collected.setdefault(name, ([], []))
                collected[name][0].append(ours)
                collected[name][1].append(theirs)
    for name, (ours, theirs) in collected.items():
        ours, theirs = np.median(np.concatenate(ours)), np.median(np.concatenate(theirs))
        if ours > 2 * theirs:
            found.append(f"{kernel} {np.dtype(dtype).name} {name}: median over all matrices "
                         f"{ours:.3g}, LAPACK's {theirs:.3g}")
    return found


# ---- the table --------------------------------------------------------------------------------

def table(sizes=None, batch=BATCH, stream=None):
    """Markdown rows: per kernel, ratio and dtype, the median and maximum over all families and
    sizes for adla and for LAPACK, and the family and size of adla's maximum."""
    lines = ["| kernel | ratio | dtype | adla median | LAPACK median | adla max | LAPACK max "
             "| adla's max at |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kernel in CHECKS:
        for dtype in DTYPES:
            collected = {}
            for family in FAMILIES:
                for n in sizes or sizes_of(kernel):
                    for name, (ours, theirs) in ratios(kernel, family, n, dtype, batch).items():
                        collected.setdefault(name, []).append((family, n, ours, theirs))
            for name, runs in collected.items():
                ours = np.concatenate([r[2] for r in runs])
                theirs = np.concatenate([r[3] for r in runs])
                worst = max(runs, key=lambda r: r[2].max())
                lines.append(f"| {kernel} | {name} | {np.dtype(dtype).name} "
                             f"| {np.median(ours):.3g} | {np.median(theirs):.3g} "
                             f"| {ours.max():.3g} | {theirs.max():.3g} "
                             f"| {worst[0]}, n={worst[1]} |")
                if stream:
                    print(lines[-1], file=stream, flush=True)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tests/accuracy.py", description=__doc__)
    parser.add_argument("--out", help="write the table as Markdown here")
    args = parser.parse_args(argv)
    lines = table(stream=sys.stdout)
    if args.out:
        with open(args.out, "w") as f:
            f.write(PAGE.format(sizes=", ".join(map(str, SIZES)), past_64_size=PAST_64_SIZE,
                                past_64=", ".join(f"`{k}`" for k in PAST_64), batch=BATCH,
                                families=", ".join(FAMILIES), table="\n".join(lines)))
    return 0


PAGE = """# Accuracy

Generated by `python tests/accuracy.py --out docs/accuracy.md`; `tests/test_accuracy.py` checks
the same figures in every test run.

Every kernel of adla that replaces a LAPACK or BLAS call at some size (the interleaved kernels
that factor several small matrices per instruction, the direct small products) or calls one on a
layout of its own is measured with the ratios LAPACK's own test suite uses, next to LAPACK/BLAS
through `scipy.linalg` in the same precision on the same matrices. LAPACK's suite passes a ratio
below 30.

- **backward error** `||A - factors||_1 / (n ||A||_1 eps)` (for products, the computed product
  against the exact one over `n ||A||_1 ||B||_1 eps`);
- **orthogonality** `||I - Q^T Q||_1 / (n eps)` of the orthogonal factors (for `gesvd`, the worse
  of `U` and `V`);
- **residual** `||B - A X||_1 / (n ||A||_1 ||X||_1 eps)` of a solve;
- **forward error** of the Cholesky backward, which LAPACK has no routine for:
  `||dA - dA_exact||_1 / (n eps cond_1(L) ||dA_exact||_1)`, with `dA_exact` the same formula in
  higher precision; LAPACK's column is that formula composed from LAPACK's triangular solves.

Residuals and exact references are computed in higher precision (float64 for float32 data, long
double for float64). Note that `numpy.linalg` would compute float32 in double: the reference
here is `scipy.linalg`, which keeps single precision.

Matrices: batches of {batch} of each size n = {sizes} (and {past_64_size} for {past_64}, whose
routes change above 64: the per-matrix kernels split in halves down to leaves of adla's own
triangular solves, and the interleaved Jacobi SVD takes long sides up to 1024), from each
family: {families}. Random:
Gaussian entries (SPD: `G G^T/n + I`); graded: rows (and, for symmetric matrices, columns)
scaled from 1 down to 1e-3; ill-conditioned: singular values (eigenvalues) geometric from 1 to
`sqrt(eps)`; near-singular: one of them `100 n eps`, the others 1; clustered: three clusters a
few `eps` wide. Triangular operands are the Cholesky factors of the SPD matrices of the family.
The kernel adla runs at each size is the one a batch of this size gets (interleaved for small n,
LAPACK above: README, "What computes what"). `gesvd_tall` is `gesvd` of the first quarter of the
columns of `A` over `A` turned by half a turn (2n x n/4: at n = 64 and 130 the interleaved
Jacobi's route for a long side above 64).

{table}
"""


if __name__ == "__main__":
    sys.exit(main())
