"""Reliability: property-based checks over every operator, a battery of bad inputs (run in a
subprocess, so that a crash fails a test instead of the suite), threads, memory and
determinism."""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import adla
from harness import ROWS, call_backward, call_forward, make_inputs, reference

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

LAYOUTS = ["C", "fortran", "sliced", "negative", "readonly"]


def relayout(x, layout):
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "sliced":
        big = np.zeros(x.shape[:-1] + (2 * x.shape[-1] + 1,), x.dtype)
        view = big[..., 1::2]
        view[...] = x
        return view
    if layout == "negative":
        reverse = (slice(None, None, -1),) * x.ndim
        return np.ascontiguousarray(x[reverse])[reverse]
    if layout == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y
    return x


@st.composite
def problems(draw):
    row = draw(st.sampled_from(ROWS))
    opts = draw(st.sampled_from(row.options))
    m, k = sorted(draw(st.lists(st.integers(0, 40), min_size=2, max_size=2)))
    dims = dict(n=draw(st.integers(0, 40)), m=m, k=k)         # gelqf needs m <= k
    noperands = len(row.operands(opts, dims))
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    batches = []
    for _ in range(noperands):                                 # each broadcasts to batch
        drop = draw(st.integers(0, len(batch)))
        own = tuple(1 if draw(st.booleans()) else d for d in batch[drop:])
        batches.append(own)
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    layout = draw(st.sampled_from(LAYOUTS))
    return row, opts, dims, batches, dtype, layout


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problems())
def test_property_forward_backward_layouts(problem):
    row, opts, dims, batches, dtype, layout = problem
    inputs = make_inputs(row, opts, batches, dtype, dims=dims)
    moved = {k: relayout(v, layout) for k, v in inputs.items()}
    saved = {k: v.copy() for k, v in moved.items()}
    with np.errstate(over="ignore"):            # det may leave float32's range, as in NumPy
        out = call_forward(row, opts, moved)
    for o in as_tuple(out):
        assert o.flags.c_contiguous and o.dtype == dtype
        assert not any(np.shares_memory(o, v) for v in moved.values())
    expected = reference(row, opts, inputs)
    if expected is not None:
        tol = 1e-8 if dtype == np.float64 else 2e-3
        for o, e in zip(as_tuple(out), as_tuple(expected)):
            if not np.all(np.abs(e) < np.finfo(dtype).max / 16):
                continue                      # e.g. det of a 40x40 matrix beyond float32
            scale = max(1.0, float(np.max(np.abs(e), initial=0.0)))
            np.testing.assert_allclose(o, e, rtol=tol, atol=tol * scale)
    # Backward against central differences in float64, one random direction per input.
    inputs64 = {k: v.astype(np.float64) for k, v in inputs.items()}
    out64 = call_forward(row, opts, inputs64)
    rng = np.random.default_rng(0)
    ct = tuple(rng.standard_normal(np.shape(o)) for o in as_tuple(out64))
    if row.cotangents is not None:
        ct = tuple(c if i in row.cotangents else np.zeros_like(c) for i, c in enumerate(ct))
    ct = ct if isinstance(out64, tuple) else ct[0]
    grads = call_backward(row, opts, ct, {k: relayout(v, layout) for k, v in inputs64.items()},
                          out64)
    spec = row.operands(opts, dims)
    for (name, x), g in zip(inputs64.items(), grads):
        assert g.shape == x.shape and g.flags.c_contiguous
        E = rng.standard_normal(x.shape)
        kind = row.structure(name, opts)
        if kind == "sym":
            E = E + np.swapaxes(E, -1, -2)
        elif kind in ("lower", "upper"):
            E = np.tril(E) if kind == "lower" else np.triu(E)
        h = 1e-6

        def loss(v):
            shifted = dict(inputs64, **{name: v})
            return sum(np.sum(c * o) for c, o in zip(as_tuple(ct), as_tuple(
                call_forward(row, opts, shifted))))
        fd = (loss(x + h * E) - loss(x - h * E)) / (2 * h)
        assert abs(fd - np.sum(g * E)) <= 1e-5 * (np.linalg.norm(g) * np.linalg.norm(E) + 1.0)
    for k in moved:
        np.testing.assert_array_equal(moved[k], saved[k])


# ---- bad input battery, in a subprocess ---------------------------------------------------------

