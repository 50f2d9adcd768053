"""Forward mode, every operator x option x batch layout (the rows of ``harness.py``): tangents
against central differences of the forward, the transpose identity with the backward
(``<ct, jvp(t)> == <backward(ct), t>``), float32, layouts, empty batches, absent and
mis-shaped tangents, failures; then the rules at the edges (degenerate spectra, singular
matrices)."""
import numpy as np
import pytest

import adla

from harness import (CASE_IDS, CASES, DIMS, call_backward, call_forward, call_jvp, make_inputs,
                     sym_from, tri)
from test_operators import (EMPTY_LAYOUTS, as_tuple, assert_fresh_c_array, cases_with_layouts,
                            cotangents_for, cpu_builds, relayout)


def tangents_for(row, opts, inputs, seed=3):
    """A random tangent per input, also where the operator does not read it (the other
    triangle of a symmetric or triangular operand, off the diagonal for sumlogdiag)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(x.shape).astype(x.dtype) for name, x in inputs.items()}


def as_read(row, opts, name, t):
    """Tangent ``t`` of input ``name`` as the operator reads it: the symmetric matrix of the
    triangle read, that triangle, or the diagonal."""
    operand = row.spec.operand(name)
    if operand.reads == "symmetric":
        lower = operand.lower(opts)
        part = np.tril(t, -1) if lower else np.triu(t, 1)
        return tri(t, lower) + np.swapaxes(part, -1, -2)
    if operand.reads == "triangular":
        return tri(t, operand.lower(opts))
    if operand.reads == "diagonal":
        return t * np.eye(t.shape[-1])
    return t


def scale(x):
    return max(1.0, float(np.max(np.abs(x), initial=0.0)))


@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts()))
def test_jvp_against_finite_differences(row, opts, batches):
    inputs = make_inputs(row, opts, batches)
    tangents = tangents_for(row, opts, inputs)
    saved = {k: v.copy() for k, v in {**inputs, **{"d" + k: t for k, t in tangents.items()}}.items()}
    outs, touts = call_jvp(row, opts, inputs, tangents)
    for k, v in {**inputs, **{"d" + k: t for k, t in tangents.items()}}.items():
        np.testing.assert_array_equal(v, saved[k])                  # inputs never modified
    forward = call_forward(row, opts, inputs)
    for o, f in zip(as_tuple(outs), as_tuple(forward)):
        np.testing.assert_array_equal(o, f)                          # the forward's very bits
    assert_fresh_c_array(outs, list(inputs.values()) + list(tangents.values()), np.float64)
    assert_fresh_c_array(touts, list(inputs.values()) + list(tangents.values()), np.float64)
    h = 1e-6
    plus = {k: x + h * as_read(row, opts, k, tangents[k]) for k, x in inputs.items()}
    minus = {k: x - h * as_read(row, opts, k, tangents[k]) for k, x in inputs.items()}
    for t, p, m in zip(as_tuple(touts), as_tuple(call_forward(row, opts, plus)),
                       as_tuple(call_forward(row, opts, minus))):
        fd = (p - m) / (2 * h)
        assert t.shape == fd.shape
        np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-6 * scale(fd))


@pytest.mark.parametrize("row, opts, batches",
                         list(cases_with_layouts(["single", "batch3", "bcast_first", "bcast_2d"])))
def test_transpose_identity_with_the_backward(row, opts, batches):
    """<ct, jvp(t)> == <backward(ct), t> to rounding: the two modes are one linear map and its
    transpose, also where an operand is broadcast (its gradient summed over the batch)."""
    inputs = make_inputs(row, opts, batches)
    tangents = tangents_for(row, opts, inputs)
    outs, touts = call_jvp(row, opts, inputs, tangents)
    cts = cotangents_for(outs)
    if row.cotangents is not None:
        cts = tuple(c if i in row.cotangents else np.zeros_like(c)
                    for i, c in enumerate(as_tuple(cts)))
    grads = call_backward(row, opts, cts, inputs, outs)
    left = sum(np.sum(c * t) for c, t in zip(as_tuple(cts), as_tuple(touts)))
    right = sum(np.sum(g * as_read(row, opts, name, tangents[name]))
                for name, g in zip(row.differentiable, grads))
    size = sum(np.linalg.norm(c) * np.linalg.norm(t) for c, t in zip(as_tuple(cts),
                                                                     as_tuple(touts)))
    assert abs(left - right) <= 1e-12 * max(size, 1.0) * 100, (left, right)


@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch3", "bcast_rest"])))
def test_jvp_float32_matches_float64(row, opts, batches):
    results = {}
    for dtype in (np.float64, np.float32):
        inputs = make_inputs(row, opts, batches, dtype)
        tangents = {k: t.astype(np.float64) for k, t in tangents_for(row, opts, inputs).items()}
        outs, touts = call_jvp(row, opts, inputs, tangents)       # float64 tangents
        results[dtype] = as_tuple(touts)
    for t32, t64 in zip(results[np.float32], results[np.float64]):
        assert t32.dtype == np.float32                               # the forward's dtype
        assert np.linalg.norm(t32 - t64) <= 2e-4 * max(np.linalg.norm(t64), 1.0)


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative"])
@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch3"])))
def test_jvp_memory_layouts_give_identical_results(row, opts, batches, layout):
    inputs = make_inputs(row, opts, batches)
    tangents = tangents_for(row, opts, inputs)
    expected = call_jvp(row, opts, inputs, tangents)
    moved = {k: relayout(v, layout) if v.ndim >= 2 else v for k, v in inputs.items()}
    moved_t = {k: relayout(v, layout) if v.ndim >= 2 else v for k, v in tangents.items()}
    got = call_jvp(row, opts, moved, moved_t)
    for a, b in zip(as_tuple(got[0]) + as_tuple(got[1]),
                    as_tuple(expected[0]) + as_tuple(expected[1])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_absent_tangents_are_zero_and_broadcast_tangents_are_spelled_out(row, opts):
    inputs = make_inputs(row, opts, [(3,)] * len(row.operands(opts, DIMS)))
    tangents = tangents_for(row, opts, inputs)
    outs, touts = call_jvp(row, opts, inputs, {})
    for o, t in zip(as_tuple(outs), as_tuple(touts)):
        assert t.shape == o.shape and t.dtype == o.dtype and t.flags.c_contiguous
        assert np.all(t == 0)
    # Only the first input's tangent, broadcast from one matrix: as if given for all three.
    first = next(iter(inputs))
    one = tangents[first][:1]
    _, got = call_jvp(row, opts, inputs, {first: one})
    _, want = call_jvp(row, opts, inputs, {first: np.broadcast_to(one, inputs[first].shape)})
    for a, b in zip(as_tuple(got), as_tuple(want)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_a_tangent_with_extra_batch_axes_is_an_error(row, opts):
    inputs = make_inputs(row, opts, [()] * len(row.operands(opts, DIMS)))
    name = next(iter(inputs))
    bad = np.zeros((2,) + inputs[name].shape)
    with pytest.raises(ValueError, match=f"{row.name}_jvp: tangent d{name} has shape"):
        call_jvp(row, opts, inputs, {name: bad})


@pytest.mark.parametrize("empty", list(EMPTY_LAYOUTS))
@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_jvp_empty_batches(row, opts, empty):
    batches = EMPTY_LAYOUTS[empty](len(row.operands(opts, DIMS)))
    inputs = make_inputs(row, opts, batches)
    outs, touts = call_jvp(row, opts, inputs, tangents_for(row, opts, inputs))
    for o, t in zip(as_tuple(outs), as_tuple(touts)):
        assert t.shape == o.shape and o.shape[:1] == batches[0][:1]


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_jvp_zero_sized_matrices(row, opts):
    dims = dict(n=0, m=0, k=0)
    inputs = make_inputs(row, opts, [(2,)] * len(row.operands(opts, dims)), dims=dims)
    outs, touts = call_jvp(row, opts, inputs, tangents_for(row, opts, inputs))
    for o, t in zip(as_tuple(outs), as_tuple(touts)):
        assert t.shape == o.shape and np.all(np.isfinite(t))


STRUCTURED = [(row, opts) for row, opts in CASES
              if any(o.reads == "triangular" for o in row.spec.outputs)]


@pytest.mark.parametrize("row, opts", STRUCTURED,
                         ids=[f"{r.name}{r.label}-{o}" for r, o in STRUCTURED])
def test_structurally_zero_outputs_have_exactly_zero_tangents(row, opts):
    inputs = make_inputs(row, opts, [(5,)] * len(row.operands(opts, DIMS)))
    outs, touts = call_jvp(row, opts, inputs, tangents_for(row, opts, inputs))
    for operand, t in zip(row.spec.outputs, as_tuple(touts)):
        if operand.reads == "triangular":
            lower = operand.lower(opts)
            assert np.all((np.triu(t, 1) if lower else np.tril(t, -1)) == 0)


# ---- failures --------------------------------------------------------------------------------

def test_check_raises_or_gives_nan_in_outputs_and_tangents():
    A = np.stack([np.eye(3) * 2, -np.eye(3), np.eye(3)])
    with pytest.raises(adla.LinAlgError) as info:
        adla.potrf_jvp(A, np.ones((3, 3)))
    assert info.value.indices == [(1,)] and "potrf_jvp" in str(info.value)
    L, dL = adla.potrf_jvp(A, np.ones((3, 3)), check=False)
    assert np.all(np.isnan(L[1])) and np.all(np.isnan(dL[1]))
    assert np.all(np.isfinite(L[[0, 2]])) and np.all(np.isfinite(dL[[0, 2]]))
    np.testing.assert_array_equal(L[[0, 2]], adla.potrf(A[[0, 2]]))


def test_a_non_finite_tangent_is_no_failure_and_stays_in_its_matrix():
    A = np.stack([np.eye(3) * 2] * 3)
    dA = np.ones((3, 3, 3))
    dA[1, 2, 0] = np.nan
    for fn in (adla.potrf_jvp, adla.syevd_jvp, adla.inverse_jvp):
        outs, touts = fn(A, dA)
        for t in as_tuple(touts):
            assert np.all(np.isfinite(t[[0, 2]])) and np.any(np.isnan(t[1]))
    X, dX = adla.trsm_jvp(A, np.ones((3, 3, 2)), None, np.where(np.isnan(dA[..., :2]), np.nan, 1.0))
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(dX[[0, 2]])) and np.any(np.isnan(dX[1]))
    for n in (3, 70):           # gesv: interleaved, and per matrix
        An = np.stack([np.eye(n) * 2] * 3)
        dAn = np.ones((3, n, n))
        dAn[1, 2, 0] = np.nan
        X, dX = adla.gesv_jvp(An, np.ones((3, n, 2)), dAn, None)
        assert np.all(np.isfinite(X)) and np.all(np.isfinite(dX[[0, 2]]))
        assert np.all(np.isnan(dX[1]))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shape", [(3, 4, 6), (3, 6, 4), (9, 40, 40), (3, 40, 40), (3, 70, 50)])
def test_lq_and_qr_jvp_give_nan_tangents_at_rank_deficiency_and_non_finite_tangents(
        shape, fused, monkeypatch):
    """Matrix 1 rank deficient, matrix 2 with a NaN in its tangent: their tangents are NaN (the
    structurally zero triangle stays zero), no error, and the other matrices are untouched;
    through the fused kernel and through the composed rule."""
    from adla import _cpu
    if not fused:
        monkeypatch.setattr(_cpu, "orthogonal_jvp", lambda *args, **kwargs: None)
    rng = np.random.default_rng(4)
    A, dA = rng.standard_normal(shape), rng.standard_normal(shape)
    lq = shape[1] <= shape[2]
    if lq:                                         # exactly rank deficient: L[1, 1] == 0
        A[1, 1] = 0
    else:
        A[1, :, 1] = 0
    dA[2, 0, 0] = np.nan
    jvp, forward = (adla.gelqf_jvp, adla.gelqf) if lq else (adla.geqrf_jvp, adla.geqrf)
    (Q, T), (dQ, dT) = jvp(A, dA)
    for o, f in zip((Q, T), forward(A)):
        np.testing.assert_array_equal(o, f)
    zero = np.triu(dT, 1) if lq else np.tril(dT, -1)
    assert np.all(zero == 0)
    triangle = (np.tril_indices if lq else np.triu_indices)(min(shape[1:]))
    for t, read in ((dQ, slice(None)), (dT, triangle)):
        assert np.all(np.isnan(t[1][read])) and np.all(np.isnan(t[2][read]))
        assert np.all(np.isfinite(t[[0] + list(range(3, shape[0]))]))


def test_det_jvp_is_exact_at_singular_matrices_and_slogdet_jvp_does_not_raise():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    A[:, 3] = A[:, 0] + A[:, 1]                                     # rank 3
    E = rng.standard_normal((4, 4))
    h = 1e-6
    d, dd = adla.det_jvp(A, E)
    fd = (np.linalg.det(A + h * E) - np.linalg.det(A - h * E)) / (2 * h)
    assert abs(dd - fd) <= 1e-7 * max(1.0, abs(fd)) and abs(fd) > 1e-3
    B = np.zeros((4, 4))
    (sign, logabsdet), (dsign, dlogabsdet) = adla.slogdet_jvp(B, E)
    assert logabsdet == -np.inf and not np.isfinite(dlogabsdet) and dsign == 0


# ---- degenerate spectra ----------------------------------------------------------------------

def test_syevd_jvp_at_a_repeated_eigenvalue_is_finite_and_exact_where_defined():
    """At an exactly repeated eigenvalue: the tangent of the eigenspace's eigenvalue sum and of
    its projector are exact (against central differences); every tangent is finite."""
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    lam = np.array([1.0, 2.0, 2.0, 2.0, 4.0])
    A = Q @ np.diag(lam) @ Q.T
    E = rng.standard_normal((5, 5))
    E = E + E.T
    (U, w), (dU, dw) = adla.syevd_jvp(A, E)
    assert np.all(np.isfinite(dU)) and np.all(np.isfinite(dw))

    def block(A):
        U, w = adla.syevd(A)
        V = U[1:4]
        return w[1:4].sum(), V.T @ V
    h = 1e-5
    (sp, Pp), (sm, Pm) = block(A + h * sym_from(E, True)), block(A - h * sym_from(E, True))
    assert abs(dw[1:4].sum() - (sp - sm) / (2 * h)) <= 1e-6
    V, dV = U[1:4], dU[1:4]
    np.testing.assert_allclose(dV.T @ V + V.T @ dV, (Pp - Pm) / (2 * h), atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (6, 4)])
def test_gesvd_jvp_at_repeated_and_zero_singular_values(shape):
    rng = np.random.default_rng(2)
    m, n = shape
    k = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = np.array([3.0, 2.0, 2.0, 0.0, 0.0, 0.0][:k])
    A = U @ np.diag(s) @ V.T
    E = rng.standard_normal(shape)
    (Uo, so, Vto), (dU, ds, dVt) = adla.gesvd_jvp(A, E)
    for t in (dU, ds, dVt):
        assert np.all(np.isfinite(t))
    h = 1e-6

    def spectral(A):
        return np.sum(adla.gesvd(A)[1] ** 2)               # a symmetric function of all s
    fd = (spectral(A + h * E) - spectral(A - h * E)) / (2 * h)
    assert abs(2 * np.sum(so * ds) - fd) <= 1e-6 * max(1.0, abs(fd))

    def projector(A):                                        # onto the top singular subspace
        U = adla.gesvd(A)[0][:, :1]
        return U @ U.T
    P1 = Uo[:, :1]
    dP = dU[:, :1] @ P1.T + P1 @ dU[:, :1].T
    np.testing.assert_allclose(dP, (projector(A + h * E) - projector(A - h * E)) / (2 * h),
                               atol=1e-6)


# operators whose CPU jvp is one fused kernel -> the backend function that returns None where
# the backend has none
FUSED = {"potrf": "potrf_jvp", "trsm": "trsm_jvp", "gelqf": "orthogonal_jvp",
         "geqrf": "orthogonal_jvp", "gemm": "gemm_jvp", "gemm2": "gemm_jvp",
         "gesv": "gesv_jvp", "inverse": "sandwich"}


@pytest.mark.parametrize("row, opts, batches", [
    p for p in cases_with_layouts(["batch3", "batch19", "bcast_rest", "bcast_2d"])
    if p.values[0].name in FUSED])
def test_fused_jvp_kernels_agree_with_the_composed_rules(row, opts, batches, monkeypatch):
    """The CPU's fused jvp kernels (interleaved, or per matrix) against the rule composed of
    batched kernels, which backends without them run."""
    from adla import _cpu
    inputs = make_inputs(row, opts, batches)
    tangents = tangents_for(row, opts, inputs)
    fused = call_jvp(row, opts, inputs, tangents)
    monkeypatch.setattr(_cpu, FUSED[row.name], lambda *args, **kwargs: None)
    composed = call_jvp(row, opts, inputs, tangents)
    for a, b in zip(as_tuple(fused[0]), as_tuple(composed[0])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(as_tuple(fused[1]), as_tuple(composed[1])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale(a))


@pytest.mark.skipif(cpu_builds() is None, reason="no AVX2 build of the kernels, or no AVX2")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch19"])))
def test_avx2_build_gives_the_baseline_jvp_bit_for_bit(row, opts, batches, dtype, monkeypatch):
    from adla import _cpu
    inputs = make_inputs(row, opts, batches, dtype)
    tangents = tangents_for(row, opts, inputs)
    results = []
    for kernels in cpu_builds():
        monkeypatch.setattr(_cpu, "K", kernels)
        outs, touts = call_jvp(row, opts, inputs, tangents)
        results.append(as_tuple(outs) + as_tuple(touts))
    for baseline, avx2 in zip(*results):
        np.testing.assert_array_equal(avx2, baseline)
