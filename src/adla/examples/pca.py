"""Principal component analysis of Fisher's iris data, two ways, with a gradient.

The covariance route: ``S = X^T X / (N - 1)`` of the centred data comes from ``syrk``, its
eigendecomposition from ``syevd`` (rows of ``U`` are the principal axes). The SVD route never
forms ``S``: ``gesvd`` of the centred data gives the axes as the rows of ``Vt`` and the variances
as ``s^2 / (N - 1)``, with the accuracy of the data rather than of its square. The variance
explained by the first component is differentiated with respect to every data point both ways
(``syevd_backward`` then ``syrk_backward``; ``gesvd_backward``), which shows which flowers shape
that axis.

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


def principal_components_svd(X):
    """The same by the SVD of the centred data: ``Xc = U diag(s) Vt``, components the rows of
    ``Vt``, variances ``s^2 / (N - 1)``."""
    Xc = X - X.mean(axis=0)
    U, s, Vt = adla.gesvd(Xc)
    return Vt, s**2 / (len(X) - 1)


def top_variance_gradient_svd(X):
    """``d lam_max / dX`` through the centring and ``gesvd``: ``lam_max = s_0^2 / (N - 1)``."""
    Xc = X - X.mean(axis=0)
    U, s, Vt = adla.gesvd(Xc)
    ds = np.zeros_like(s)
    ds[0] = 2.0 * s[0] / (len(X) - 1)
    dXc = adla.gesvd_backward(None, ds, None, U, s, Vt)
    return dXc - dXc.mean(axis=0)


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
    components_svd, variance_svd = principal_components_svd(X)
    agree = np.abs(np.sum(components * components_svd, axis=1))
    print(f"\nSVD of the centred data (gesvd): variances agree to "
          f"{np.max(np.abs(variance_svd - variance) / variance):.1e} (relative), "
          f"axes to {np.max(1 - agree):.1e} (1 - |cos|)")
    dX = top_variance_gradient(X)
    dX_svd = top_variance_gradient_svd(X)
    print(f"gradient of variance_1, syevd route vs gesvd route: max difference "
          f"{np.max(np.abs(dX - dX_svd)):.1e}")
    influence = np.linalg.norm(dX, axis=1)
    print("\nmean |d variance_1 / d flower| by species: "
          + ", ".join(f"{s}: {influence[species == s].mean():.4f}" for s in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
