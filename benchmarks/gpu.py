"""The GPU benchmark, ``python -m benchmarks --gpu [--out MD] [--budget SECONDS] [--only OPS]``:
adla on CuPy arrays against CuPy, PyTorch and JAX on the same device, in one run.

Every case is timed for each library in turn (best of 5 after a warm-up, the device synchronised
around each call; adla with ``check=False``, so with no host synchronisation). Rows come in order
of priority, float64 then float32; when ``--budget`` seconds have passed, the remaining rows are
listed as not measured. A second table gives the registers of the small-matrix kernels. Ends with
the verdict on the targets: every row at most 1.0x the fastest peer, batched forward+backward at
n <= 32 at most 0.5x, and the 100000 x 32 float64 Cholesky forward within 1.5x of the device's
memory floor.
"""
import sys
import time

import numpy as np

import adla

# (operation, batch, n); "X forward" is the forward alone, "X" forward and backward.
CASES = [("cholesky forward", 100000, 32), ("cholesky forward", 10000, 16),
         ("cholesky forward", 1000, 128), ("cholesky forward", 1, 4096),
         ("cholesky", 100000, 32), ("cholesky", 10000, 16), ("cholesky", 1000, 128),
         ("cholesky", 1, 4096),
         ("trsm forward", 100000, 32), ("trsm", 100000, 32), ("trsm", 10000, 16),
         ("trsm forward", 1, 4096), ("trsm", 1, 4096),
         ("syevd forward", 10000, 16), ("syevd", 10000, 16), ("syevd", 1, 1024),
         ("gelqf forward", 10000, 16), ("gelqf", 10000, 16), ("gelqf forward", 1000, 64),
         ("gelqf", 1000, 64)]

# Peak memory bandwidth (bytes/s) of the devices the targets name, by a word of the device name.
PEAK_BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12}


def best_of(fn, sync, repeats=5):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def inputs(batch, n, dtype, seed=0):
    import cupy as cp
    rng = cp.random.default_rng(seed)
    X = rng.standard_normal((batch, n, n), dtype=np.float64)
    spd = X @ cp.swapaxes(X, -1, -2) / n + cp.eye(n)
    tri = cp.tril(X) / np.sqrt(n) + 2 * cp.eye(n)
    arrays = dict(spd=spd, tri=tri, X=X, B=rng.standard_normal((batch, n, n)),
                  ct=rng.standard_normal((batch, n, n)), ct_vec=rng.standard_normal((batch, n)))
    return {k: cp.ascontiguousarray(v.astype(dtype)) for k, v in arrays.items()}


# For each operation: adla's forward and backward, and (forward, operand names, cotangent names)
# of the peers, whose backward is their own autodiff.
def _adla(op, d):
    forward, backward = {
        "cholesky": (lambda: adla.potrf(d["spd"], check=False),
                     lambda L: adla.potrf_backward(d["ct"], L)),
        "trsm": (lambda: adla.trsm(d["tri"], d["B"], check=False),
                 lambda X: adla.trsm_backward(d["ct"], d["tri"], d["B"], X)),
        "syevd": (lambda: adla.syevd(d["spd"], check=False),
                  lambda out: adla.syevd_backward(d["ct"], d["ct_vec"], *out)),
        "gelqf": (lambda: adla.gelqf(d["X"]),
                  lambda out: adla.gelqf_backward(d["ct"], d["B"], *out)),
    }[op]
    return forward, backward


def _peer_rules(np_like, linalg, solve_lower):
    """Forward functions of a peer, in adla's output conventions (U has eigenvectors as rows;
    the LQ factors come from the QR of the transpose)."""
    def lq(A):
        Q, R = linalg.qr(np_like.swapaxes(A, -1, -2))
        return np_like.swapaxes(Q, -1, -2), np_like.swapaxes(R, -1, -2)

    def eigh(A):
        lam, V = linalg.eigh(A)
        return np_like.swapaxes(V, -1, -2), lam
    return {"cholesky": (linalg.cholesky, ["spd"], ["ct"]),
            "trsm": (solve_lower, ["tri", "B"], ["ct"]),
            "syevd": (eigh, ["spd"], ["ct", "ct_vec"]),
            "gelqf": (lq, ["X"], ["ct", "B"])}


