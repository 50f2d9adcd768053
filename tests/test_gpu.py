"""The operator table on CuPy arrays: for every operator, option and both dtypes, the GPU forward,
backward and jvp agree with the CPU; errors behave as on the CPU. Skipped without CuPy or a GPU."""
import numpy as np
import pytest

cp = pytest.importorskip("cupy")
try:
    if cp.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("no device")
except Exception:                                            # no driver, no device
    pytest.skip("no CUDA device", allow_module_level=True)

import adla  # noqa: E402
from adla import _cpu  # noqa: E402
from harness import (CASE_IDS, CASES, DIMS, batch_layouts, call_backward,  # noqa: E402
                     call_forward, call_jvp, make_inputs)

TOL = {np.float64: 1e-9, np.float32: 2e-3}


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def to_gpu(x):
    return tuple(cp.asarray(v) for v in x) if isinstance(x, tuple) else cp.asarray(x)


def assert_matches(gpu, cpu, dtype):
    assert isinstance(gpu, cp.ndarray)
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape and gpu.flags.c_contiguous
    scale = max(1.0, float(np.max(np.abs(cpu), initial=0.0)))
    np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=TOL[dtype], atol=TOL[dtype] * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["single", "batch3", "bcast_first"])
@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_gpu_forward_backward_and_jvp_match_cpu(row, opts, layout, dtype):
    layouts = batch_layouts(len(row.operands(opts, DIMS)))
    if layout not in layouts:
        pytest.skip("one operand")
    inputs = make_inputs(row, opts, layouts[layout], dtype)
    gpu_inputs = {k: cp.asarray(v) for k, v in inputs.items()}
    out = call_forward(row, opts, inputs)
    gpu_out = call_forward(row, opts, gpu_inputs)
    for g, c in zip(as_tuple(gpu_out), as_tuple(out)):
        assert_matches(g, c, dtype)
    rng = np.random.default_rng(1)
    ct = tuple(rng.standard_normal(np.shape(o)).astype(dtype) for o in as_tuple(out))
    ct = ct if isinstance(out, tuple) else ct[0]
    grads = call_backward(row, opts, ct, inputs, out)
    gpu_grads = call_backward(row, opts, to_gpu(ct), gpu_inputs, to_gpu(out))
    for g, c in zip(gpu_grads, grads):
        assert_matches(g, c, dtype)
    tangents = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in inputs.items()}
    outs, touts = call_jvp(row, opts, inputs, tangents)
    gpu_outs, gpu_touts = call_jvp(row, opts, gpu_inputs, {k: cp.asarray(t)
                                                           for k, t in tangents.items()})
    for g, c in zip(as_tuple(gpu_outs) + as_tuple(gpu_touts), as_tuple(outs) + as_tuple(touts)):
        assert_matches(g, c, dtype)
    for k in inputs:                                           # inputs unchanged
        np.testing.assert_array_equal(cp.asnumpy(gpu_inputs[k]), inputs[k])


@pytest.mark.parametrize("n", [5, 40])                       # the RawKernel and cuSOLVER paths
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_potrf_failures(n, dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, n, n))
    A = (X @ np.swapaxes(X, -1, -2) / n + np.eye(n)).astype(dtype)
    A[1, 2, 2] = -50.0
    A[4] = -np.eye(n)
    A[5, n - 1, 0] = np.nan
    with pytest.raises(adla.LinAlgError) as info:
        adla.potrf(cp.asarray(A))
    assert info.value.indices == [(1,), (4,), (5,)]
    assert "(1,)" in str(info.value) and "order 3" in str(info.value)
    L = cp.asnumpy(adla.potrf(cp.asarray(A), check=False))
    assert np.all(np.isnan(L[[1, 4, 5]]))
    np.testing.assert_allclose(L[[0, 2, 3]], adla.potrf(A[[0, 2, 3]]), rtol=TOL[dtype],
                               atol=TOL[dtype])


def test_gpu_trsm_zero_diagonal_and_mixing():
    A = np.tril(np.ones((3, 4, 4))) + np.eye(4)
    A[2, 1, 1] = 0.0
    B = np.ones((3, 4, 2))
    with pytest.raises(adla.LinAlgError) as info:
        adla.trsm(cp.asarray(A), cp.asarray(B))
    assert info.value.indices == [(2,)]
    X = cp.asnumpy(adla.trsm(cp.asarray(A), cp.asarray(B), check=False))
    assert np.all(np.isnan(X[2])) and np.all(np.isfinite(X[:2]))
    with pytest.raises(TypeError, match="cannot mix CuPy"):
        adla.trsm(cp.asarray(A), B)


def test_gpu_results_stay_on_the_device_of_the_inputs():
    A = cp.asarray(np.eye(3) * 4.0)
    L = adla.potrf(A)
    assert isinstance(L, cp.ndarray) and L.device == A.device
    assert isinstance(adla.potrf_backward(L, L), cp.ndarray)


@pytest.fixture
def gpu_backend():
    from adla._gpu import backend
    return backend


