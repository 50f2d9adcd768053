"""The GPU backend's array-level rules (the ones built from products and solves, not from
RawKernels or cuSOLVER handles) checked against the CPU backend on every machine: the backend
module is loaded a second time with NumPy standing in for CuPy. On a GPU, test_gpu.py checks the
whole backend on CuPy arrays."""
import itertools

import numpy as np
import pytest

from adla import _cpu
from adla._array_rules import degenerate_tolerance
from stand_in import gpu_backend_on_numpy


@pytest.fixture(scope="module")
def gpu_rules():
    return gpu_backend_on_numpy()


def assert_same(gpu, cpu):
    as_tuple = lambda x: x if isinstance(x, tuple) else (x,)      # noqa: E731
    for g, c in zip(as_tuple(gpu), as_tuple(cpu)):
        assert g.shape == c.shape
        np.testing.assert_allclose(g, c, rtol=1e-12, atol=1e-12)


FLAGS = [dict(transpose=t, rightside=r, lower=lo)
         for t, r, lo in itertools.product([False, True], repeat=3)]


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("nbatch", [1, 5])           # 1: broadcast against the other operands
def test_trsm_backward(gpu_rules, flags, nbatch):
    rng = np.random.default_rng(0)
    T = np.tril(rng.standard_normal((nbatch, 5, 5))) + 3 * np.eye(5)
    A = T if flags["lower"] else np.ascontiguousarray(np.swapaxes(T, 1, 2))
    shape = (5, 3, 5) if flags["rightside"] else (5, 5, 3)
    X, dX = rng.standard_normal(shape), rng.standard_normal(shape)
    assert_same(gpu_rules.trsm_backward(A, X, dX, alpha=0.7, **flags),
                _cpu.trsm_backward(A, X, dX, alpha=0.7, **flags))


@pytest.mark.parametrize("triangle", [None, "lower", "upper"])
def test_gemm_triangle(gpu_rules, triangle):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1, 4, 4)), rng.standard_normal((3, 4, 4))
    assert_same(gpu_rules.gemm(a, b, transpose_b=True, alpha=-1.0, triangle=triangle),
                _cpu.gemm(a, b, transpose_b=True, alpha=-1.0, triangle=triangle))


@pytest.mark.parametrize("transpose", [False, True])
def test_syrk_backward(gpu_rules, transpose):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1, 4, 3))
    dc = rng.standard_normal((5, 3, 3) if transpose else (5, 4, 4))
    assert_same(gpu_rules.syrk_backward(dc, a, transpose=transpose, alpha=0.3),
                _cpu.syrk_backward(dc, a, transpose=transpose, alpha=0.3))


@pytest.mark.parametrize("absent", [None, "du", "dlam"])
def test_syevd_backward(gpu_rules, absent):
    rng = np.random.default_rng(3)
    S = rng.standard_normal((4, 5, 5))
    S = S + np.swapaxes(S, 1, 2)
    S[0] = np.diag([1.0, 1.0, 2.0, 3.0, 3.0])          # degenerate eigenvalues
    lam, V = np.linalg.eigh(S)
    U = np.ascontiguousarray(np.swapaxes(V, 1, 2))
    du = None if absent == "du" else rng.standard_normal((4, 5, 5))
    dlam = None if absent == "dlam" else rng.standard_normal((4, 5))
    tolerance = degenerate_tolerance(lam, np.float64)
    assert_same(gpu_rules.syevd_backward(du, dlam, U, lam, tolerance),
                _cpu.syevd_backward(du, dlam, U, lam, tolerance))
    if absent is None:                   # one eigendecomposition for a batch of cotangents
        one = (U[2:3], lam[2:3], tolerance[2:3])
        assert_same(gpu_rules.syevd_backward(du, dlam, *one), _cpu.syevd_backward(du, dlam, *one))


@pytest.mark.parametrize("nbatch", [1, 4])          # 1: one tangent for the whole batch
def test_syevd_tangent(gpu_rules, nbatch):
    rng = np.random.default_rng(4)
    S = rng.standard_normal((4, 5, 5))
    S = S + np.swapaxes(S, 1, 2)
    S[0] = np.diag([1.0, 1.0, 2.0, 3.0, 3.0])          # degenerate eigenvalues
    lam, V = np.linalg.eigh(S)
    U = np.ascontiguousarray(np.swapaxes(V, 1, 2))
    da = rng.standard_normal((nbatch, 5, 5))            # its upper triangle is not read
    tolerance = degenerate_tolerance(lam, np.float64)
    assert_same(gpu_rules.syevd_tangent(da, U, lam, tolerance),
                _cpu.syevd_tangent(da, U, lam, tolerance))


