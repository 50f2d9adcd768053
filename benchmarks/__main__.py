"""Benchmarks: ``python -m benchmarks [--quick] [--rounds N] [--out MD] [--plot PNG]``;
``--jvp`` for forward mode, ``--operators`` for every operator in both precisions
(benchmarks/operators.py).

Forward+backward time (best of 5 after a warm-up, float64, ms) of adla against NumPy/SciPy and,
when installed, PyTorch and JAX, for the sizes of the CPU-speed issue, each library timed in its
own process (``--rounds N``: N times in turn, each library's best kept). Prints a table with the
ratio of adla to the fastest peer, writes it as Markdown naming the machine, and plots the
ratios when matplotlib is installed; ``--gpu`` times CuPy arrays instead. Nothing here is
asserted: correctness lives in the test suite.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

import adla
from adla import _lapack, _memory

# Subprocesses run ``python -m benchmarks`` from the directory that holds this package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Figures measured for MXNet 1.9.1 on a 2-core machine of this kind (the table; MXNet does
# not install on current Pythons, so it is not rerun here).
MXNET_MS = {("cholesky", 100000, 4): 60.7, ("cholesky", 10000, 16): 69.9,
            ("cholesky", 1000, 64): 169, ("cholesky", 100, 256): 338,
            ("cholesky", 4, 1024): 427, ("cholesky", 1, 3000): 2004,
            ("syevd", 10000, 16): 285, ("syevd", 1000, 64): 478, ("trsm", 10000, 16): 78,
            ("gelqf", 10000, 16): 49}

CASES = [("cholesky", 100000, 4), ("cholesky", 10000, 16), ("cholesky", 1000, 64),
         ("cholesky", 100, 256), ("cholesky", 4, 1024), ("cholesky", 1, 3000),
         ("potrf forward", 1, 3000),
         ("trsm", 10000, 16), ("syevd", 10000, 16), ("syevd", 1000, 64), ("gelqf", 10000, 16),
         ("gemm", 10000, 16), ("syrk", 10000, 16),
         ("gesvd", 10000, 8), ("gesvd", 1000, 32), ("gesvd", 1, 500),
         ("gesv", 10000, 8), ("gesv", 1000, 32), ("gesv", 1, 500)]
QUICK = [("cholesky", 10000, 4), ("cholesky", 1000, 16), ("cholesky", 100, 64), ("trsm", 1000, 16),
         ("syevd", 1000, 16), ("gelqf", 1000, 16), ("gemm", 1000, 16), ("syrk", 1000, 16)]


def best_of(fn, repeats=5, warm_up=1.0):
    """Best of ``repeats`` timed calls after at least ``warm_up`` seconds of untimed calls: the
    first call compiles (JAX), and for a while after the inputs are made OpenBLAS's threads
    still spin and share the cores with whatever runs next."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def inputs(op, batch, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, n, n))
    spd = X @ np.swapaxes(X, -1, -2) / n + np.eye(n)
    tri = np.tril(X) / np.sqrt(n) + 2 * np.eye(n)
    return dict(spd=spd, tri=tri, X=X, B=rng.standard_normal((batch, n, n)),
                ct=rng.standard_normal((batch, n, n)), ct_vec=rng.standard_normal((batch, n)))


# ---- adla and the NumPy/SciPy baseline ----------------------------------------------------------

def adla_case(op, d):
    if op == "cholesky":
        return lambda: adla.potrf_backward(d["ct"], adla.potrf(d["spd"]))
    if op == "potrf forward":
        return lambda: adla.potrf(d["spd"])
    if op == "trsm":
        def run():
            X = adla.trsm(d["tri"], d["B"])
            return adla.trsm_backward(d["ct"], d["tri"], d["B"], X)
        return run
    if op == "syevd":
        def run():
            U, lam = adla.syevd(d["spd"])
            return adla.syevd_backward(d["ct"], d["ct_vec"], U, lam)
        return run
    if op == "gelqf":
        def run():
            Q, L = adla.gelqf(d["X"])
            return adla.gelqf_backward(d["ct"], d["B"], Q, L)
        return run
    if op == "gemm":
        return lambda: adla.gemm_backward(d["ct"], d["X"], d["B"], d["spd"]) \
            + (adla.gemm(d["X"], d["B"], d["spd"]),)
    if op == "syrk":
        return lambda: (adla.syrk(d["X"]), adla.syrk_backward(d["ct"], d["X"]))
    if op == "gesvd":
        def run():
            U, s, Vt = adla.gesvd(d["X"])
            return adla.gesvd_backward(d["ct"], d["ct_vec"], d["B"], U, s, Vt)
        return run
    if op == "gesv":
        def run():
            X = adla.gesv(d["X"], d["B"])
            return adla.gesv_backward(d["ct"], d["X"], d["B"], X)
        return run
    raise ValueError(op)


