"""Gaussian-process regression of Mauna Loa CO2 with the kernel of Rasmussen & Williams (2006),
"Gaussian Processes for Machine Learning", section 5.4.3.

The negative log marginal likelihood and its gradient with respect to the 11 log-hyperparameters
come from adla's ``potrf``, ``trsm``, ``sumlogdiag`` and their backward functions; NumPy only
evaluates the kernel formula elementwise. ``scipy.optimize.minimize(jac=True)`` learns the
hyperparameters, and the posterior is extrapolated about 20 years ahead.

Run with ``python -m adla demo`` or ``python -m adla.examples.mauna_loa [--plot PATH]``.
"""
import argparse
import sys
import time

import numpy as np
from scipy.optimize import minimize

import adla
from ._common import Progress, finite_difference_gradient, load_csv

# (name, value in R&W section 5.4.3): x in years, CO2 in ppm. The model uses their logarithms.
PARAMETERS = [
    ("long-term amplitude (ppm)", 66.0),
    ("long-term length scale (yr)", 67.0),
    ("seasonal amplitude (ppm)", 2.4),
    ("seasonal decay length (yr)", 90.0),
    ("seasonal smoothness", 1.3),
    ("medium-term amplitude (ppm)", 0.66),
    ("medium-term length scale (yr)", 1.2),
    ("medium-term shape alpha", 0.78),
    ("short-term amplitude (ppm)", 0.18),
    ("short-term length scale (yr)", 1.6 / 12),
    ("white noise sd (ppm)", 0.19),
]
NAMES = [name for name, _ in PARAMETERS]
THETA0 = np.log([value for _, value in PARAMETERS])


def load_data():
    """Decimal years (mid-month) and monthly mean CO2 in ppm."""
    data = load_csv("mauna_loa_co2_monthly.csv")
    return data["year"] + (data["month"] - 0.5) / 12.0, data["co2"]


def kernel(theta, x1, x2):
    """``k(x1, x2)`` without the white noise, and its derivatives with respect to ``theta[:10]``.

    k = long-term RBF + seasonal (RBF x periodic, period one year) + medium-term rational
    quadratic + short-term RBF.
    """
    a1, l1, a2, l2, lp, a3, l3, alpha, a4, l4, _ = np.exp(theta)
    d = x1[:, None] - x2[None, :]
    d2 = d * d
    long_term = a1**2 * np.exp(-0.5 * d2 / l1**2)
    sin2 = np.sin(np.pi * d) ** 2
    seasonal = a2**2 * np.exp(-0.5 * d2 / l2**2 - 2.0 * sin2 / lp**2)
    u = 1.0 + d2 / (2.0 * alpha * l3**2)
    medium = a3**2 * u**-alpha
    short = a4**2 * np.exp(-0.5 * d2 / l4**2)
    derivatives = [
        2.0 * long_term, long_term * d2 / l1**2,
        2.0 * seasonal, seasonal * d2 / l2**2, seasonal * 4.0 * sin2 / lp**2,
        2.0 * medium, medium * d2 / (l3**2 * u), alpha * medium * ((u - 1.0) / u - np.log(u)),
        2.0 * short, short * d2 / l4**2,
    ]
    return long_term + seasonal + medium + short, derivatives


def negative_log_likelihood(theta, x, y):
    """``-log p(y | x, theta)`` and its gradient with respect to ``theta``."""
    K, derivatives = kernel(theta, x, x)
    noise = np.exp(2.0 * theta[10])
    K[np.diag_indices_from(K)] += noise

    Y = y[:, None]
    L = adla.potrf(K)                            # K = L L^T
    z = adla.trsm(L, Y)                          # z = L^-1 y
    nll = 0.5 * np.sum(z**2) + adla.sumlogdiag(L) + 0.5 * len(y) * np.log(2.0 * np.pi)

    dL, _ = adla.trsm_backward(z, L, Y, z)       # cotangent of z is z
    dL += adla.sumlogdiag_backward(1.0, L)
    dK = adla.potrf_backward(dL, L)              # symmetric gradient with respect to K
    grad = np.array([np.sum(dK * D) for D in derivatives] + [2.0 * noise * np.trace(dK)])
    return float(nll), grad