@pytest.mark.parametrize("absent", [None, "du", "ds", "dvt"])
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (40, 3)])
def test_gesvd_backward(gpu_rules, shape, absent):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((4,) + shape)
    k = min(shape)
    A[0] = 0
    A[0, [0, 1], [0, 1]] = 2.0                                  # repeated and zero values
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    du = None if absent == "du" else rng.standard_normal((1,) + U.shape[1:])   # broadcast
    ds = None if absent == "ds" else rng.standard_normal(s.shape)
    dvt = None if absent == "dvt" else rng.standard_normal(Vt.shape)
    tolerance = degenerate_tolerance(s, np.float64)
    assert_same(gpu_rules.gesvd_backward(du, ds, dvt, U, s, Vt, tolerance),
                _cpu.gesvd_backward(du, ds, dvt, U, s, Vt, tolerance))


@pytest.mark.parametrize("nbatch", [1, 4])          # 1: one tangent for the whole batch
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (40, 3)])
def test_gesvd_tangent(gpu_rules, shape, nbatch):
    rng = np.random.default_rng(6)
    A = rng.standard_normal((4,) + shape)
    A[0] = 0
    A[0, [0, 1], [0, 1]] = 2.0                                  # repeated and zero values
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    da = rng.standard_normal((nbatch,) + shape)
    tolerance = degenerate_tolerance(s, np.float64)
    assert_same(gpu_rules.gesvd_tangent(da, U, s, Vt, tolerance),
                _cpu.gesvd_tangent(da, U, s, Vt, tolerance))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (0, 3)])
def test_gesvd(gpu_rules, shape):
    a = np.random.default_rng(4).standard_normal((3,) + shape)
    if shape[0]:
        a[1, 0, 0] = np.nan                     # that matrix fails, the others do not
    U, s, Vt, status = gpu_rules.gesvd(a)
    cU, cs, cVt, cstatus = _cpu.gesvd(a)
    np.testing.assert_array_equal(status != 0, cstatus != 0)
    ok = cstatus == 0
    assert_same((U[ok], s[ok], Vt[ok]), (cU[ok], cs[ok], cVt[ok]))
    assert np.isnan(s[~ok]).all()


@pytest.mark.parametrize("transpose", [False, True])
def test_gesv_and_its_zero_pivot(gpu_rules, transpose):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 5, 5))
    a[2, :, 1] = 2.0 * a[2, :, 0]               # singular: an exactly zero pivot
    a[2, 3] = a[2, 1]
    a[3, 4, 4] = np.inf
    b = rng.standard_normal((1, 5, 2))          # broadcast against the batch of a
    x, status = gpu_rules.gesv(a, b, transpose=transpose)
    cx, cstatus = _cpu.gesv(a, b, transpose=transpose)
    np.testing.assert_array_equal(status, cstatus)
    assert status[2] > 0 and status[3] == -1
    assert_same(x[:2], cx[:2])


def _status_and_good(gpu_status, cpu_status):
    np.testing.assert_array_equal(gpu_status, cpu_status)
    return cpu_status == 0


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("nbatch", [1, 12])           # 12: the batched trsm, above FEW_LARGE
def test_trsm_by_blas_flags(gpu_rules, flags, nbatch):
    rng = np.random.default_rng(6)
    T = np.tril(rng.standard_normal((nbatch, 5, 5))) + 3 * np.eye(5)
    A = T if flags["lower"] else np.ascontiguousarray(np.swapaxes(T, 1, 2))
    A = A + np.where(np.tril(np.ones((5, 5))) if not flags["lower"] else
                     np.triu(np.ones((5, 5)), 1), 1e3, 0)      # garbage in the unread triangle
    B = rng.standard_normal((12, 3, 5) if flags["rightside"] else (12, 5, 3))
    if nbatch > 1:
        A[3, 2, 2] = 0.0                                      # a zero pivot
        B[5, 0, 0] = np.nan                                   # a non-finite right-hand side
    X, status = gpu_rules.trsm(A, B, alpha=0.7, **flags)
    cX, cstatus = _cpu.trsm(A, B, alpha=0.7, **flags)
    good = _status_and_good(status, cstatus)
    assert_same(X[good], cX[good])


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("n", [5, 40])
def test_potrs_and_potri(gpu_rules, lower, n):
    rng = np.random.default_rng(7)
    L = np.tril(rng.standard_normal((10, n, n))) + n * np.eye(n)
    if not lower:
        L = np.ascontiguousarray(np.swapaxes(L, 1, 2))
    L[4, 1, 1] = 0.0
    B = rng.standard_normal((1, n, 2))
    X, status = gpu_rules.potrs(L, B, lower=lower)
    cX, cstatus = _cpu.potrs(L, B, lower=lower)
    good = _status_and_good(status, cstatus)
    assert_same(X[good], cX[good])
    inverse, status = gpu_rules.potri(L, lower=lower)
    cinverse, cstatus = _cpu.potri(L, lower=lower)
    good = _status_and_good(status, cstatus)
    assert_same(inverse[good], cinverse[good])


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("nbatch", [2, 12])          # one call per matrix; potrfBatched
def test_large_cholesky(gpu_rules, lower, nbatch):
    """cuSOLVER's column-major lower factor for either triangle, and the solves of the
    backward, against the CPU."""
    n = 40
    rng = np.random.default_rng(8)
    X = rng.standard_normal((nbatch, n, n))
    A = X @ np.swapaxes(X, 1, 2) / n + np.eye(n)
    A += np.triu(np.full((n, n), 7.0), 1) if lower else np.tril(np.full((n, n), 7.0), -1)
    A[1, 3, 3] = -100.0                                      # fails at order 4
    if nbatch > 2:
        A[5, n - 1, 0 if lower else n - 1] = np.inf
    L, status = gpu_rules.potrf(A, lower=lower)
    cL, cstatus = _cpu.potrf(A, lower=lower)
    good = _status_and_good(status, cstatus)
    assert_same(L[good], cL[good])
    dL = rng.standard_normal((nbatch, n, n))[good]
    grads = gpu_rules.potrf_backward(dL, cL[good], lower=lower)
    cgrads = _cpu.potrf_backward(dL, cL[good], lower=lower)
    assert_same(grads, cgrads)


