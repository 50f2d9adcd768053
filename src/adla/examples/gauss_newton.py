"""Conductances of resistor networks from measured potentials: a Gauss-Newton (Levenberg-Marquardt)
fit whose Jacobian-vector products come from adla's forward mode.

A batch of resistor networks on one grid graph, each with its own unknown edge conductances
``c_e = exp(theta_e)``. Every network is grounded at each node through a small conductance ``g``
and driven by ``k`` patterns of injected currents ``F``; its node potentials ``X`` solve
Kirchhoff's equations ``(G(c) + g I) X = F`` with the weighted graph Laplacian
``G(c) = sum_e c_e a_e a_e^T`` (``a_e`` the edge's incidence vector). The potentials are measured
with noise, and ``theta`` is fitted by nonlinear least squares, ``min |X(theta) - X_obs|^2 / 2``:
a small electrical impedance tomography problem, batched over networks.

The solve is ``potrf`` then ``potrs``. Levenberg-Marquardt needs the Jacobian ``J`` of the
residuals only through products:

- ``J v`` (forward mode): ``dA = sum_e v_e c_e a_e a_e^T``, then ``potrf_jvp`` gives ``dL`` and
  ``potrs_jvp`` gives ``dX``;
- ``J^T u`` (reverse mode): ``potrs_backward`` and ``potrf_backward`` give ``dA``, and
  ``(J^T u)_e = c_e a_e^T dA a_e``.

Each step solves ``(J^T J + lambda I) delta = -J^T r`` by conjugate gradients on those
products, never forming ``J``. The result is checked against ``scipy.optimize.least_squares``
on the same residuals (with its own finite-difference Jacobian).

Run with ``python -m adla.examples.gauss_newton``.
"""
import argparse
import sys
import time

import numpy as np
from scipy.optimize import least_squares

import adla

GROUND = 0.05       # conductance from every node to ground: G(c) + g I is positive definite


def grid_incidence(rows, cols):
    """The edges of a rows x cols grid graph as incidence vectors, one row per edge."""
    nodes = np.arange(rows * cols).reshape(rows, cols)
    pairs = ([(a, b) for a, b in zip(nodes[:, :-1].ravel(), nodes[:, 1:].ravel())]
             + [(a, b) for a, b in zip(nodes[:-1].ravel(), nodes[1:].ravel())])
    incidence = np.zeros((len(pairs), rows * cols))
    for e, (a, b) in enumerate(pairs):
        incidence[e, a], incidence[e, b] = 1.0, -1.0
    return incidence


class Networks:
    """The fitting problem: ``incidence`` (edges x nodes), currents ``F`` (networks x nodes x k)
    and measured potentials ``X_obs`` of the same shape. Parameters ``theta``: networks x edges,
    log conductances."""

    def __init__(self, incidence, F, X_obs):
        self.incidence, self.F, self.X_obs = incidence, F, X_obs
        self.shape = (F.shape[0], incidence.shape[0])

    def system(self, weights):
        """``sum_e w_e a_e a_e^T`` (plus ``g I`` below) for every network's edge weights."""
        return np.einsum("pe,ei,ej->pij", weights, self.incidence, self.incidence)

    def solve(self, theta):
        """Potentials ``X`` and what the products need: the factor ``L`` and the conductances."""
        c = np.exp(theta.reshape(self.shape))
        A = self.system(c) + GROUND * np.eye(self.incidence.shape[1])
        L = adla.potrf(A)
        return adla.potrs(L, self.F), (A, L, c)

    def residuals(self, theta):
        return (self.solve(theta)[0] - self.X_obs).ravel()

    def jvp(self, state, v):
        """``J v``: the residuals' change for a change ``v`` of ``theta``, by forward mode."""
        A, L, c = state
        dA = self.system(c * v.reshape(self.shape))
        _, dL = adla.potrf_jvp(A, dA)
        _, dX = adla.potrs_jvp(L, self.F, dL, None)
        return dX.ravel()

    def vjp(self, state, X, u):
        """``J^T u``, by reverse mode."""
        A, L, c = state
        dL, _ = adla.potrs_backward(u.reshape(X.shape), L, self.F, X)
        dA = adla.potrf_backward(dL, L)
        return (c * np.einsum("pij,ei,ej->pe", dA, self.incidence, self.incidence)).ravel()

