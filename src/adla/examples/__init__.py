"""Runnable use cases of adla, each with ``python -m adla.examples.<name>``:

- ``mauna_loa`` — GP regression on Mauna Loa CO2 with the kernel of Rasmussen & Williams §5.4.3
  (the main demo, also ``python -m adla demo``);
- ``blr`` — Bayesian linear regression (single and multi-task) on the diabetes data;
- ``lq_least_squares`` — least squares via LQ on the ill-conditioned Longley data;
- ``pca`` — principal components of iris via ``syevd``;
- ``kalman`` — local level smoother for the Nile flow, variances learned by gradient;
- ``many_gps`` — 10,000 independent small GPs learned jointly in batched calls.

Every model computes its objective and gradient from adla forward/backward calls only (NumPy for
elementwise work).
"""
