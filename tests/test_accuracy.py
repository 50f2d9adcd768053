"""Accuracy as good as LAPACK's: the ratios of LAPACK's own test suite for every kernel adla
runs instead of (or around) a LAPACK call, on random, graded, ill-conditioned, near-singular and
clustered matrices, in both precisions (accuracy.py; the same figures are docs/accuracy.md)."""
import numpy as np
import pytest

import accuracy


@pytest.mark.parametrize("dtype", accuracy.DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", list(accuracy.CHECKS))
def test_as_accurate_as_lapack(kernel, dtype):
    assert accuracy.failures(kernel, dtype) == []


@pytest.mark.parametrize("dtype", accuracy.DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", ["gelqf", "geqrf"])
def test_lapack_compact_householder_route_as_accurate(kernel, dtype):
    # The route of large matrices (geqrt and larfb, from short side 128 where the blocked code
    # does not run), here at every size the interleaved kernels leave to it.
    from adla import _cpu
    householder_max = _cpu.K.set_householder_max(0)
    compact_min = _cpu.K.set_compact_householder_min(1)
    try:
        assert accuracy.failures(kernel, dtype) == []
    finally:
        _cpu.K.set_compact_householder_min(compact_min)
        _cpu.K.set_householder_max(householder_max)


def test_the_guard_sees_a_lost_digit(monkeypatch):
    # A Cholesky factor off by 20 eps relative in every entry (about one digit more error than
    # LAPACK's) must be reported; the guard is only worth having if it can fail.
    potrf = accuracy.adla.potrf

    def lossy(A):
        L = potrf(A)
        return L * (1 + 20 * np.finfo(L.dtype).eps * np.sign(L))

    monkeypatch.setattr(accuracy.adla, "potrf", lossy)
    assert accuracy.failures("potrf", np.float64, sizes=(16,))


def test_the_families_are_what_they_say():
    eps = np.finfo(np.float64).eps
    cond = lambda A: np.linalg.cond(A.astype(np.float64))             # noqa: E731
    assert np.all(cond(accuracy.matrices("general", "ill-conditioned", 16, np.float64))
                  > 0.1 / np.sqrt(eps))
    np.testing.assert_allclose(cond(accuracy.matrices("general", "near-singular", 16, np.float64)),
                               1 / (100 * 16 * eps), rtol=0.01)
    lam = np.linalg.eigvalsh(accuracy.matrices("symmetric", "clustered", 16, np.float64))
    assert len(np.unique(np.round(np.abs(lam), 6))) == 3
    L = accuracy.matrices("lower", "random", 16, np.float32)
    assert L.dtype == np.float32 and np.all(np.triu(L, 1) == 0)
