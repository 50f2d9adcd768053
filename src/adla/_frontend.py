"""The front end shared by every operator and backend.

An operator builds one :class:`Call` from its named operands. The call checks dtypes and shapes
(raising ``TypeError``/``ValueError`` that name the function and the operand), picks the backend
and the computation dtype, broadcasts the batch axes, turns operands into the C-contiguous
``(nbatch, ...)`` stacks the backends take, and on the way out reshapes results, sums gradients
over broadcast axes and turns per-matrix status codes into :class:`LinAlgError` (or NaN fill with
``check=False``).
"""
import math

import numpy as np

from ._backend import STATUS_NONFINITE
from ._spec import SPECS

# LAPACK/BLAS take 32-bit integers: dimensions and per-matrix element counts must fit.
LAPACK_INT_MAX = 2**31 - 1


class LinAlgError(np.linalg.LinAlgError):
    """A numerical failure of one or more matrices of a batch.

    ``indices`` lists the batch index (a tuple over the batch shape, ``()`` for an unbatched
    input) of every failing matrix, so that a caller can retry just those.
    """

    def __init__(self, message, indices=()):
        super().__init__(message)
        self.indices = list(indices)

    def __reduce__(self):
        # Pickled with its indices (default exception pickling keeps only the message), so it
        # arrives whole from another process: a dask worker, a multiprocessing pool.
        return type(self), (str(self), self.indices)


def _is_cupy(x):
    return type(x).__module__.partition(".")[0] == "cupy"


_cpu_backend = None     # imported at the first call, not at each (an import costs microseconds)


def _load_cpu():
    global _cpu_backend
    from . import _cpu
    _cpu_backend = _cpu
    return _cpu


def _backend_for(fname, operands):
    on_gpu = [name for name, x in operands.items()
              if type(x) is not np.ndarray and _is_cupy(x)]
    if not on_gpu:
        return _cpu_backend or _load_cpu()
    on_cpu = [name for name in operands if name not in on_gpu]
    if on_cpu:
        raise TypeError(f"adla.{fname}: cannot mix CuPy operands ({', '.join(on_gpu)}) "
                        f"with NumPy operands ({', '.join(on_cpu)})")
    from ._gpu import backend          # lazy: CuPy is imported only for CuPy inputs
    return backend


def _checked_dtype(fname, name, a):
    kind = a.dtype.kind
    if (kind == "f" and a.dtype.itemsize in (4, 8)) or kind in "biu":
        return a
    raise TypeError(f"adla.{fname}: operand {name} has unsupported dtype {a.dtype}; "
                    "expected float32 or float64 (integer and bool inputs are converted to "
                    "float64)")


def _float_dtype(dtype):
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _native_float(dtype):
    """The float dtype a computation on ``dtype`` runs in: float64 for integers and bools, and
    this machine's byte order."""
    return _float_dtype(dtype).newbyteorder("=")


def c_contiguous(xp, x):
    return x if x.flags.c_contiguous else xp.array(x, order="C")


def _broadcasts_unchanged(shape, target):
    """Whether an array of ``shape`` broadcasts to ``target`` without changing it: the rule for
    cotangents (against their output) and tangents (against their input)."""
    # The rule written out: numpy.broadcast_shapes costs a microsecond, a third of a small call.
    lead = len(target) - len(shape)
    return lead >= 0 and all(s == t or s == 1 for s, t in zip(shape, target[lead:]))


def scalar(fname, name, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"adla.{fname}: {name} must be a real scalar, got {value!r}") from None


