"""Least squares through the LQ factorisation, on the ill-conditioned Longley (1967) data.

For ``X`` (N x p, N >= p), factor ``X^T = L Q`` with ``gelqf``; then ``X = Q^T L^T`` and the
least-squares solution is ``w = L^-T Q y`` (one ``gemm2``, one ``trsm``). This never forms
``X^T X``, whose condition number is the square of ``X``'s, as the normal equations
(``syrk``, ``potrf``, ``potrs``) do. Digits are counted against the certified values of the NIST
Statistical Reference Datasets for Longley.

Run with ``python -m adla.examples.lq_least_squares``.
"""
import sys

import numpy as np

import adla
from ._common import load_csv

# NIST StRD certified regression coefficients for Longley: intercept, GNPDEFL, GNP, UNEMP,
# ARMED, POP, YEAR.
CERTIFIED = np.array([-3482258.63459582, 15.0618722713733, -0.358191792925910e-01,
                      -2.02022980381683, -1.03322686717359, -0.511041056535807e-01,
                      1829.15146461355])
COLUMNS = ["intercept", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]


def longley():
    data = load_csv("longley.csv")
    y = data.pop("TOTEMP")
    X = np.column_stack([np.ones(len(y))] + list(data.values()))
    return X, y


def lq_solve(X, y):
    """``argmin |X w - y|`` via ``X^T = L Q``: ``w = L^-T Q y``."""
    Q, L = adla.gelqf(np.swapaxes(X, -1, -2))
    return adla.trsm(L, adla.gemm2(Q, y[..., None]), transpose=True)[..., 0]


def normal_equations_solve(X, y):
    """``w = (X^T X)^-1 X^T y`` by Cholesky; NaN where ``X^T X`` is not numerically PD."""
    L = adla.potrf(adla.syrk(X, transpose=True), check=False)
    return adla.potrs(L, adla.gemm2(X, y[..., None], transpose_a=True), check=False)[..., 0]


def correct_digits(estimate, reference):
    """Per coefficient: -log10 of the relative error, capped at 16 (0 for NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(estimate - reference) / np.abs(reference)
        digits = np.clip(-np.log10(relative), 0.0, 16.0)
    return np.where(np.isfinite(digits), digits, 0.0)


def main(argv=None):
    X, y = longley()
    print(f"Longley data: N = {X.shape[0]}, p = {X.shape[1]} (with intercept); "
          f"condition number of X: {np.linalg.cond(X):.2e}, of X^T X: "
          f"{np.linalg.cond(X.T @ X):.2e}")
    w_lq, w_ne = lq_solve(X, y), normal_equations_solve(X, y)
    w_np = np.linalg.lstsq(X, y, rcond=None)[0]
    print("\ncorrect digits against NIST:")
    print(f"{'coefficient':<11}{'NIST certified':>22}{'LQ (gelqf)':>22}{'LQ':>6}"
          f"{'normal eq.':>12}{'lstsq':>7}")
    d_lq, d_ne, d_np = (correct_digits(w, CERTIFIED) for w in (w_lq, w_ne, w_np))
    for i, name in enumerate(COLUMNS):
        print(f"{name:<11}{CERTIFIED[i]:>22.15g}{w_lq[i]:>22.15g}{d_lq[i]:>6.1f}{d_ne[i]:>12.1f}"
              f"{d_np[i]:>7.1f}")
    print(f"\nfewest correct digits: LQ {d_lq.min():.1f}, normal equations {d_ne.min():.1f}, "
          f"numpy.linalg.lstsq {d_np.min():.1f}")
    print(f"max relative difference LQ vs numpy.linalg.lstsq: "
          f"{np.max(np.abs(w_lq - w_np) / np.abs(w_np)):.1e}")
    return 0 if d_lq.min() > d_ne.min() else 1


if __name__ == "__main__":
    sys.exit(main())
