"""adla: auto-differentiating linear algebra.

Batched LAPACK/BLAS operators with explicit reverse-mode gradients, after Seeger et al.,
"Auto-Differentiating Linear Algebra" (2017). Every operator ``op(...)`` has a reverse-mode
``op_backward(<cotangents>, <primal arrays>, **options)`` and a forward-mode
``op_jvp(<primal inputs>, <their tangents>, **options) -> (outputs, output tangents)``; the repository's README and
``docs/api.md`` document them, and every function has its own docstring.
"""
import functools

import numpy as _np

from ._frontend import LinAlgError
from ._spec import SPECS as _SPECS
from ._blas3 import (gemm, gemm_backward, gemm_jvp, gemm2, gemm2_backward, gemm2_jvp, syrk,
                     syrk_backward, syrk_jvp, trmm, trmm_backward, trmm_jvp, trsm, trsm_backward,
                     trsm_jvp)
from ._cholesky import (potrf, potrf_backward, potrf_jvp, potri, potri_backward, potri_jvp,
                        potrs, potrs_backward, potrs_jvp, sumlogdiag, sumlogdiag_backward,
                        sumlogdiag_jvp)
from ._decomp import (gelqf, gelqf_backward, gelqf_jvp, geqrf, geqrf_backward, geqrf_jvp, syevd,
                      syevd_backward, syevd_jvp, degenerate_tolerance, inverse, inverse_backward,
                      inverse_jvp, det, det_backward, det_jvp, slogdet, slogdet_backward,
                      slogdet_jvp)
from ._general import gesvd, gesvd_backward, gesvd_jvp, gesv, gesv_backward, gesv_jvp
from ._structure import (extractdiag, extractdiag_backward, extractdiag_jvp, makediag,
                         makediag_backward, makediag_jvp, extracttrian, extracttrian_backward,
                         extracttrian_jvp, maketrian, maketrian_backward, maketrian_jvp)

__version__ = "0.1.0"


def _accepting_dask(fn):
    """``fn`` that also takes dask arrays, then returning dask arrays (``_dask.py``); dask itself
    is imported only when one arrives."""
    @functools.wraps(fn)
    def operator(*args, **kwargs):
        for x in (*args, *kwargs.values()) if kwargs else args:
            if type(x) not in _PLAIN_TYPES and type(x).__module__.startswith("dask."):
                from . import _dask
                return _dask.call(fn, args, kwargs)
        return fn(*args, **kwargs)
    return operator


_PLAIN_TYPES = frozenset([_np.ndarray, float, int, bool, type(None)])   # not dask, at a glance


for _name in _SPECS:
    globals()[_name] = _accepting_dask(globals()[_name])
    for _rule in ("_backward", "_jvp"):
        globals()[_name + _rule] = _accepting_dask(globals()[_name + _rule])
del _name, _rule

__all__ = ["LinAlgError", "degenerate_tolerance"] + [
    name + rule for name in _SPECS for rule in ("", "_backward", "_jvp")]
