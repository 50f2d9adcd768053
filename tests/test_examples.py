"""Each example against an independent reference: scikit-learn, statsmodels, SciPy, NumPy."""
import numpy as np
import pytest

from adla.examples import blr, kalman, lq_least_squares, many_gps, mauna_loa, pca
from adla.examples._common import finite_difference_gradient, load_csv

sklearn_gp = pytest.importorskip("sklearn.gaussian_process")
kernels = pytest.importorskip("sklearn.gaussian_process.kernels")
sm = pytest.importorskip("statsmodels.api")


def sklearn_theta_gradient(kernel, x, y, theta_by_name):
    """scikit-learn's log marginal likelihood and its gradient, by hyperparameter name."""
    gp = sklearn_gp.GaussianProcessRegressor(kernel, alpha=0.0, optimizer=None).fit(x[:, None], y)
    names = [h.name for h in gp.kernel_.hyperparameters if not h.fixed]
    theta = np.array([theta_by_name[name] for name in names])
    lml, grad = gp.log_marginal_likelihood(theta, eval_gradient=True)
    return lml, dict(zip(names, grad))


# ---- Mauna Loa -----------------------------------------------------------------------------------

def mauna_loa_kernel(theta):
    a1, l1, a2, l2, lp, a3, l3, alpha, a4, l4, noise = np.exp(theta)
    K = kernels
    return (K.ConstantKernel(a1**2) * K.RBF(l1)
            + K.ConstantKernel(a2**2) * K.RBF(l2)
            * K.ExpSineSquared(lp, 1.0, periodicity_bounds="fixed")
            + K.ConstantKernel(a3**2) * K.RationalQuadratic(l3, alpha)
            + K.ConstantKernel(a4**2) * K.RBF(l4) + K.WhiteKernel(noise**2))


@pytest.mark.parametrize("shift", [0.0, 0.2])
def test_mauna_loa_likelihood_and_gradient_match_scikit_learn(shift):
    x, co2 = mauna_loa.load_data()
    y = co2 - co2.mean()
    theta = mauna_loa.THETA0 + shift * np.linspace(-1, 1, 11)
    nll, grad = mauna_loa.negative_log_likelihood(theta, x, y)
    kernel = mauna_loa_kernel(theta)
    names = [h.name for h in kernel.hyperparameters if not h.fixed]
    # scikit-learn's parameters are log variances (amplitude^2) and logs of the rest, in the
    # order of its hyperparameter names; ours are log amplitudes and logs of the rest.
    ours = {"k1__k1__k1__k1__k1__constant_value": (0, 2), "k1__k1__k1__k1__k2__length_scale": (1, 1),
            "k1__k1__k1__k2__k1__k1__constant_value": (2, 2),
            "k1__k1__k1__k2__k1__k2__length_scale": (3, 1),
            "k1__k1__k1__k2__k2__length_scale": (4, 1), "k1__k1__k2__k1__constant_value": (5, 2),
            "k1__k1__k2__k2__length_scale": (6, 1), "k1__k1__k2__k2__alpha": (7, 1),
            "k1__k2__k1__constant_value": (8, 2), "k1__k2__k2__length_scale": (9, 1),
            "k2__noise_level": (10, 2)}
    assert sorted(names) == sorted(ours)
    lml, sk_grad = sklearn_theta_gradient(
        kernel, x, y, {name: scale * theta[i] for name, (i, scale) in ours.items()})
    np.testing.assert_allclose(-nll, lml, rtol=1e-9)
    for name, (i, scale) in ours.items():
        np.testing.assert_allclose(-grad[i], scale * sk_grad[name], rtol=1e-6, atol=1e-8)


def test_mauna_loa_data_is_the_monthly_mean_of_statsmodels_weekly_series():
    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().dropna()
    x, co2 = mauna_loa.load_data()
    assert len(co2) == len(monthly) == 521
    np.testing.assert_allclose(co2, monthly.to_numpy(), atol=5e-5)
    np.testing.assert_allclose(x, monthly.index.year + (monthly.index.month - 0.5) / 12)


