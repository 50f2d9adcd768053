"""adla's operators as JAX functions with a custom VJP: ``adla.jax.potrf(A)``.

Every forward operator of adla, same name, operands and options (but no ``check``), takes JAX
arrays and returns JAX arrays. It runs adla's CPU kernels as XLA custom calls that read JAX's
operand buffers in place and compute the results in JAX's result buffers (no copies), and
differentiates through adla's backward functions (``jax.custom_vjp``), so it works under
``jax.jit``, ``jax.grad``/``jax.vjp`` and ``jax.vmap`` (also with some operands mapped and others
shared), in float32 and, with ``jax_enable_x64``, float64. Arrays on an accelerator go through
``jax.pure_callback`` instead: they are copied to the host for the call and the results back.

As in ``jax.numpy.linalg``, a matrix that fails gives NaN for that matrix, in the forward and in
the backward (also where adla's ``gelqf_backward``/``geqrf_backward`` would raise). Reverse mode
only: ``jax.jvp``/``jax.jacfwd`` are not supported.

On Linux with glibc, the first custom call sets ``malloc`` to keep up to ``ADLA_CPU_CACHE_MB`` MiB
of freed memory in the process (``mallopt``), so that the fresh result buffers XLA allocates for
every call reuse memory instead of faulting in new pages; ``ADLA_CPU_CACHE_MB=0`` leaves
``malloc`` alone.

``import adla`` does not import JAX; ``import adla.jax`` does.
"""
import functools

import numpy as np
import jax
import jax.numpy as jnp

import adla
from . import _xla_ffi
from ._adapters import bind, operand_names, sample_outputs, signature
from ._spec import SPECS

__all__ = sorted(SPECS)


def _dtype(x):
    return jax.dtypes.canonicalize_dtype(x)


def _pad(arrays, traced, core, longest):
    """Operands of a callback as adla sees them: ``k`` leading axes that vmap added (the same in
    every operand), then each operand's own batch axes right-aligned to ``longest`` axes (size-1
    axes inserted), then its core axes."""
    padded = []
    for a, t, c in zip(arrays, traced, core):
        k = a.ndim - len(t)
        padded.append(a.reshape(a.shape[:k] + (1,) * (longest - len(t) + c) + a.shape[k:]))
    return padded


@functools.lru_cache(maxsize=None)
def _function(fname, names, options, traced):
    """The custom-VJP function of operator ``fname`` on operands ``names`` (the present ones, in
    order) with ``options``, for operands of the traced shapes and dtypes ``traced``."""
    spec = SPECS[fname]
    forward, backward = getattr(adla, fname), getattr(adla, fname + "_backward")
    options = dict(options)
    shapes = [s for s, _ in traced]
    core = [spec.core_ndims([n])[n] for n in names]
    quiet = dict(options, check=False) if "check" in spec.options else options
    bwd_options = {k: v for k, v in options.items() if k in spec.backward_options}

    # Output shapes and dtypes from a call on an empty batch of the operands' core shapes.
    sample = sample_outputs(forward, {n: (s[len(s) - c:], d)
                                      for n, (s, d), c in zip(names, traced, core)}, quiet)
    batch = np.broadcast_shapes(*[s[:len(s) - c] for s, c in zip(shapes, core)])
    out_types = tuple(jax.ShapeDtypeStruct(tuple(batch) + o.shape[1:], _dtype(o.dtype))
                      for o in sample)
    single = len(out_types) == 1

    def run_forward(*arrays):
        padded = _pad([np.asarray(a) for a in arrays], shapes, core, len(batch))
        result = forward(**dict(zip(names, padded)), **quiet)
        result = result if isinstance(result, tuple) else (result,)
        return tuple(np.asarray(r, dtype=t.dtype) for r, t in zip(result, out_types))

    call_forward = _host_call(run_forward, out_types, "expand_dims")

    # The backward's callback takes only what adla's backward reads: the cotangents of the
    # outputs that have them, then the primals it names (operands or outputs).
    cotangent_at = [i for i, o in enumerate(spec.outputs) if o in spec.cotangent_outputs]
    outputs = [o.name for o in spec.outputs]
    traced_of = {**dict(zip(names, shapes)), **{o: t.shape for o, t in zip(outputs, out_types)}}
    core_of = {**dict(zip(names, core)), **{o.name: len(o.core) for o in spec.outputs}}
    bwd_traced = ([out_types[i].shape for i in cotangent_at]
                  + [traced_of[p] for p in spec.backward_primals])
    bwd_core = ([len(spec.outputs[i].core) for i in cotangent_at]
                + [core_of[p] for p in spec.backward_primals])
    grad_names = [n for n in names if n in spec.differentiable]
    grad_types = tuple(jax.ShapeDtypeStruct(s, _dtype(d))
                       for n, (s, d) in zip(names, traced) if n in spec.differentiable)

    def run_backward(*arrays):
        arrays = [np.asarray(a) for a in arrays]
        padded = _pad(arrays, bwd_traced, bwd_core, len(batch))
        cotangents, primals = padded[:len(cotangent_at)], padded[len(cotangent_at):]
        lead = arrays[0].shape[:arrays[0].ndim - len(bwd_traced[0])]      # vmap's axes
        # Each gradient as adla returns it: the operand's shape, padded as its operand was.
        target = {n: lead + (1,) * (len(batch) - len(traced_of[n]) + core_of[n]) + traced_of[n]
                  for n in spec.differentiable if n in traced_of}
        try:
            grads = backward(*cotangents, *primals, **bwd_options)
        except adla.LinAlgError as error:
            grads = _nan_where_failed(backward, cotangents, primals, bwd_options, error.indices,
                                      [target[n] for n in spec.differentiable])
        by_name = dict(zip(spec.differentiable, grads if isinstance(grads, tuple) else (grads,)))
        out = []
        for n, t in zip(grad_names, grad_types):
            g = by_name[n]
            axes = tuple(ax for ax, (have, want) in enumerate(zip(g.shape, target[n]))
                         if want == 1 and have != 1)
            if axes:            # an input the backward does not take, broadcast in the batch
                g = g.sum(axis=axes, keepdims=True)
            out.append(np.asarray(g.reshape(lead + traced_of[n]), dtype=t.dtype))
        return tuple(out)

    # broadcast_all: every mapped operand arrives mapped, so that each gradient comes back
    # per example (adla sums over the axes an operand was broadcast along).
    call_backward = _host_call(run_backward, grad_types, "broadcast_all")

    @jax.custom_vjp
    def function(*arrays):
        outs = call_forward(*arrays)
        return outs[0] if single else outs

    def function_fwd(*arrays):
        outs = call_forward(*arrays)
        values = {**dict(zip(names, arrays)), **dict(zip(outputs, outs))}
        return (outs[0] if single else outs), tuple(values[p] for p in spec.backward_primals)

    def function_bwd(primals, cts):
        cts = (cts,) if single else cts
        grads = iter(call_backward(*[cts[i] for i in cotangent_at], *primals))
        return tuple(next(grads) if n in spec.differentiable else None for n in names)

    function.defvjp(function_fwd, function_bwd)
    return function


