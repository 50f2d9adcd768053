"""Worked example: a Gaussian process's negative log marginal likelihood and its gradient.

Everything matrix-valued goes through adla forward/backward calls; NumPy does only the
elementwise kernel formula. The gradient is checked against central finite differences, then
used by ``scipy.optimize.minimize(jac=True)`` to learn the hyperparameters.
"""
import time

import numpy as np
from scipy.optimize import minimize

import adla

NAMES = ("log lengthscale", "log signal variance", "log noise variance")


def synthetic_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 10.0, n))
    y = np.sin(x) + 0.3 * np.sin(3.0 * x) + 0.1 * rng.standard_normal(n)
    return x, y - y.mean()


def negative_log_likelihood(theta, x, y):
    """``-log p(y | x, theta)`` for a squared-exponential kernel plus noise, and its gradient."""
    lengthscale2, signal, noise = np.exp(2.0 * theta[0]), np.exp(theta[1]), np.exp(theta[2])
    sqdist = (x[:, None] - x[None, :]) ** 2
    K_signal = signal * np.exp(-0.5 * sqdist / lengthscale2)
    K = K_signal + noise * np.eye(len(x))

    # Forward: K = L L^T, z = L^-1 y, nll = |z|^2/2 + log det(L) + n/2 log(2 pi).
    Y = y[:, None]
    L = adla.potrf(K)
    z = adla.trsm(L, Y)
    nll = 0.5 * np.sum(z**2) + adla.sumlogdiag(L) + 0.5 * len(x) * np.log(2.0 * np.pi)

    # Backward, output to input.
    dL, _ = adla.trsm_backward(z, L, Y, z)
    dL += adla.sumlogdiag_backward(1.0, L)
    dK = adla.potrf_backward(dL, L)             # symmetric: <dK, E> for symmetric E
    grad = np.array([
        np.sum(dK * K_signal * sqdist / lengthscale2),   # dK/dlog(lengthscale)
        np.sum(dK * K_signal),                           # dK/dlog(signal variance)
        noise * np.trace(dK),                            # dK/dlog(noise variance)
    ])
    return float(nll), grad


def finite_difference(fun, theta, h=1e-5):
    grad = np.empty_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h
        grad[i] = (fun(theta + step)[0] - fun(theta - step)[0]) / (2 * h)
    return grad


def main():
    x, y = synthetic_data()
    theta0 = np.log([1.0, 1.0, 0.1])
    fun = lambda t: negative_log_likelihood(t, x, y)  # noqa: E731

    nll, grad = fun(theta0)
    fd = finite_difference(fun, theta0)
    print(f"Gaussian process on {len(x)} synthetic points, squared-exponential kernel + noise")
    print(f"negative log marginal likelihood at theta0: {nll:.6f}\n")
    print(f"{'parameter':<22}{'adla gradient':>16}{'finite difference':>20}{'rel. error':>12}")
    for name, g, d in zip(NAMES, grad, fd):
        print(f"{name:<22}{g:>16.8f}{d:>20.8f}{abs(g - d) / max(abs(d), 1e-12):>12.1e}")
    worst = np.max(np.abs(grad - fd) / np.maximum(np.abs(fd), 1e-12))
    ok = worst < 1e-5

    start = time.perf_counter()
    result = minimize(fun, theta0, jac=True, method="L-BFGS-B")
    elapsed = time.perf_counter() - start
    print(f"\nL-BFGS-B with adla gradients: {result.nit} iterations, {result.nfev} evaluations, "
          f"{elapsed:.2f} s")
    for name, t in zip(NAMES, result.x):
        print(f"  {name:<22}{t:>10.4f}   ({name.split()[-1]} = {np.exp(t):.4g})")
    print(f"  negative log marginal likelihood: {result.fun:.6f}")
    print(f"\ngradient check: {'PASSED' if ok else 'FAILED'} (max relative error {worst:.1e})")
    return 0 if ok and result.fun < nll else 1