def numpy_case(op, d):
    """NumPy/SciPy: forward with NumPy's batched LAPACK, backward by the same formulas with
    batched ``numpy.linalg`` calls (NumPy has no batched triangular solve)."""
    inv, T = np.linalg.inv, lambda a: np.swapaxes(a, -1, -2)
    if op == "cholesky":
        def run():
            L = np.linalg.cholesky(d["spd"])
            P = np.tril(T(L) @ np.tril(d["ct"]))
            P -= 0.5 * np.tril(np.triu(P))
            Li = inv(L)
            G = T(Li) @ P @ Li
            return 0.5 * (G + T(G))
        return run
    if op == "potrf forward":
        import scipy.linalg
        return lambda: scipy.linalg.cholesky(d["spd"][0], lower=True)
    if op == "trsm":
        def run():
            X = np.linalg.solve(d["tri"], d["B"])
            Y = np.linalg.solve(T(d["tri"]), d["ct"])
            return np.tril(-Y @ T(X)), Y
        return run
    if op == "syevd":
        def run():
            lam, V = np.linalg.eigh(d["spd"])
            gap = lam[..., None, :] - lam[..., :, None]
            F = np.where(gap == 0, 0.0, 1.0 / np.where(gap == 0, 1.0, gap))
            inner = F * (T(V) @ d["ct"])
            diagonal = np.arange(lam.shape[-1])
            inner[..., diagonal, diagonal] += d["ct_vec"]
            return V @ inner @ T(V)
        return run
    if op == "gelqf":
        return lambda: np.linalg.qr(T(d["X"]))
    if op == "gemm":
        return lambda: (d["X"] @ d["B"] + d["spd"], d["ct"] @ T(d["B"]), T(d["X"]) @ d["ct"])
    if op == "syrk":
        return lambda: (d["X"] @ T(d["X"]), (d["ct"] + T(d["ct"])) @ d["X"])
    if op == "gesvd":                   # square: U (J S + diag(ds) + S K) Vt
        def run():
            U, s, Vt = np.linalg.svd(d["X"])
            gap = s[..., None, :] ** 2 - s[..., :, None] ** 2
            F = np.where(gap == 0, 0.0, 1.0 / np.where(gap == 0, 1.0, gap))
            J, K = T(U) @ d["ct"], Vt @ T(d["B"])
            inner = F * (J - T(J)) * s[..., None, :] + s[..., :, None] * (F * (K - T(K)))
            diagonal = np.arange(s.shape[-1])
            inner[..., diagonal, diagonal] += d["ct_vec"]
            return U @ inner @ Vt
        return run
    if op == "gesv":
        def run():
            X = np.linalg.solve(d["X"], d["B"])
            dB = np.linalg.solve(T(d["X"]), d["ct"])
            return -dB @ T(X), dB
        return run
    raise ValueError(op)


# ---- PyTorch and JAX ---------------------------------------------------------------------------

def torch_case(op, d):
    import torch
    t = {k: torch.from_numpy(v) for k, v in d.items()}

    def with_grad(names, forward, cotangents):
        def run():
            args = [t[k].detach().requires_grad_(True) for k in names]     # fresh leaves
            outs = forward(*args)
            outs = outs if isinstance(outs, tuple) else (outs,)
            torch.autograd.backward(outs, [t[c] for c in cotangents])
            return [a.grad for a in args]
        return run
    if isinstance(op, tuple):                   # ("adapted", names, forward, cotangents)
        return with_grad(*op[1:])
    if op == "cholesky":
        return with_grad(["spd"], torch.linalg.cholesky, ["ct"])
    if op == "potrf forward":
        return lambda: torch.linalg.cholesky(t["spd"][0])
    if op == "trsm":
        return with_grad(["tri", "B"],
                         lambda A, B: torch.linalg.solve_triangular(A, B, upper=False),
                         ["ct"])
    if op == "syevd":
        return with_grad(["spd"], lambda A: torch.linalg.eigh(A)[::-1], ["ct", "ct_vec"])
    if op == "gelqf":
        return with_grad(["X"], lambda A: torch.linalg.qr(A.mT), ["ct", "B"])
    if op == "gemm":
        return with_grad(["X", "B", "spd"], lambda A, B, C: A @ B + C, ["ct"])
    if op == "syrk":
        return with_grad(["X"], lambda A: A @ A.mT, ["ct"])
    if op == "gesvd":
        return with_grad(["X"], lambda A: torch.linalg.svd(A, full_matrices=False),
                         ["ct", "ct_vec", "B"])
    if op == "gesv":
        return with_grad(["X", "B"], torch.linalg.solve, ["ct"])
    raise ValueError(op)


def jax_case(op, d):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular
    j = {k: jnp.asarray(v) for k, v in d.items()}

    def with_vjp(names, forward, cotangents):
        def fwd_bwd(*args):
            outs, vjp = jax.vjp(forward, *args)
            cts = tuple(j[c] for c in cotangents)
            return outs, vjp(cts if isinstance(outs, tuple) else cts[0])
        compiled = jax.jit(fwd_bwd)

        return lambda: jax.block_until_ready(compiled(*[j[k] for k in names]))
    if isinstance(op, tuple):                   # ("adapted", names, forward, cotangents)
        return with_vjp(*op[1:])
    if op == "cholesky":
        return with_vjp(["spd"], jnp.linalg.cholesky, ["ct"])
    if op == "potrf forward":
        f = jax.jit(jnp.linalg.cholesky)
        return lambda: jax.block_until_ready(f(j["spd"][0]))
    if op == "trsm":
        return with_vjp(["tri", "B"], lambda A, B: solve_triangular(A, B, lower=True), ["ct"])
    if op == "syevd":
        return with_vjp(["spd"], lambda A: tuple(jnp.linalg.eigh(A))[::-1], ["ct", "ct_vec"])
    if op == "gelqf":
        return with_vjp(["X"], lambda A: tuple(jnp.linalg.qr(jnp.swapaxes(A, -1, -2))),
                        ["ct", "B"])
    if op == "gemm":
        return with_vjp(["X", "B", "spd"], lambda A, B, C: A @ B + C, ["ct"])
    if op == "syrk":
        return with_vjp(["X"], lambda A: A @ jnp.swapaxes(A, -1, -2), ["ct"])
    if op == "gesvd":
        return with_vjp(["X"], lambda A: tuple(jnp.linalg.svd(A, full_matrices=False)),
                        ["ct", "ct_vec", "B"])
    if op == "gesv":
        return with_vjp(["X", "B"], jnp.linalg.solve, ["ct"])
    raise ValueError(op)