class Call:
    """The validated operands of one call of operator ``fname``.

    ``operands`` maps names to array-likes (``None`` for an absent optional operand). Each operand
    has ``core[name]`` trailing core axes (2, a matrix, unless given) and the leading axes are
    batch axes, broadcast together as in ``numpy.matmul``.

    ``cotangents`` names the operands that are cotangents of the forward's outputs (a backward's
    first arguments). They take no part in the batch shape: each must broadcast to its output's
    shape without changing it, which :meth:`cotangent` checks once the backward knows that shape.
    """

    def __init__(self, fname, operands, core=None, cotangents=(), tangents=()):
        self.fname = fname
        present, on_gpu = {}, False
        for name, x in operands.items():    # only cotangents and tangents may be absent
            if x is not None:
                present[name] = x
                on_gpu = on_gpu or (type(x) is not np.ndarray and _is_cupy(x))
            elif name not in cotangents and name not in tangents:
                raise TypeError(f"adla.{fname}: operand {name} is required, got None")
        self.backend = _backend_for(fname, present) if on_gpu else (_cpu_backend or _load_cpu())
        xp = self.xp = self.backend.xp
        core = core or {}
        self.core, self.arrays, self.unchecked = {}, {}, set()
        # A tangent takes its primal's dtype and batch (contract: computed in the forward's dtype).
        # A Python int or float (a scalar cotangent, say) promotes as in NumPy: it does not
        # make a float32 computation float64.
        primals, batches, taken_tangents, dtypes, weak = [], [], [], set(), []
        for name, x in present.items():
            a = self.arrays[name] = _checked_dtype(
                fname, name, x if type(x) is np.ndarray else xp.asarray(x))
            ncore = self.core[name] = core.get(name, 2)
            if name in tangents:
                taken_tangents.append(name)
                continue
            if type(x) in (int, float):
                weak.append(x)
            else:
                dtypes.add(a.dtype)
            if name in cotangents:
                self.unchecked.add(name)
                continue
            shape = a.shape
            split = len(shape) - ncore
            if split < 0:
                kind = {2: "a matrix (at least 2 dimensions)", 1: "at least 1 dimension"}
                raise ValueError(f"adla.{fname}: operand {name} must be {kind[ncore]}, "
                                 f"got shape {shape}")
            size = math.prod(shape[split:])
            if size > LAPACK_INT_MAX or (size == 0 and max(shape[split:]) > LAPACK_INT_MAX):
                self.check_lapack_size(shape[split:], f"operand {name} of shape {shape}")
            primals.append(name)
            batches.append(shape[:split])
        if not weak and len(dtypes) == 1:
            dtype = next(iter(dtypes))              # the common case, without result_type
        else:
            dtype = np.result_type(*[_float_dtype(d) for d in dtypes], *weak)
        # Computed in this machine's byte order (a big-endian array is converted on the way).
        self.dtype = dtype if dtype.kind == "f" and dtype.isnative else _native_float(dtype)
        if len(batches) == 1 or batches.count(batches[0]) == len(batches):
            self.batch = batches[0] if batches else ()
        else:
            try:
                self.batch = tuple(np.broadcast_shapes(*batches))
            except ValueError:
                shapes = ", ".join(f"{n} {self.arrays[n].shape}" for n in primals)
                raise ValueError(f"adla.{fname}: batch axes do not broadcast: "
                                 f"{shapes}") from None
        self.nbatch = math.prod(self.batch)
        for name in taken_tangents:
            self._take_tangent(name, name[1:])

    def _take_tangent(self, name, primal):
        """Tangent ``name`` of input ``primal`` must broadcast to the primal's shape without
        changing it (as a cotangent to its output's); it then stands for an operand of exactly
        the primal's shape."""
        a, shape = self.arrays[name], self.arrays[primal].shape
        if a.shape != shape and not _broadcasts_unchanged(a.shape, shape):
            raise ValueError(f"adla.{self.fname}: tangent {name} has shape {a.shape}, which "
                             f"does not broadcast to the shape {shape} of its operand {primal} "
                             "(its axes may only be missing or of length 1)")
        if a.shape != shape:
            a = self.xp.broadcast_to(a, shape)
        self.arrays[name], self.core[name] = a, self.core[primal]

    def tangent(self, name):
        """The stack of tangent ``name`` (see :meth:`stack`), or None for an absent (zero) one."""
        return self.stack(name) if name in self.arrays else None

    def cotangent(self, name, core):
        """Check cotangent ``name`` against its output's shape, ``batch + core``: it must
        broadcast to that shape without changing it (a scalar for a whole batch is fine; extra or
        longer batch axes would silently sum gradients, so they are a ValueError). An absent
        (``None``) cotangent passes."""
        if name not in self.unchecked:
            return
        a, core = self.arrays[name], tuple(core)
        expected = self.batch + core
        if a.shape != expected and not _broadcasts_unchanged(a.shape, expected):
            raise ValueError(f"adla.{self.fname}: cotangent {name} has shape {a.shape}, which "
                             f"does not broadcast to the shape {expected} of the output it "
                             "belongs to (its batch axes may only be missing or of length 1)")
        if a.shape[max(a.ndim - len(core), 0):] != core:       # a scalar for a matrix, say
            a = self.xp.broadcast_to(a, a.shape[:max(a.ndim - len(core), 0)] + core)
        self.arrays[name], self.core[name] = a, len(core)
        self.unchecked.discard(name)

    # ---- shapes ------------------------------------------------------------------------------
    def core_shape(self, name):
        shape = self.arrays[name].shape
        return shape[len(shape) - self.core[name]:]

    def batch_shape(self, name):
        shape = self.arrays[name].shape
        return shape[:len(shape) - self.core[name]]

    def shape_error(self, name, requirement):
        return ValueError(f"adla.{self.fname}: operand {name} {requirement}, "
                          f"got shape {self.arrays[name].shape}")

    def square(self, name):
        rows, cols = self.core_shape(name)
        if rows != cols:
            raise self.shape_error(name, "must be square in its last two axes")
        return rows

    def require(self, name, axis, size, why):
        """Demand ``shape(name)[axis] == size``; ``why`` says where ``size`` comes from."""
        if self.arrays[name].shape[axis] != size:
            raise self.shape_error(name, f"must have {size} {why}")

    def same_core_shape(self, name, like):
        if self.core_shape(name) != self.core_shape(like):
            raise self.shape_error(name, f"must have the matrix shape {self.core_shape(like)} "
                                   f"of {like}")

    def check_lapack_size(self, core_shape, what):
        """Refuse, before allocating, a matrix that LAPACK's 32-bit integers cannot index."""
        if max(core_shape, default=0) > LAPACK_INT_MAX or math.prod(core_shape) > LAPACK_INT_MAX:
            raise ValueError(f"adla.{self.fname}: {what} is too large: LAPACK takes matrices "
                             f"with at most {LAPACK_INT_MAX} rows, columns and elements")

    # ---- stacks in and out -------------------------------------------------------------------
    def stack(self, name):
        """Operand ``name`` as a C-contiguous stack ``(nbatch or 1, *core)`` of the call's dtype."""
        assert name not in self.unchecked, f"cotangent {name} used before Call.cotangent"
        xp, a = self.xp, self.arrays[name]
        shape = a.shape
        split = len(shape) - self.core[name]
        batch, core = shape[:split], shape[split:]
        if batch == self.batch:
            return xp.ascontiguousarray(a.reshape((self.nbatch,) + core), dtype=self.dtype)
        if math.prod(batch) == 1:
            return xp.ascontiguousarray(a.reshape((1,) + core), dtype=self.dtype)
        a = xp.broadcast_to(a, self.batch + core)
        return xp.ascontiguousarray(a.reshape((self.nbatch,) + core), dtype=self.dtype)

    def zeros(self, core):
        return self.xp.zeros((self.nbatch,) + tuple(core), dtype=self.dtype)

    def zero_tangent(self, core):
        """A zero stack of length 1, the tangent of an output with no input tangent."""
        return self.xp.zeros((1,) + tuple(core), dtype=self.dtype)

    def result(self, out):
        """An output stack ``(nbatch, *core)`` reshaped to ``batch + core``, C-contiguous (a
        stack of length 1, a tangent that is the same for the whole batch, broadcast)."""
        if out.shape[0] != self.nbatch:
            out = self.xp.broadcast_to(out, (self.nbatch,) + out.shape[1:])
        return c_contiguous(self.xp, out.reshape(self.batch + out.shape[1:]))

    def gradient(self, g, name):
        """A gradient stack for operand ``name``, summed over broadcast axes to its shape."""
        xp, a = self.xp, self.arrays[name]
        core = g.shape[1:]
        if a.shape == self.batch + core and g.shape[0] == self.nbatch:    # nothing to sum
            return self.summed_gradient(g, name)
        if g.shape[0] != self.nbatch:          # computed from broadcast stacks only
            g = xp.broadcast_to(g, (self.nbatch,) + core)
        g = g.reshape(self.batch + core)
        own_batch = self.batch_shape(name)
        lead = len(self.batch) - len(own_batch)
        summed = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(own_batch) if d == 1 and self.batch[lead + i] != 1)
        if summed:
            g = g.sum(axis=summed, keepdims=True)
        return self.summed_gradient(g, name)

    def batch_gradient(self, g):
        """A gradient stack for an input the backward does not take (so no operand has its
        shape): reshaped to the call's batch shape, in the call's dtype."""
        xp = self.xp
        if g.shape[0] != self.nbatch:
            g = xp.broadcast_to(g, (self.nbatch,) + g.shape[1:])
        return c_contiguous(xp, g.reshape(self.batch + g.shape[1:]).astype(self.dtype,
                                                                            copy=False))

    def shared(self, name):
        """Whether operand ``name`` is one matrix shared by a longer batch (its stack has length
        1): its gradient is then a sum over the whole batch (:meth:`summed_gradient`)."""
        return self.nbatch > 1 and math.prod(self.batch_shape(name)) == 1

    def summed_gradient(self, g, name):
        """The gradient for operand ``name`` from ``g``, already summed over the axes where the
        operand was broadcast (a :meth:`shared` operand's: ``(1, *core)``), in its shape and
        float dtype."""
        a = self.arrays[name]
        dtype = a.dtype if a.dtype.kind == "f" else self.dtype
        return c_contiguous(self.xp, g.reshape(a.shape).astype(dtype, copy=False))

    # ---- status codes ------------------------------------------------------------------------
    def finish(self, outs, status, check, reason):
        """Reshape output stack(s); on failure raise LinAlgError (``check=True``, one device
        synchronisation on the GPU) or fill the failing matrices with NaN (no synchronisation).

        ``reason(code)`` explains a positive status code of this operator.
        """
        if check:
            self.raise_failed(status, reason)
        elif self.backend.out_of_memory(status):
            raise self.failure(status, self.backend.failed(status), str)
        if not isinstance(outs, tuple):
            return self.result(outs if check else self.backend.fill_failed(outs, status))
        if not check:
            outs = [self.backend.fill_failed(out, status) for out in outs]
        return tuple([self.result(out) for out in outs])

    def raise_failed(self, status, reason):
        """Raise LinAlgError if any matrix failed (one device synchronisation on the GPU)."""
        failed = self.backend.failed(status)
        if failed.size:
            raise self.failure(status, failed, reason)

    def finish_jvp(self, outs, tangents, status):
        """The jvp's ``(outputs, tangents)`` from their stacks (an array each for an operator of
        one output, else tuples): the matrices whose forward failed are NaN in both (the rule
        raises before, with ``check``). A tangent stack of length 1 is the whole batch's."""
        single = not isinstance(outs, tuple)
        outs, tangents = ((outs,), (tangents,)) if single else (tuple(outs), tuple(tangents))
        xp = self.xp
        tangents = tuple(t if t.shape[0] == self.nbatch
                         else xp.broadcast_to(t, (self.nbatch,) + t.shape[1:]).copy()
                         for t in tangents)
        both = self.finish(outs + tangents, status, False, str)
        outs, tangents = both[:len(outs)], both[len(outs):]
        return (outs[0], tangents[0]) if single else (outs, tangents)

    def nan_where_failed(self, out, status):
        """Failed matrices of ``out`` become NaN, without raising or synchronising (but a
        failure to allocate workspace raises MemoryError)."""
        if self.backend.out_of_memory(status):
            raise self.failure(status, self.backend.failed(status), str)
        return self.backend.fill_failed(out, status)

    def failure(self, status, failed, reason):
        """The exception for ``failed`` (flat batch indices, a NumPy array) of this call."""
        indices = [tuple(int(i) for i in np.unravel_index(f, self.batch)) for f in failed]
        if self.backend.out_of_memory(status):
            return MemoryError(f"adla.{self.fname}: could not allocate LAPACK workspace")
        code = int(status[int(failed[0])])
        why = "has a non-finite entry" if code == STATUS_NONFINITE else reason(code)
        count = (f"{len(failed)} of {self.nbatch} matrices failed" if len(failed) > 1
                 else "1 matrix failed")
        return LinAlgError(f"adla.{self.fname}: the matrix at batch index {indices[0]} {why} "
                           f"({count}; see .indices)", indices)


