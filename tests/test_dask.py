"""Every operator of the harness on dask arrays: forward, backward and jvp lazily, chunked along
the batch, equal to the NumPy call; errors at call time and at compute time; a LocalCluster with two
worker processes."""
import pickle

import numpy as np
import pytest

import adla
from adla._adapters import flat
from harness import CASES, CASE_IDS, DIMS, call_backward, call_forward, call_jvp, make_inputs

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

# Batch shapes per operand: a chunked batch, and one operand shared by a chunked batch.
LAYOUTS = {"batch7": lambda n: [(7,)] * n, "bcast_rest": lambda n: [(7,)] + [()] * (n - 1),
           "bcast_first": lambda n: [()] + [(2, 7)] * (n - 1)}


def chunked(x, ncore=2, batch_chunk=3):
    """A dask array of ``x`` whose batch axes (all but the last ``ncore``) are chunked by
    ``batch_chunk`` and whose core axes are one chunk each."""
    x = np.asarray(x)
    return da.from_array(x, chunks=tuple(batch_chunk if ax < x.ndim - ncore else -1
                                         for ax in range(x.ndim)))


def cotangents_like(outputs, rng):
    outs = outputs if isinstance(outputs, tuple) else (outputs,)
    cts = tuple(rng.standard_normal(np.shape(o)) for o in outs)
    return cts if isinstance(outputs, tuple) else cts[0]


def noperands(row, opts):
    return len(row.operands(opts, row.dims or DIMS))


@pytest.mark.parametrize("row, opts, layout", [
    pytest.param(row, opts, layout, id=f"{cid}-{layout}")
    for (row, opts), cid in zip(CASES, CASE_IDS) for layout in LAYOUTS
    if layout == "batch7" or noperands(row, opts) > 1])
def test_operator_on_dask_matches_numpy(row, opts, layout):
    names = list(row.operands(opts, row.dims or DIMS))
    inputs = make_inputs(row, opts, LAYOUTS[layout](len(names)))
    core = row.spec.core_ndims(names)
    lazy = {k: chunked(v, core[k]) for k, v in inputs.items()}
    expected = call_forward(row, opts, inputs)
    got = call_forward(row, opts, lazy)
    got_t = got if isinstance(got, tuple) else (got,)
    exp_t = expected if isinstance(expected, tuple) else (expected,)
    assert all(isinstance(g, da.Array) for g in got_t)
    for g, e in zip(got_t, exp_t):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g.compute(), e, rtol=1e-12, atol=1e-12)

    cts = cotangents_like(expected, np.random.default_rng(1))
    grads = call_backward(row, opts, cts, inputs, expected)
    cts_t = cts if isinstance(cts, tuple) else (cts,)
    out_core = [len(o.core) for o in row.spec.outputs]
    lazy_cts = tuple(chunked(c, k) for c, k in zip(cts_t, out_core))
    lazy_grads = call_backward(row, opts, lazy_cts if isinstance(cts, tuple) else lazy_cts[0],
                               lazy, got)
    for g, e in zip(lazy_grads, grads):
        assert isinstance(g, da.Array) and g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g.compute(), e, rtol=1e-10, atol=1e-10)

    rng = np.random.default_rng(2)
    tangents = {k: rng.standard_normal(v.shape) for k, v in inputs.items()}
    first = names[0]                    # one tangent absent, as None
    tangents[first] = None if len(names) > 1 else tangents[first]
    expected = flat(call_jvp(row, opts, inputs, tangents))
    got = call_jvp(row, opts, lazy, {k: None if t is None else chunked(t, core[k])
                                     for k, t in tangents.items()})
    for g, e in zip(flat(got), expected):
        assert isinstance(g, da.Array) and g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g.compute(), e, rtol=1e-10, atol=1e-10)