@pytest.mark.parametrize("qr", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4, 4), (5, 17), (32, 32), (0, 3),
                                   (5, 33), (40, 40), (20, 100), (64, 64), (65, 65)])
def test_lq_and_qr_kernels(gpu_rules, qr, shape):
    """The LQ/QR kernels' arguments and layout (QR as the LQ of the transpose; lq_tiles up to
    32, lq_block above for a short side up to 64, cuSOLVER beyond), a rank deficient matrix and
    a non-finite one, against the CPU."""
    rng = np.random.default_rng(9)
    a = rng.standard_normal((4,) + (shape[::-1] if qr else shape))
    if a.size:
        a[1, 0] = 0.0                                # rank deficient
        a[1, -1] = 0.0
        a[2, 0, 0] = np.nan
    Q, T, status = (gpu_rules.geqrf if qr else gpu_rules.gelqf)(a)
    cQ, cT, cstatus = (_cpu.geqrf if qr else _cpu.gelqf)(a)
    np.testing.assert_array_equal(status, cstatus)
    good = (cstatus == 0) & (np.arange(4) != 1)
    assert_same((Q[good], T[good]), (cQ[good], cT[good]))
    if a.size:       # rank deficient: Q's rows (columns) for a zero pivot are unique up to sign
        product = Q[1] @ T[1] if qr else T[1] @ Q[1]
        gram = Q[1].T @ Q[1] if qr else Q[1] @ Q[1].T
        np.testing.assert_allclose(product, a[1], atol=1e-12)
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-12)
        assert (np.diagonal(T[1]) >= 0).all()


def test_nonfinite_status_of_the_array_routes(gpu_rules):
    """The routes through cupy.linalg flag a non-finite entry in the part they read: syevd only
    its lower triangle; inverse, slogdet, cofactor (det's gradient) and gesvd all of it."""
    rng = np.random.default_rng(10)
    a = rng.standard_normal((3, 4, 4)) + 4 * np.eye(4)
    a = a + np.swapaxes(a, 1, 2)
    a[1, 0, 3] = np.nan                                   # upper triangle: syevd does not read it
    a[2, 3, 0] = np.inf
    expected = {"syevd": [0, 0, -1], "inverse": [0, -1, -1], "slogdet": [0, -1, -1],
                "cofactor": [0, -1, -1], "gesvd": [0, -1, -1]}
    for name, status in expected.items():
        np.testing.assert_array_equal(getattr(gpu_rules, name)(a)[-1], status, err_msg=name)


@pytest.mark.parametrize("nscale", [1, 3])              # 1: one scalar shared by the batch
def test_inverse_and_cofactor_times_a_scalar_per_matrix(gpu_rules, nscale):
    """``scale`` of inverse and cofactor (slogdet's and det's gradients times their cotangent)
    against the CPU kernels and against the unscaled result times the scalar."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 4, 4)) + 4 * np.eye(4)
    scale = np.array([0.5, -2.0, 3.0])[:nscale]
    for name, options in [("inverse", dict(transpose=False)), ("inverse", dict(transpose=True)),
                          ("cofactor", {})]:
        got = getattr(gpu_rules, name)(a, scale=scale, **options)[0]
        assert_same(got, getattr(_cpu, name)(a, scale=scale, **options)[0])
        assert_same(got, getattr(_cpu, name)(a, **options)[0] * scale[:, None, None])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parts_of_matrices(gpu_rules, dtype):
    """The diagonal and packed triangles (extract_part, embed_part) of the array-module route
    against the CPU kernels, on every part and offset of a 7 x 7 batch, also past the matrix."""
    A = np.random.default_rng(0).standard_normal((5, 7, 7)).astype(dtype)
    for part, offsets in [("diagonal", range(-8, 9)), ("lower", range(-8, 1)),
                          ("upper", range(0, 9))]:
        for offset in offsets:
            v = _cpu.extract_part(A, part, offset)
            np.testing.assert_array_equal(gpu_rules.extract_part(A, part, offset), v)
            length = max(7 - abs(offset), 0)
            assert v.shape == (5, length if part == "diagonal" else length * (length + 1) // 2)
            np.testing.assert_array_equal(gpu_rules.embed_part(v, 7, part, offset),
                                          _cpu.embed_part(v, 7, part, offset))