def forward_call(op, operands):
    """The :class:`Call` of operator ``op``'s forward, core dimensions from its spec."""
    return Call(op, operands, core=SPECS[op].core_ndims(operands))


def backward_call(op, operands):
    """The :class:`Call` of ``op``'s backward: its cotangents (named ``d`` + output, as in the
    spec) are checked against their outputs by :meth:`Call.cotangent`."""
    spec = SPECS[op]
    return Call(op + "_backward", operands, core=spec.core_ndims(operands),
                cotangents=spec.cotangent_names)


def jvp_call(op, operands):
    """The :class:`Call` of ``op``'s jvp: its tangents (named ``d`` + input, as in the spec)
    are checked against their inputs' shapes and take their dtype from the primals."""
    spec = SPECS[op]
    return Call(op + "_jvp", operands, core=spec.core_ndims(operands),
                tangents=spec.tangent_names)


def singular(code):
    return f"is singular: diagonal entry {code - 1} of the triangular factor is zero"


def lu_singular(code):
    return "is singular: its LU factorization has an exactly zero pivot"


def not_converged(code):
    return f"did not converge ({code} off-diagonal elements did not converge to zero)"


def rank_deficient(code):
    return f"is rank deficient: diagonal entry {code - 1} of the triangular factor is zero"


def not_positive_definite(code):
    return f"is not positive definite: its leading minor of order {code} is not positive"
