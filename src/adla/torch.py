"""adla's operators as differentiable functions of PyTorch tensors: ``adla.torch.potrf(A)``.

Every forward operator of adla, with the same name, operands and options, takes
``torch.Tensor`` operands and returns tensors on the same device, differentiable by
``torch.autograd`` through adla's backward functions. CPU tensors are shared with NumPy without
a copy (in and out); CUDA tensors go to CuPy through DLPack, on torch's current device and
stream. Output dtypes are those adla gives (float32 only if every operand is float32); each
gradient has its input's dtype.

First order only: a backward run with ``create_graph=True`` returns gradients that refuse to be
differentiated again (a ``RuntimeError`` naming the operator), never a wrong second derivative.
Failures behave as in adla: ``check=True`` raises :class:`adla.LinAlgError`.

``import adla`` does not import torch; ``import adla.torch`` does.
"""
import functools

import numpy as np
import torch

import adla
from ._adapters import bind, operand_names, signature
from ._spec import SPECS

__all__ = sorted(SPECS)

_REFUSED = {torch.float16, torch.bfloat16}


def _check(fname, name, t):
    """TypeError for what adla.torch does not take: a non-tensor, a complex or half tensor, a
    device other than the CPU or CUDA."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"adla.torch.{fname}: operand {name} must be a torch.Tensor, got "
                        f"{type(t).__module__}.{type(t).__name__} (mixing tensors with other "
                        f"arrays is not supported)")
    if t.is_complex() or t.dtype in _REFUSED:
        raise TypeError(f"adla.torch.{fname}: operand {name} has unsupported dtype {t.dtype}; "
                        f"expected float32 or float64 (integer and bool tensors are converted "
                        f"to float64)")
    if t.device.type not in ("cpu", "cuda"):
        raise TypeError(f"adla.torch.{fname}: operand {name} is on device {t.device}; adla runs "
                        f"on the CPU and on CUDA devices")


def _to_array(t):
    """A NumPy view (CPU) or CuPy view (CUDA) of a checked tensor ``t``."""
    t = t.detach().resolve_conj().resolve_neg()
    if t.device.type == "cpu":
        return t.numpy()
    import cupy
    return cupy.from_dlpack(t)


def _to_tensor(a, device):
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    return torch.from_dlpack(a).to(device)


def _stream(device):
    """CuPy on torch's current stream for CUDA tensors (nothing to do on the CPU)."""
    if device.type != "cuda":
        return _NoStream()
    import cupy
    return cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream)


class _NoStream:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _FirstOrderOnly(torch.autograd.Function):
    """Passes a gradient through; differentiating it again raises. Used when a backward runs
    with ``create_graph=True``: adla's gradients are not themselves differentiable by torch."""

    @staticmethod
    def forward(ctx, fname, grad, *sources):
        ctx.fname = fname
        return grad.clone()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(f"adla.torch.{ctx.fname}: second derivatives are not supported "
                           f"(adla's gradients are first order; differentiate a gradient "
                           f"computed with create_graph=True by other means)")


class _Operator(torch.autograd.Function):
    """One operator's forward and backward, the operator named by the spec passed in."""

    @staticmethod
    def forward(ctx, fname, options, *tensors):
        spec = SPECS[fname]
        names = operand_names(getattr(adla, fname))
        device = next(t.device for t in tensors if t is not None)
        arrays = {n: (None if t is None else _to_array(t)) for n, t in zip(names, tensors)}
        with _stream(device):
            result = getattr(adla, fname)(**arrays, **options)
        outputs = result if isinstance(result, tuple) else (result,)
        out_tensors = tuple(_to_tensor(o, device) for o in outputs)
        ctx.fname, ctx.names, ctx.options, ctx.device = fname, names, options, device
        ctx.dtypes = [None if t is None else t.dtype for t in tensors]
        ctx.present = [t is not None for t in tensors]
        ctx.save_for_backward(*[t for t in tensors if t is not None], *out_tensors)
        ctx.set_materialize_grads(False)
        taken = {o.name for o in spec.cotangent_outputs}
        ctx.mark_non_differentiable(*[t for t, o in zip(out_tensors, spec.outputs)
                                      if o.name not in taken])
        return out_tensors if isinstance(result, tuple) else out_tensors[0]

    @staticmethod
    def backward(ctx, *grad_outputs):
        fname, spec = ctx.fname, SPECS[ctx.fname]
        saved = list(ctx.saved_tensors)
        inputs = {}
        for name, present in zip(ctx.names, ctx.present):
            inputs[name] = saved.pop(0) if present else None
        outputs = dict(zip((o.name for o in spec.outputs), saved))
        primals = {**inputs, **outputs}
        cotangents = []
        for o, g in zip(spec.outputs, grad_outputs):
            if o in spec.cotangent_outputs:
                if g is not None:
                    _check(fname, "d" + o.name, g)
                cotangents.append(None if g is None else _to_array(g))
        backward = getattr(adla, fname + "_backward")
        bwd_options = {k: v for k, v in ctx.options.items() if k in spec.backward_options}
        with _stream(ctx.device):
            if all(c is None for c in cotangents):
                return (None, None) + (None,) * len(ctx.names)
            grads = backward(*cotangents,
                             *[_to_array(primals[p]) for p in spec.backward_primals],
                             **bwd_options)
        grads = grads if isinstance(grads, tuple) else (grads,)
        by_name = dict(zip(spec.differentiable, grads))
        sources = [t for t in (*inputs.values(), *grad_outputs)
                   if t is not None and t.requires_grad]
        result = []
        for name, dtype, needed in zip(ctx.names, ctx.dtypes, ctx.needs_input_grad[2:]):
            g = by_name.get(name)
            if not needed or g is None:
                result.append(None)
                continue
            g = _to_tensor(g, ctx.device).to(dtype)
            if torch.is_grad_enabled() and sources:
                g = _FirstOrderOnly.apply(fname, g, *sources)
            result.append(g)
        return (None, None) + tuple(result)


def _adapted(fname):
    forward = getattr(adla, fname)
    differentiable = set(SPECS[fname].differentiable)

    @functools.wraps(forward)
    def operator(*args, **kwargs):
        bound = bind(forward, args, kwargs)
        for name, t in bound.operands.items():
            if t is None:
                continue
            _check(fname, name, t)              # before autograd records anything
            if t.requires_grad and name not in differentiable:
                raise ValueError(f"adla.torch.{fname}: operand {name} is not differentiable "
                                 f"(adla has no gradient for it); pass it detached")
        return _Operator.apply(fname, bound.options, *bound.operands.values())
    operator.__doc__ = (f"``adla.{fname}`` on torch tensors, differentiable by torch.autograd "
                        f"through ``adla.{fname}_backward``; same operands and options.\n\n"
                        + (forward.__doc__ or ""))
    operator.__signature__ = signature(forward)
    operator.__module__ = __name__
    return operator


for _name in SPECS:
    globals()[_name] = _adapted(_name)
del _name
