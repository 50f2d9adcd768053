"""Every operator x option x dtype x batch layout: forward against NumPy, backward against
central finite differences, float32 against float64, memory layouts, empty batches."""
import numpy as np
import pytest

import adla

from harness import (CASE_IDS, CASES, DIMS, batch_layouts, call_backward, call_forward, call_jvp,
                     make_inputs, reference)

TOL = {np.float64: 1e-10, np.float32: 2e-4}


def cases_with_layouts(names=None):
    for (row, opts), case_id in zip(CASES, CASE_IDS):
        layouts = batch_layouts(len(row.operands(opts, DIMS)))
        for layout, batches in layouts.items():
            if names is None or layout in names:
                yield pytest.param(row, opts, batches, id=f"{case_id}-{layout}")


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def cotangents_for(outputs, seed=1):
    rng = np.random.default_rng(seed)
    cts = tuple(rng.standard_normal(np.shape(o)).astype(o.dtype) for o in as_tuple(outputs))
    return cts if isinstance(outputs, tuple) else cts[0]


def assert_fresh_c_array(result, inputs, dtype):
    for r in as_tuple(result):
        assert isinstance(r, np.ndarray)
        assert r.dtype == dtype
        assert r.flags.c_contiguous
        for x in inputs:
            assert not np.shares_memory(r, x)


def assert_close(actual, expected, dtype, scale=None):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = scale if scale is not None else max(1.0, np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts()))
def test_forward(row, opts, batches, dtype):
    inputs = make_inputs(row, opts, batches, dtype)
    originals = {k: v.copy() for k, v in inputs.items()}
    for v in inputs.values():
        v.flags.writeable = False
    out = call_forward(row, opts, inputs)
    assert_fresh_c_array(out, inputs.values(), dtype)
    for o, r in zip(as_tuple(out), as_tuple(reference(row, opts, inputs))):
        assert_close(o, r, dtype)
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], originals[k])


def directions(rng, x, kind):
    """A random perturbation of ``x`` with the structure the operator's input has."""
    E = rng.standard_normal(x.shape)
    if kind == "sym":
        return E + np.swapaxes(E, -1, -2)
    if kind in ("lower", "upper"):
        return np.tril(E) if kind == "lower" else np.triu(E)
    return E


def assert_gradient_structure(g, kind):
    if kind == "sym":
        np.testing.assert_allclose(g, np.swapaxes(g, -1, -2), rtol=1e-12, atol=1e-12)
    elif kind == "lower":
        assert np.all(np.triu(g, 1) == 0)
    elif kind == "upper":
        assert np.all(np.tril(g, -1) == 0)


@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts()))
def test_backward_finite_differences(row, opts, batches):
    inputs = make_inputs(row, opts, batches)
    spec = row.operands(opts, DIMS)
    out = call_forward(row, opts, inputs)
    ct = cotangents_for(out)
    if row.cotangents is not None:      # outputs whose cotangent the backward does not take
        ct = tuple(c if i in row.cotangents else np.zeros_like(c) for i, c in enumerate(ct))
    everything = list(inputs.values()) + list(as_tuple(ct)) + list(as_tuple(out))
    saved = [x.copy() for x in everything]
    grads = call_backward(row, opts, ct, inputs, out)
    for x, before in zip(everything, saved):
        np.testing.assert_array_equal(x, before)
    differentiable = row.differentiable or tuple(inputs)
    assert len(grads) == len(differentiable)
    assert_fresh_c_array(grads, everything, np.float64)

    def loss(perturbed):
        return sum(np.sum(c * o) for c, o in zip(as_tuple(ct), as_tuple(
            call_forward(row, opts, perturbed))))

    rng, h = np.random.default_rng(2), 1e-6
    for name, g in zip(differentiable, grads):
        kind = row.structure(name, opts)
        assert g.shape == inputs[name].shape
        assert_gradient_structure(g, kind)
        for _ in range(2):
            E = directions(rng, inputs[name], kind)
            plus, minus = dict(inputs), dict(inputs)
            plus[name], minus[name] = inputs[name] + h * E, inputs[name] - h * E
            fd = (loss(plus) - loss(minus)) / (2 * h)
            analytic = np.sum(g * E)
            assert abs(fd - analytic) <= 1e-6 * (np.linalg.norm(g) * np.linalg.norm(E) + 1.0), \
                f"d/d{name}: finite difference {fd}, backward {analytic}"


