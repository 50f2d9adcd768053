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
