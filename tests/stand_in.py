"""The GPU backend module loaded on any machine, with NumPy standing in for CuPy: its definitions
and its array-level rules can then be checked against the CPU backend without a GPU."""
import importlib.util
import sys
import types

import numpy as np


def gpu_backend_on_numpy():
    stand_in = types.ModuleType("cupy")
    stand_in.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    origin = importlib.util.find_spec("adla._gpu.backend").origin
    spec = importlib.util.spec_from_file_location("adla_gpu_backend_on_numpy", origin)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved
    return module