# operators whose CPU backward is one fused kernel -> the backend function that returns None
# where the backend has none (the GPU's, or the CPU's at some sizes)
FUSED_BACKWARD = {"gelqf": "orthogonal_backward", "geqrf": "orthogonal_backward",
                  "potrs": "potrs_backward", "potri": "potri_backward",
                  "trmm": "trmm_backward", "inverse": "sandwich"}


@pytest.mark.parametrize("row, opts, batches", [
    p for p in cases_with_layouts(["batch3", "batch19", "bcast_first", "bcast_rest"])
    if p.values[0].name in FUSED_BACKWARD])
def test_fused_backward_kernels_agree_with_the_composed_rules(row, opts, batches, monkeypatch):
    """The CPU's fused backward kernels against the rule composed of batched kernels, which
    backends without them run."""
    from adla import _cpu
    inputs = make_inputs(row, opts, batches)
    out = call_forward(row, opts, inputs)
    ct = cotangents_for(out)
    fused = call_backward(row, opts, ct, inputs, out)
    monkeypatch.setattr(_cpu, FUSED_BACKWARD[row.name], lambda *args, **kwargs: None)
    composed = call_backward(row, opts, ct, inputs, out)
    for a, b in zip(as_tuple(fused), as_tuple(composed)):
        np.testing.assert_allclose(a, b, rtol=1e-10,
                                   atol=1e-10 * max(1.0, float(np.max(np.abs(b), initial=0))))


# Kernel routes chosen by a bound that is fixed for the CPU at import, and the operators that take
# them: (the kernels' setter, the bounds to run with, the operators). The direct product loops run
# up to 8 on AVX-512 CPUs and 32 elsewhere, BLAS above (0: BLAS only); LU factorizations split in
# halves above order 128, inverses from them above 32, with getrf and getri leaves (16: split down
# from order 17, uneven halves included; a large bound: one LAPACK call), as potri per matrix in a
# batch; potrf's gradient per matrix split in halves above order 32 (16: from 17; a large bound: the
# leaf's formula whole); syevd's gradient and tangent in direct loops up to 24 on AVX-512 CPUs, 32
# elsewhere; batches of products (and the products in trsm's, potri's, potrs's and inverse's
# gradients; trsm's solves, from scratch) from order 48 through _fma_product.h on AVX-512 CPUs when
# larger than the caches (0: any batch), potrs's gradient by such products up to order 128 there, 64
# elsewhere, ?syr2k and ?trmm above (0: above 64 on any CPU); gelqf/geqrf per matrix in blocked
# Householder code for short sides of 32 to 512 on AVX-512 CPUs (0: LAPACK throughout), and where
# LAPACK runs them, through geqrt and larfb from short side 128 (1: at every size; a large bound:
# geqrf + orgqr throughout); the triangular solves' leaves of up to order 16 on AVX-512 CPUs (0:
# solve_rows' own loops).
ROUTE_BOUNDS = [("set_direct_product_max", bound,
                 ("gemm", "gemm2", "syrk", "trmm", "trsm", "gesvd", "gesv", "inverse", "potrs"))
                for bound in (0, 8, 32)] + [
    ("set_stream_bytes", 0,
     ("gemm", "gemm2", "syrk", "trmm", "trsm", "potri", "inverse", "potrs"))] + [
    ("set_fma_product_max", 0, ("potrs",))] + [
    (setter, bound, ("gesv", "inverse", "det", "slogdet", "potri"))
    for setter in ("set_getrf_leaf", "set_getri_leaf") for bound in (16, 10**6)] + [
    ("set_cholesky_gradient_leaf", bound, ("potrf",)) for bound in (16, 10**6)] + [
    ("set_eigen_direct_max", bound, ("syevd",)) for bound in (0, 32)] + [
    ("set_householder_max", bound, ("gelqf", "geqrf")) for bound in (0, 10**6)] + [
    ("set_compact_householder_min", bound, ("gelqf", "geqrf")) for bound in (1, 10**6)] + [
    ("set_fma_solve_max", 0, ("trsm", "potrs", "potrf", "gesv", "gelqf", "geqrf"))]