def available_peers():
    peers = {"numpy": numpy_case}
    try:
        import torch  # noqa: F401
        peers["torch"] = torch_case
    except ImportError:
        pass
    try:
        import jax  # noqa: F401
        peers["jax"] = jax_case
    except ImportError:
        pass
    return peers


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = [f"adla {adla.__version__}", f"numpy {np.__version__}"]
    for name in ("scipy", "torch", "jax"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            pass
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def adla_torch_case(op, d):
    """adla through adla.torch, timed as torch_case times torch.linalg (autograd backward)."""
    import adla.torch as at
    ops = {"cholesky": (["spd"], at.potrf, ["ct"]),
           "trsm": (["tri", "B"], at.trsm, ["ct"]),
           "syevd": (["spd"], at.syevd, ["ct", "ct_vec"])}
    return _adapted_case(torch_case, ops, op, d)


def adla_jax_case(op, d):
    """adla through adla.jax, timed as jax_case times jax.numpy.linalg (jitted vjp)."""
    import adla.jax as aj
    ops = {"cholesky": (["spd"], aj.potrf, ["ct"]),
           "trsm": (["tri", "B"], aj.trsm, ["ct"]),
           "syevd": (["spd"], aj.syevd, ["ct", "ct_vec"])}
    return _adapted_case(jax_case, ops, op, d)


def _adapted_case(peer_case, ops, op, d):
    # The peer's own harness (with_grad / with_vjp) with adla's function put in its place.
    names, forward, cotangents = ops[op]
    return peer_case(("adapted", names, forward, cotangents), d)


# ---- forward mode ------------------------------------------------------------------------------

JVP_CASES = [(op, batch, n) for op in ("cholesky", "trsm", "syevd", "gelqf", "inverse", "gemm",
                                       "gesv", "gesvd")
             for batch, n in ((10000, 16), (1000, 64))]

# op -> (operand names, tangent names) in the arrays of inputs(); the jvp's own tangents.
JVP_OPERANDS = {"cholesky": (["spd"], ["ct"]), "trsm": (["tri", "B"], ["ct", "X"]),
                "syevd": (["spd"], ["ct"]), "gelqf": (["X"], ["ct"]),
                "inverse": (["spd"], ["ct"]), "gemm": (["X", "B"], ["ct", "spd"]),
                "gesv": (["X", "B"], ["ct", "spd"]), "gesvd": (["X"], ["ct"])}
ADLA_OPERATORS = {"cholesky": "potrf", "trsm": "trsm", "syevd": "syevd", "gelqf": "gelqf",
                  "inverse": "inverse", "gemm": "gemm2", "gesv": "gesv", "gesvd": "gesvd"}


def adla_forward_case(op, d):
    forward = getattr(adla, ADLA_OPERATORS[op])
    names, _ = JVP_OPERANDS[op]
    return lambda: forward(*[d[k] for k in names])


def adla_jvp_case(op, d):
    jvp = getattr(adla, ADLA_OPERATORS[op] + "_jvp")
    names, tangents = JVP_OPERANDS[op]
    return lambda: jvp(*[d[k] for k in names], *[d[k] for k in tangents])


def jax_jvp_case(op, d):
    """``jax.jvp`` of the matching ``jax.numpy`` function, jitted (x64)."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular
    functions = {"cholesky": jnp.linalg.cholesky,
                 "trsm": lambda A, B: solve_triangular(A, B, lower=True),
                 "syevd": jnp.linalg.eigh,
                 "gelqf": lambda A: jnp.linalg.qr(jnp.swapaxes(A, -1, -2)),
                 "inverse": jnp.linalg.inv, "gemm": jnp.matmul, "gesv": jnp.linalg.solve,
                 "gesvd": lambda A: jnp.linalg.svd(A, full_matrices=False)}
    names, tangents = JVP_OPERANDS[op]
    primals = tuple(jnp.asarray(d[k]) for k in names)
    directions = tuple(jnp.asarray(d[k]) for k in tangents)
    if op in ("cholesky", "syevd"):                 # symmetric tangents, as JAX assumes
        directions = tuple((t + jnp.swapaxes(t, -1, -2)) / 2 for t in directions)
    compiled = jax.jit(lambda p, t: jax.jvp(functions[op], p, t))
    return lambda: jax.block_until_ready(compiled(primals, directions))


def torch_jvp_case(op, d):
    """``torch.func.jvp`` of the matching ``torch.linalg`` function."""
    import torch
    from torch.func import jvp
    functions = {"cholesky": torch.linalg.cholesky,
                 "trsm": lambda A, B: torch.linalg.solve_triangular(A, B, upper=False),
                 "syevd": torch.linalg.eigh,
                 "gelqf": lambda A: torch.linalg.qr(A.transpose(-1, -2)),
                 "inverse": torch.linalg.inv, "gemm": torch.matmul, "gesv": torch.linalg.solve,
                 "gesvd": lambda A: torch.linalg.svd(A, full_matrices=False)}
    names, tangents = JVP_OPERANDS[op]
    primals = tuple(torch.from_numpy(d[k]) for k in names)
    directions = tuple(torch.from_numpy(d[k]) for k in tangents)
    if op in ("cholesky", "syevd"):
        directions = tuple((t + t.transpose(-1, -2)) / 2 for t in directions)
    return lambda: jvp(functions[op], primals, directions)


# The multiply-adds of each jvp rule over its forward's, n x n operands (n right-hand sides),
# leading terms: a floor on jvp / forward wherever the forward runs at the machine's
# arithmetic rate. potrf n^3/6, its tangent twice that; trsm n^3/2, the tangent's dT X and
# solve as much again each; LU inverse n^3, the tangent's two products 2 n^3; gemm2 one
# product, the tangent two; gesv LU + solve 4 n^3/3, the tangent's dA X and solve 2 n^3; gelqf
# Householder + Q 4 n^3/3, the tangent's solve, Q^T Y, X R and Q X 13 n^3/6. syevd and gesvd
# iterate, their tangents a few products: no fixed ratio.
JVP_ARITHMETIC = {"cholesky": 3.0, "trsm": 3.0, "syevd": None, "gelqf": 2.6, "inverse": 3.0,
                  "gemm": 3.0, "gesv": 2.5, "gesvd": None}


def jvp_rows(rounds=1, stream=sys.stdout):
    """adla's jvp against its forward and against JAX's jax.jvp, each in its own process."""
    header = ("| op (float64) | batch x n | adla forward ms | adla jvp ms | jvp / forward "
              "| rule's multiply-adds / forward's "
              "| jax.jvp ms | adla jvp / jax.jvp | torch.func.jvp ms | adla jvp / torch |")
    lines = [header, "|" + " --- |" * 10]
    stream.write("\n".join(lines) + "\n")
    peers = available_peers()
    libraries = (["adla forward", "adla jvp"] + (["jax jvp"] if "jax" in peers else [])
                 + (["torch jvp"] if "torch" in peers else []))
    for op, batch, n in JVP_CASES:           # each case takes seconds: a hang shows in 40
        t = timed_in_rounds(libraries, op, batch, n, 5, rounds, timeout=40)
        jax_ms, torch_ms = t.get("jax jvp", float("nan")), t.get("torch jvp", float("nan"))
        line = (f"| {ADLA_OPERATORS[op]} | {batch} x {n} | {t['adla forward']:.2f} | "
                f"{t['adla jvp']:.2f} | {t['adla jvp'] / t['adla forward']:.2f} | "
                f"{JVP_ARITHMETIC[op] or '-'} | {jax_ms:.2f} | {t['adla jvp'] / jax_ms:.2f} | {torch_ms:.2f} | "
                f"{t['adla jvp'] / torch_ms:.2f} |")
        lines.append(line)
        stream.write(line + "\n")
        stream.flush()
    return lines


def jvp_main(rounds=1, out=None):
    about = machine()
    print(f"machine: {about}\n")
    lines = jvp_rows(rounds)
    if out:
        with open(out, "w") as f:
            f.write("# adla forward-mode benchmarks\n\nGenerated by `python -m benchmarks "
                    "--jvp" + (f" --rounds {rounds}" if rounds > 1 else "") + "`.\n\n"
                    f"Machine: {about}.\n\n"
                    "Each operator's jvp (its outputs and their tangents, for a tangent of "
                    "every input) against its forward alone, and against JAX's jitted "
                    "`jax.jvp` of the matching `jax.numpy` function and PyTorch's "
                    "`torch.func.jvp` of the matching `torch.linalg` one, float64, "
                    "milliseconds: each library in its own process, best of 5 after at least "
                    "a second of untimed calls" + (f", best over {rounds} rounds that time "
                                                   "every library in turn" if rounds > 1 else "")
                    + ". JAX runs with OpenBLAS at one thread; its triangular solve and QR "
                    "still hang in SciPy's OpenBLAS on this machine (nan). On a shared 2-core "
                    "virtual machine absolute times drift by up to a half between runs; "
                    "compare within a row.\n\n"
                    "The column of multiply-adds is the arithmetic of the jvp's rule over the "
                    "forward's (leading terms, n x n operands; `JVP_ARITHMETIC` in "
                    "`benchmarks/__main__.py` spells them out). Where the forward runs at the "
                    "machine's arithmetic rate, as the small products, solves and factorisations "
                    "here do, that ratio is how much slower the jvp has to be; the jvp also "
                    "reads and writes twice the forward's arrays. syevd and gesvd iterate, and "
                    "their tangents cost a few products on top. potrf, trsm, gemm2 and gelqf "
                    "(up to order 48) run fused kernels, the tangent while the forward's result "
                    "is in cache; syevd and gesvd a tangent kernel per matrix after the "
                    "forward; inverse and gesv compose the batched kernels.\n\n" + "\n".join(lines) + "\n")
    return 0


CASE_MAKERS = {"adla": adla_case, "numpy": numpy_case, "torch": torch_case, "jax": jax_case,
               "adla.torch": adla_torch_case, "adla.jax": adla_jax_case,
               "adla forward": adla_forward_case, "adla jvp": adla_jvp_case,
               "jax jvp": jax_jvp_case, "torch jvp": torch_jvp_case}


def isolated(library, op, batch, n, repeats, timeout=90):
    """Time one library on one case in its own process, so that no library's thread pool (PyTorch's
    OpenMP, OpenBLAS) spins on the two cores while another is timed. JAX gets OpenBLAS at one
    thread: its batched LAPACK calls from its own threads into SciPy's OpenBLAS deadlock otherwise
    (seen here with trsm), and a run that still hangs is reported as NaN."""
    import subprocess
    env = dict(os.environ, **({"OPENBLAS_NUM_THREADS": "1"} if library.startswith("jax")
                              else {}))
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks", "--case",
                               f"{library},{op},{batch},{n},{repeats}"], env=env, cwd=ROOT,
                              timeout=timeout, capture_output=True, text=True, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        print(f"  ({library} hung on {op} {batch}x{n}: stopped after {timeout} s)",
              file=sys.stderr)
        return float("nan")


def timed_in_rounds(libraries, op, batch, n, repeats, rounds, timeout=90):
    """Each library's best time over ``rounds`` rounds that time every library in turn: on a
    shared machine the speed drifts over minutes, and alternating gives every library the same
    chance at the fast spells. A library that hung or failed is not tried again."""
    best = {}
    for _ in range(rounds):
        for name in libraries:
            if name in best and not np.isfinite(best[name]):
                continue
            try:
                t = isolated(name, op, batch, n, repeats, timeout)
            except Exception as error:          # a peer without this operation
                t = float("nan")
                print(f"  ({name} failed on {op}: {type(error).__name__})", file=sys.stderr)
            best[name] = t if not np.isfinite(t) else min(best.get(name, t), t)
    return best


def run(cases, repeats=5, rounds=1, stream=sys.stdout):
    peers = available_peers()
    names = list(peers)
    header = ("| op (fwd+bwd, float64) | batch x n | adla ms | "
              + " | ".join(f"{p} ms" for p in names)
              + " | adla / fastest measured peer | MXNet ms (issue) | adla / MXNet |")
    rule = "|" + " --- |" * (header.count("|") - 1)
    lines, ratios = [header, rule], []
    stream.write(header + "\n" + rule + "\n")
    for op, batch, n in cases:
        theirs = timed_in_rounds(["adla"] + names, op, batch, n, repeats, rounds)
        ours = theirs.pop("adla")
        mxnet = MXNET_MS.get((op, batch, n), float("nan"))
        rivals = [v for k, v in theirs.items() if k != "numpy" and np.isfinite(v)]
        if op == "potrf forward":
            rivals = [theirs["numpy"]]           # the target is scipy.linalg.cholesky
        ratio = ours / min(rivals, default=float("nan"))
        ratios.append((f"{op} {batch}x{n}", ratio))
        line = (f"| {op} | {batch} x {n} | {ours:.2f} | "
                + " | ".join(f"{theirs[k]:.2f}" for k in names)
                + f" | {ratio:.2f} | {mxnet:.1f} | {ours / mxnet:.2f} |")
        lines.append(line)
        stream.write(line + "\n")
        stream.flush()
    return lines, ratios


# ---- adla between NumPy/PyTorch calls, and the shared-operand paths ---------------------------

def per_call_ms(fn, calls=30, repeats=7):
    """Best over ``repeats`` of the mean time of ``calls`` calls in a row (ms), after a short
    warm-up: a loop, as a pipeline calls, rather than one call."""
    def loop():
        for _ in range(calls):
            fn()
    return best_of(loop, repeats, warm_up=0.1) / calls


# Settings that put the peers' idle threads to sleep at once: OpenBLAS's spin for about 0.1 s
# after each call (OPENBLAS_THREAD_TIMEOUT is log2 of the cycles they spin), GNU OpenMP's
# (PyTorch's) for a few milliseconds. Read when those libraries load, so set before the imports.
QUIET_PEERS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "passive"}


def mixed_loops_table(env=None):
    """The mixed-loop rows, run in a fresh process (with ``env`` added to its environment)."""
    import subprocess
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--mixed"], check=True, text=True,
                          capture_output=True, env=dict(os.environ, **(env or {})), cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    sys.stdout.write("\n" + done.stdout)
    sys.stdout.flush()
    return lines


def mixed_loops(stream=sys.stdout):
    """adla alternating with multithreaded NumPy (OpenBLAS) and PyTorch CPU calls in one process,
    as a pipeline does (kernel matrices in NumPy, then adla): each loop against the sum of the
    two calls timed alone. An OpenMP team that spins after adla's call, or waits for a thread
    that a spinning BLAS thread keeps off its core, shows here and not in the table above."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 8, 8))
    K = X @ np.swapaxes(X, -1, -2) + 8 * np.eye(8)
    M = rng.standard_normal((300, 300))
    Phi, Y = rng.standard_normal((2000, 300)), rng.standard_normal((300, 2000))
    L16 = adla.potrf(inputs("cholesky", 10000, 16)["spd"])
    ct16 = inputs("cholesky", 10000, 16)["ct"]
    ours = {"potrf 2000 x 8": lambda: adla.potrf(K),
            "potrf_backward 10000 x 16": lambda: adla.potrf_backward(ct16, L16)}
    theirs = {"numpy M @ M (300)": lambda: M @ M, "numpy Phi.T @ Y.T": lambda: Phi.T @ Y.T}
    try:
        import torch
        Mt = torch.from_numpy(M)
        theirs["torch.mm (300)"] = lambda: torch.mm(Mt, Mt)
    except ImportError:
        pass
    header = ("| adla call | other call | adla alone ms | other alone ms | adla then other ms | "
              "other then adla ms | worse / sum of alone |")
    lines = [header, "|" + " --- |" * 7]
    stream.write("\n".join(lines) + "\n")
    alone = {name: per_call_ms(fn) for name, fn in {**ours, **theirs}.items()}
    for a, fa in ours.items():
        for b, fb in theirs.items():
            ab = per_call_ms(lambda: (fa(), fb()))
            ba = per_call_ms(lambda: (fb(), fa()))
            line = (f"| {a} | {b} | {alone[a]:.3f} | {alone[b]:.3f} | {ab:.3f} | {ba:.3f} | "
                    f"{max(ab, ba) / (alone[a] + alone[b]):.2f} |")
            lines.append(line)
            stream.write(line + "\n")
            stream.flush()
    return lines


