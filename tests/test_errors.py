"""Numerical failures, bad shapes and bad dtypes get the errors docs/api.md names."""
import inspect

import numpy as np
import pytest

import adla
from harness import CASES, CASE_IDS, DIMS, call_backward, call_forward, make_inputs
from test_operators import cpu_builds


def spd_batch(batch, n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(batch + (n, n))
    return X @ np.swapaxes(X, -1, -2) / n + np.eye(n)


def test_potrf_reports_every_failing_matrix():
    A = spd_batch((6,))
    A[1, 2, 2] = -5.0                    # leading minors of order 1, 2 fine, order 3 fails
    A[4] = -np.eye(5)                    # fails at order 1
    with pytest.raises(adla.LinAlgError) as info:
        adla.potrf(A)
    message = str(info.value)
    assert "potrf" in message and "(1,)" in message and "order 3" in message
    assert "2 of 6" in message
    assert info.value.indices == [(1,), (4,)]
    assert isinstance(info.value, np.linalg.LinAlgError)

    L = adla.potrf(A, check=False)
    assert np.all(np.isnan(L[[1, 4]]))
    for i in (0, 2, 3, 5):
        np.testing.assert_allclose(L[i], np.linalg.cholesky(A[i]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lower", [True, False])
# Interleaved kernels up to 128 in a batch of 19, LAPACK above: potrf_recursive splits 129 into
# 64 + (32 + 33), so order 129 fails in the innermost trailing block.
@pytest.mark.parametrize("n", [4, 32, 33, 129])
def test_potrf_status_of_every_matrix_of_a_long_batch(n, lower):
    from adla import _cpu
    A = spd_batch((19,), n)
    A[2, 1, 1] = -50.0                   # fails at order 2
    A[9] = -np.eye(n)                    # order 1
    A[18, n - 1, n - 1] = -50.0          # order n, in the last (partial) block
    A[11][(n - 1, 0) if lower else (0, n - 1)] = np.nan
    A[12][(0, n - 1) if lower else (n - 1, 0)] = np.nan        # the triangle not read
    status = _cpu.potrf(A, lower=lower)[1]
    expected = np.zeros(19, dtype=int)
    expected[[2, 9, 11, 18]] = [2, 1, _cpu.K.STATUS_NONFINITE, n]
    np.testing.assert_array_equal(status, expected)
    with pytest.raises(adla.LinAlgError) as info:
        adla.potrf(A, lower=lower)
    assert info.value.indices == [(2,), (9,), (11,), (18,)]

    ok = [i for i in range(19) if i not in (2, 9, 11, 18)]
    L = adla.potrf(A[ok], lower=lower)
    dL = np.random.default_rng(1).standard_normal(L.shape)
    L[3, 1, 1] = 0.0                     # a zero on the diagonal: status 2
    dL[5][(n - 1, 0) if lower else (0, n - 1)] = np.inf
    dL[6][(0, n - 1) if lower else (n - 1, 0)] = np.inf        # ignored
    status = _cpu.potrf_backward(dL, L, lower=lower)[1]
    expected = np.zeros(len(ok), dtype=int)
    expected[[3, 5]] = [2, _cpu.K.STATUS_NONFINITE]
    np.testing.assert_array_equal(status, expected)
    dA = adla.potrf_backward(dL, L, lower=lower)
    assert np.all(np.isnan(dA[[3, 5]]))
    assert np.all(np.isfinite(np.delete(dA, [3, 5], axis=0)))


def test_potrf_batch_indices_are_tuples_over_the_batch_shape():
    A = spd_batch((2, 3))
    A[1, 2] = -np.eye(5)
    with pytest.raises(adla.LinAlgError, match=r"batch index \(1, 2\)") as info:
        adla.potrf(A, lower=False)
    assert info.value.indices == [(1, 2)]
    with pytest.raises(adla.LinAlgError, match=r"batch index \(\)") as info:
        adla.potrf(-np.eye(3))
    assert info.value.indices == [()]


def test_potrf_reads_one_triangle_and_fails_on_non_finite_entries_there():
    A = spd_batch((3,))
    B = A.copy()
    B[0, 0, 4] = np.nan                  # upper triangle: not read with lower=True
    np.testing.assert_array_equal(adla.potrf(B), adla.potrf(A))
    B[2, 4, 0] = np.inf                  # lower triangle: read
    with pytest.raises(adla.LinAlgError, match="non-finite") as info:
        adla.potrf(B)
    assert info.value.indices == [(2,)]
    L = adla.potrf(B, check=False)
    assert np.all(np.isnan(L[2])) and np.all(np.isfinite(L[:2]))


def test_trsm_zero_diagonal():
    rng = np.random.default_rng(0)
    A = np.tril(rng.standard_normal((4, 3, 3))) + 3 * np.eye(3)
    A[2, 1, 1] = 0.0
    B = rng.standard_normal((4, 3, 2))
    with pytest.raises(adla.LinAlgError, match=r"trsm.*\(2,\).*diagonal entry 1") as info:
        adla.trsm(A, B)
    assert info.value.indices == [(2,)]
    X = adla.trsm(A, B, check=False)
    assert np.all(np.isnan(X[2]))
    for i in (0, 1, 3):
        np.testing.assert_allclose(X[i], np.linalg.solve(A[i], B[i]), rtol=1e-12)


@pytest.mark.parametrize("n", [5, 17])          # interleaved kernels up to 16, BLAS above
@pytest.mark.parametrize("transpose, rightside, lower",
                         [(t, r, lo) for t in (False, True) for r in (False, True)
                          for lo in (False, True)])
def test_trsm_status_of_every_matrix_of_a_long_batch(n, transpose, rightside, lower):
    from adla import _cpu
    rng = np.random.default_rng(0)
    tri = np.tril if lower else np.triu
    A = tri(rng.standard_normal((11, n, n))) + 3 * np.eye(n)
    A += np.triu(np.full((n, n), np.nan), 1) if lower else np.tril(np.full((n, n), np.nan), -1)
    B = rng.standard_normal((11, 3, n) if rightside else (11, n, 3))
    A[1, 3, 3] = A[1, 1, 1] = 0.0         # the first zero on the diagonal counts: status 2
    A[4, n - 1, n - 1] = 0.0
    A[6][(n - 1, 0) if lower else (0, n - 1)] = np.inf
    B[7, 0, 0] = np.nan
    A[10, 0, 0] = 0.0                     # in the last, partial block
    flags = dict(transpose=transpose, rightside=rightside, lower=lower)
    status = _cpu.trsm(A, B, **flags)[1]
    expected = np.zeros(11, dtype=int)
    expected[[1, 4, 6, 7, 10]] = [2, n, _cpu.K.STATUS_NONFINITE, _cpu.K.STATUS_NONFINITE, 1]
    np.testing.assert_array_equal(status, expected)
    X = adla.trsm(A, B, check=False, alpha=2.0, **flags)
    ok = [0, 2, 3, 5, 8, 9]
    T = np.swapaxes(tri(np.nan_to_num(A[ok])), -1, -2) if transpose else tri(np.nan_to_num(A[ok]))
    if rightside:                         # X = B T^-1  <=>  X^T = T^-T B^T
        want = 2.0 * np.linalg.solve(np.swapaxes(T, -1, -2), np.swapaxes(B[ok], -1, -2))
        want = np.swapaxes(want, -1, -2)
    else:
        want = 2.0 * np.linalg.solve(T, B[ok])
    np.testing.assert_allclose(X[ok], want, rtol=1e-10)
    assert np.all(np.isnan(np.delete(X, ok, axis=0)))


def test_trsm_non_finite_right_hand_side_fails_that_matrix():
    A = np.eye(3) * 2.0
    B = np.ones((3, 3, 2))
    B[1, 0, 0] = np.nan
    with pytest.raises(adla.LinAlgError, match="non-finite") as info:
        adla.trsm(A, B)
    assert info.value.indices == [(1,)]
    X = adla.trsm(A, B, check=False)
    assert np.all(np.isnan(X[1])) and np.all(X[[0, 2]] == 0.5)


@pytest.mark.parametrize("nbatch", [5, 19])
@pytest.mark.parametrize("columns", [1, 3])
@pytest.mark.parametrize("rightside, transpose, lower", [(False, False, True), (True, False, True),
                                                         (False, True, False), (True, True, False)])
def test_trsm_with_a_shared_matrix_fails_per_matrix(nbatch, columns, rightside, transpose, lower,
                                                    monkeypatch):
    """A triangular matrix shared by the batch: one solve for all right-hand sides at BLAS sizes
    (5 matrices), or the interleaved kernel that reads the triangle in place (19). Each matrix
    as if solved alone; a non-finite B fails its own matrix only, a zero on A's diagonal or a
    non-finite entry in its read triangle fails them all."""
    from adla import _cpu
    flags = _cpu._flags(transpose_a=transpose, rightside=rightside, lower=lower)
    assert _cpu.K.interleaved(_cpu.K.TRSM, *((columns, 40) if rightside else (40, columns)), 0,
                              nbatch, flags | _cpu.K.FLAG_SHARED_A) == (nbatch > 8)
    rng = np.random.default_rng(0)
    A = (np.tril if lower else np.triu)(rng.standard_normal((40, 40))) + 8 * np.eye(40)
    A[(0, 39) if lower else (39, 0)] = np.nan              # outside the triangle read
    B = rng.standard_normal((nbatch, columns, 40) if rightside else (nbatch, 40, columns))
    opts = dict(rightside=rightside, transpose=transpose, lower=lower)
    X = adla.trsm(A, B, **opts)
    for i in range(nbatch):
        np.testing.assert_allclose(X[i], adla.trsm(A, B[i], **opts), rtol=1e-12, atol=1e-15)
    X32 = adla.trsm(A.astype(np.float32), B.astype(np.float32), **opts)
    assert X32.dtype == np.float32
    np.testing.assert_allclose(X32, X, rtol=1e-4, atol=1e-6)
    if cpu_builds() is not None:             # the baseline build's bits, as every kernel's
        for dtype in (np.float64, np.float32):
            results = []
            for kernels in cpu_builds():
                monkeypatch.setattr(_cpu, "K", kernels)
                results.append(adla.trsm(A.astype(dtype), B.astype(dtype), **opts))
            monkeypatch.undo()
            np.testing.assert_array_equal(*results)
    B[3, 0, 0] = np.inf
    with pytest.raises(adla.LinAlgError, match="non-finite") as info:
        adla.trsm(A, B, **opts)
    assert info.value.indices == [(3,)]
    partial = adla.trsm(A, B, check=False, **opts)
    assert np.all(np.isnan(partial[3]))
    kept = [i for i in range(nbatch) if i != 3]
    np.testing.assert_allclose(partial[kept], X[kept], rtol=1e-12, atol=1e-15)
    B[3, 0, 0] = 0.0
    zero = A.copy()
    zero[7, 7] = 0.0
    with pytest.raises(adla.LinAlgError, match="diagonal entry 7") as info:
        adla.trsm(zero, B, **opts)
    assert info.value.indices == [(i,) for i in range(nbatch)]
    inside = A.copy()
    inside[(5, 2) if lower else (2, 5)] = np.inf
    with pytest.raises(adla.LinAlgError, match="non-finite") as info:
        adla.trsm(inside, B, **opts)
    assert info.value.indices == [(i,) for i in range(nbatch)]


@pytest.mark.parametrize("rightside, transpose, lower", [(False, False, True), (True, True, True),
                                                         (False, True, False), (True, False, False)])
def test_trsm_and_trmm_with_a_shared_matrix_have_the_bits_of_the_same_matrix_repeated(
        rightside, transpose, lower):
    """Where both run interleaved (order 20, 19 matrices), the triangle read in place gives the
    results of the triangle gathered for every matrix, bit for bit; and at order 40, past the
    gathered kernels, each matrix as if alone."""
    rng = np.random.default_rng(1)
    for op in (adla.trsm, adla.trmm):
        for dtype in (np.float64, np.float32):
            A = ((np.tril if lower else np.triu)(rng.standard_normal((20, 20)))
                 + 4 * np.eye(20)).astype(dtype)
            B = rng.standard_normal((19, 3, 20) if rightside else (19, 20, 3)).astype(dtype)
            opts = dict(rightside=rightside, transpose=transpose, lower=lower, alpha=0.7)
            np.testing.assert_array_equal(op(A, B, **opts),
                                          op(np.repeat(A[None], 19, axis=0), B, **opts))
        A = (np.tril if lower else np.triu)(rng.standard_normal((40, 40))) + 8 * np.eye(40)
        B = rng.standard_normal((19, 3, 40) if rightside else (19, 40, 3))
        X = op(A, B, rightside=rightside, transpose=transpose, lower=lower)
        for i in range(19):
            np.testing.assert_allclose(X[i], op(A, B[i], rightside=rightside, transpose=transpose,
                                                lower=lower), rtol=1e-12, atol=1e-13)


def test_potri_and_potrs_fail_on_zero_diagonal():
    L = np.tril(np.ones((2, 3, 3)))
    L[1, 2, 2] = 0.0
    for call in (lambda c: adla.potri(L, check=c), lambda c: adla.potrs(L, np.ones((3, 1)),
                                                                         check=c)):
        with pytest.raises(adla.LinAlgError) as info:
            call(True)
        assert info.value.indices == [(1,)]
        out = call(False)
        assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[0]))


@pytest.mark.parametrize("n, nbatch", [(5, 3), (20, 11), (20, 3)])   # fused kernel; composed
@pytest.mark.parametrize("lower", [True, False])
def test_potrs_and_potri_backward_are_nan_exactly_where_their_solve_fails(n, nbatch, lower):
    """dB NaN, dL NaN in the factor's triangle (zero outside it), for those matrices only, on
    both routes (fused kernel, composed rule); the others as one matrix at a time."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((nbatch, n, n))
    L = adla.potrf(X @ np.swapaxes(X, 1, 2) / n + np.eye(n), lower=lower)
    B = rng.standard_normal((nbatch, n, 2))
    Xs = adla.potrs(L, B, lower=lower)
    P = adla.potri(L, lower=lower)
    dX = rng.standard_normal(Xs.shape)
    L[1, n - 1, n - 1] = 0.0                               # the solve fails
    dX[2, 0, 0] = np.nan
    dL, dB = adla.potrs_backward(dX, L, B, Xs, lower=lower)
    triangle = np.tril(np.ones((n, n), bool)) if lower else np.triu(np.ones((n, n), bool))
    assert np.all(np.isnan(dL[[1, 2]][:, triangle])) and np.all(dL[[1, 2]][:, ~triangle] == 0)
    assert np.all(np.isnan(dB[[1, 2]]))
    for g in (dL, dB):
        assert np.all(np.isfinite(np.delete(g, [1, 2], 0)))
    good = [i for i in range(nbatch) if i not in (1, 2)]
    expected = [adla.potrs_backward(dX[i], L[i], B[i], Xs[i], lower=lower) for i in good]
    np.testing.assert_allclose(dL[good], [e[0] for e in expected], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dB[good], [e[1] for e in expected], rtol=1e-10, atol=1e-12)
    # potri_backward the same way (the same two routes at these sizes).
    dP = rng.standard_normal(L.shape)
    dP[2, 0, n - 1] = np.nan
    dL = adla.potri_backward(dP, L, P, lower=lower)
    assert np.all(np.isnan(dL[[1, 2]][:, triangle])) and np.all(dL[[1, 2]][:, ~triangle] == 0)
    assert np.all(np.isfinite(np.delete(dL, [1, 2], 0)))
    expected = [adla.potri_backward(dP[i], L[i], P[i], lower=lower) for i in good]
    np.testing.assert_allclose(dL[good], expected, rtol=1e-10, atol=1e-12)


def test_trsm_backward_with_alpha_zero_is_zero():
    A = np.tril(np.ones((3, 3))) + np.eye(3)
    B = np.ones((2, 3, 4))
    X = adla.trsm(A, B, alpha=0.0)
    dA, dB = adla.trsm_backward(np.ones_like(X), A, B, X, alpha=0.0)
    assert dA.shape == (3, 3) and dB.shape == (2, 3, 4)
    assert np.all(dA == 0) and np.all(dB == 0)


def test_broadcast_trsm_sums_gradient_to_operand_shape():
    rng = np.random.default_rng(0)
    L = np.tril(rng.standard_normal((4, 4))) + 4 * np.eye(4)
    B = rng.standard_normal((8, 4, 3))
    X = adla.trsm(L, B)
    dX = rng.standard_normal(X.shape)
    dL, dB = adla.trsm_backward(dX, L, B, X)
    assert dL.shape == (4, 4) and dB.shape == B.shape
    parts = [adla.trsm_backward(dX[i], L, B[i], X[i])[0] for i in range(8)]
    np.testing.assert_allclose(dL, np.sum(parts, axis=0), rtol=1e-12, atol=1e-12)


# ---- shapes ---------------------------------------------------------------------------------------

def assert_plain_value_error(call, *fragments):
    with pytest.raises(ValueError) as info:
        call()
    assert not isinstance(info.value, np.linalg.LinAlgError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_one_dimensional_operand_is_a_value_error(row, opts):
    inputs = make_inputs(row, opts, [()] * len(row.operands(opts, DIMS)))
    name = list(inputs)[0]
    inputs[name] = inputs[name][0]
    assert_plain_value_error(lambda: call_forward(row, opts, inputs),
                             f"adla.{row.name}", f"operand {name}", str(inputs[name].shape))


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_unbroadcastable_batches_are_a_value_error(row, opts):
    if len(row.operands(opts, DIMS)) < 2:
        pytest.skip("one operand")
    inputs = make_inputs(row, opts, [(2,)] + [(3,)] * (len(row.operands(opts, DIMS)) - 1))
    assert_plain_value_error(lambda: call_forward(row, opts, inputs), f"adla.{row.name}",
                             "do not broadcast")


@pytest.mark.parametrize("call, fragments", [
    (lambda: adla.potrf(np.ones((3, 4))), ["adla.potrf", "operand A", "(3, 4)", "square"]),
    (lambda: adla.sumlogdiag(np.ones((2, 3))), ["adla.sumlogdiag", "operand A", "square"]),
    (lambda: adla.trsm(np.eye(3), np.ones((4, 2))), ["adla.trsm", "operand B", "(4, 2)"]),
    (lambda: adla.trsm(np.eye(3), np.ones((2, 4)), rightside=True), ["operand B", "(2, 4)"]),
    (lambda: adla.trmm(np.ones((3, 2)), np.ones((3, 2))), ["adla.trmm", "operand A", "square"]),
    (lambda: adla.gemm2(np.ones((3, 4)), np.ones((3, 4))), ["adla.gemm2", "operand B", "(3, 4)"]),
    (lambda: adla.gemm(np.ones((3, 4)), np.ones((4, 2)), np.ones((3, 3))),
     ["adla.gemm", "operand C", "(3, 3)"]),
    (lambda: adla.potrs(np.eye(3), np.ones((2, 1))), ["adla.potrs", "operand B", "(2, 1)"]),
    (lambda: adla.potrf_backward(np.ones((3, 3)), np.eye(4)),
     ["potrf_backward", "cotangent dL", "(3, 3)", "(4, 4)"]),
    (lambda: adla.trsm_backward(np.ones((3, 2)), np.eye(3), np.ones((3, 2)), np.ones((3, 1))),
     ["trsm_backward", "operand X"]),
    (lambda: adla.gemm2_backward(np.ones((3, 3)), np.ones((3, 4)), np.ones((4, 2))),
     ["gemm2_backward", "cotangent dD", "(3, 3)", "(3, 2)"]),
    (lambda: adla.gemm_backward(np.ones((3, 3)), np.ones((3, 4)), np.ones((4, 2)), np.ones((3, 2))),
     ["gemm_backward", "cotangent dD", "(3, 3)", "(3, 2)"]),
    (lambda: adla.sumlogdiag_backward(np.ones(3), np.ones((2, 4, 4))),
     ["sumlogdiag_backward", "cotangent ds", "(3,)", "(2,)"]),
])
def test_shape_errors_name_function_operand_and_shape(call, fragments):
    assert_plain_value_error(call, *fragments)


def taken_cotangents(row, outputs, rng):
    """Random cotangents of ``outputs`` (a tuple), and the backward's names of those it takes."""
    cts = tuple(rng.standard_normal(np.shape(o)) for o in outputs)
    taken = row.cotangents if row.cotangents is not None else range(len(cts))
    names = list(inspect.signature(row.backward).parameters)[:len(taken)]
    return cts, dict(zip(taken, names))


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_cotangents_broadcast_to_their_output_without_changing_it(row, opts):
    """A cotangent with an extra batch axis is a ValueError naming it and both shapes (it would
    otherwise sum gradients silently); one with a missing batch axis, or a scalar, broadcasts."""
    rng = np.random.default_rng(0)
    inputs = make_inputs(row, opts, [(3,)] * len(row.operands(opts, DIMS)))
    out = call_forward(row, opts, inputs)
    outputs = out if isinstance(out, tuple) else (out,)
    cts, names = taken_cotangents(row, outputs, rng)

    def backward(cotangents):
        c = cotangents if isinstance(out, tuple) else cotangents[0]
        return call_backward(row, opts, c, inputs, out)
    for i, name in names.items():
        extra = cts[:i] + (np.stack([cts[i], cts[i]]),) + cts[i + 1:]
        assert_plain_value_error(lambda: backward(extra), f"adla.{row.name}_backward",
                                 f"cotangent {name}", str(extra[i].shape),
                                 str(outputs[i].shape))
        # Equal to rounding: a shared cotangent may take another route (one BLAS call for the
        # whole batch, from order 33 on) than the spelled-out one.
        shared = cts[:i] + (cts[i][0],) + cts[i + 1:]          # the batch axis left out
        spelled = cts[:i] + (np.broadcast_to(cts[i][0], cts[i].shape),) + cts[i + 1:]
        for got, expected in zip(backward(shared), backward(spelled)):
            assert_close_to_rounding(got, expected)
        scalar = cts[:i] + (np.float64(0.5),) + cts[i + 1:]
        spelled = cts[:i] + (np.full(outputs[i].shape, 0.5),) + cts[i + 1:]
        for got, expected in zip(backward(scalar), backward(spelled)):
            assert_close_to_rounding(got, expected)


def assert_close_to_rounding(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12,
                               atol=1e-12 * float(np.max(np.abs(expected), initial=0.0)))


def test_matrices_too_large_for_lapack_are_refused_before_allocation():
    huge = np.broadcast_to(np.float64(1.0), (65536, 65536))        # 2**32 elements, no memory
    assert_plain_value_error(lambda: adla.potrf(huge), "adla.potrf", "operand A", "too large")
    wide = np.broadcast_to(np.float64(1.0), (1, 2**31))
    assert_plain_value_error(lambda: adla.syrk(wide, transpose=False), "adla.syrk", "too large")
    tall = np.broadcast_to(np.float64(1.0), (70000, 1))
    assert_plain_value_error(lambda: adla.syrk(tall), "adla.syrk", "result", "too large")
    column, row = np.broadcast_to(1.0, (70000, 1)), np.broadcast_to(1.0, (1, 70000))
    assert_plain_value_error(lambda: adla.gemm2(column, row), "adla.gemm2", "result", "too large")


# ---- dtypes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.complex128, np.complex64, np.float16, object, "U3",
                                   np.longdouble])