def test_mauna_loa_demo_runs_with_a_small_budget(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "co2.png"
    assert mauna_loa.main(["--maxiter", "3", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert "log marginal likelihood" in out and str(path) in out
    assert path.stat().st_size > 10_000


# ---- Bayesian linear regression --------------------------------------------------------------------

def test_blr_matches_dense_density_and_finite_differences():
    Phi, y = blr.diabetes_features()
    la, lb = np.float64(-4.0), np.float64(-8.0)
    nll, dla, dlb, dPhi = blr.negative_log_likelihood(la, lb, Phi, y)
    np.testing.assert_allclose(nll, blr.dense_negative_log_likelihood(la, lb, Phi, y), rtol=1e-10)
    fd = finite_difference_gradient(
        lambda t: blr.negative_log_likelihood(t[0], t[1], Phi, y), np.array([la, lb]), h=1e-5)
    np.testing.assert_allclose([dla, dlb], fd, rtol=1e-6)
    E = np.random.default_rng(0).standard_normal(Phi.shape)
    h = 1e-6
    fd_phi = (blr.negative_log_likelihood(la, lb, Phi + h * E, y)[0]
              - blr.negative_log_likelihood(la, lb, Phi - h * E, y)[0]) / (2 * h)
    np.testing.assert_allclose(np.sum(dPhi * E), fd_phi, rtol=1e-5)


def test_blr_evidence_maximum_matches_scikit_learn_bayesian_ridge():
    from sklearn.linear_model import BayesianRidge
    Phi, y = blr.diabetes_features()
    la, lb, _ = blr.fit(Phi, y, np.float64(0.0), np.float64(-np.log(np.var(y))))
    ridge = BayesianRidge(fit_intercept=False, tol=1e-12, max_iter=10_000, alpha_1=0.0,
                          alpha_2=0.0, lambda_1=0.0, lambda_2=0.0).fit(Phi, y)
    np.testing.assert_allclose(np.exp(la), ridge.lambda_, rtol=1e-4)   # weight precision
    np.testing.assert_allclose(np.exp(lb), ridge.alpha_, rtol=1e-4)    # noise precision


def test_blr_multitask_batch_equals_single_tasks():
    Phi, y = blr.diabetes_features()
    Phis, ys = blr.multitask(Phi, y, ntasks=3)
    la, lb = np.array([-5.0, -4.0, -6.0]), np.array([-8.0, -7.5, -8.5])
    batched = blr.negative_log_likelihood(la, lb, Phis, ys)
    for t in range(3):
        single = blr.negative_log_likelihood(la[t], lb[t], Phis[t], ys[t])
        for b, s in zip(batched, single):
            np.testing.assert_allclose(b[t], s, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batched[0][t],
                                   blr.dense_negative_log_likelihood(la[t], lb[t], Phis[t], ys[t]),
                                   rtol=1e-10)


# ---- LQ least squares --------------------------------------------------------------------------------

def test_lq_least_squares_matches_numpy_lstsq_and_beats_normal_equations():
    X, y = lq_least_squares.longley()
    w = lq_least_squares.lq_solve(X, y)
    np.testing.assert_allclose(w, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-9)
    digits_lq = lq_least_squares.correct_digits(w, lq_least_squares.CERTIFIED)
    digits_ne = lq_least_squares.correct_digits(lq_least_squares.normal_equations_solve(X, y),
                                                lq_least_squares.CERTIFIED)
    assert digits_lq.min() >= 10 and digits_lq.min() > digits_ne.min() + 2


def test_longley_data_matches_statsmodels():
    data = sm.datasets.longley.load_pandas().data
    X, y = lq_least_squares.longley()
    np.testing.assert_array_equal(y, data["TOTEMP"])
    np.testing.assert_array_equal(X[:, 1:], data.drop(columns="TOTEMP").to_numpy())


# ---- PCA ------------------------------------------------------------------------------------------

def test_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA
    from sklearn.datasets import load_iris
    X, species, _ = pca.iris()
    np.testing.assert_array_equal(X, load_iris().data)
    components, variance = pca.principal_components(X)
    reference = PCA().fit(X)
    np.testing.assert_allclose(variance, reference.explained_variance_, rtol=1e-10)
    signs = np.sign(np.sum(components * reference.components_, axis=1))
    np.testing.assert_allclose(components * signs[:, None], reference.components_, atol=1e-10)


def test_pca_svd_route_matches_syevd_route_and_scikit_learn():
    from sklearn.decomposition import PCA
    X, _, _ = pca.iris()
    components, variance = pca.principal_components_svd(X)
    reference = PCA(svd_solver="full").fit(X)
    np.testing.assert_allclose(variance, reference.explained_variance_, rtol=1e-12)
    np.testing.assert_allclose(variance, pca.principal_components(X)[1], rtol=1e-10)
    signs = np.sign(np.sum(components * reference.components_, axis=1))
    np.testing.assert_allclose(components * signs[:, None], reference.components_, atol=1e-12)
    np.testing.assert_allclose(pca.top_variance_gradient_svd(X), pca.top_variance_gradient(X),
                               rtol=1e-8, atol=1e-12)


def test_pca_top_variance_gradient_matches_finite_differences():
    X, _, _ = pca.iris()
    dX = pca.top_variance_gradient(X)
    E = np.random.default_rng(1).standard_normal(X.shape)
    h = 1e-6
    top = lambda Z: pca.principal_components(Z)[1][0]  # noqa: E731
    np.testing.assert_allclose(np.sum(dX * E), (top(X + h * E) - top(X - h * E)) / (2 * h),
                               rtol=1e-6)


# ---- Kalman smoother ---------------------------------------------------------------------------------

def test_kalman_matches_statsmodels_exact_diffuse_local_level():
    years, y = kalman.nile()
    np.testing.assert_array_equal(y, sm.datasets.nile.load_pandas().data["volume"])
    model = sm.tsa.UnobservedComponents(y, "local level", use_exact_diffuse=True)
    reference = model.fit(disp=False)
    theta = np.log(reference.params)
    nll, grad = kalman.negative_log_likelihood(theta, y)
    np.testing.assert_allclose(-nll, reference.llf, rtol=1e-9)
    np.testing.assert_allclose(grad, finite_difference_gradient(
        lambda t: kalman.negative_log_likelihood(t, y), theta, h=1e-5), rtol=1e-5, atol=1e-6)
    mean, var = kalman.smooth(theta, y)
    np.testing.assert_allclose(mean, reference.smoothed_state[0], rtol=1e-9)
    np.testing.assert_allclose(var, reference.smoothed_state_cov[0, 0], rtol=1e-7)
    ours = kalman.fit(y)
    assert -ours.fun >= reference.llf - 1e-6
    np.testing.assert_allclose(np.exp(ours.x), [15099, 1469.1], rtol=2e-3)   # Durbin & Koopman


# ---- many small GPs ----------------------------------------------------------------------------------

def test_many_gps_batch_matches_single_series_and_scikit_learn():
    x, y = many_gps.synthetic_series(series=6, points=30, seed=3)
    theta = np.log([[0.7, 1.3, 0.2]]) + 0.1 * np.arange(18).reshape(6, 3) / 18
    nll, grad = many_gps.negative_log_likelihood(theta, x, y)
    for s in range(6):
        single = many_gps.negative_log_likelihood(theta[s:s + 1], x[s:s + 1], y[s:s + 1])
        np.testing.assert_allclose(single[0][0], nll[s], rtol=1e-12)
        np.testing.assert_allclose(single[1][0], grad[s], rtol=1e-10)
    K = kernels
    length, signal, noise = np.exp(theta[2])
    kernel = K.ConstantKernel(signal**2) * K.RBF(length) + K.WhiteKernel(noise**2)
    lml, sk = sklearn_theta_gradient(kernel, x[2], y[2], {
        "k1__k1__constant_value": 2 * theta[2, 1], "k1__k2__length_scale": theta[2, 0],
        "k2__noise_level": 2 * theta[2, 2]})
    np.testing.assert_allclose(-nll[2], lml, rtol=1e-10)
    np.testing.assert_allclose(-grad[2], [sk["k1__k2__length_scale"],
                                          2 * sk["k1__k1__constant_value"],
                                          2 * sk["k2__noise_level"]], rtol=1e-7)


def test_many_gps_adam_improves_every_series():
    x, y = many_gps.synthetic_series(series=200, points=30, seed=4)
    theta0 = np.tile(np.log([1.0, 1.0, 0.5]), (200, 1))
    theta, seconds = many_gps.adam(theta0, x, y, steps=10)
    assert seconds > 0
    assert np.all(many_gps.negative_log_likelihood(theta, x, y)[0]
                  < many_gps.negative_log_likelihood(theta0, x, y)[0])


def test_packaged_data_sets_have_their_documented_sizes():
    assert len(load_csv("diabetes.csv")["target"]) == 442
    assert len(load_csv("iris.csv")["species"]) == 150
    assert len(load_csv("nile.csv")["volume"]) == 100
    assert len(load_csv("longley.csv")["TOTEMP"]) == 16


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_frameworks_example_matches_the_demo_objective(framework):
    # The Mauna Loa likelihood written in PyTorch / JAX over adla.torch / adla.jax: value and
    # framework-computed gradient equal the demo's explicit adla gradient.
    from adla.examples import frameworks
    pytest.importorskip(framework)
    x, co2 = mauna_loa.load_data()
    y = co2 - co2.mean()
    theta = mauna_loa.THETA0 + 0.05
    nll, grad = mauna_loa.negative_log_likelihood(theta, x, y)
    if framework == "torch":
        import torch
        t = torch.tensor(theta, requires_grad=True)
        value = frameworks.torch_nll(t, torch.from_numpy(x), torch.from_numpy(y))
        value.backward()
        got_value, got_grad = float(value.detach()), t.grad.numpy()
    else:
        import jax
        jax.config.update("jax_enable_x64", True)
        value, g = jax.value_and_grad(frameworks.jax_nll)(theta, x, y)
        got_value, got_grad = float(value), np.asarray(g)
    np.testing.assert_allclose(got_value, nll, rtol=1e-8)      # K: condition number ~1e7
    np.testing.assert_allclose(got_grad, grad, rtol=1e-6, atol=1e-6 * np.abs(grad).max())


# ---- Gauss-Newton with forward mode ------------------------------------------------------------------

def test_gauss_newton_fit_from_jvps_matches_scipy_least_squares():
    from scipy.optimize import least_squares
    from adla.examples.gauss_newton import levenberg_marquardt, make_problem
    problem, theta_true = make_problem(networks=4, rows=3, cols=3, patterns=5, seed=1)
    start = np.zeros_like(theta_true)
    # J v (forward mode) and J^T u (reverse mode) are one matrix and its transpose, and J v
    # is the residuals' directional derivative.
    X, state = problem.solve(start)
    rng = np.random.default_rng(0)
    v, u = rng.standard_normal(start.size), rng.standard_normal(X.size)
    Jv = problem.jvp(state, v)
    assert np.isclose(u @ Jv, problem.vjp(state, X, u) @ v, rtol=1e-12)
    h = 1e-6
    fd = (problem.residuals(start + h * v) - problem.residuals(start - h * v)) / (2 * h)
    np.testing.assert_allclose(Jv, fd, rtol=1e-6, atol=1e-9)
    theta, cost, steps = levenberg_marquardt(problem, start)
    # SciPy's LM stops on ftol a little above the minimum in some versions (SciPy 1.15, Python
    # 3.10: cost 2.4e-9 relative above adla's, parameters 1.5e-5 apart), so the reference is
    # restarted once from where it stopped; adla's fit must reach its cost, or go below it.
    tight = dict(method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    reference = least_squares(problem.residuals, start, **tight)
    reference = least_squares(problem.residuals, reference.x, **tight)
    assert cost <= reference.cost * (1 + 1e-9)
    np.testing.assert_allclose(theta, reference.x, atol=1e-5)
    assert np.sqrt(np.mean((theta - theta_true) ** 2)) < 0.05
