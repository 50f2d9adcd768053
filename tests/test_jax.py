"""adla.jax: every operator of the harness under jax.grad (check_grads, float64 under x64), jit
and vmap; NaN for failing matrices; bad input."""
import numpy as np
import pytest

import adla
import harness
from harness import CASES, CASE_IDS, DIMS, call_forward, make_inputs

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402
import adla.jax as aj  # noqa: E402


def structured(row, opts, name, t):
    return harness.structured(row, opts, name, t, jnp.tril, jnp.triu,
                              lambda a: jnp.swapaxes(a, -1, -2),
                              lambda a: jnp.eye(a.shape[-1]) * a)


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_check_grads_and_values(row, opts):
    opts = {k: v for k, v in opts.items() if k != "check"}
    inputs = make_inputs(row, opts, [(2,)] * len(row.operands(opts, row.dims or DIMS)))
    diff = [n for n in inputs if n in row.differentiable]

    def f(*free):
        operands = dict(inputs)
        for n, t in zip(diff, free):
            operands[n] = structured(row, opts, n, t)
        out = getattr(aj, row.name)(*operands.values(), **opts)
        if row.cotangents is None:
            return out
        return tuple(out[i] for i in row.cotangents)

    check_grads(f, [jnp.asarray(inputs[n]) for n in diff], order=1, modes=["rev"],
                atol=1e-5, rtol=1e-5)

    out = jax.jit(lambda *xs: getattr(aj, row.name)(*xs, **opts))(*inputs.values())
    expected = call_forward(row, opts, inputs)
    for o, e in zip(out if isinstance(out, tuple) else (out,),
                    expected if isinstance(expected, tuple) else (expected,)):
        assert o.dtype == jnp.float64
        # The callback runs on one of JAX's threads, where OpenBLAS may split a LAPACK call
        # (potrf at n = 128) over a different number of threads: equal to rounding, not bits.
        np.testing.assert_allclose(np.asarray(o), e, rtol=1e-13, atol=1e-15)


def spd(batch=(3,), n=4, seed=0):
    X = np.random.default_rng(seed).standard_normal(batch + (n, n))
    return X @ np.swapaxes(X, -1, -2) + n * np.eye(n)


def test_vmap_with_shared_and_mapped_operands_and_grad():
    Ls = adla.potrf(spd((5,)))
    B = np.random.default_rng(1).standard_normal((3, 4, 2))
    loss = lambda B, L: jnp.sum(aj.trsm(L, B) ** 2)   # noqa: E731
    gB, gL = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(B, Ls)
    assert gB.shape == (5, 3, 4, 2) and gL.shape == (5, 4, 4)
    for v in range(5):
        X = adla.trsm(Ls[v], B)
        dL, dB = adla.trsm_backward(2 * X, Ls[v], B, X)
        np.testing.assert_allclose(gL[v], dL, rtol=1e-12)
        np.testing.assert_allclose(gB[v], dB, rtol=1e-12)
    X = jax.vmap(aj.trsm, in_axes=(0, None))(Ls, B)      # mapped A, shared B with its own batch
    np.testing.assert_allclose(X, adla.trsm(Ls[:, None], B), rtol=1e-14)


def test_float32_stays_float32():
    A = spd().astype(np.float32)
    L = aj.potrf(A)
    assert L.dtype == jnp.float32
    g = jax.grad(lambda A: aj.sumlogdiag(aj.potrf(A)).sum())(jnp.asarray(A))
    assert g.dtype == jnp.float32