def test_unsupported_dtypes_are_a_type_error(dtype):
    if np.dtype(dtype) == np.float64:
        pytest.skip("longdouble is float64 on this platform")
    A = np.eye(3).astype(dtype)
    with pytest.raises(TypeError, match=r"adla\.potrf.*operand A.*dtype"):
        adla.potrf(A)
    with pytest.raises(TypeError, match=r"adla\.gemm2.*operand B.*dtype"):
        adla.gemm2(np.eye(3), A)


def test_integer_bool_and_list_inputs_compute_in_float64():
    L = adla.potrf([[4, 2], [2, 5]])
    assert L.dtype == np.float64
    np.testing.assert_allclose(L, [[2, 0], [1, 2]])
    assert adla.gemm2(np.eye(2, dtype=bool), np.ones((2, 2), np.int32)).dtype == np.float64


def test_mixed_float_dtypes_promote_like_numpy():
    A32, B64 = np.eye(3, dtype=np.float32), np.ones((3, 2))
    assert adla.trsm(A32, B64).dtype == np.float64
    assert adla.trsm(A32, B64.astype(np.float32)).dtype == np.float32
    X = adla.trsm(A32, B64)
    dA, dB = adla.trsm_backward(np.ones_like(X), A32, B64, X)
    assert dA.dtype == np.float32 and dB.dtype == np.float64    # each in its input's dtype