# Bounds that only a batch filling the lanes reaches: potri interleaved up to order 160 (0: per
# matrix from 17); inverse, det, slogdet (and gesv with up to 16 right-hand sides) interleaved
# at orders 65 to 128 from a batch of 8 per thread (0: from 8 on any machine, a large bound: per
# matrix); the interleaved Cholesky and LU kernels' row loops in FMA on AVX-512 CPUs (False:
# the plain loops every CPU has).
LANE_ROUTE_BOUNDS = [("set_potri_lanes_max", 0, ("potri",))] + [
    ("set_lu_lanes_wide_batch", bound, ("inverse", "det", "slogdet", "gesv"))
    for bound in (0, 10**9)] + [
    ("set_fma_lanes", False, ("potrf", "gesv", "inverse", "det", "slogdet")),
    ("set_avx512_lanes", False, ("syevd", "gesvd"))]


# The interleaved kernels fetch the next block's inputs ahead (a hint for the caches) only for
# batches of many blocks, in a window of block sizes that the harness's small matrices are
# below: here in a batch of 600 with the window open to every size, and closed.
PREFETCHING = ("potrf", "trsm", "potrs", "potri", "inverse", "det", "slogdet", "gesv")


def first_case_of_each(names, layout, by_size=False, largest=None):
    """The first case of each operator in ``names`` (None: all) in ``layout``; with
    ``by_size``, of each sized row instead, up to core dimensions of ``largest``."""
    seen = set()
    for p in cases_with_layouts([layout]):
        row = p.values[0]
        key = row.name + row.label if by_size else row.name
        if ((names is None or row.name in names) and key not in seen
                and (largest is None or max((row.dims or DIMS).values()) <= largest)):
            seen.add(key)
            yield p


@pytest.mark.parametrize("row, opts, batches", list(first_case_of_each(PREFETCHING, "batch19")))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prefetching_the_next_block_changes_no_result(row, opts, batches, dtype):
    from adla import _cpu
    inputs = make_inputs(row, opts, [(600,)] * len(batches), dtype)
    results = []
    for bounds in ((0, 0), (0, 1 << 40)):
        previous = _cpu.K.set_prefetch_lanes_bytes(bounds)
        try:
            out = call_forward(row, opts, inputs)
            results.append(as_tuple(out) + call_backward(row, opts, cotangents_for(out),
                                                        inputs, out))
        finally:
            _cpu.K.set_prefetch_lanes_bytes(previous)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# The interleaved kernels write a batch whose operands are past the caches (set_stream_lanes_bytes)