def test_failing_matrix_is_nan_forward_and_backward():
    A = spd()
    A[1] = -np.eye(4)
    L = aj.potrf(A)
    assert np.isnan(L[1]).all() and not np.isnan(L[0]).any()
    g = jax.grad(lambda A: jnp.sum(aj.sumlogdiag(aj.potrf(A))))(jnp.asarray(A))
    assert np.isnan(g[1]).all() and np.isfinite(g[0]).all() and np.isfinite(g[2]).all()
    # gelqf_backward raises in adla for a rank-deficient matrix; here that matrix gives NaN.
    M = np.random.default_rng(2).standard_normal((3, 3, 5))
    M[2, 1] = 0                                 # L[2][1, 1] = 0: rank deficient
    loss = lambda M: jnp.sum(aj.gelqf(M)[0] ** 3) + jnp.sum(aj.gelqf(M)[1] ** 3)   # noqa: E731
    g = jax.grad(loss)(jnp.asarray(M))
    assert np.isnan(g[2]).all() and np.isfinite(g[:2]).all()
    Q, Lf = adla.gelqf(M[:2])
    np.testing.assert_allclose(g[:2], adla.gelqf_backward(3 * Q**2, 3 * Lf**2, Q, Lf), rtol=1e-10)


def test_bad_input():
    with pytest.raises(TypeError, match=r"adla\.jax\.potrf takes no check option"):
        aj.potrf(spd(), check=True)
    with pytest.raises(TypeError, match=r"adla\.jax\.potrf: operand A has unsupported dtype"):
        aj.potrf(jnp.asarray(spd()).astype(jnp.complex64))
    with pytest.raises(TypeError, match=r"unsupported dtype float16"):
        aj.potrf(jnp.asarray(spd()).astype(jnp.float16))


def test_results_are_computed_in_jax_buffers(monkeypatch):
    # On the CPU adla's kernels write every result straight into the custom call's result
    # buffers: nothing is left for _store to copy, forward or backward.
    from adla import _xla_ffi
    copied = []
    store = _xla_ffi._store

    def spy(results, destinations):
        copied.extend(np.asarray(r).ctypes.data != d.ctypes.data
                      for r, d in zip(results, destinations))
        store(results, destinations)
    monkeypatch.setattr(_xla_ffi, "_store", spy)
    A = spd((50,), 8)
    loss = lambda A: sum(jnp.sum(jnp.sin(o)) for o in aj.syevd(A) + aj.gelqf(A))  # noqa: E731
    g = jax.block_until_ready(jax.jit(jax.grad(loss))(jnp.asarray(A)))
    assert len(copied) == 6 and not any(copied)        # 2 + 2 forward results, 1 + 1 gradients
    U, lam = adla.syevd(A)
    Q, L = adla.gelqf(A)
    expected = (adla.syevd_backward(np.cos(U), np.cos(lam), U, lam)
                + adla.gelqf_backward(np.cos(Q), np.cos(L), Q, L))
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-14)


def test_results_stored_across_each_others_buffers():
    # gelqf's kernel makes Q before L: with two result buffers of one size, each may be computed
    # in the other's buffer; storing must not overwrite one with the other.
    from adla._xla_ffi import _store
    buffers = [np.zeros((2, 3)), np.zeros((2, 3))]
    first, second = buffers[1], buffers[0]
    first[...], second[...] = 1.0, 2.0
    _store([first, second], buffers)
    assert (buffers[0] == 1).all() and (buffers[1] == 2).all()


def test_large_results_ask_for_huge_pages(monkeypatch):
    # Result buffers at or above the floor get MADV_HUGEPAGE on their 2 MiB-aligned part (where
    # the platform has madvise); smaller ones or unaligned remainders are left alone, contents
    # untouched.
    from adla import _xla_ffi
    if _xla_ffi._MADVISE is None:
        pytest.skip("no madvise on this platform")
    calls = []
    monkeypatch.setattr(_xla_ffi, "_MADVISE", lambda *args: calls.append(args))
    monkeypatch.setattr(_xla_ffi, "_huge_page_floor", _xla_ffi._HUGE_PAGE)
    big, small = np.ones(5 << 18), np.ones(100)              # 10 MiB and 800 bytes
    _xla_ffi._ask_huge_pages([big, small])
    assert len(calls) == 1
    start, length, advice = calls[0]
    assert start % (2 << 20) == 0 and length % (2 << 20) == 0 and advice == 14
    assert big.ctypes.data <= start and start + length <= big.ctypes.data + big.nbytes
    assert length >= big.nbytes - 2 * (2 << 20)
    monkeypatch.setattr(_xla_ffi, "_huge_page_floor", 32 << 20)    # glibc keeps these now
    _xla_ffi._ask_huge_pages([big, small])
    assert len(calls) == 1
    monkeypatch.undo()
    _xla_ffi._ask_huge_pages([big, small])                   # the real call: harmless
    assert (big == 1).all() and (small == 1).all()