def cases(op, batch, n, dtype):
    """``{library: callable}`` for one row."""
    import cupy as cp
    d = inputs(batch, n, dtype)
    base, only_forward = op.replace(" forward", ""), op.endswith(" forward")
    forward, backward = _adla(base, d)
    found = {"adla": forward if only_forward else (lambda: backward(forward()))}
    if only_forward and base == "cholesky":
        found["cupy"] = lambda: cp.linalg.cholesky(d["spd"])
    if only_forward and base == "syevd":
        found["cupy"] = lambda: cp.linalg.eigh(d["spd"])
    if only_forward and base == "gelqf":
        found["cupy"] = lambda: cp.linalg.qr(cp.swapaxes(d["X"], -1, -2))
    if only_forward and base == "trsm":
        try:
            import cupyx.scipy.linalg
            if batch == 1:                              # CuPy's takes one matrix at a time
                found["cupy"] = lambda: cupyx.scipy.linalg.solve_triangular(
                    d["tri"][0], d["B"][0], lower=True)
        except ImportError:
            pass
    try:
        import torch
        t = {k: torch.as_tensor(v, device="cuda") for k, v in d.items()}
        rules = _peer_rules(torch, torch.linalg, lambda A, B: torch.linalg.solve_triangular(
            A, B, upper=False))
        peer, names, cts = rules[base]
        if only_forward:
            def run_torch(peer=peer, names=names):
                with torch.no_grad():
                    return peer(*[t[k] for k in names])
        else:
            def run_torch(peer=peer, names=names, cts=cts):
                args = [t[k].clone().requires_grad_(True) for k in names]
                outs = peer(*args)
                outs = outs if isinstance(outs, tuple) else (outs,)
                torch.autograd.backward(outs, [t[c] for c in cts])
        found["torch"] = run_torch
    except ImportError:
        pass
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from jax.scipy.linalg import solve_triangular
        j = {k: jnp.asarray(cp.asnumpy(v)) for k, v in d.items()}
        rules = _peer_rules(jnp, jnp.linalg, lambda A, B: solve_triangular(A, B, lower=True))
        peer, names, cts = rules[base]
        if only_forward:
            compiled = jax.jit(peer)
        else:
            def fwd_bwd(*args, peer=peer, cts=cts):
                outs, vjp = jax.vjp(peer, *args)
                c = tuple(j[k] for k in cts)
                return vjp(c if isinstance(outs, tuple) else c[0])
            compiled = jax.jit(fwd_bwd)
        found["jax"] = lambda: jax.block_until_ready(compiled(*[j[k] for k in names]))
    except ImportError:
        pass
    return found


def kernel_rows():
    """Registers and local memory (spills) of the small-matrix kernels, float64, from the driver:
    what bounds their occupancy."""
    from adla._gpu import backend
    lines = ["| kernel | registers per thread | local memory bytes |", "| --- | --- | --- |"]
    for name in [backend._tiles_name(k, "double", lanes) for k in backend.TILES_KERNELS
                 for lanes in (4, 8, 16, 32)] + [f"{k}<double>" for k in backend.BLOCK_KERNELS]:
        try:
            attributes = backend._module().get_function(name).attributes
            lines.append(f"| {name} | {attributes['num_regs']} | "
                         f"{attributes['local_size_bytes']} |")
        except Exception as error:
            lines.append(f"| {name} | ({type(error).__name__}) | |")
        print(lines[-1], flush=True)
    return lines