# with non-temporal stores, whole lines where a row starts on a vector's boundary: here every
# sized row of the lane kernels' operators once, in a batch of 600 (outputs of a megabyte and
# more start on a cache line), streamed and not.
@pytest.mark.parametrize("row, opts, batches",
                         list(first_case_of_each(None, "batch19", by_size=True, largest=64)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_streamed_outputs_are_the_same_bits(row, opts, batches, dtype):
    from adla import _cpu
    inputs = make_inputs(row, opts, [(600,)] * len(batches), dtype)
    tangents = {name: x[::-1].copy() for name, x in inputs.items()}
    results = []
    for nbytes in (1 << 62, 0):
        previous = _cpu.K.set_stream_lanes_bytes(nbytes)
        try:
            out = call_forward(row, opts, inputs)
            grads = call_backward(row, opts, cotangents_for(out), inputs, out)
            outs, touts = call_jvp(row, opts, inputs, tangents)
            results.append(as_tuple(out) + grads + as_tuple(outs) + as_tuple(touts))
        finally:
            _cpu.K.set_stream_lanes_bytes(previous)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("setter, bound, row, opts, batches", [
    pytest.param(setter, bound, *p.values, id=f"{setter}={bound}-{p.id}")
    for bounds, layout in ((ROUTE_BOUNDS, "batch3"), (LANE_ROUTE_BOUNDS, "batch19"))
    for setter, bound, names in bounds
    for p in cases_with_layouts([layout]) if p.values[0].name in names])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_routes_agree(setter, bound, row, opts, batches, dtype):
    """Every CPU takes one side of these bounds at each size; this runs each case on the other
    sides too, so that every route is checked at every size on any machine."""
    from adla import _cpu
    inputs = make_inputs(row, opts, batches, dtype)
    expected = call_forward(row, opts, inputs)
    ct = cotangents_for(expected)
    expected = as_tuple(expected) + call_backward(row, opts, ct, inputs, expected)
    previous = getattr(_cpu.K, setter)(bound)
    try:
        out = call_forward(row, opts, inputs)
        actual = as_tuple(out) + call_backward(row, opts, ct, inputs, out)
    finally:
        getattr(_cpu.K, setter)(previous)
    for a, e in zip(actual, expected):
        assert_close(a, e, dtype)


@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch3", "bcast_first"])))
def test_backward_float32_matches_float64(row, opts, batches):
    results = {}
    for dtype in (np.float64, np.float32):
        inputs = make_inputs(row, opts, batches, dtype)
        out = call_forward(row, opts, inputs)
        ct = cotangents_for(out)
        results[dtype] = call_backward(row, opts, ct, inputs, out)
    for g32, g64 in zip(results[np.float32], results[np.float64]):
        assert g32.dtype == np.float32
        scale = np.linalg.norm(g64)
        assert np.linalg.norm(g32 - g64) <= 1e-4 * max(scale, 1.0)


def relayout(x, layout):
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "strided":
        big = np.zeros(x.shape[:-2] + (2 * x.shape[-2] + 1, 3 * x.shape[-1]), x.dtype)
        view = big[..., 1::2, ::3]
        view[...] = x
        return view
    if layout == "negative":
        reverse = (slice(None, None, -1),) * x.ndim
        return np.ascontiguousarray(x[reverse])[reverse]
    if layout == "byteswapped":                 # the other byte order (read from a file, say)
        return x.astype(x.dtype.newbyteorder())
    if layout == "unaligned":                   # a view of a byte buffer at an odd offset
        buffer = np.zeros(x.nbytes + 1, np.uint8)
        view = np.frombuffer(buffer.data, x.dtype, count=x.size, offset=1).reshape(x.shape)
        view[...] = x
        return view
    raise ValueError(layout)


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "byteswapped",
                                    "unaligned"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch3"])))
def test_memory_layouts_give_identical_results(row, opts, batches, dtype, layout):
    inputs = make_inputs(row, opts, batches, dtype)
    out = call_forward(row, opts, inputs)
    ct = cotangents_for(out)
    grads = call_backward(row, opts, ct, inputs, out)
    moved = {k: relayout(v, layout) for k, v in inputs.items()}
    assert all(not (v.flags.c_contiguous and v.flags.aligned and v.dtype.isnative)
               for v in moved.values())
    out2 = call_forward(row, opts, moved)
    moved_ct = tuple(relayout(c, layout) if np.ndim(c) >= 2 else c for c in as_tuple(ct))
    moved_out = tuple(relayout(o, layout) if np.ndim(o) >= 2 else o for o in as_tuple(out))
    single = not isinstance(out, tuple)
    grads2 = call_backward(row, opts, moved_ct[0] if single else moved_ct, moved,
                           moved_out[0] if single else moved_out)
    for a, b in zip(as_tuple(out2) + grads2, as_tuple(out) + grads):
        np.testing.assert_array_equal(a, b)


def cpu_builds():
    """The baseline and AVX2 builds of the CPU kernels, where both run here."""
    from adla import _lapack
    try:
        from adla import _lapack_avx2
    except ImportError:
        return None
    return (_lapack, _lapack_avx2) if _lapack.cpu_has_avx2() else None


@pytest.mark.skipif(cpu_builds() is None, reason="no AVX2 build of the kernels, or no AVX2")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("row, opts, batches", list(cases_with_layouts(["batch19"])))
def test_avx2_build_gives_the_baseline_results_bit_for_bit(row, opts, batches, dtype,
                                                          monkeypatch):
    """The AVX2 build is picked at import where the CPU has it, so the rest of this suite runs
    it; this runs every case on the baseline build too (as on a CPU without AVX2) and wants the
    same bits: the builds differ in vector width only, with no contraction into FMA."""
    from adla import _cpu
    inputs = make_inputs(row, opts, batches, dtype)
    results = []
    for kernels in cpu_builds():
        monkeypatch.setattr(_cpu, "K", kernels)
        out = call_forward(row, opts, inputs)
        results.append(as_tuple(out) + call_backward(row, opts, cotangents_for(out), inputs, out))
    for baseline, avx2 in zip(*results):
        np.testing.assert_array_equal(avx2, baseline)


EMPTY_LAYOUTS = {"empty": lambda k: [(0,)] * k, "empty2d": lambda k: [(2, 0)] * k,
                 "empty_bcast": lambda k: [(0,)] + [()] * (k - 1)}


@pytest.mark.parametrize("empty", list(EMPTY_LAYOUTS))
@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_empty_batches(row, opts, empty):
    batches = EMPTY_LAYOUTS[empty](len(row.operands(opts, DIMS)))
    inputs = make_inputs(row, opts, batches)
    out = call_forward(row, opts, inputs)
    reference_single = call_forward(row, opts, make_inputs(row, opts, [()] * len(batches)))
    for o, r in zip(as_tuple(out), as_tuple(reference_single)):
        assert o.shape == batches[0] + np.shape(r)
        assert o.flags.c_contiguous
    grads = call_backward(row, opts, cotangents_for(out), inputs, out)
    for name, g in zip(row.differentiable or tuple(inputs), grads):
        assert g.shape == inputs[name].shape
        assert np.all(g == 0)


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_zero_sized_matrices(row, opts):
    dims = dict(n=0, m=0, k=0)
    inputs = make_inputs(row, opts, [(2,)] * len(row.operands(opts, dims)), dims=dims)
    out = call_forward(row, opts, inputs)
    for o in as_tuple(out):
        assert o.shape[:1] == (2,)
        assert np.all(np.isfinite(o))
    grads = call_backward(row, opts, cotangents_for(out), inputs, out)
    for name, g in zip(row.differentiable or tuple(inputs), grads):
        assert g.shape == inputs[name].shape


@pytest.mark.parametrize("transpose_a", [False, True])
def test_gemm_with_empty_inner_dimension_is_beta_c(transpose_a):
    A = np.ones((2, 0, 3) if transpose_a else (2, 3, 0))
    B, C = np.ones((0, 4)), np.arange(12.0).reshape(3, 4)
    D = adla.gemm(A, B, C, transpose_a=transpose_a, beta=0.5)
    np.testing.assert_array_equal(D, np.broadcast_to(0.5 * C, (2, 3, 4)))
    assert np.all(adla.gemm2(A, B, transpose_a=transpose_a) == 0)
    dA, dB, dC = adla.gemm_backward(np.ones_like(D), A, B, C, transpose_a=transpose_a, beta=0.5)
    assert dA.shape == A.shape and dB.shape == B.shape
    np.testing.assert_array_equal(dC, np.full((3, 4), 1.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False),
                                                      (False, True), (True, True)])
@pytest.mark.parametrize("n", [129, 300, 1000])
def test_gemm_triangle_above_its_leaf(n, transpose_a, transpose_b, lower, dtype):
    """The backend's triangle of a product (the gradients' one-sided products) runs in panels
    of columns above order 128 (two at 129, uneven ones at 300): every panel, offset operand
    and the accumulated C checked against the whole product's triangle."""
    from adla import _cpu
    rng = np.random.default_rng(n)
    k = 70
    A = rng.standard_normal((2, k, n) if transpose_a else (2, n, k)).astype(dtype)
    B = rng.standard_normal((2, n, k) if transpose_b else (2, k, n)).astype(dtype)
    C = rng.standard_normal((2, n, n)).astype(dtype)
    D = _cpu.gemm(A, B, C, transpose_a=transpose_a, transpose_b=transpose_b, alpha=-0.5,
                  beta=2.0, triangle="lower" if lower else "upper")
    opA = np.swapaxes(A, -1, -2) if transpose_a else A
    opB = np.swapaxes(B, -1, -2) if transpose_b else B
    full = -0.5 * (opA.astype(np.float64) @ opB) + 2.0 * C
    want = np.tril(full) if lower else np.triu(full)
    np.testing.assert_allclose(D, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    assert not (np.triu(D, 1) if lower else np.tril(D, -1)).any()


@pytest.mark.parametrize("lower", [True, False])
def test_cholesky_rules_split_in_halves_at_large_orders(lower):
    """potrf's gradient and tangent per matrix take the product of triangles and the
    congruence T^-1 S T^-T by halves above order 128 and 64 (the harness reaches one split):
    at 300, two levels of splits, uneven halves, against the rules written in NumPy."""
    n = 300
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, n))
    A = X @ X.T / n + np.eye(n)
    L = np.linalg.cholesky(A)
    F = L if lower else L.T
    dF = rng.standard_normal((n, n))
    P = np.tril(L.T @ np.tril(dF if lower else dF.T))
    P[np.diag_indices(n)] /= 2
    Linv = np.linalg.inv(L)
    want = Linv.T @ (P + P.T) / 2 @ Linv
    dA = adla.potrf_backward(dF, F, lower=lower)
    np.testing.assert_allclose(dA, (want + want.T) / 2, rtol=1e-10, atol=1e-10 * np.abs(want).max())
    E = rng.standard_normal((n, n))
    S = np.tril(E) + np.tril(E, -1).T if lower else np.triu(E) + np.triu(E, 1).T
    Z = Linv @ S @ Linv.T
    Phi = np.tril(Z)
    Phi[np.diag_indices(n)] /= 2
    dL = L @ Phi
    F2, dF2 = adla.potrf_jvp(A, E, lower=lower)
    np.testing.assert_allclose(F2, F, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dF2, dL if lower else dL.T, rtol=1e-9, atol=1e-10 * np.abs(dL).max())