BATTERY = r'''
import json, sys, warnings
import numpy as np
import adla
warnings.simplefilter("ignore")
results = {}

def attempt(name, call):
    try:
        out = call()
        outs = out if isinstance(out, tuple) else (out,)
        finite = all(np.all(np.isfinite(np.asarray(o))) for o in outs)
        results[name] = "finite" if finite else "nan"
    except adla.LinAlgError as e:
        results[name] = "LinAlgError"
    except (ValueError, TypeError, MemoryError) as e:
        results[name] = type(e).__name__

rng = np.random.default_rng(0)
n = 5
spd = rng.standard_normal((3, n, n)); spd = spd @ spd.transpose(0, 2, 1) + n * np.eye(n)
tri = np.tril(rng.standard_normal((3, n, n))) + 3 * np.eye(n)
gen = rng.standard_normal((3, n, n))
for bad in ("nan", "inf", "-inf"):
    v = float(bad)
    for where in ((0, 0, 0), (1, n - 1, 0), (2, 2, 3)):
        tag = f"{bad}@" + "-".join(map(str, where))
        for op, args in {
            "potrf": (spd,), "potri": (tri,), "potrs": (tri, gen), "trsm": (tri, gen),
            "trmm": (tri, gen), "gemm": (gen, gen, gen), "gemm2": (gen, gen), "syrk": (gen,),
            "sumlogdiag": (spd,), "gelqf": (gen,), "geqrf": (gen,), "syevd": (spd,),
            "inverse": (gen,), "det": (gen,), "slogdet": (gen,),
        }.items():
            args = [a.copy() for a in args]
            args[0][where] = v
            attempt(f"{op} {tag} check", lambda: getattr(adla, op)(*args))
            if op in ("potrf", "potri", "potrs", "trsm", "syevd", "inverse"):
                attempt(f"{op} {tag} nocheck", lambda: getattr(adla, op)(*args, check=False))
attempt("potrf not PD", lambda: adla.potrf(-spd))
attempt("potrf not PD nocheck", lambda: adla.potrf(-spd, check=False))
attempt("inverse singular", lambda: adla.inverse(np.ones((2, 4, 4))))
attempt("inverse nearly singular", lambda: adla.inverse(np.diag([1.0, 1e-300, 1.0])))
attempt("trsm zero diagonal", lambda: adla.trsm(np.tril(np.ones((4, 4))) - np.eye(4), gen[0, :4]))
attempt("det singular", lambda: adla.det(np.ones((3, 3))))
attempt("det_backward singular", lambda: adla.det_backward(1.0, np.ones((3, 3)), 0.0))
attempt("slogdet_backward singular", lambda: adla.slogdet_backward(1.0, np.ones((3, 3))))
attempt("gelqf_backward zero diagonal",
        lambda: adla.gelqf_backward(np.ones((2, 3)), None, np.eye(2, 3), np.zeros((2, 2))))
attempt("0-d", lambda: adla.potrf(np.float64(1.0)))
attempt("1-d", lambda: adla.potrf(np.ones(3)))
attempt("list", lambda: adla.potrf([[4.0, 2.0], [2.0, 3.0]]))
attempt("ragged list", lambda: adla.potrf([[1.0], [1.0, 2.0]]))
attempt("complex", lambda: adla.potrf(np.eye(2, dtype=complex)))
attempt("float16", lambda: adla.potrf(np.eye(2, dtype=np.float16)))
attempt("object", lambda: adla.potrf(np.eye(2).astype(object)))
attempt("string", lambda: adla.potrf(np.array([["a", "b"], ["c", "d"]])))
attempt("mismatch", lambda: adla.trsm(np.eye(3), np.ones((4, 2))))
attempt("no broadcast", lambda: adla.gemm2(np.ones((2, 3, 3)), np.ones((4, 3, 3))))
attempt("huge order", lambda: adla.potrf(np.broadcast_to(1.0, (2**31, 2**31))))
attempt("huge elements", lambda: adla.potrf(np.broadcast_to(1.0, (70000, 70000))))
attempt("huge gemm result", lambda: adla.gemm2(np.broadcast_to(1.0, (70000, 1)),
                                               np.broadcast_to(1.0, (1, 70000))))
json.dump(results, sys.stdout)
'''

EXPECTED_FAILURE = {"potrf", "potri", "potrs", "trsm", "syevd", "inverse"}