def factors_match_cpu(gpu_backend, A, lower):
    """The GPU backend's Cholesky factors and status of ``A`` against the CPU's; returns the CPU
    factors of the matrices that did not fail."""
    L, status = gpu_backend.potrf(cp.asarray(A), lower=lower)
    cL, cstatus = _cpu.potrf(A, lower=lower)
    np.testing.assert_array_equal(cp.asnumpy(status), cstatus)
    good = cstatus == 0
    assert_matches(cp.asarray(cp.asnumpy(L)[good]), cL[good], A.dtype.type)
    return cL[good]


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 32])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_small_cholesky_kernels(gpu_backend, lower, n, dtype):
    """The small Cholesky kernels against the CPU at every lane-group width, a batch that leaves
    the last warp part-filled, failures at the first and the last pivot, and NaN."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((37, n, n))
    A = X @ np.swapaxes(X, -1, -2) / n + np.eye(n)
    A += np.triu(np.full((n, n), 9.0), 1) if lower else np.tril(np.full((n, n), 9.0), -1)
    A[3, 0, 0] = -1.0
    A[7, n - 1, n - 1] = -1e3
    A[11, n - 1, 0 if lower else n - 1] = np.nan
    cL = factors_match_cpu(gpu_backend, A.astype(dtype), lower)
    # The backward: a batch of factors, one factor for a batch of cotangents, a zero pivot.
    cL[2, n - 1, n - 1] = 0.0
    dL = rng.standard_normal(cL.shape).astype(dtype)
    for factors, cotangents in [(cL, dL), (cL[:1], dL)]:
        dA, status = gpu_backend.potrf_backward(cp.asarray(cotangents), cp.asarray(factors),
                                                lower=lower)
        cdA, cstatus = _cpu.potrf_backward(cotangents, factors, lower=lower)
        np.testing.assert_array_equal(cp.asnumpy(status), cstatus)
        good = cstatus == 0
        assert_matches(cp.asarray(cp.asnumpy(dA)[good]), cdA[good], dtype)


@pytest.mark.parametrize("n", [5, 40])                      # the tiles kernels; cuSOLVER/cuBLAS
@pytest.mark.parametrize("nbatch", [2, 12])                  # one call per matrix; batched
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_cholesky_and_solves(gpu_backend, n, nbatch, lower, dtype):
    """Cholesky factors, potrs, potri, the Cholesky backward and trsm with every flag (the
    solves in the trsm_tiles kernel up to order 32, cuBLAS trsm, per matrix and batched, above)
    against the CPU."""
    rng = np.random.default_rng(nbatch)
    X = rng.standard_normal((nbatch, n, n))
    A = (X @ np.swapaxes(X, -1, -2) / n + np.eye(n)).astype(dtype)
    A[1, n - 1, n - 1] = -1.0
    cL = factors_match_cpu(gpu_backend, A, lower)
    B = rng.standard_normal((len(cL), n, 37 if n <= 32 else 3)).astype(dtype)   # 37 > 32 lanes
    dL = rng.standard_normal(cL.shape).astype(dtype)
    for name, args in [("potrs", (cL, B)), ("potri", (cL,)), ("potrf_backward", (dL, cL))]:
        gpu = getattr(gpu_backend, name)(*map(cp.asarray, args), lower=lower)
        cpu = getattr(_cpu, name)(*args, lower=lower)
        for g, c in zip(gpu, cpu):
            assert_matches(g, c, dtype)
    for transpose in (False, True):
        for rightside in (False, True):
            rhs = np.ascontiguousarray(np.swapaxes(B, 1, 2)) if rightside else B
            flags = dict(transpose=transpose, rightside=rightside, lower=lower, alpha=0.5)
            for g, c in zip(gpu_backend.trsm(cp.asarray(cL), cp.asarray(rhs), **flags),
                            _cpu.trsm(cL, rhs, **flags)):
                assert_matches(g, c, dtype)


@pytest.mark.parametrize("shape", [(5, 33), (40, 40), (20, 100), (64, 64), (65, 65)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_lq_and_qr_above_the_tiles(gpu_backend, shape, dtype):
    """gelqf/geqrf where lq_block (short side up to 64) or cuSOLVER (beyond) factor, against the
    CPU: a batch with a rank-deficient and a non-finite matrix; then the gradients through the
    front end at the same size."""
    rng = np.random.default_rng(shape[1])
    for qr, name in [(False, "gelqf"), (True, "geqrf")]:
        dims = shape[::-1] if qr else shape
        a = (rng.standard_normal((5,) + dims) + 3 * np.eye(*dims)).astype(dtype)
        if qr:
            a[1, :, 0] = 0.0                                   # rank deficient
        else:
            a[1, 0] = 0.0
        a[3, -1, -1] = np.nan
        Q, T, status = getattr(gpu_backend, name)(cp.asarray(a))
        cQ, cT, cstatus = getattr(_cpu, name)(a)
        np.testing.assert_array_equal(cp.asnumpy(status), cstatus)
        Q, T = cp.asnumpy(Q), cp.asnumpy(T)
        for i in (0, 2, 4):
            assert_matches(cp.asarray(Q[i]), cQ[i], dtype)
            assert_matches(cp.asarray(T[i]), cT[i], dtype)
        product = Q[1] @ T[1] if qr else T[1] @ Q[1]
        gram = Q[1].T @ Q[1] if qr else Q[1] @ Q[1].T
        np.testing.assert_allclose(product, a[1], atol=50 * TOL[dtype])
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=50 * TOL[dtype])
        good = a[[0, 2, 4]]
        outs = getattr(adla, name)(good)
        gpu_outs = getattr(adla, name)(cp.asarray(good))
        cts = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
        grad = getattr(adla, name + "_backward")(*cts, *outs)
        gpu_grad = getattr(adla, name + "_backward")(*map(cp.asarray, cts), *gpu_outs)
        assert_matches(gpu_grad, grad, dtype)
