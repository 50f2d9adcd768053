"""Every operator, forward+backward, in both precisions, against PyTorch and JAX and against the
machine's own limit: ``python -m benchmarks --operators [--out MD] [--plot PNG]``.

Cases and inputs come from the operator declarations (``adla._spec.SPECS``): every operator runs
its forward and then its backward on cotangents for every output, at a batch of small matrices,
a batch of medium ones and one large matrix. The peers compute the same function with their own
linear algebra and autograd (``PEER_FUNCTIONS``, one entry per operator, written once against a
small table of primitives that PyTorch and JAX each fill in).

The machine bound of a case is the larger of its flops over the DGEMM (SGEMM) rate and its
bytes over the copy bandwidth, both measured here on the machine the benchmark runs on: no
implementation can beat it, and the ratio to it says how much room is left. Peak memory is the
resident memory one forward+backward call adds, measured in a fresh process after a warm-up
call (glibc's mmap threshold fixed, so that freed arrays leave the resident set as they are
freed); adla's output cache holds freed outputs between calls, and what it holds is reported
in its own column.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

# Subprocesses run ``python -m benchmarks`` from the directory that holds this package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZES = [(10000, 16), (1000, 64), (1, 1000)]
SMALL = (1, 4)          # one small matrix: what a call itself costs (its own table)
SMALL_CALLS = 100       # timed as a loop of this many calls
MEMORY_SIZES = [(10000, 16), (1000, 64)]
DTYPES = ["float64", "float32"]
LIBRARIES = ["adla", "torch", "jax"]

# Floating-point operations of forward+backward for n x n operands (k = n), the counts of the
# algorithms adla runs (LAPACK's operation counts for the factorisations; the backward formulas
# of docs/api.md), as multiples of n^3. Zero: the operator moves memory and does no arithmetic
# worth counting, so only the bandwidth bounds it.
FLOPS_N3 = {"gemm": 6, "gemm2": 6, "syrk": 3, "trmm": 3, "trsm": 3, "potrf": 1,
            "potri": 11 / 3, "potrs": 5, "sumlogdiag": 0, "gelqf": 23 / 3, "geqrf": 23 / 3,
            "syevd": 10, "inverse": 6, "det": 8 / 3, "slogdet": 8 / 3, "gesvd": 20,
            "gesv": 22 / 3, "extractdiag": 0, "makediag": 0, "extracttrian": 0,
            "maketrian": 0}


# ---- inputs, from the declarations ------------------------------------------------------------

def _matrix(kind, rng, batch, n):
    X = rng.standard_normal((batch, n, n))
    if kind == "spd":
        return X @ np.swapaxes(X, -1, -2) / n + np.eye(n)
    if kind == "lower":
        return np.tril(X) / np.sqrt(n) + 2 * np.eye(n)
    if kind == "invertible":         # eigenvalues in a disc around 1 (moderate determinants),
        A = np.eye(n) + X / (2 * np.sqrt(n))    # rows shuffled: partial pivoting swaps rows at
        rows = rng.permuted(np.broadcast_to(np.arange(n), (batch, n)), axis=-1)  # most steps,
        return np.ascontiguousarray(A[np.arange(batch)[:, None], rows])    # as on most matrices
    return X


def _kind(op, operand):
    from adla._spec import SYMMETRIC, TRIANGULAR
    if operand.reads == SYMMETRIC:
        return "spd"
    if operand.reads == TRIANGULAR:
        return "lower"
    if op in ("inverse", "det", "slogdet", "gesv") and operand.name == "A":
        return "invertible"
    return "general"


def operands(op, batch, n, dtype, seed=0):
    """The inputs of ``op`` at ``batch`` x ``n`` (every core dimension n; a packed triangle's
    length n(n+1)/2), in declaration order, and cotangents for its outputs."""
    import adla
    from adla._spec import SPECS
    spec = SPECS[op]
    rng = np.random.default_rng([seed, batch, n])
    sizes = {"t": n * (n + 1) // 2}
    inputs = []
    for operand in spec.inputs:
        if len(operand.core) == 2:
            inputs.append(_matrix(_kind(op, operand), rng, batch, n).astype(dtype))
        else:
            shape = tuple(sizes.get(c, n) for c in operand.core)
            inputs.append(rng.standard_normal((batch,) + shape).astype(dtype))
    outputs = getattr(adla, op)(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    cotangents = [rng.standard_normal(outputs[[o.name for o in spec.outputs].index(c.name)].shape)
                  .astype(dtype) for c in spec.cotangent_outputs]
    return inputs, cotangents


def moved_bytes(op, batch, n, dtype):
    """Bytes read and written by forward+backward at the least: inputs and outputs once, the
    cotangents and the primals the backward takes, and the gradients."""
    import adla
    from adla._spec import SPECS
    spec = SPECS[op]
    inputs, cotangents = operands(op, min(batch, 2), n, dtype)
    outputs = getattr(adla, op)(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    values = {**{o.name: a for o, a in zip(spec.inputs, inputs)},
              **{o.name: a for o, a in zip(spec.outputs, outputs)}}
    arrays = (list(inputs) + list(outputs) + list(cotangents)
              + [values[p] for p in spec.backward_primals]
              + [values[name] for name in spec.differentiable])
    return sum(a.nbytes for a in arrays) / min(batch, 2) * batch


# ---- the computations --------------------------------------------------------------------------

def adla_case(op, inputs, cotangents):
    import adla
    from adla._spec import SPECS
    spec = SPECS[op]
    forward, backward = getattr(adla, op), getattr(adla, op + "_backward")

    def run():
        outputs = forward(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        values = {**{o.name: a for o, a in zip(spec.inputs, inputs)},
                  **{o.name: a for o, a in zip(spec.outputs, outputs)}}
        return backward(*cotangents, *[values[p] for p in spec.backward_primals])
    return run


# Each operator's function in the primitives of PEER_PRIMITIVES: its inputs in declaration order
# in, the outputs that take cotangents out (adla's conventions: syevd's eigenvectors in rows,
# gelqf's A = L Q).
PEER_FUNCTIONS = {
    "gemm": lambda p, A, B, C: (A @ B + C,),
    "gemm2": lambda p, A, B: (A @ B,),
    "syrk": lambda p, A: (A @ p.T(A),),
    "trmm": lambda p, A, B: (p.tril(A) @ B,),
    "trsm": lambda p, A, B: (p.lower_solve(A, B),),
    "potrf": lambda p, A: (p.cholesky(A),),
    "potri": lambda p, L: (p.cholesky_inverse(L),),
    "potrs": lambda p, L, B: (p.cholesky_solve(L, B),),
    "sumlogdiag": lambda p, A: (p.log(p.diagonal(A)).sum(-1),),
    "gelqf": lambda p, A: tuple(p.T(x) for x in p.qr(p.T(A))),
    "geqrf": lambda p, A: p.qr(A),
    "syevd": lambda p, A: (lambda lam, V: (p.T(V), lam))(*p.eigh(A)),
    "inverse": lambda p, A: (p.inv(A),),
    "det": lambda p, A: (p.det(A),),
    "slogdet": lambda p, A: (p.slogdet(A)[1],),
    "gesvd": lambda p, A: p.svd(A),
    "gesv": lambda p, A, B: (p.solve(A, B),),
    "extractdiag": lambda p, A: (p.diagonal(A),),
    "makediag": lambda p, d: (p.diag_embed(d),),
    "extracttrian": lambda p, A: (p.lower_packed(A),),
    "maketrian": lambda p, v: (p.from_lower_packed(v),),
}


class TorchPrimitives:
    def __init__(self):
        import torch
        self.torch = torch

    def T(self, x):
        return x.transpose(-1, -2)

    def tril(self, x):
        return self.torch.tril(x)

    def log(self, x):
        return self.torch.log(x)

    def diagonal(self, x):
        return self.torch.diagonal(x, dim1=-2, dim2=-1)

    def diag_embed(self, d):
        return self.torch.diag_embed(d)

    def lower_solve(self, A, B):
        return self.torch.linalg.solve_triangular(A, B, upper=False)

    def cholesky(self, A):
        return self.torch.linalg.cholesky(A)

    def cholesky_inverse(self, L):
        return self.torch.cholesky_inverse(L)

    def cholesky_solve(self, L, B):
        return self.torch.cholesky_solve(B, L)

    def qr(self, A):
        return tuple(self.torch.linalg.qr(A))

    def eigh(self, A):
        return tuple(self.torch.linalg.eigh(A))

    def inv(self, A):
        return self.torch.linalg.inv(A)

    def det(self, A):
        return self.torch.linalg.det(A)

    def slogdet(self, A):
        return tuple(self.torch.linalg.slogdet(A))

    def svd(self, A):
        return tuple(self.torch.linalg.svd(A, full_matrices=False))

    def solve(self, A, B):
        return self.torch.linalg.solve(A, B)

    def lower_packed(self, A):
        rows, cols = self.torch.tril_indices(A.shape[-1], A.shape[-1])
        return A[..., rows, cols]

    def from_lower_packed(self, v):
        n = int((np.sqrt(8 * v.shape[-1] + 1) - 1) / 2)
        rows, cols = self.torch.tril_indices(n, n)
        A = v.new_zeros(v.shape[:-1] + (n, n))
        A[..., rows, cols] = v
        return A


class JaxPrimitives:
    def __init__(self):
        import jax.numpy as jnp
        from jax.scipy.linalg import solve_triangular
        self.jnp, self.solve_triangular = jnp, solve_triangular

    def T(self, x):
        return self.jnp.swapaxes(x, -1, -2)

    def tril(self, x):
        return self.jnp.tril(x)

    def log(self, x):
        return self.jnp.log(x)

    def diagonal(self, x):
        return self.jnp.diagonal(x, axis1=-2, axis2=-1)

    def diag_embed(self, d):
        return d[..., None] * self.jnp.eye(d.shape[-1], dtype=d.dtype)

    def lower_solve(self, A, B, trans=0):
        return self.solve_triangular(A, B, lower=True, trans=trans)

    def cholesky(self, A):
        return self.jnp.linalg.cholesky(A)

    def cholesky_inverse(self, L):
        Linv = self.lower_solve(L, self.jnp.broadcast_to(self.jnp.eye(L.shape[-1], dtype=L.dtype),
                                                         L.shape))
        return self.T(Linv) @ Linv

    def cholesky_solve(self, L, B):
        return self.lower_solve(L, self.lower_solve(L, B), trans=1)

    def qr(self, A):
        return tuple(self.jnp.linalg.qr(A))

    def eigh(self, A):
        return tuple(self.jnp.linalg.eigh(A))

    def inv(self, A):
        return self.jnp.linalg.inv(A)

    def det(self, A):
        return self.jnp.linalg.det(A)

    def slogdet(self, A):
        return tuple(self.jnp.linalg.slogdet(A))

    def svd(self, A):
        return tuple(self.jnp.linalg.svd(A, full_matrices=False))

    def solve(self, A, B):
        return self.jnp.linalg.solve(A, B)

    def lower_packed(self, A):
        rows, cols = np.tril_indices(A.shape[-1])
        return A[..., rows, cols]

    def from_lower_packed(self, v):
        n = int((np.sqrt(8 * v.shape[-1] + 1) - 1) / 2)
        rows, cols = np.tril_indices(n)
        return self.jnp.zeros(v.shape[:-1] + (n, n), v.dtype).at[..., rows, cols].set(v)


def torch_case(op, inputs, cotangents):
    import torch
    primitives = TorchPrimitives()
    tensors = [torch.from_numpy(a) for a in inputs]
    cts = [torch.from_numpy(c) for c in cotangents]

    def run():
        leaves = [t.detach().requires_grad_(True) for t in tensors]
        torch.autograd.backward(PEER_FUNCTIONS[op](primitives, *leaves), cts)
        return [leaf.grad for leaf in leaves]
    return run


def jax_case(op, inputs, cotangents):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    primitives = JaxPrimitives()
    arrays = [jnp.asarray(a) for a in inputs]
    cts = tuple(jnp.asarray(c) for c in cotangents)

    def fwd_bwd(*args):
        outs, vjp = jax.vjp(lambda *a: PEER_FUNCTIONS[op](primitives, *a), *args)
        return outs, vjp(cts)
    compiled = jax.jit(fwd_bwd)
    return lambda: jax.block_until_ready(compiled(*arrays))


CASES = {"adla": adla_case, "torch": torch_case, "jax": jax_case}


# ---- one library, one operator, in its own process ---------------------------------------------

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_added_bytes(fn):
    """Resident memory one call of ``fn`` adds at its peak (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                   # reset the peak (VmHWM) to the current size
    except OSError:
        return float("nan")
    before = _status("VmRSS")
    fn()
    return _status("VmHWM") - before


def best_of(fn, repeats=5, warm_up=0.5):
    from .__main__ import best_of as timed        # the suite's one timing rule
    return timed(fn, repeats, warm_up)


def measure(library, op, mode="time"):
    """Rows for one library on one operator, printed as JSON lines as they come (the parent keeps
    what arrived if a peer hangs): ``mode`` "time", ``{dtype, batch, n, ms}`` for every size and
    dtype; "memory", ``{dtype, batch, n, peak_mb, kept_mb}`` at MEMORY_SIZES in float64, to be
    run with glibc's mmap threshold fixed (which would slow the timings: every large temporary
    faults in fresh pages)."""
    from adla import _memory
    if library == "torch":
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    cases = ([(d, b, n) for d in DTYPES for b, n in SIZES + [SMALL]] if mode == "time"
             else [("float64", b, n) for b, n in MEMORY_SIZES])
    for dtype, batch, n in cases:
        inputs, cotangents = operands(op, batch, n, dtype)
        fn = CASES[library](op, inputs, cotangents)
        if mode == "time" and (batch, n) == SMALL:
            row = dict(ms=best_of(lambda: [fn() for _ in range(SMALL_CALLS)]) / SMALL_CALLS)
        elif mode == "time":
            row = dict(ms=best_of(fn))
        else:
            limit = _memory.limit_megabytes()
            if library == "adla":           # the peak without the cache; what it keeps, apart
                _memory.set_limit(0)
            fn()                                          # compile, fault in, fill caches
            peak = peak_added_bytes(fn) / 2**20
            _memory.set_limit(limit)
            fn()
            fn()
            kept = _memory.kept_megabytes() if library == "adla" else float("nan")
            row = dict(peak_mb=peak, kept_mb=kept)
        print(json.dumps(dict(dtype=dtype, batch=batch, n=n, **row)), flush=True)


def isolated(library, op, timeout=90, modes=("time", "memory")):
    """``measure`` in fresh processes, the timings and then the memory; a peer that hangs (JAX's
    triangular solves and QR in SciPy's OpenBLAS on some machines) keeps the rows it printed,
    the rest are missing."""
    found = {}
    for mode in modes:
        env = dict(os.environ, **({"OPENBLAS_NUM_THREADS": "1"} if library == "jax" else {}),
                   **({"MALLOC_MMAP_THRESHOLD_": "131072"} if mode == "memory" else {}))
        command = [sys.executable, "-m", "benchmarks", "--operator-case",
                   f"{library},{op},{mode}"]
        hung = False
        try:
            done = subprocess.run(command, env=env, cwd=ROOT, timeout=timeout,
                                  capture_output=True, text=True)
            out, failed = done.stdout, done.returncode != 0 and done.stderr.strip().splitlines()
        except subprocess.TimeoutExpired as stopped:
            out = (stopped.stdout.decode() if isinstance(stopped.stdout, bytes)
                   else stopped.stdout or "")
            failed, hung = [f"stopped after {timeout} s"], True
        if failed:
            print(f"  ({library} on {op}, {mode}: {failed[-1]})", file=sys.stderr)
        for line in out.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                found.setdefault((r["dtype"], r["batch"], r["n"]), {}).update(r)
        if hung:
            break
    return found


# ---- the machine ------------------------------------------------------------------------------

def machine_rates():
    """``{dtype: (gemm flops per second, copy bytes per second)}``, measured here: the best of
    a few 2048 x 2048 matrix products on all cores, and of copies of 256 MB arrays (bytes read
    plus written)."""
    rates = {}
    for dtype in DTYPES:
        a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(dtype)
        seconds = best_of(lambda: a @ a, repeats=5, warm_up=0.5) / 1e3
        big = np.ones(2**28 // np.dtype(dtype).itemsize, dtype)
        out = np.empty_like(big)
        copy = best_of(lambda: np.copyto(out, big), repeats=5, warm_up=0.2) / 1e3
        rates[dtype] = (2 * 2048**3 / seconds, 2 * big.nbytes / copy)
    return rates


def bound_ms(op, batch, n, dtype, rates):
    flops_rate, bandwidth = rates[dtype]
    return 1e3 * max(FLOPS_N3[op] * n**3 * batch / flops_rate,
                     moved_bytes(op, batch, n, dtype) / bandwidth)


# ---- the table and the scaling plot ------------------------------------------------------------

def in_rounds(op, rounds):
    """``isolated`` for every library, the timings ``rounds`` times with the libraries in turn
    (each case's best kept: on a shared machine a slow spell then hits every library alike),
    the memory once."""
    found = {library: isolated(library, op) for library in LIBRARIES}
    for _ in range(rounds - 1):
        for library in LIBRARIES:
            for key, row in isolated(library, op, modes=("time",)).items():
                best = found[library].setdefault(key, {})
                best["ms"] = min(best.get("ms", float("inf")), row["ms"])
    return found


def best_rates(*measured):
    """The best of several ``machine_rates()``, dtype by dtype: a slow spell of the shared machine
    during one measurement (DGEMM at half its rate, once) would halve every bound."""
    return {dtype: tuple(max(m[dtype][i] for m in measured) for i in range(2))
            for dtype in measured[0]}


def fastest_peer(times):
    """The least of the peers' times in ``times`` (a library -> time mapping; NaN: the peer hung
    or failed), NaN if none ran."""
    return min([times[p] for p in ("torch", "jax") if np.isfinite(times[p])],
               default=float("nan"))


def table_line(op, dtype, batch, n, ms, rates):
    bound = bound_ms(op, batch, n, dtype, rates)
    return (f"| {op} | {batch} x {n} | {dtype} | {ms['adla']:.3g} | "
            f"{ms['torch']:.3g} | {ms['jax']:.3g} | "
            f"{ms['adla'] / fastest_peer(ms):.2f} | {bound:.3g} | "
            f"{ms['adla'] / bound:.1f} |")


PEER_GEMM = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
for dtype in (torch.float64, torch.float32):
    a = torch.randn(2048, 2048, dtype=dtype)
    for _ in range(3):
        a @ a
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    print(2 * 2048**3 / best)
print(torch.backends.mkl.is_available())
"""


def peer_gemm_rates(timeout=120):
    """PyTorch's DGEMM and SGEMM rates (2048 x 2048, all cores) in a process of its own, and
    whether its BLAS is MKL: where a peer's BLAS outruns the OpenBLAS that adla calls through
    SciPy, a single large matrix, which runs at the BLAS's rate, can only be as slow as that
    ratio. None where PyTorch is missing or fails."""
    try:
        out = subprocess.run([sys.executable, "-c", PEER_GEMM, str(os.cpu_count() or 1)],
                             timeout=timeout, capture_output=True, text=True).stdout.split()
        return float(out[0]), float(out[1]), out[2] == "True"
    except (subprocess.TimeoutExpired, IndexError, ValueError):
        return None


# The speed targets the page is read against: name, which rows, measured against the fastest
# peer ("peer") or the machine bound ("bound"), and the largest ratio that meets it.
TARGETS = [
    ("Cholesky, 1000 x 64", lambda op, b, n: op == "potrf" and (b, n) == (1000, 64), "peer", 0.25),
    ("Cholesky, every size", lambda op, b, n: op == "potrf", "bound", 2.0),
    ("trsm, 10000 x 16", lambda op, b, n: op == "trsm" and (b, n) == (10000, 16), "peer", 0.2),
    ("trsm, 1000 x 64", lambda op, b, n: op == "trsm" and (b, n) == (1000, 64), "peer", 0.3),
    ("gelqf, 1000 x 64", lambda op, b, n: op == "gelqf" and (b, n) == (1000, 64), "peer", 0.4),
    ("det, batched", lambda op, b, n: op == "det" and b > 1, "peer", 0.5),
    ("det, one matrix", lambda op, b, n: op == "det" and b == 1, "peer", 1.0),
    ("every operator, batched (n <= 64)", lambda op, b, n: b > 1 and n <= 64, "peer", 0.5),
    ("every operator, one matrix", lambda op, b, n: b == 1, "peer", 1.0),
]


def targets_table(records, rates):
    """TARGETS evaluated on the table's rows, dtype by dtype: how many rows meet each, and the
    rows that miss with their ratio and, against a peer, the bound over the fastest peer: the
    least ratio any implementation could reach on this machine (a miss whose floor is above
    the target cannot be met here)."""
    lines = ["| target | at most | float64 rows met | float32 rows met | misses: ratio "
             "(bound / fastest peer) |", "|" + " --- |" * 5]
    for name, matches, against, limit in TARGETS:
        met, misses = {}, []
        for dtype in DTYPES:
            rows = [(op, b, n, ms) for op, d, b, n, ms in records
                    if d == dtype and matches(op, b, n)]
            count = total = 0
            for op, b, n, ms in rows:
                bound = bound_ms(op, b, n, dtype, rates)
                peer = fastest_peer(ms)
                ratio = ms["adla"] / (peer if against == "peer" else bound)
                if np.isnan(ratio):             # no peer ran it (or adla did not)
                    continue
                total += 1
                if ratio <= limit:
                    count += 1
                    continue
                floor = f" ({bound / peer:.2f})" if against == "peer" else ""
                misses.append(f"{op} {b} x {n} {dtype} {ratio:.3f}{floor}")
            met[dtype] = f"{count} of {total}"
        reference = "the fastest peer" if against == "peer" else "the bound"
        lines.append(f"| {name} | {limit:g} x {reference} | {met['float64']} | "
                     f"{met['float32']} | {'; '.join(misses) or '-'} |")
    return lines


def write_rates(stream, rates):
    stream.write("machine: DGEMM %.1f GFLOP/s, SGEMM %.1f GFLOP/s, copy %.1f GB/s\n\n"
                 % (rates["float64"][0] / 1e9, rates["float32"][0] / 1e9,
                    rates["float64"][1] / 1e9))


def rows(ops=None, stream=sys.stdout, rounds=1):
    """The table's lines (bounds from the machine's rates measured before and after the
    timings, the best of both) and the memory table's."""
    from adla._spec import SPECS
    rates = machine_rates()
    write_rates(stream, rates)
    header = ("| operator | batch x n | dtype | adla ms | torch ms | jax ms "
              "| adla / fastest peer | bound ms | adla / bound |")
    lines = [header, "|" + " --- |" * 9]
    memory = ["| operator | batch x n | adla MB | adla's cache holds MB | torch MB | jax MB |",
              "|" + " --- |" * 6]
    records = []
    small = ["| operator | dtype | adla µs | torch µs | jax µs | adla / fastest peer |",
             "|" + " --- |" * 6]
    stream.write("\n".join(lines) + "\n")
    for op in ops or SPECS:
        found = in_rounds(op, rounds)
        for dtype in DTYPES:
            us = {lib: 1e3 * found[lib].get((dtype,) + SMALL, {}).get("ms", float("nan"))
                  for lib in LIBRARIES}
            small.append(f"| {op} | {dtype} | {us['adla']:.3g} | {us['torch']:.3g} | "
                         f"{us['jax']:.3g} | {us['adla'] / fastest_peer(us):.2f} |")
        for dtype in DTYPES:
            for batch, n in SIZES:
                key = (dtype, batch, n)
                ms = {lib: found[lib].get(key, {}).get("ms", float("nan")) for lib in LIBRARIES}
                records.append((op, dtype, batch, n, ms))
                stream.write(table_line(*records[-1], rates) + "\n")
                stream.flush()
                if dtype == "float64" and (batch, n) in MEMORY_SIZES:
                    mb = {lib: found[lib].get(key, {}).get("peak_mb", float("nan"))
                          for lib in LIBRARIES}
                    kept = found["adla"].get(key, {}).get("kept_mb", float("nan"))
                    memory.append(f"| {op} | {batch} x {n} | {mb['adla']:.1f} | {kept:.1f} | "
                                  f"{mb['torch']:.1f} | {mb['jax']:.1f} |")
    rates = best_rates(rates, machine_rates())
    write_rates(stream, rates)
    lines += [table_line(*record, rates) for record in records]
    return rates, lines, memory, records, small


SCALING_BATCHES = [1, 10, 100, 1000, 10000, 100000]
SCALING_ORDERS = [4, 8, 16, 32, 64, 128, 256, 512]


def scaling_case(library):
    """Cholesky forward+backward, float64: against the batch at n = 16, and against n for one
    matrix; JSON lines ``{axis, x, ms}``."""
    sweeps = [("batch", [(b, 16) for b in SCALING_BATCHES]),
              ("n", [(1, n) for n in SCALING_ORDERS])]
    for axis, sizes in sweeps:
        for batch, n in sizes:
            inputs, cotangents = operands("potrf", batch, n, "float64")
            fn = CASES[library]("potrf", inputs, cotangents)
            row = dict(axis=axis, x=batch if axis == "batch" else n,
                       ms=best_of(fn, repeats=5, warm_up=0.3))
            print(json.dumps(row), flush=True)


def scaling(path, rates, timeout=300):
    results = {}
    for library in LIBRARIES:
        env = dict(os.environ, **({"OPENBLAS_NUM_THREADS": "1"} if library == "jax" else {}))
        try:
            out = subprocess.run([sys.executable, "-m", "benchmarks", "--scaling-case", library],
                                 env=env, cwd=ROOT, timeout=timeout, capture_output=True,
                                 text=True).stdout
        except subprocess.TimeoutExpired:
            continue
        results[library] = [json.loads(line) for line in out.splitlines()
                            if line.startswith("{")]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return results
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, axis, label in zip(axes, ("batch", "n"),
                               ("batch size (n = 16)", "order n (one matrix)")):
        for library, found in results.items():
            points = [(r["x"], r["ms"]) for r in found if r["axis"] == axis]
            if points:
                ax.plot(*zip(*points), marker="o", label=library)
        xs = SCALING_BATCHES if axis == "batch" else SCALING_ORDERS
        ax.plot(xs, [bound_ms("potrf", x if axis == "batch" else 1, 16 if axis == "batch" else x,
                              "float64", rates) for x in xs], "k--", label="machine bound")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("ms, forward+backward")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Cholesky forward+backward, float64")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return results


def main(out=None, plot=None, ops=None, rounds=1):
    from . import __main__ as harness
    about = harness.machine()
    print(f"machine: {about}\n")
    rates, lines, memory, records, small = rows(ops, rounds=rounds)
    targets = targets_table(records, rates)
    peer_gemm = peer_gemm_rates()
    print("\n" + "\n".join(memory))
    print("\n" + "\n".join(targets))
    print("\n" + "\n".join(small))
    if plot:
        scaling(plot, rates)
    if out:
        with open(out, "w") as f:
            f.write(PAGE.format(
                about=about, gemm64=rates["float64"][0] / 1e9, gemm32=rates["float32"][0] / 1e9,
                copy=rates["float64"][1] / 1e9, table="\n".join(lines),
                rounds=(f", best over {rounds} rounds that time every library in turn"
                        if rounds > 1 else ""),
                memory="\n".join(memory), targets="\n".join(targets),
                small="\n".join(small), small_n=SMALL[1], small_calls=SMALL_CALLS,
                peer_gemm=("" if peer_gemm is None else
                           " PyTorch's BLAS ({}) on the same products: DGEMM {:.1f} GFLOP/s, SGEMM "
                           "{:.1f} GFLOP/s.".format("MKL" if peer_gemm[2] else "not MKL",
                                                    peer_gemm[0] / 1e9, peer_gemm[1] / 1e9)),
                flops=", ".join(f"{op} {FLOPS_N3[op]:.3g}" for op in FLOPS_N3),
                plot=(f"\n![Cholesky scaling]({os.path.basename(plot)})\n" if plot else "")))
    return 0


PAGE = """# adla: every operator

Generated by `python -m benchmarks --operators --out docs/operator-benchmarks.md --plot
docs/scaling.png`.

Machine: {about}. Measured here: DGEMM {gemm64:.1f} GFLOP/s, SGEMM {gemm32:.1f} GFLOP/s (2048 x
2048 products on all cores), copy {copy:.1f} GB/s (bytes read plus written); each the best of a
measurement before the timings and one after, through NumPy's OpenBLAS (adla calls SciPy's build
of the same library).{peer_gemm}

Forward+backward of every operator on cotangents for all its outputs, milliseconds, best of 5
after half a second of untimed calls{rounds}, each library on each operator in its own process
(PyTorch: `torch.linalg` with autograd; JAX: a jitted `jax.vjp` of `jax.numpy.linalg`, x64, with
OpenBLAS at one thread; the peers compute the same functions, built from their own primitives:
`benchmarks/operators.py`, `PEER_FUNCTIONS`). nan: the peer hung (JAX's triangular solves and
QR deadlock in SciPy's OpenBLAS on this machine; stopped after 90 s) or failed. Every core
dimension is n; the large case is one 1000 x 1000 matrix. The general matrices of inverse, det,
slogdet and gesv are `I + X / (2 sqrt(n))` (X standard normal: moderate determinants) with their
rows shuffled, so that partial pivoting swaps rows at most steps, as it does on most matrices.

**bound**: the larger of the case's floating-point operations over the measured GEMM rate and
its bytes (inputs, outputs, cotangents, the primals the backward reads and the gradients, each
once) over the measured copy bandwidth; **adla / bound** is how far adla is from it. The flops
are the counts of the algorithms adla runs, as multiples of n^3 per matrix: {flops}. A batch of
small matrices cannot run at the GEMM rate of large ones, so small sizes sit further from the
bound by nature. Whole operands are counted even where only a part is read (sumlogdiag and
extractdiag read a diagonal; a gradient of zeros off the diagonal is mostly untouched pages), so
there adla / bound can fall below 1; on a shared 2-core virtual machine absolute times drift by up to a half
between runs, so compare within a row.

{table}

## Targets

The project's speed targets read off the table above, in each dtype: adla / fastest peer (or
adla / bound) at most the given ratio. Each miss is listed with its ratio and, in brackets, the
bound over the fastest peer: the least ratio any implementation could reach on this machine. A
miss whose bracket is above the target cannot be met here; one whose bracket is below it
leaves room. A single large matrix runs at the speed of the BLAS and LAPACK underneath
(SciPy's OpenBLAS for adla; for PyTorch, the library the machine line names), so there a miss
measures the two libraries' routines at that size as much as adla.

{targets}

## One small matrix

Forward+backward of one {small_n} x {small_n} matrix (its operands and cotangents as above),
microseconds per call: the best of 5 loops of {small_calls} calls, after half a second of
untimed ones. At this size the arithmetic is negligible and the time is what a call costs:
checking and converting the operands, allocating the outputs, dispatching the kernel (for the
peers, their autograd or JAX's dispatch of a jitted function). An optimiser or a filter that
calls an operator once per step on a small matrix pays this on every call.

{small}

## Memory

Resident memory one forward+backward call adds at its peak, float64, MB, measured in a process
per library and operator (not the one that times it) after a warm-up call, with glibc's mmap
threshold fixed at 128 KiB so that freed arrays leave the resident set at once (the inputs and cotangents, made before, are
not counted). adla's peak is measured with its output cache off; the cache (on by default,
`ADLA_CPU_CACHE_MB`; README, "Output memory") keeps freed outputs for the next call, and what
it holds after two more calls at that size is in its own column.

{memory}

## Scaling
{plot}
Cholesky forward+backward, float64: time against the batch size at n = 16, and against the order
of one matrix, for adla, PyTorch and JAX, with the machine bound (dashed).
"""