def shared_operand_rows(stream=sys.stdout):
    """Calls where one operand is shared by the batch or the right-hand side is thin, against
    the NumPy call or adla forward that does the matching work (the target: at most that)."""
    rng = np.random.default_rng(0)
    Phi, Y = rng.standard_normal((40, 8)), rng.standard_normal((2000, 40, 1))
    dD = rng.standard_normal((2000, 8, 1))
    T = np.tril(rng.standard_normal((40, 40))) + 8 * np.eye(40)
    B = rng.standard_normal((2000, 40, 1))
    XT = adla.trsm(T, B)
    n = 1000
    L = np.linalg.cholesky(np.cov(rng.standard_normal((n, 3 * n))) + np.eye(n))
    b, dx = rng.standard_normal((n, 1)), rng.standard_normal((n, 1))
    x = adla.potrs(L, b)
    X = rng.standard_normal((2000, 8, 8))
    K = X @ np.swapaxes(X, -1, -2) + 8 * np.eye(8)
    L8 = adla.potrf(K)
    rows = [
        ("gemm2(Phi, Y, transpose_a=True), Phi (40, 8), Y (2000, 40, 1)",
         lambda: adla.gemm2(Phi, Y, transpose_a=True), "np.matmul(Phi.T, Y)",
         lambda: np.matmul(Phi.T, Y)),
        ("gemm2_backward of the same", lambda: adla.gemm2_backward(dD, Phi, Y, transpose_a=True),
         "np.matmul(Phi, dD) and its sum", lambda: (np.matmul(Phi, dD),
                                                     np.matmul(Y, np.swapaxes(dD, 1, 2)).sum(0))),
        ("trsm(T, B), T (40, 40), B (2000, 40, 1)", lambda: adla.trsm(T, B),
         "np.matmul(T, B)", lambda: np.matmul(T, B)),
        ("trsm_backward of the same", lambda: adla.trsm_backward(XT, T, B, XT),
         "np.matmul(T.T, dX) and sum of dX X^T", lambda: (
             np.matmul(T.T, XT), np.matmul(XT, np.swapaxes(XT, 1, 2)).sum(0))),
        ("potrs_backward, n = 1000, k = 1", lambda: adla.potrs_backward(dx, L, b, x),
         "adla.trsm_backward, same shapes", lambda: adla.trsm_backward(dx, L, b, x)),
        ("sumlogdiag_backward, 2000 x 8", lambda: adla.sumlogdiag_backward(1.0, L8),
         "adla.potrf, same shapes", lambda: adla.potrf(K)),
    ]
    header = "| call | ms | matching call | ms | ratio |"
    lines = [header, "|" + " --- |" * 5]
    stream.write("\n" + "\n".join(lines) + "\n")
    for name, fn, ref_name, ref in rows:
        ours, theirs = per_call_ms(fn), per_call_ms(ref)
        line = f"| {name} | {ours:.3f} | {ref_name} | {theirs:.3f} | {ours / theirs:.2f} |"
        lines.append(line)
        stream.write(line + "\n")
        stream.flush()
    return lines


