"""Bayesian linear regression in the form used for scalable Bayesian optimisation (Perrone et al.,
2017, "Multiple Adaptive Bayesian Linear Regression").

``y = Phi w + noise`` with ``w ~ N(0, I/alpha)`` and noise ``N(0, I/beta)``. The marginal
likelihood goes through the ``D x D`` posterior precision ``A = alpha I + beta Phi^T Phi``
(``syrk``, ``potrf``, ``trsm``, ``sumlogdiag``), so its cost is linear in the number of data.
Gradients with respect to ``log alpha``, ``log beta`` and the features ``Phi`` (which a neural
network would produce in ABLR) come from the backward functions. Several tasks with their own
``alpha, beta`` are one batched call.

Run with ``python -m adla.examples.blr``.
"""
import sys
import time

import numpy as np
from scipy.optimize import minimize

import adla
from ._common import load_csv


def diabetes_features():
    """Standardised diabetes features with an intercept column, and the centred target."""
    data = load_csv("diabetes.csv")
    target = data.pop("target")
    X = np.column_stack(list(data.values()))
    Phi = np.column_stack([(X - X.mean(0)) / X.std(0), np.ones(len(X))])
    return Phi, target - target.mean()


def negative_log_likelihood(log_alpha, log_beta, Phi, y):
    """``-log p(y)`` and its gradients ``(d log_alpha, d log_beta, d Phi)``.

    Batched: ``Phi`` is ``(..., N, D)``, ``y`` is ``(..., N)`` and ``log_alpha``, ``log_beta``
    have the batch shape; every result has the batch shape.
    """
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    N, D = Phi.shape[-2:]
    Y = y[..., None]
    eye = np.eye(D)

    # Forward: A = alpha I + beta Phi^T Phi = L L^T, c = beta L^-1 Phi^T y.
    G = adla.syrk(Phi, transpose=True)                        # Phi^T Phi
    A = alpha[..., None, None] * eye + beta[..., None, None] * G
    L = adla.potrf(A)
    b = adla.gemm2(Phi, Y, transpose_a=True)                  # Phi^T y
    c = beta[..., None, None] * adla.trsm(L, b)
    yy = np.sum(y * y, axis=-1)
    nll = (0.5 * N * np.log(2 * np.pi) - 0.5 * N * log_beta - 0.5 * D * log_alpha
           + 0.5 * beta * yy - 0.5 * np.sum(c * c, axis=(-2, -1)) + adla.sumlogdiag(L))

    # Backward. c = beta z with z = L^-1 b; the scalar beta is handled here by hand.
    dc = -c
    z = c / beta[..., None, None]
    dL, db = adla.trsm_backward(beta[..., None, None] * dc, L, b, z)
    dL += adla.sumlogdiag_backward(np.ones_like(nll), L)
    dA = adla.potrf_backward(dL, L)
    dG = beta[..., None, None] * dA
    dPhi = adla.syrk_backward(dG, Phi, transpose=True)
    dPhi += adla.gemm2_backward(db, Phi, Y, transpose_a=True)[0]
    dalpha = np.trace(dA, axis1=-2, axis2=-1) - 0.5 * D / alpha
    dbeta = (np.sum(dA * G, axis=(-2, -1)) + np.sum(dc * z, axis=(-2, -1)) - 0.5 * N / beta
             + 0.5 * yy)
    return nll, alpha * dalpha, beta * dbeta, dPhi


def dense_negative_log_likelihood(log_alpha, log_beta, Phi, y):
    """The same quantity from the N x N covariance, for checking (no adla)."""
    from scipy.stats import multivariate_normal
    cov = np.eye(len(y)) / np.exp(log_beta) + Phi @ Phi.T / np.exp(log_alpha)
    return -multivariate_normal(np.zeros(len(y)), cov).logpdf(y)


def fit(Phi, y, log_alpha0, log_beta0):
    """Learn ``log alpha, log beta`` (each of the batch shape) with L-BFGS-B, all tasks in one
    objective whose pieces are batched adla calls."""
    batch = np.shape(log_alpha0)

    def fun(theta):
        la, lb = theta.reshape((2,) + batch)
        nll, dla, dlb, _ = negative_log_likelihood(la, lb, Phi, y)
        return float(np.sum(nll)), np.concatenate([np.ravel(dla), np.ravel(dlb)])

    theta0 = np.concatenate([np.ravel(log_alpha0), np.ravel(log_beta0)])
    result = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                      options=dict(ftol=1e-15, gtol=1e-9))
    la, lb = result.x.reshape((2,) + batch)
    return la, lb, result


def multitask(Phi, y, ntasks=4, seed=0):
    """Split the patients into ``ntasks`` random tasks of equal size: a batch of problems."""
    order = np.random.default_rng(seed).permutation(len(y))
    size = len(y) // ntasks
    rows = order[:size * ntasks].reshape(ntasks, size)
    return Phi[rows], y[rows]


def main(argv=None):
    Phi, y = diabetes_features()
    N, D = Phi.shape
    print(f"Bayesian linear regression on the diabetes data: N = {N}, D = {D} features")

    start = time.perf_counter()
    la, lb, result = fit(Phi, y, np.float64(0.0), np.float64(-np.log(np.var(y))))
    elapsed = time.perf_counter() - start
    nll, dla, dlb, dPhi = negative_log_likelihood(la, lb, Phi, y)
    dense = dense_negative_log_likelihood(la, lb, Phi, y)
    print(f"learned in {elapsed * 1e3:.0f} ms ({result.nit} iterations): weight precision alpha = "
          f"{np.exp(la):.6g}, noise precision beta = {np.exp(lb):.6g} (noise sd "
          f"{np.exp(-lb / 2):.4g})")
    print(f"  -log p(y) = {nll:.6f}; dense N x N multivariate normal: {dense:.6f}")
    print(f"  gradient at the optimum: d/dlog alpha = {dla:.1e}, d/dlog beta = {dlb:.1e}; "
          f"|d/dPhi| = {np.linalg.norm(dPhi):.4g}")

    Phis, ys = multitask(Phi, y)
    T = len(ys)
    start = time.perf_counter()
    las, lbs, result = fit(Phis, ys, np.zeros(T), -np.log(np.var(ys, axis=1)))
    elapsed = time.perf_counter() - start
    print(f"\nmulti-task: {T} tasks of {ys.shape[1]} patients, alpha and beta per task, learned "
          f"jointly in {elapsed * 1e3:.0f} ms ({result.nit} iterations) with batched calls:")
    nlls = negative_log_likelihood(las, lbs, Phis, ys)[0]
    for t in range(T):
        single = negative_log_likelihood(las[t], lbs[t], Phis[t], ys[t])[0]
        print(f"  task {t}: alpha = {np.exp(las[t]):8.4g}  beta = {np.exp(lbs[t]):.4g}  "
              f"-log p = {nlls[t]:.4f} (single call {single:.4f}, dense "
              f"{dense_negative_log_likelihood(las[t], lbs[t], Phis[t], ys[t]):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
