"""The Mauna Loa GP of the demo (``mauna_loa.py``) trained inside PyTorch and inside JAX.

The kernel is written once per framework, elementwise, and the framework differentiates it; the
Cholesky factor, the triangular solve and the log-determinant are adla's (``adla.torch`` and
``adla.jax``), differentiated through adla's backward functions. PyTorch learns the 11
log-hyperparameters with ``torch.optim.LBFGS``, JAX with ``jax.scipy.optimize.minimize`` (BFGS)
on ``jax.value_and_grad``. Both should reach the demo's optimum (scipy's L-BFGS-B on adla's
explicit gradients); the script prints the three.

Run with ``python -m adla.examples.frameworks [--torch] [--jax] [--maxiter N]`` (both by
default, each where installed).
"""
import argparse
import sys
import time

import numpy as np

from . import mauna_loa


def torch_nll(theta, x, y):
    """``-log p(y | x, theta)`` as a torch scalar, differentiable in ``theta``."""
    import torch
    import adla.torch as at
    a1, l1, a2, l2, lp, a3, l3, alpha, a4, l4, noise = torch.exp(theta)
    d = x[:, None] - x[None, :]
    d2 = d * d
    K = (a1**2 * torch.exp(-0.5 * d2 / l1**2)
         + a2**2 * torch.exp(-0.5 * d2 / l2**2 - 2.0 * torch.sin(np.pi * d) ** 2 / lp**2)
         + a3**2 * (1.0 + d2 / (2.0 * alpha * l3**2)) ** -alpha
         + a4**2 * torch.exp(-0.5 * d2 / l4**2)
         + noise**2 * torch.eye(len(x), dtype=x.dtype))
    L = at.potrf(K)
    z = at.trsm(L, y[:, None])
    return 0.5 * torch.sum(z**2) + at.sumlogdiag(L) + 0.5 * len(x) * np.log(2.0 * np.pi)


def fit_torch(x, y, maxiter=200):
    import torch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    theta = torch.tensor(mauna_loa.THETA0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], max_iter=maxiter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-10)

    def closure():
        optimizer.zero_grad()
        loss = torch_nll(theta, xt, yt)
        loss.backward()
        return loss
    optimizer.step(closure)
    return theta.detach().numpy(), float(torch_nll(theta.detach(), xt, yt))


def jax_nll(theta, x, y):
    """``-log p(y | x, theta)`` as a JAX scalar."""
    import jax.numpy as jnp
    import adla.jax as aj
    a1, l1, a2, l2, lp, a3, l3, alpha, a4, l4, noise = jnp.exp(theta)
    d = x[:, None] - x[None, :]
    d2 = d * d
    K = (a1**2 * jnp.exp(-0.5 * d2 / l1**2)
         + a2**2 * jnp.exp(-0.5 * d2 / l2**2 - 2.0 * jnp.sin(jnp.pi * d) ** 2 / lp**2)
         + a3**2 * (1.0 + d2 / (2.0 * alpha * l3**2)) ** -alpha
         + a4**2 * jnp.exp(-0.5 * d2 / l4**2)
         + noise**2 * jnp.eye(len(x)))
    L = aj.potrf(K)
    z = aj.trsm(L, y[:, None])
    return 0.5 * jnp.sum(z**2) + aj.sumlogdiag(L) + 0.5 * len(x) * jnp.log(2.0 * jnp.pi)


def fit_jax(x, y, maxiter=200):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.optimize import minimize
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    result = minimize(lambda t: jax_nll(t, xj, yj), jnp.asarray(mauna_loa.THETA0),
                      method="BFGS", options=dict(maxiter=maxiter))
    return np.asarray(result.x), float(result.fun)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla.examples.frameworks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch", action="store_true", help="PyTorch only")
    parser.add_argument("--jax", action="store_true", help="JAX only")
    parser.add_argument("--maxiter", type=int, default=200)
    args = parser.parse_args(argv)
    both = not (args.torch or args.jax)

    x, co2 = mauna_loa.load_data()
    y = co2 - co2.mean()
    start = time.perf_counter()
    reference = mauna_loa.fit(x, y, maxiter=args.maxiter, progress=False)
    print(f"demo (scipy L-BFGS-B, adla's explicit gradients): -log p(y) = {reference.fun:.4f} "
          f"in {time.perf_counter() - start:.1f} s")
    results = {}
    for name, fit, wanted in (("torch", fit_torch, args.torch), ("jax", fit_jax, args.jax)):
        if not (wanted or both):
            continue
        try:
            __import__(name)
        except ImportError:
            print(f"{name} is not installed (pip install 'adla[{name}]'): skipped")
            continue
        start = time.perf_counter()
        theta, nll = fit(x, y, args.maxiter)
        label = {"torch": "torch.optim.LBFGS via adla.torch",
                 "jax": "jax.scipy.optimize BFGS via adla.jax"}[name]
        print(f"{label}: -log p(y) = {nll:.4f} in {time.perf_counter() - start:.1f} s")
        results[name] = (theta, nll)
    print(f"\n{'hyperparameter':<32}{'demo':>12}"
          + "".join(f"{name:>12}" for name in results))
    for i, label in enumerate(mauna_loa.NAMES):
        print(f"{label:<32}{np.exp(reference.x[i]):>12.4g}"
              + "".join(f"{np.exp(theta[i]):>12.4g}" for theta, _ in results.values()))
    return 0 if all(nll <= reference.fun + 1e-2 for _, nll in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