def main(out=None, budget=None, only=None):
    import cupy as cp
    start = time.perf_counter()
    device = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = device["name"].decode() if isinstance(device["name"], bytes) else device["name"]
    sync = cp.cuda.Device().synchronize
    versions = [f"CuPy {cp.__version__}"]
    for module in ("torch", "jax"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} not installed")
    header = f"GPU: {name}; " + ", ".join(versions) + f"; run of {time.strftime('%Y-%m-%d')}"
    lines = ["| case | dtype | batch x n | adla ms | cupy ms | torch ms | jax ms | "
             "adla / fastest peer |", "|" + " --- |" * 8]
    print(header + "\n\n" + "\n".join(lines), flush=True)
    results, skipped = [], []
    for dtype in (np.float64, np.float32):
        for op, batch, n in CASES:
            if only and op.replace(" forward", "") not in only:
                continue
            label = f"{op} {np.dtype(dtype).name} {batch}x{n}"
            if budget is not None and time.perf_counter() - start > budget:
                skipped.append(label)
                continue
            times = {}
            for library, fn in cases(op, batch, n, dtype).items():
                try:
                    times[library] = best_of(fn, sync)
                except Exception as error:
                    times[library] = float("nan")
                    print(f"  ({library} failed on {label}: {type(error).__name__}: "
                          f"{str(error)[:120]})", file=sys.stderr)
            peers = [v for k, v in times.items() if k != "adla" and np.isfinite(v)]
            ratio = times["adla"] / min(peers) if peers else float("nan")
            cells = " | ".join(f"{times.get(k, float('nan')):.3f}"
                               for k in ("adla", "cupy", "torch", "jax"))
            title = op if op.endswith("forward") else f"{op} fwd+bwd"
            lines.append(f"| {title} | {np.dtype(dtype).name} | {batch} x {n} | {cells} | "
                         f"{ratio:.2f} |")
            print(lines[-1], flush=True)
            results.append((op, np.dtype(dtype).name, batch, n, times["adla"], ratio))
            cp.get_default_memory_pool().free_all_blocks()
    print("", flush=True)
    kernels = kernel_rows()
    verdict = judge(name, results)
    if skipped:
        verdict.append(f"not measured (time budget of {budget:.0f} s spent): "
                       + ", ".join(skipped))
    print("\n" + "\n".join(verdict), flush=True)
    if out:
        with open(out, "w") as f:
            f.write("# adla GPU benchmarks\n\nGenerated by `python -m benchmarks --gpu` (part of "
                    "`bash benchmarks/gpu_check.sh`); best of 5 after a warm-up, the device "
                    "synchronised around each call; adla with `check=False` (no host "
                    "synchronisation). `nan`: that library has no such call (CuPy has no "
                    "backward).\n\n" + header + "\n\n" + "\n".join(lines)
                    + "\n\n## The small-matrix kernels\n\n" + "\n".join(kernels)
                    + "\n\n## Verdict\n\n" + "\n".join(f"- {v}" for v in verdict) + "\n")
    return 0


def judge(device, results):
    """The targets, held or not, from ``(op, dtype, batch, n, adla ms, ratio)`` rows."""
    rows = [r for r in results if np.isfinite(r[5])]
    slow = [r for r in rows if r[5] > 1.0]
    small = [r for r in rows if not r[0].endswith("forward") and r[2] > 1 and r[3] <= 32]
    verdict = [f"{len(rows) - len(slow)} of {len(rows)} rows at most 1.0x the fastest peer"
               + (": not " + ", ".join(f"{r[0]} {r[1]} {r[2]}x{r[3]} ({r[5]:.2f})" for r in slow)
                  if slow else ""),
               f"{sum(r[5] <= 0.5 for r in small)} of {len(small)} batched fwd+bwd rows at "
               "n <= 32 at most 0.5x"]
    peak = next((v for k, v in PEAK_BANDWIDTH.items() if k in device), None)
    forward = [r for r in results if r[:4] == ("cholesky forward", "float64", 100000, 32)]
    if peak and forward:
        floor = 2 * 100000 * 32 * 32 * 8 / peak * 1e3
        verdict.append(f"Cholesky forward 100000 x 32 float64: {forward[0][4]:.3f} ms, memory "
                       f"floor {floor:.3f} ms ({forward[0][4] / floor:.2f}x; target 1.5x)")
    elif forward:
        verdict.append("memory floor: no peak bandwidth known for this device")
    return verdict
