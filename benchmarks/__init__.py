"""adla's benchmarks, run from the repository root with ``python -m benchmarks`` (see
``__main__.py``). Not part of the installed package: they time adla as installed against NumPy,
SciPy and, where installed, PyTorch and JAX."""
