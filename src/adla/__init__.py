"""adla: auto-differentiating linear algebra.

Batched LAPACK/BLAS operators with explicit reverse-mode gradients, after Seeger et al.,
"Auto-Differentiating Linear Algebra" (2017). Every operator ``op(...)`` has a reverse-mode
``op_backward(<cotangents>, <primal arrays>, **options)``; the repository's README and
``docs/api.md`` document them, and every function has its own docstring.
"""
import functools

from ._frontend import LinAlgError
from ._spec import SPECS as _SPECS
from ._blas3 import (gemm, gemm_backward, gemm2, gemm2_backward, syrk, syrk_backward, trmm,
                     trmm_backward, trsm, trsm_backward)
from ._cholesky import (potrf, potrf_backward, potri, potri_backward, potrs, potrs_backward,
                        sumlogdiag, sumlogdiag_backward)
from ._decomp import (gelqf, gelqf_backward, geqrf, geqrf_backward, syevd, syevd_backward,
                      degenerate_tolerance, inverse, inverse_backward, det, det_backward,
                      slogdet, slogdet_backward)
from ._general import gesvd, gesvd_backward, gesv, gesv_backward
from ._structure import (extractdiag, extractdiag_backward, makediag, makediag_backward,
                         extracttrian, extracttrian_backward, maketrian, maketrian_backward)

__version__ = "0.1.0"


def _accepting_dask(fn):
    """``fn`` that also takes dask arrays, then returning dask arrays (``_dask.py``); dask itself
    is imported only when one arrives."""
    @functools.wraps(fn)
    def operator(*args, **kwargs):
        for x in (*args, *kwargs.values()):
            if type(x).__module__.startswith("dask."):
                from . import _dask
                return _dask.call(fn, args, kwargs)
        return fn(*args, **kwargs)
    return operator


for _name in _SPECS:
    globals()[_name] = _accepting_dask(globals()[_name])
    globals()[_name + "_backward"] = _accepting_dask(globals()[_name + "_backward"])
del _name

__all__ = [
    "LinAlgError",
    "gemm", "gemm_backward", "gemm2", "gemm2_backward", "syrk", "syrk_backward",
    "trmm", "trmm_backward", "trsm", "trsm_backward",
    "potrf", "potrf_backward", "potri", "potri_backward", "potrs", "potrs_backward",
    "sumlogdiag", "sumlogdiag_backward",
    "gelqf", "gelqf_backward", "geqrf", "geqrf_backward", "syevd", "syevd_backward",
    "degenerate_tolerance", "inverse", "inverse_backward", "det", "det_backward",
    "slogdet", "slogdet_backward", "gesvd", "gesvd_backward", "gesv", "gesv_backward",
    "extractdiag", "extractdiag_backward", "makediag", "makediag_backward",
    "extracttrian", "extracttrian_backward", "maketrian", "maketrian_backward",
]