def _host_call(run, out_types, vmap_method):
    """``run`` (NumPy arrays in, a tuple of arrays out) as a JAX function: on the CPU an XLA
    custom call that hands adla XLA's own buffers (``_xla_ffi``), elsewhere ``jax.pure_callback``
    (which copies the operands to the host and the results back)."""
    in_place = jax.ffi.ffi_call(_xla_ffi.target(run), out_types, vmap_method=vmap_method)

    def copied(*arrays):
        return jax.pure_callback(run, out_types, *arrays, vmap_method=vmap_method)

    def call(*arrays):
        return tuple(jax.lax.platform_dependent(*arrays, cpu=in_place, default=copied))
    return call


def _nan_where_failed(backward, cotangents, primals, options, failed, shapes):
    """The backward with NaN for the matrices at batch indices ``failed`` and the others as
    usual: every operand broadcast to the whole batch (all have the same number of batch axes
    here, see _pad), the failing matrices swapped for one that did not fail, their gradients
    then set to NaN and each gradient summed back to its operand's shape ``shapes``."""
    nb = len(failed[0])
    batch = np.broadcast_shapes(*[a.shape[:nb] for a in primals])
    failed = set(failed)
    good = next((i for i in np.ndindex(*batch) if i not in failed), None)
    if good is None:
        return tuple(np.full(shape, np.nan) for shape in shapes)
    full = []
    for a in (*cotangents, *primals):
        if a is not None:
            a = np.broadcast_to(a, batch + a.shape[nb:]).copy()
            for i in failed:
                a[i] = a[good]
        full.append(a)
    grads = backward(*full, **options)
    out = []
    for g, shape in zip(grads if isinstance(grads, tuple) else (grads,), shapes):
        g = np.array(g)
        for i in failed:
            g[i] = np.nan
        axes = tuple(ax for ax, (n, m) in enumerate(zip(g.shape, shape)) if m == 1 and n != 1)
        out.append(g.sum(axis=axes, keepdims=True) if axes else g)
    return tuple(out)


def _adapted(fname):
    forward = getattr(adla, fname)
    names = operand_names(forward)
    params = [p for p in signature(forward).parameters.values() if p.name != "check"]

    @functools.wraps(forward)
    def operator(*args, **kwargs):
        if "check" in kwargs:
            raise TypeError(f"adla.jax.{fname} takes no check option: a failing matrix gives NaN")
        bound = bind(forward, args, kwargs)
        options = tuple(sorted((k, v) for k, v in bound.options.items() if k != "check"))
        present = [n for n in names if bound.operands[n] is not None]
        arrays = [jnp.asarray(bound.operands[n]) for n in present]
        for i, (n, a) in enumerate(zip(present, arrays)):
            if jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_:
                arrays[i] = a.astype(_dtype(np.float64))     # as adla: float64 (float32 without x64)
            elif a.dtype not in (jnp.float32, jnp.float64):
                raise TypeError(f"adla.jax.{fname}: operand {n} has unsupported dtype {a.dtype}; "
                                f"expected float32 or float64 (integer and bool arrays are "
                                f"converted to floats)")
        traced = tuple((tuple(a.shape), np.dtype(a.dtype)) for a in arrays)
        return _function(fname, tuple(present), options, traced)(*arrays)
    operator.__doc__ = (f"``adla.{fname}`` on JAX arrays with a custom VJP from "
                        f"``adla.{fname}_backward``; same operands and options, without "
                        f"``check`` (failures give NaN).\n\n" + (forward.__doc__ or ""))
    operator.__signature__ = signature(forward).replace(parameters=params)
    operator.__module__ = __name__
    return operator


for _name in SPECS:
    globals()[_name] = _adapted(_name)
del _name
