"""Kalman smoothing of the Nile flow (local level model) as one dense solve, with the two
variances learned by gradient.

Local level: ``y_t = mu_t + eps_t``, ``mu_{t+1} = mu_t + eta_t``, ``eps ~ N(0, s2_eps)``,
``eta ~ N(0, s2_eta)``, ``mu_1`` diffuse. The posterior of the whole level path is Gaussian with
precision ``P = I/s2_eps + D^T D/s2_eta`` (``D`` the difference matrix; tridiagonal, solved here
as a dense T x T matrix with ``potrf``) and mean ``P^-1 y/s2_eps`` (``potrs``), which is what a
Kalman smoother computes recursively. The diffuse log-likelihood (Durbin & Koopman, 2012,
section 7.2: the density of ``y_2..T`` given ``y_1``, with the ``T/2 log(2 pi)`` of all ``T``
observations) is

    -log L = T/2 log(2 pi) + T/2 log s2_eps + (T-1)/2 log s2_eta + log det(chol(P))
             + (|y|^2/s2_eps - |L^-1 y/s2_eps|^2)/2

with a prior variance ``kappa`` of ``mu_1`` so large (1e14) that it is diffuse to ~1e-9 (its
``log kappa`` terms cancel between ``p(y)`` and ``p(y_1)``). Its gradient with
respect to ``log s2_eps, log s2_eta`` comes from ``trsm_backward``, ``sumlogdiag_backward`` and
``potrf_backward``.

Run with ``python -m adla.examples.kalman``.
"""
import sys
import time

import numpy as np
from scipy.optimize import minimize

import adla
from ._common import load_csv

KAPPA = 1e14        # prior variance of the first level: diffuse to ~1e-9 in the likelihood


def nile():
    data = load_csv("nile.csv")
    return data["year"], data["volume"]


def random_walk_precision(T):
    """``D^T D`` for the (T-1) x T first-difference matrix ``D``."""
    D = np.diff(np.eye(T), axis=0)
    return D.T @ D


def negative_log_likelihood(theta, y):
    """Diffuse ``-log L`` of the local level model and its gradient in ``theta = (log s2_eps,
    log s2_eta)``."""
    s2_eps, s2_eta = np.exp(theta)
    T = len(y)
    R = random_walk_precision(T)
    P = np.eye(T) / s2_eps + R / s2_eta
    P[0, 0] += 1.0 / KAPPA
    b = (y / s2_eps)[:, None]

    L = adla.potrf(P)
    z = adla.trsm(L, b)
    nll = (0.5 * T * np.log(2 * np.pi) + 0.5 * T * theta[0] + 0.5 * (T - 1) * theta[1]
           + adla.sumlogdiag(L) + 0.5 * (y @ y / s2_eps - np.sum(z * z)))

    dL, db = adla.trsm_backward(-z, L, b, z)
    dL += adla.sumlogdiag_backward(1.0, L)
    dP = adla.potrf_backward(dL, L)
    ds2_eps = (-np.trace(dP) / s2_eps**2 - np.sum(db[:, 0] * y) / s2_eps**2
               + 0.5 * T / s2_eps - 0.5 * (y @ y) / s2_eps**2)
    ds2_eta = -np.sum(dP * R) / s2_eta**2 + 0.5 * (T - 1) / s2_eta
    return float(nll), np.array([s2_eps * ds2_eps, s2_eta * ds2_eta])


def smooth(theta, y):
    """Smoothed level ``E[mu | y]`` and its variances ``diag(P^-1)``."""
    s2_eps, s2_eta = np.exp(theta)
    T = len(y)
    P = np.eye(T) / s2_eps + random_walk_precision(T) / s2_eta
    P[0, 0] += 1.0 / KAPPA
    L = adla.potrf(P)
    mean = adla.potrs(L, (y / s2_eps)[:, None])[:, 0]
    return mean, np.diagonal(adla.potri(L)).copy()


def fit(y, theta0=None):
    theta0 = np.log([np.var(y) / 2, np.var(y) / 20]) if theta0 is None else theta0
    return minimize(lambda t: negative_log_likelihood(t, y), theta0, jac=True, method="L-BFGS-B")


def main(argv=None):
    years, y = nile()
    print(f"Nile flow {years[0]:.0f}-{years[-1]:.0f}: local level model, T = {len(y)}")
    start = time.perf_counter()
    result = fit(y)
    elapsed = time.perf_counter() - start
    s2_eps, s2_eta = np.exp(result.x)
    print(f"learned by L-BFGS-B with adla gradients in {elapsed * 1e3:.0f} ms ({result.nit} "
          f"iterations): s2_eps = {s2_eps:.1f}, s2_eta = {s2_eta:.1f}, "
          f"log-likelihood = {-result.fun:.4f}")
    print("(Durbin & Koopman, 2012, report s2_eps = 15099, s2_eta = 1469.1)")
    mean, var = smooth(result.x, y)
    print("\nyear   flow   smoothed level   sd")
    for t in (0, 27, 28, 29, 99):
        print(f"{years[t]:.0f}  {y[t]:5.0f}   {mean[t]:14.1f}  {np.sqrt(var[t]):5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