@pytest.fixture(scope="module")
def battery():
    done = subprocess.run([sys.executable, "-c", BATTERY], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"crashed: {done.returncode}\n{done.stderr[-2000:]}"
    import json
    return json.loads(done.stdout)


LOWER_READERS = {"potrf", "potri", "potrs", "trsm", "trmm", "syevd"}


def reads(op, row, col):
    """Whether ``op`` reads entry (row, col) of its first operand."""
    if op in LOWER_READERS:
        return row >= col
    if op == "sumlogdiag":
        return row == col
    return True


def test_non_finite_inputs_fail_or_propagate_never_crash(battery):
    checked = 0
    for name, outcome in battery.items():
        op, tag, mode = (name.split(" ", 2) + ["", ""])[:3]
        if "@" not in tag:
            continue
        _, row, col = (int(x) for x in tag.split("@")[1].split("-"))
        if not reads(op, row, col):
            expected = "finite"
        elif op in EXPECTED_FAILURE:
            expected = "LinAlgError" if mode == "check" else "nan"
        else:
            expected = "nan"
        assert outcome == expected, (name, outcome)
        checked += 1
    assert checked == 3 * 3 * (15 + 6)


def test_numerical_and_input_errors_get_their_documented_answer(battery):
    expected = {
        "potrf not PD": "LinAlgError", "potrf not PD nocheck": "nan",
        "inverse singular": "LinAlgError", "trsm zero diagonal": "LinAlgError",
        "det singular": "finite", "det_backward singular": "finite",
        "slogdet_backward singular": "nan", "gelqf_backward zero diagonal": "LinAlgError",
        "0-d": "ValueError", "1-d": "ValueError", "list": "finite",
        "ragged list": "ValueError", "complex": "TypeError", "float16": "TypeError",
        "object": "TypeError", "string": "TypeError", "mismatch": "ValueError",
        "no broadcast": "ValueError", "huge order": "ValueError",
        "huge elements": "ValueError", "huge gemm result": "ValueError",
    }
    for name, outcome in expected.items():
        assert battery[name] == outcome, (name, battery[name])
    assert battery["inverse nearly singular"] in ("finite", "nan")   # 1e300 is finite


# ---- threads, memory, determinism -----------------------------------------------------------

def mixed_workload(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 12, 12))
    A = X @ np.swapaxes(X, -1, -2) + 12 * np.eye(12)
    L = adla.potrf(A)
    dA = adla.potrf_backward(rng.standard_normal(L.shape), L)
    Z = adla.trsm(L, X)
    U, lam = adla.syevd(A)
    Q, R = adla.geqrf(X)
    big = adla.potrf(np.eye(80) * 2.0 + 0.01)
    return [L, dA, Z, U, lam, Q, R, big, adla.gemm2(X, X, transpose_b=True)]


def test_threads_give_bit_identical_results():
    serial = [mixed_workload(seed) for seed in range(8)]
    results = [None] * 8

    def work(i):
        for _ in range(3):
            results[i] = mixed_workload(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_kernels_release_the_gil():
    X = np.random.default_rng(0).standard_normal((2000, 2000))
    A = X @ X.T + 2000 * np.eye(2000)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)
    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.05)
    start = time.perf_counter()
    for _ in range(3):
        adla.potrf_backward(A, adla.potrf(A))
    end = time.perf_counter()
    stop.set()
    counter.join()
    during = [t for t in ticks if start < t < end]
    # With the GIL held for the whole kernel the counter would stall for its duration.
    assert len(during) > 20
    gaps = np.diff(during)
    assert gaps.max() < 0.5 * (end - start)


def resident_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_stays_flat_over_many_calls_and_errors():
    good = np.array([[4.0, 2.0], [2.0, 3.0]])
    bad = -good
    small = np.random.default_rng(0).standard_normal((3, 20, 20))

    def calls(count):
        for i in range(count):
            adla.potrf_backward(good, adla.potrf(good))
            try:
                adla.potrf(bad)
            except adla.LinAlgError:
                pass
            if i % 100 == 0:
                adla.syevd(small @ np.swapaxes(small, -1, -2))
                adla.gelqf(small)
    calls(2_000)                                 # warm up allocators and caches
    before = resident_kib()
    calls(34_000)                                # 102,000 operator calls, a third failing
    growth = resident_kib() - before
    assert growth < 8 * 1024, f"resident memory grew by {growth} KiB"


# ---- the CPU backend's output cache (src/adla/_memory.pyx) ------------------------------------

def test_cached_outputs_are_fresh_owned_and_never_shared():
    from adla import _memory
    X = np.random.default_rng(0).standard_normal((5000, 16, 16))        # 10 MB outputs
    first = adla.syrk(X)
    address = first.__array_interface__["data"][0]
    expected = first.copy()
    del first                                  # its block is kept ...
    again = adla.syrk(X)
    # ... and handed back for the next output of that size, which owns it like any array
    assert again.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(again, expected)
    owner = again if again.base is None else again.base
    assert owner.flags.owndata and again.flags.c_contiguous and again.flags.writeable
    # Live outputs never share memory, with each other or with the inputs.
    outs = [adla.syrk(X) for _ in range(3)] + [again, X]
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            assert not np.shares_memory(a, b)
    assert _memory.kept_megabytes() <= _memory.limit_megabytes()