@pytest.mark.parametrize("limit_mb", [0, 256, 4096])
def test_glibc_keeps_freed_results_within_the_cache_limit(monkeypatch, limit_mb):
    # adla.jax asks glibc to take blocks up to 32 MiB from its heap and keep up to
    # ADLA_CPU_CACHE_MB of freed memory at the top of it; a limit of 0 leaves malloc alone.
    from adla import _memory, _xla_ffi
    calls = []
    monkeypatch.setattr(_xla_ffi, "_MALLOPT", lambda *args: calls.append(args) or 1)
    monkeypatch.setattr(_xla_ffi, "_huge_page_floor", _xla_ffi._HUGE_PAGE)
    before = _memory.limit_megabytes()
    try:
        _memory.set_limit(limit_mb)
        _xla_ffi._keep_freed_results()
    finally:
        _memory.set_limit(before)
    if limit_mb == 0:
        assert calls == [] and _xla_ffi._huge_page_floor == _xla_ffi._HUGE_PAGE
    else:
        assert calls == [(-3, 32 << 20), (-1, min(limit_mb << 20, 2**31 - 1))]
        assert _xla_ffi._huge_page_floor == 32 << 20


def test_repeated_calls_reuse_the_memory_of_earlier_results():
    # XLA allocates every call's results afresh; without _keep_freed_results glibc returned them
    # to the system and this vjp faulted in part of its 20 MB of results again in a third of its
    # calls or more (370-1,700 faults each with huge pages, 5,000 or more without). With it,
    # most calls take none; now and then one maps a fresh result buffer (a malloc arena other
    # than the one that freed it), 3 of 36 calls at most in runs on Python 3.11 and 3.12.
    from adla import _memory, _xla_ffi
    resource = pytest.importorskip("resource")
    if _xla_ffi._MALLOPT is None or _memory.limit_megabytes() == 0:
        pytest.skip("glibc's malloc is left alone here")
    rng = np.random.default_rng(0)
    A = jnp.asarray(np.tril(rng.standard_normal((10000, 16, 16))) / 4 + 2 * np.eye(16))
    B, ct = (jnp.asarray(rng.standard_normal((10000, 16, 16))) for _ in range(2))

    @jax.jit
    def forward_backward(A, B):
        X, vjp = jax.vjp(aj.trsm, A, B)
        return X, vjp(ct)
    faults = []
    for _ in range(40):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        jax.block_until_ready(forward_backward(A, B))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert sum(f > 100 for f in faults[4:]) <= 5, faults        # the first calls fill the heap


def test_a_failure_inside_the_custom_call_is_a_jax_error():
    from adla import _xla_ffi

    def run(a):
        raise ValueError("no such matrix")
    name = _xla_ffi.target(run)
    call = jax.ffi.ffi_call(name, jax.ShapeDtypeStruct((2, 2), jnp.float64))
    with pytest.raises(Exception, match=r"adla: ValueError: no such matrix"):
        jax.block_until_ready(call(jnp.eye(2)))
    with pytest.raises(Exception, match=r"float32 and float64"):
        jax.block_until_ready(jax.ffi.ffi_call(name, jax.ShapeDtypeStruct((2,), jnp.int32))(
            jnp.arange(2, dtype=jnp.int32)))