def spd(batch, n=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(batch + (n, n))
    return X @ np.swapaxes(X, -1, -2) + n * np.eye(n)


def test_nothing_computed_until_asked():
    calls = []
    def record(block):
        calls.append(block.shape)
        return block
    A = da.from_array(spd((6,)), chunks=(2, 4, 4)).map_blocks(record, meta=np.empty((0, 0, 0)))
    L = adla.potrf(A)
    dA = adla.potrf_backward(da.ones_like(L), L)
    assert calls == [] and isinstance(dA, da.Array)
    dA.compute()
    assert calls


def test_split_core_axis_is_a_value_error_naming_operand_and_chunks():
    A = da.from_array(spd((6,)), chunks=(2, 2, 4))
    with pytest.raises(ValueError, match=r"adla\.potrf: operand A .*chunks \(\(2, 2, 2\), \(2, 2\), \(4,\)\)"):
        adla.potrf(A)
    B = da.ones((6, 4, 3), chunks=(2, 4, 1))
    with pytest.raises(ValueError, match=r"adla\.trsm: operand B"):
        adla.trsm(np.eye(4), B)


def test_shape_and_dtype_errors_at_call_time():
    with pytest.raises(ValueError, match=r"adla\.trsm"):
        adla.trsm(da.ones((6, 4, 4), chunks=(2, 4, 4)), da.ones((6, 3, 2), chunks=(2, 3, 2)))
    with pytest.raises(TypeError, match=r"adla\.potrf.*A"):
        adla.potrf(da.ones((6, 4, 4), chunks=(2, 4, 4), dtype=np.complex128))
    with pytest.raises(ValueError, match=r"adla\.trsm: batch axes do not broadcast"):
        adla.trsm(da.ones((6, 4, 4), chunks=(2, 4, 4)), da.ones((5, 4, 2), chunks=(2, 4, 2)))


def test_failure_names_global_batch_indices_and_nan_without_check():
    A = spd((3, 5))
    A[2, 4] = -np.eye(4)
    A[1, 3] = -np.eye(4)
    lazy = da.from_array(A, chunks=(2, 2, 4, 4))      # (2, 4) lies in the last chunk of both
    L = adla.potrf(lazy)
    with pytest.raises(adla.LinAlgError) as info:
        L.compute(scheduler="sync")
    assert info.value.indices in ([(2, 4)], [(1, 3)])
    assert f"batch index {info.value.indices[0]}" in str(info.value)
    out = adla.potrf(lazy, check=False).compute()
    bad = np.isnan(out).all(axis=(-1, -2))
    assert bad[2, 4] and bad[1, 3] and bad.sum() == 2


def test_linalgerror_pickles_whole():
    error = adla.LinAlgError("adla.potrf: the matrix at batch index (2, 4) failed", [(2, 4), (0, 1)])
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is adla.LinAlgError and str(back) == str(error)
    assert back.indices == [(2, 4), (0, 1)]


def test_numpy_operands_mix_and_gradients_sum_over_broadcast_chunks():
    rng = np.random.default_rng(3)
    L = adla.potrf(spd(()))
    B = rng.standard_normal((2, 9, 4, 3))
    lazy_B = da.from_array(B, chunks=(1, 4, 4, 3))
    X = adla.trsm(L, lazy_B)
    dX = rng.standard_normal(B.shape)
    dL, dB = adla.trsm_backward(dX, L, lazy_B, X)
    ref_dL, ref_dB = adla.trsm_backward(dX, L, B, adla.trsm(L, B))
    assert dL.shape == (4, 4) and dL.numblocks == (1, 1)
    np.testing.assert_allclose(dL.compute(), ref_dL, rtol=1e-12)
    np.testing.assert_allclose(dB.compute(), ref_dB, rtol=1e-12)


def test_tasks_run_adla_on_one_thread_each(monkeypatch):
    # A worker's k task threads keep to about k cores: each adla call in a task runs on one
    # thread (the synchronous scheduler, in the caller's thread, keeps all of adla's threads).
    from adla import _cpu
    real, seen = _cpu.K, []

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def run(self, *args):
            seen.append(args[-1])           # the thread count the kernel driver is given
            return real.run(*args)
    monkeypatch.setattr(_cpu, "K", Spy())
    L = adla.potrf(da.from_array(spd((8,)), chunks=(4, 4, 4)))
    seen.clear()                            # the call-time check ran on an empty batch
    L.compute(scheduler="threads")
    assert seen == [1, 1]
    seen.clear()
    L.compute(scheduler="sync")
    assert seen == [real.max_threads()] * 2


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_local_cluster_two_processes(cluster_client):
    A = da.random.default_rng(0).standard_normal((40, 6, 6), chunks=(10, 6, 6))
    K = A @ A.transpose(0, 2, 1) + 6 * np.eye(6)
    L = adla.potrf(K)
    dK = adla.potrf_backward(da.ones_like(L), L)
    got_L, got_dK, K_np = cluster_client.compute([L, dK, K], sync=True)
    np.testing.assert_allclose(got_L, adla.potrf(K_np), rtol=1e-13)
    np.testing.assert_allclose(got_dK, adla.potrf_backward(np.ones_like(K_np), adla.potrf(K_np)),
                               rtol=1e-12)
    threads = cluster_client.run(lambda: __import__("adla._dask")._dask._threads_per_task())
    assert set(threads.values()) == {1}             # in a worker: one thread per task thread


def test_local_cluster_failure_arrives_with_global_indices(cluster_client):
    A = spd((12,))
    A[10] = -np.eye(4)
    L = adla.potrf(da.from_array(A, chunks=(4, 4, 4)))
    with pytest.raises(adla.LinAlgError) as info:
        cluster_client.compute(L, sync=True)
    assert info.value.indices == [(10,)]
    assert "batch index (10,)" in str(info.value)