def predict(theta, x, y, x_new):
    """Posterior mean and standard deviation of noisy observations at ``x_new``."""
    K = kernel(theta, x, x)[0]
    noise = np.exp(2.0 * theta[10])
    K[np.diag_indices_from(K)] += noise
    L = adla.potrf(K)
    K_new = kernel(theta, x_new, x)[0]
    mean = adla.gemm2(K_new, adla.potrs(L, y[:, None]))[:, 0]
    W = adla.trsm(L, K_new, rightside=True, transpose=True)          # K_new L^-T
    prior = np.sum(np.exp(2.0 * theta[[0, 2, 5, 8]])) + noise
    return mean, np.sqrt(np.maximum(prior - np.sum(W**2, axis=1), 0.0))


def fit(x, y, theta0=THETA0, maxiter=200, progress=True):
    fun = lambda theta: negative_log_likelihood(theta, x, y)  # noqa: E731
    bar = Progress(maxiter, "L-BFGS-B") if progress else None

    def callback(intermediate_result):           # scipy passes the result by this name
        if bar:
            bar.update(intermediate_result.fun)

    result = minimize(fun, theta0, jac=True, method="L-BFGS-B", callback=callback,
                      options=dict(maxiter=maxiter))
    if bar:
        bar.close()
    return result


def plot(x, y, offset, theta, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'adla[examples]'): no plot written")
        return None
    x_new = np.arange(x[0], x[-1] + 20.0, 1.0 / 12.0)
    mean, sd = predict(theta, x, y, x_new)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(x_new, offset + mean - 2 * sd, offset + mean + 2 * sd, color="tab:blue",
                    alpha=0.3, label="±2 sd")
    ax.plot(x_new, offset + mean, color="tab:blue", lw=1, label="posterior mean")
    ax.plot(x, offset + y, ".", color="k", ms=2, label="monthly mean CO2")
    ax.set_xlabel("year")
    ax.set_ylabel("CO2 (ppm)")
    ax.set_title("Mauna Loa CO2: GP with the Rasmussen & Williams kernel, fitted with adla")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla.examples.mauna_loa",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default="mauna_loa_co2.png", help="PNG to write")
    parser.add_argument("--maxiter", type=int, default=200)
    args = parser.parse_args(argv)

    x, co2 = load_data()
    offset = co2.mean()
    y = co2 - offset
    print(f"Mauna Loa CO2: {len(x)} monthly means, {x[0]:.2f} to {x[-1]:.2f}; "
          f"kernel of Rasmussen & Williams section 5.4.3 (11 hyperparameters)")

    nll0, grad0 = negative_log_likelihood(THETA0, x, y)
    # K's condition number (~1e7) limits the likelihood to ~1e-10 relative accuracy, so the
    # central differences take a wide step: their truncation error is then ~1e-5.
    fd = finite_difference_gradient(lambda t: negative_log_likelihood(t, x, y), THETA0, h=1e-3)
    error = np.max(np.abs(grad0 - fd)) / np.max(np.abs(fd))
    print(f"gradient at the textbook values vs central differences: max error {error:.1e} "
          f"(relative to the largest entry)", flush=True)

    start = time.perf_counter()
    result = fit(x, y, maxiter=args.maxiter)
    elapsed = time.perf_counter() - start
    print(f"optimised in {elapsed:.1f} s: {result.nit} iterations, {result.nfev} evaluations "
          f"({result.message})")
    print(f"\n{'hyperparameter':<32}{'textbook':>12}{'learned':>12}")
    for name, t0, t in zip(NAMES, np.exp(THETA0), np.exp(result.x)):
        print(f"{name:<32}{t0:>12.4g}{t:>12.4g}")
    print(f"\nlog marginal likelihood: {-nll0:.3f} at the textbook values, "
          f"{-result.fun:.3f} learned")
    path = plot(x, y, offset, result.x, args.plot)
    if path:
        print(f"plot (data, posterior mean and ±2 sd to {x[-1] + 20:.0f}): {path}")
    ok = error < 1e-4 and result.fun <= nll0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