def test_python_scalar_cotangents_do_not_promote():
    # As np.float32 array * 1.0 stays float32: the gradient is computed in float32, the same
    # bits as with a float32 cotangent (before, in float64 and rounded).
    A = (np.eye(4) * 3 + np.arange(16).reshape(4, 4) / 16).astype(np.float32)
    for cotangent in (1.0, 1, np.float32(1)):
        np.testing.assert_array_equal(adla.slogdet_backward(cotangent, A),
                                      adla.slogdet_backward(np.ones((), np.float32), A))
    assert adla.slogdet_backward(1.0, A.astype(np.float64)).dtype == np.float64
    assert adla.sumlogdiag_backward(2, A).dtype == np.float32


def test_scalars_must_be_real():
    with pytest.raises(TypeError, match=r"adla\.gemm2: alpha"):
        adla.gemm2(np.eye(2), np.eye(2), alpha="two")


@pytest.mark.parametrize("n", [3, 12, 40])      # interleaved gemm (3), direct loops, BLAS
def test_gemm_scalars_zero_ignore_their_operands_as_in_blas(n):
    rng = np.random.default_rng(0)
    A, B, C = (rng.standard_normal((11, n, n)) for _ in range(3))
    nan = np.full((11, n, n), np.nan)
    np.testing.assert_array_equal(adla.gemm(nan, nan, C, alpha=0.0, beta=2.0), 2.0 * C)
    np.testing.assert_allclose(adla.gemm(A, B, nan, beta=0.0), A @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(adla.gemm(nan, B, C, alpha=0.0, beta=0.0), np.zeros_like(C))


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_a_missing_operand_is_a_type_error_naming_it(row, opts):
    """Only cotangents and tangents may be None; a primal of None (forward, backward or jvp)
    is a TypeError naming the function and the operand."""
    inputs = make_inputs(row, opts, [()] * len(row.operands(opts, DIMS)))
    name = next(iter(inputs))
    missing = dict(inputs, **{name: None})
    for fn, args in ((row.forward, list(missing.values())),
                     (row.jvp, list(missing.values()) + [None] * len(inputs))):
        with pytest.raises(TypeError, match=f"{fn.__name__}: operand {name} is required"):
            fn(*args, **opts)