def test_symmetric_eigen_rules_at_large_orders():
    """syevd's gradient and tangent per matrix compute their symmetric product in one triangle
    above order 128 and mirror it: at 300 (the harness stops at 65), against the rules written
    in NumPy."""
    n = 300
    rng = np.random.default_rng(8)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A = Q @ np.diag(np.arange(1.0, n + 1)) @ Q.T
    U, lam = adla.syevd(A)
    dU, dlam = rng.standard_normal((n, n)), rng.standard_normal(n)
    gap = lam[None, :] - lam[:, None]
    np.fill_diagonal(gap, 1.0)
    S = U @ dU.T / gap
    np.fill_diagonal(S, dlam)
    want = U.T @ ((S + S.T) / 2) @ U
    np.testing.assert_allclose(adla.syevd_backward(dU, dlam, U, lam), want, rtol=1e-9,
                               atol=1e-10 * np.abs(want).max())
    E = rng.standard_normal((n, n))
    E = np.tril(E) + np.tril(E, -1).T
    M = U @ E @ U.T
    G = M / -gap
    np.fill_diagonal(G, 0.0)
    (U2, lam2), (dU2, dlam2) = adla.syevd_jvp(A, E)
    np.testing.assert_allclose(dlam2, np.diag(M), rtol=1e-9, atol=1e-10 * np.abs(M).max())
    np.testing.assert_allclose(dU2, G @ U, rtol=1e-9, atol=1e-10 * np.abs(G @ U).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("n, k", [(5, 3), (16, 16), (30, 9), (33, 7), (9, 40)])
def test_syrk_is_exactly_symmetric(n, k, transpose, dtype):
    """Direct loops (order and inner size up to 32) compute both triangles, each entry and its
    mirror from the same products in the same order; ?syrk computes one, mirrored."""
    A = np.random.default_rng(n).standard_normal((7, k, n) if transpose else (7, n, k))
    C = adla.syrk(A.astype(dtype), transpose=transpose, alpha=0.3)
    np.testing.assert_array_equal(C, np.swapaxes(C, -1, -2))
    want = 0.3 * (np.swapaxes(A, -1, -2) @ A if transpose else A @ np.swapaxes(A, -1, -2))
    np.testing.assert_allclose(C, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