ADAPTER_CASES = [("cholesky", 10000, 16), ("trsm", 10000, 16), ("syevd", 10000, 16)]


def adapter_rows(rounds=1, stream=sys.stdout):
    """adla through adla.torch and adla.jax against the frameworks' own batched linalg with
    their autograd (same harness for both: torch.autograd.backward on fresh leaves, a jitted
    jax.vjp), and against adla called directly (the adapters' overhead). Each library in its own
    process, as in the main table."""
    header = ("| op (fwd+bwd, float64) | batch x n | adla ms | adla.torch ms | torch ms | "
              "torch / adla.torch | adla.torch / adla | adla.jax ms | jax ms | "
              "jax / adla.jax | adla.jax / adla |")
    lines = [header, "|" + " --- |" * 11]
    stream.write("\n" + "\n".join(lines) + "\n")
    libraries = ["adla", "adla.torch", "torch", "adla.jax", "jax"]
    for op, batch, n in ADAPTER_CASES:
        t = timed_in_rounds(libraries, op, batch, n, 5, rounds)
        line = (f"| {op} | {batch} x {n} | {t['adla']:.2f} | {t['adla.torch']:.2f} | "
                f"{t['torch']:.2f} | {t['torch'] / t['adla.torch']:.2f} | "
                f"{t['adla.torch'] / t['adla']:.2f} | {t['adla.jax']:.2f} | {t['jax']:.2f} | "
                f"{t['jax'] / t['adla.jax']:.2f} | {t['adla.jax'] / t['adla']:.2f} |")
        lines.append(line)
        stream.write(line + "\n")
        stream.flush()
    return lines