def test_output_cache_limit_from_the_environment():
    script = ("import numpy as np, adla; from adla import _memory\n"
              "X = np.ones((5000, 16, 16))\n"
              "for _ in range(3): adla.syrk(X)\n"
              "print(_memory.kept_megabytes())")
    kept = {}
    for limit in ("0", "15", "256"):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=dict(os.environ, ADLA_CPU_CACHE_MB=limit), timeout=120)
        assert done.returncode == 0, done.stderr
        kept[limit] = float(done.stdout.split()[-1])
    assert kept["0"] == 0 and 0 < kept["15"] <= 15 and kept["256"] >= kept["15"]
    done = subprocess.run([sys.executable, "-c", "import adla; adla.syrk([[1.0]])"],
                          capture_output=True, text=True,
                          env=dict(os.environ, ADLA_CPU_CACHE_MB="lots"), timeout=120)
    assert done.returncode != 0 and "ADLA_CPU_CACHE_MB must be a number of MiB" in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_kernel_scratch_comes_from_the_output_cache():
    """det's gradient at order 800 takes over 32 MiB of scratch, which glibc maps afresh on
    every call: from the cache, a repeated call faults in next to nothing, where without it
    (limit 0) it faults in the pages it touches, every time."""
    script = ("import resource, numpy as np, adla; from adla import _memory\n"
              "A = np.eye(800) + np.random.default_rng(0).standard_normal((800, 800)) / 60\n"
              "d = adla.det(A)\n"
              "for _ in range(2): adla.det_backward(1.0, A, d)\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
              "for _ in range(3): adla.det_backward(1.0, A, d)\n"
              "after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
              "print((after - before) / 3, _memory.kept_megabytes())")
    faults, kept = {}, {}
    for limit in ("0", "256"):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=dict(os.environ, ADLA_CPU_CACHE_MB=limit), timeout=120)
        assert done.returncode == 0, done.stderr
        faults[limit], kept[limit] = map(float, done.stdout.split()[-2:])
    assert kept["0"] == 0 and kept["256"] >= 32          # the scratch block, kept
    assert faults["0"] > 1000 and faults["256"] < faults["0"] / 4, faults


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_runs_batches_after_the_parent_ran_them_in_parallel():
    """The child's batches run on a pool of its own (the parent's helper threads did not
    survive the fork), and its output cache (8 MB outputs, reused three times) has a lock of its
    own."""
    script = ("import os, numpy as np, adla\n"
              "X = np.random.default_rng(0).standard_normal((4000, 16, 16))\n"
              "want = adla.syrk(X); adla.potrf_backward(X, adla.potrf(want + 16 * np.eye(16)))\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    ok = all(np.array_equal(adla.syrk(X), want) for _ in range(3))\n"
              "    os._exit(0 if ok else 1)\n"
              "_, status = os.waitpid(pid, 0)\n"
              "print(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)        # a hang (a pool waiting for lost threads) fails here
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"


def test_output_cache_under_threads():
    X = np.random.default_rng(3).standard_normal((4000, 16, 16))
    want = adla.syrk(X)
    failures = []

    def work():
        for _ in range(20):
            got = [adla.syrk(X), adla.syrk(X)]
            if not all(np.array_equal(g, want) for g in got) or np.shares_memory(*got):
                failures.append(1)
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_same_input_gives_bit_identical_output():
    X = np.random.default_rng(1).standard_normal((5000, 8, 8))
    A = X @ np.swapaxes(X, -1, -2) + 8 * np.eye(8)
    first = [adla.potrf(A), adla.potrf_backward(X, adla.potrf(A)), adla.syevd(A)[0],
             adla.trsm(adla.potrf(A), X)]
    for _ in range(3):
        again = [adla.potrf(A), adla.potrf_backward(X, adla.potrf(A)), adla.syevd(A)[0],
                 adla.trsm(adla.potrf(A), X)]
        for a, b in zip(again, first):
            np.testing.assert_array_equal(a, b)


def test_blas_runs_single_threaded_while_a_batch_calls_it_and_gets_its_threads_back():
    """A batched call that may call BLAS from several threads keeps every BLAS library to one
    thread meanwhile (OpenBLAS called from threads while threading itself can deadlock), shared
    by concurrent callers; the last one out restores each library's own count."""
    from threadpoolctl import threadpool_info

    from adla import _cpu

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    before = blas_threads()
    assert before
    with _cpu._single_threaded_blas():
        assert blas_threads() == [1] * len(before)
        with _cpu._single_threaded_blas():                 # a second caller meanwhile
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == [1] * len(before)        # the first still inside
    assert blas_threads() == before
    X = np.random.default_rng(0).standard_normal((4, 100, 100))
    adla.potrf(X @ np.swapaxes(X, 1, 2) + 100 * np.eye(100))     # BLAS from the batch's threads
    assert blas_threads() == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_batch_of_products_larger_than_the_caches(dtype):
    """From order 48 a batch of products past the caches runs _fma_product.h's loops on CPUs
    with AVX-512 (the next matrix fetched ahead, results written past the caches, by both
    threads): gemm, syrk, their gradients and trmm agree with the BLAS route and with NumPy."""
    from adla import _cpu, _memory
    rng = np.random.default_rng(0)
    A, B, C, dD = rng.standard_normal((4, 1100, 64, 64)).astype(dtype)     # 3 x 36 MB float64
    L = np.tril(A) + 8 * np.eye(64, dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-4)

    def results():
        out = [adla.gemm(A, B, C, transpose_a=True, transpose_b=True, alpha=0.5, beta=2.0)]
        out += adla.gemm_backward(dD, A, B, C, transpose_b=True, alpha=0.5, beta=2.0)
        out += [adla.gemm2(A, B), adla.trmm(L, B, rightside=True), adla.syrk(A),
                adla.syrk_backward(dD, A, transpose=True)]
        return out

    fused = results()
    previous = _cpu.K.set_fma_product_max(0)
    try:
        through_blas = results()
    finally:
        _cpu.K.set_fma_product_max(previous)
    for a, b in zip(fused, through_blas):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(fused[0], 0.5 * A.mT @ B.mT + 2.0 * C, **tol)
    np.testing.assert_allclose(fused[1], 0.5 * dD @ B, **tol)         # dA
    np.testing.assert_allclose(fused[2], 0.5 * (A.mT @ dD).mT, **tol)  # dB, as B^T
    np.testing.assert_allclose(fused[4], A @ B, **tol)
    np.testing.assert_allclose(fused[5], B @ L, **tol)
    np.testing.assert_array_equal(fused[6], fused[6].mT)                # exactly symmetric
    np.testing.assert_allclose(fused[6], A @ A.mT, **tol)
    np.testing.assert_allclose(fused[7], A @ (dD + dD.mT), **tol)
    D, dD_tangent = adla.gemm_jvp(A, B, C, dD, L, None, transpose_a=True, transpose_b=True,
                                  alpha=0.5, beta=2.0)
    np.testing.assert_array_equal(D, fused[0])                        # the forward's bits
    np.testing.assert_allclose(dD_tangent, 0.5 * (dD.mT @ B.mT + A.mT @ L.mT), **tol)
    # Past TRANSPOSED_B_MAX too (the scratch for op(B) comes from the planner).
    A2, B2 = rng.standard_normal((2, 150, 100, 100)).astype(dtype)
    D2, dD2 = adla.gemm2_jvp(A2, B2, B2, A2, transpose_b=True)
    np.testing.assert_array_equal(D2, adla.gemm2(A2, B2, transpose_b=True))
    np.testing.assert_allclose(D2, A2 @ B2.mT, **tol)
    np.testing.assert_allclose(dD2, B2 @ B2.mT + A2 @ A2.mT, **tol)
    if _memory.limit_megabytes() > 0:       # outputs from the cache: on a cache line
        assert all(a.ctypes.data % 64 == 0 for a in fused)


def test_a_small_batch_of_products_runs_on_the_calling_thread_without_the_blas_limit(
        monkeypatch):
    """Keeping BLAS to one thread costs more than a second thread saves on a small batch of
    products through BLAS: the planner runs it on the calling thread, which needs no limit;
    a large batch still runs on the pool with BLAS held to one thread."""
    from adla import _cpu
    entered = []
    limit = _cpu._single_threaded_blas
    monkeypatch.setattr(_cpu, "_single_threaded_blas", lambda: entered.append(1) or limit())
    previous = _cpu.K.set_direct_product_max(0)          # products through BLAS at any size
    previous_fma = _cpu.K.set_fma_product_max(0)
    try:
        rng = np.random.default_rng(0)
        for nbatch, expected in ((3, 0), (2000, int(_cpu.K.max_threads() > 1))):
            A, B = rng.standard_normal((2, nbatch, 24, 24))
            entered.clear()
            np.testing.assert_allclose(adla.gemm2(A, B), A @ B, rtol=1e-12, atol=1e-12)
            assert len(entered) == expected
    finally:
        _cpu.K.set_direct_product_max(previous)
        _cpu.K.set_fma_product_max(previous_fma)
