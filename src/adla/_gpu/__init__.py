"""adla's GPU backend (CuPy): imported only when an operator receives CuPy arrays."""