def _worker_cpu(client):
    """CPU seconds used so far by each worker process."""
    def cpu():
        import psutil
        times = psutil.Process().cpu_times()
        return times.user + times.system
    return client.run(cpu)


def _no_task_limit():
    from adla import _dask
    _dask._threads_per_task = lambda: None


def dask_rows(stream=sys.stdout, batch=200_000, n=16, chunk=25_000):
    """Cholesky fwd+bwd of ``batch`` matrices made on the workers of a LocalCluster (two
    single-threaded worker processes) against the same computation in this process, and the
    cores a one-thread worker uses with and without adla's one-thread-per-task rule."""
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    def pipeline(xp_random, X_chunks=None):
        X = xp_random.standard_normal((batch, n, n), **({"chunks": X_chunks} if X_chunks else {}))
        A = X @ X.transpose(0, 2, 1) / n + np.eye(n)
        L = adla.potrf(A)
        dA = adla.potrf_backward(L, L)
        return dA.sum()

    def local():
        return float(pipeline(np.random.default_rng(0)))

    lines = ["| run | seconds | ratio |", "| --- | --- | --- |"]
    stream.write("\n" + "\n".join(lines) + "\n")
    one = min(_timed(local) for _ in range(3))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        def distributed():
            return float(pipeline(da.random.default_rng(0), (chunk, n, n)).compute())
        distributed()                                       # warm the workers
        two = min(_timed(distributed) for _ in range(3))
    rows = [(f"one process, {batch} x {n} (NumPy random + adla, {_lapack.max_threads()} threads)",
             one, 1.0),
            (f"LocalCluster, 2 workers x 1 thread, made on the workers (chunks of {chunk})", two,
             two / one)]
    for name, seconds, ratio in rows:
        line = f"| {name} | {seconds:.2f} | {ratio:.2f} |"
        lines.append(line)
        stream.write(line + "\n")
        stream.flush()

    # Cores used by one single-threaded worker running adla tasks. Its environment lets OpenMP
    # and OpenBLAS use every core (distributed's nanny would set them to one thread by default;
    # a worker started otherwise, or a user's OMP_NUM_THREADS, does not).
    cores = str(os.cpu_count() or 1)
    lines += ["", f"| one worker, 1 thread, OMP_NUM_THREADS={cores} | wall s | worker CPU s | "
              "cores used |", "| --- | --- | --- | --- |"]
    stream.write("\n".join(lines[-3:]) + "\n")
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                      env={"OMP_NUM_THREADS": cores, "OPENBLAS_NUM_THREADS": cores}) as cluster, \
            Client(cluster) as client:
        A = (lambda X: X @ X.transpose(0, 2, 1) / n + np.eye(n))(
            da.random.default_rng(1).standard_normal((batch, n, n), chunks=(chunk, n, n)))
        A = A.persist()
        dask.distributed.wait(A)
        for label in ("adla's rule: one thread per task", "without it: adla's default threads"):
            if label.startswith("without"):
                client.run(_no_task_limit)
            work = adla.potrf_backward(adla.potrf(A), adla.potrf(A)).sum()
            before = sum(_worker_cpu(client).values())
            start = time.perf_counter()
            for _ in range(3):
                work.compute()
            wall = time.perf_counter() - start
            used = sum(_worker_cpu(client).values()) - before
            line = f"| {label} | {wall:.2f} | {used:.2f} | {used / wall:.2f} |"
            lines.append(line)
            stream.write(line + "\n")
            stream.flush()
    return lines


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plot(ratios, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels, values = zip(*ratios)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(labels) + 1))
    ax.barh(labels, values, color=["tab:green" if v < 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("adla time / fastest measured peer (PyTorch, JAX; < 1: adla faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU benchmark (CuPy arrays; benchmarks/gpu.py)")
    parser.add_argument("--budget", type=float,
                        help="with --gpu: seconds after which the remaining rows are skipped")
    parser.add_argument("--case", help=argparse.SUPPRESS)     # library,op,batch,n,repeats
    parser.add_argument("--mixed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--adapters", action="store_true",
                        help="only the adla.torch / adla.jax rows")
    parser.add_argument("--dask", action="store_true", help="only the dask rows")
    parser.add_argument("--jvp", action="store_true", help="only the forward-mode rows")
    parser.add_argument("--operators", action="store_true",
                        help="every operator, float64 and float32, with the machine bound and "
                             "peak memory (benchmarks/operators.py)")
    parser.add_argument("--only", help="with --operators or --gpu: these operators "
                                       "(comma-separated)")
    parser.add_argument("--operator-case", help=argparse.SUPPRESS)     # library,op
    parser.add_argument("--scaling-case", help=argparse.SUPPRESS)      # library
    parser.add_argument("--rounds", type=int, default=1,
                        help="time every library this many times in turn, keep each one's best")
    parser.add_argument("--out", help="write the table as Markdown here")
    parser.add_argument("--plot", help="write a PNG of the ratios here")
    args = parser.parse_args(argv)
    if args.case:
        library, op, batch, n, repeats = args.case.split(",")
        if library.startswith("torch"):
            import torch
            torch.set_num_threads(os.cpu_count() or 1)
        print(best_of(CASE_MAKERS[library](op, inputs(op, int(batch), int(n))), int(repeats)))
        return 0
    if args.mixed:
        mixed_loops()
        return 0
    if args.adapters:
        adapter_rows(args.rounds)
        return 0
    if args.dask:
        dask_rows()
        return 0
    if args.jvp:
        return jvp_main(args.rounds, args.out)
    if args.operator_case or args.scaling_case or args.operators:
        from . import operators
        if args.operator_case:
            operators.measure(*args.operator_case.split(","))
            return 0
        if args.scaling_case:
            operators.scaling_case(args.scaling_case)
            return 0
        return operators.main(args.out, args.plot, args.only and args.only.split(","),
                              args.rounds)
    if args.gpu:
        from . import gpu
        return gpu.main(args.out, args.budget, args.only.split(",") if args.only else None)
    about = machine()
    print(f"machine: {about}\nOMP threads: {_lapack.max_threads()}\n")
    lines, ratios = run(QUICK if args.quick else CASES, rounds=args.rounds)
    mixed = mixed_loops_table()
    quiet = mixed_loops_table(QUIET_PEERS)
    shared = shared_operand_rows()
    adapters = adapter_rows(args.rounds) if not args.quick else []
    on_dask = dask_rows() if not args.quick else []
    if args.out:
        with open(args.out, "w") as f:
            f.write("# adla benchmarks\n\nGenerated by `python -m benchmarks"
                    + (" --quick" if args.quick else "")
                    + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
                    + f"`.\n\nMachine: {about}.\n\n"
                    "Forward+backward, float64, best of 5 after at least a second of untimed "
                    "calls" + (f" (and best over {args.rounds} rounds that time every library "
                               "in turn)" if args.rounds > 1 else "")
                    + ", milliseconds (`potrf forward`: forward "
                    "only, against `scipy.linalg.cholesky`). The first ratio compares adla with "
                    "the fastest of PyTorch and JAX measured in the same run, each library in its "
                    "own process (JAX with OpenBLAS at one thread: its batched trsm deadlocks in "
                    "SciPy's OpenBLAS otherwise; a hang is reported as nan); the MXNet "
                    "figures are the issue's, measured on another machine of this kind (MXNet "
                    "does not install on current Pythons). The NumPy column is the same "
                    "computation with batched `numpy.linalg` calls. adla ran with its output "
                    f"cache at {_memory.limit_megabytes()} MiB "
                    "(`ADLA_CPU_CACHE_MB`; README, \"Output memory\"): from the second call on, "
                    "its outputs reuse memory freed by the previous call's instead of faulting "
                    "in fresh pages. On a shared 2-core virtual "
                    "machine the absolute times of one case drift by up to a half between "
                    "runs, the peers' as much as adla's; compare ratios within a run.\n\n"
                    + "\n".join(lines) + "\n\n## adla between NumPy and PyTorch calls\n\n"
                    "Per iteration of a loop that alternates an adla call with a multithreaded "
                    "NumPy (OpenBLAS) or PyTorch call in one process, both orders, against the "
                    "two timed alone (best of 7 runs of 30 iterations): the speed a pipeline "
                    "gets, which the table above (each library alone) cannot show.\n\n"
                    + "\n".join(mixed) + "\n\nThe same with the peers' idle threads "
                    "sleeping at once (`" + " ".join(f"{k}={v}" for k, v in QUIET_PEERS.items())
                    + "` in the environment): what is left above is their spinning, which "
                    "takes a core from whatever runs next (README, \"Threads\").\n\n"
                    + "\n".join(quiet) + "\n\n## Shared operands, thin right-hand sides\n\n"
                    "A matrix shared by the whole batch (read once for 8 right-hand sides by "
                    "the interleaved trsm, one BLAS call for the batch elsewhere), a "
                    "single right-hand side, a diagonal gradient: each against the call doing "
                    "the matching work (best of 7 runs of 30 calls).\n\n"
                    + "\n".join(shared) + "\n"
                    + ("\n## Through adla.torch and adla.jax\n\n"
                       "Forward+backward through the adapters (a leaf tensor and "
                       "`torch.autograd.backward`; a jitted `jax.vjp`), against the frameworks' "
                       "own batched linear algebra in the same harness and against adla called "
                       "directly (the adapter's overhead); each library in its own process, "
                       "JAX with x64. adla.jax runs as XLA custom calls on JAX's own buffers "
                       "(no copies).\n\n"
                       + "\n".join(adapters) + "\n" if adapters else "")
                    + ("\n## Dask\n\nCholesky forward+backward of matrices made on the "
                       "workers of a LocalCluster (`dask.array.random`, two single-threaded "
                       "worker processes) against the same computation with NumPy in this "
                       "process (best of 3, seconds); then the cores a one-thread worker uses "
                       "running adla tasks, with adla's one-thread-per-task rule and without "
                       "it (docs/frameworks.md, \"Threads\").\n\n"
                       + "\n".join(on_dask) + "\n" if on_dask else "")
                    + "\nForward mode (the jvps): `docs/jvp-benchmarks.md` "
                    "(`python -m benchmarks --jvp`).\n")
    if args.plot:
        plot(ratios, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
