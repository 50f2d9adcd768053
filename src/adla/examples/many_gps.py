"""Many small Gaussian processes at once: 10,000 independent series of 30 points, each with its own
squared-exponential kernel (length scale, signal and noise amplitude), learned jointly.

All series form one batch: every step is a handful of batched adla calls (``potrf`` on a
``(10000, 30, 30)`` stack, ``trsm``, ``sumlogdiag`` and their backward functions), and Adam
updates the 30,000 log-hyperparameters. The time per optimiser step is reported.

Run with ``python -m adla.examples.many_gps [--series S] [--steps K]``.

With ``--dask`` the series are split into chunks of a dask array and every step runs on a
dask.distributed cluster: the same code, since adla's operators (and NumPy's functions) take dask
arrays and return lazy ones. Without ``--scheduler`` a LocalCluster of two single-threaded worker
processes starts on this machine; on a real cluster, start ``dask scheduler`` on one machine and
``dask worker tcp://HOST:8786`` on the others, then pass ``--scheduler tcp://HOST:8786``.
"""
import argparse
import sys
import time

import numpy as np

import adla

BOUNDS = (np.log([1e-2, 1e-2, 1e-3]), np.log([1e2, 1e2, 1e1]))   # log length, signal, noise


def synthetic_series(series=10_000, points=30, seed=0):
    """Noisy sinusoids with random period, phase, amplitude and noise level, sampled at
    irregular times: ``x, y`` of shape ``(series, points)``."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 10.0, (series, points)), axis=1)
    period = rng.uniform(2.0, 8.0, (series, 1))
    amplitude = rng.uniform(0.5, 2.0, (series, 1))
    noise = rng.uniform(0.05, 0.3, (series, 1))
    y = amplitude * np.sin(2 * np.pi * x / period + rng.uniform(0, 2 * np.pi, (series, 1)))
    return x, y + noise * rng.standard_normal(x.shape)


def negative_log_likelihood(theta, x, y):
    """Per-series ``-log p(y | x, theta)`` (shape ``(S,)``) and gradients ``(S, 3)``;
    ``theta[:, i]`` are log length scale, log signal sd, log noise sd."""
    length2, signal2, noise2 = np.exp(2.0 * theta).T[..., None, None]
    n = x.shape[-1]
    d2 = (x[:, :, None] - x[:, None, :]) ** 2
    K_signal = signal2 * np.exp(-0.5 * d2 / length2)
    K = K_signal + noise2 * np.eye(n)

    Y = y[..., None]
    L = adla.potrf(K)                                  # (S, n, n) in one call
    z = adla.trsm(L, Y)
    nll = 0.5 * np.sum(z * z, axis=(1, 2)) + adla.sumlogdiag(L) + 0.5 * n * np.log(2 * np.pi)

    dL, _ = adla.trsm_backward(z, L, Y, z)
    dL += adla.sumlogdiag_backward(np.ones(len(y)), L)
    dK = adla.potrf_backward(dL, L)
    grad = np.stack([np.sum(dK * K_signal * d2 / length2, axis=(1, 2)),
                     2.0 * np.sum(dK * K_signal, axis=(1, 2)),
                     2.0 * noise2[:, 0, 0] * np.trace(dK, axis1=1, axis2=2)], axis=1)
    return nll, grad


def adam(theta, x, y, steps, rate=0.05, betas=(0.9, 0.999), report=None,
         objective=negative_log_likelihood):
    """Adam on the sum of the per-series objectives (they are independent, so each series moves
    on its own gradient); returns the final theta and the seconds per step."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        nll, grad = objective(theta, x, y)
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad**2
        update = rate * (m / (1 - betas[0]**step)) / (np.sqrt(v / (1 - betas[1]**step)) + 1e-8)
        theta = np.clip(theta - update, *BOUNDS)
        if report:
            report(step, nll)
    return theta, (time.perf_counter() - start) / max(steps, 1)


def on_cluster(x, y, chunk, address=None):
    """The objective on a dask.distributed cluster: ``x`` and ``y`` chunked by series and kept
    on the workers; each evaluation ships theta in the same chunks and brings back the per-series
    values and gradients. Returns ``(objective, x, y, client)``."""
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    if address:
        client = Client(address)
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None))
    x = da.from_array(x, chunks=(chunk, -1)).persist()
    y = da.from_array(y, chunks=(chunk, -1)).persist()

    def objective(theta, x, y):
        lazy = negative_log_likelihood(da.from_array(theta, chunks=(chunk, -1)), x, y)
        return dask.compute(*lazy)
    return objective, x, y, client


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla.examples.many_gps",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--dask", action="store_true",
                        help="run every step on a dask.distributed cluster, the series in chunks")
    parser.add_argument("--scheduler", help="with --dask: the address of a running scheduler "
                        "(default: a LocalCluster of two worker processes on this machine)")
    parser.add_argument("--chunk", type=int, default=2_500, help="with --dask: series per chunk")
    args = parser.parse_args(argv)

    x, y = synthetic_series(args.series, args.points)
    theta0 = np.tile(np.log([1.0, 1.0, 0.5]), (args.series, 1))
    objective, client = negative_log_likelihood, None
    if args.dask:
        objective, x, y, client = on_cluster(x, y, args.chunk, args.scheduler)
    nll0 = objective(theta0, x, y)[0]
    print(f"{args.series} independent GPs of {args.points} points each, 3 hyperparameters each "
          f"({3 * args.series} in all), learned jointly with Adam on batched adla calls"
          + (f", {x.numblocks[0]} chunks on the cluster at {client.scheduler.address}"
             if client else ""))

    def report(step, nll):
        if step == 1 or step % 20 == 0 or step == args.steps:
            print(f"  step {step:4d}: mean -log p(y) per series = {np.mean(nll):.4f}")

    theta, seconds = adam(theta0, x, y, args.steps, report=report, objective=objective)
    nll = objective(theta, x, y)[0]
    if client:
        client.close()
    print(f"time per optimiser step (forward + backward of all {args.series} series): "
          f"{seconds * 1e3:.1f} ms")
    print(f"mean -log p(y): {np.mean(nll0):.4f} -> {np.mean(nll):.4f}; improved for "
          f"{np.mean(nll < nll0):.1%} of the series")
    length, signal, noise = np.exp(np.median(theta, axis=0))
    print(f"median learned length scale {length:.3f}, signal sd {signal:.3f}, noise sd {noise:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
