"""Principal component analysis of Fisher's iris data via ``syevd``, with a gradient.

The covariance ``S = X^T X / (N - 1)`` of the centred data comes from ``syrk``, its
eigendecomposition from ``syevd`` (rows of ``U`` are the principal axes). The variance explained
by the first component is differentiated with respect to every data point
(``syevd_backward`` then ``syrk_backward``), which shows which flowers shape that axis.

Run with ``python -m adla.examples.pca``.
"""
import sys

import numpy as np

import adla
from ._common import load_csv


def iris():
    data = load_csv("iris.csv")
    species = data.pop("species").astype(int)
    return np.column_stack(list(data.values())), species, list(data)


def principal_components(X):
    """``(components, explained variance)``, largest first; components are rows."""
    Xc = X - X.mean(axis=0)
    S = adla.syrk(Xc, transpose=True, alpha=1.0 / (len(X) - 1))
    U, lam = adla.syevd(S)
    return U[..., ::-1, :], lam[..., ::-1]


def top_variance_gradient(X):
    """``d lam_max / dX`` through the centring, ``syrk`` and ``syevd``."""
    Xc = X - X.mean(axis=0)
    alpha = 1.0 / (len(X) - 1)
    S = adla.syrk(Xc, transpose=True, alpha=alpha)
    U, lam = adla.syevd(S)
    dlam = np.zeros_like(lam)
    dlam[-1] = 1.0
    dS = adla.syevd_backward(None, dlam, U, lam)
    dXc = adla.syrk_backward(dS, Xc, transpose=True, alpha=alpha)
    return dXc - dXc.mean(axis=0)            # through Xc = X - mean(X)


def main(argv=None):
    X, species, names = iris()
    components, variance = principal_components(X)
    print(f"PCA of iris: {X.shape[0]} flowers, {X.shape[1]} measurements ({', '.join(names)})")
    print(f"\n{'component':<11}{'variance':>10}{'share':>8}   axis")
    for i, (c, v) in enumerate(zip(components, variance)):
        print(f"{i + 1:<11}{v:>10.4f}{v / variance.sum():>8.1%}   "
              + " ".join(f"{x:+.3f}" for x in c))
    dX = top_variance_gradient(X)
    influence = np.linalg.norm(dX, axis=1)
    print("\nmean |d variance_1 / d flower| by species: "
          + ", ".join(f"{s}: {influence[species == s].mean():.4f}" for s in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