def conjugate_gradients(matvec, b, tolerance=1e-10, iterations=200):
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = r @ r
    for _ in range(iterations):
        if np.sqrt(rr) <= tolerance * np.linalg.norm(b):
            break
        q = matvec(p)
        step = rr / (p @ q)
        x += step * p
        r -= step * q
        rr, previous = r @ r, rr
        p = r + (rr / previous) * p
    return x


def levenberg_marquardt(problem, theta, iterations=100, damping=1e-3, tolerance=1e-12):
    """Minimise ``|r(theta)|^2 / 2`` with matrix-free Levenberg-Marquardt steps, until a step
    lowers the cost by less than ``tolerance`` of it; returns ``(theta, cost, steps)``."""
    X, state = problem.solve(theta)
    r = (X - problem.X_obs).ravel()
    cost = 0.5 * r @ r
    for step in range(1, iterations + 1):
        gradient = problem.vjp(state, X, r)

        def normal(v):                       # (J^T J + damping I) v, without J
            return problem.vjp(state, X, problem.jvp(state, v)) + damping * v
        delta = conjugate_gradients(normal, -gradient)
        X_new, state_new = problem.solve(theta + delta)
        r_new = (X_new - problem.X_obs).ravel()
        cost_new = 0.5 * r_new @ r_new
        if cost_new < cost:                  # accept, and trust the model more
            theta, X, state, r = theta + delta, X_new, state_new, r_new
            cost, decrease, damping = cost_new, cost - cost_new, damping / 3
            if decrease <= tolerance * cost:
                break
        else:
            damping *= 4
    return theta, cost, step


def make_problem(networks=8, rows=3, cols=4, patterns=6, noise=1e-3, seed=0):
    """Random conductances and current patterns (each pattern sums to zero: in at one node, out
    at another), potentials from them plus Gaussian noise; returns the problem and the true
    ``theta``."""
    rng = np.random.default_rng(seed)
    incidence = grid_incidence(rows, cols)
    n = incidence.shape[1]
    theta_true = rng.normal(0.0, 0.5, (networks, incidence.shape[0]))
    F = np.zeros((networks, n, patterns))
    for p in range(networks):
        for j in range(patterns):
            source, sink = rng.choice(n, 2, replace=False)
            F[p, source, j], F[p, sink, j] = 1.0, -1.0
    clean = Networks(incidence, F, np.zeros_like(F))
    X_true = clean.solve(theta_true.ravel())[0]
    X_obs = X_true + noise * rng.standard_normal(X_true.shape)
    return Networks(incidence, F, X_obs), theta_true.ravel()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adla.examples.gauss_newton",
                                     description="Fit the conductances of a batch of resistor "
                                     "networks by Levenberg-Marquardt with adla's jvps.")
    parser.add_argument("--networks", type=int, default=8, help="networks in the batch")
    args = parser.parse_args(argv)
    problem, theta_true = make_problem(networks=args.networks)
    start = np.zeros_like(theta_true)
    print(f"{problem.shape[0]} networks x {problem.shape[1]} edges = {theta_true.size} "
          f"log conductances, {problem.X_obs.size} measured potentials")
    t = time.perf_counter()
    theta, cost, steps = levenberg_marquardt(problem, start)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    reference = least_squares(problem.residuals, start, method="lm", xtol=1e-14, ftol=1e-14,
                              gtol=1e-14)
    theirs = time.perf_counter() - t
    print(f"adla Levenberg-Marquardt (J v from potrf_jvp/potrs_jvp, J^T u from the backwards): "
          f"cost {cost:.6e} after {steps} steps, {ours:.2f} s")
    print(f"scipy.optimize.least_squares (lm, its own finite-difference J): "
          f"cost {reference.cost:.6e}, {theirs:.2f} s")
    print(f"largest difference in theta: {np.max(np.abs(theta - reference.x)):.2e}; "
          f"error against the truth: {np.sqrt(np.mean((theta - theta_true) ** 2)):.3f} rms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
