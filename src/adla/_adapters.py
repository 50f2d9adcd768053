"""What the adapters (dask, PyTorch, JAX) share: reading a public operator's call by its spec.

An operator's arrays are its positional parameters (the spec's inputs for a forward; cotangents
then primals for a backward; inputs then their tangents for a jvp), its options the keyword-only
ones. The adapters are tables over ``SPECS`` built with these helpers, so that no operator is
restated in them.
"""
import inspect
from dataclasses import dataclass
from typing import Any, Dict, Tuple

from ._spec import SPECS, Spec

_SIGNATURES: Dict[Any, inspect.Signature] = {}


@dataclass
class BoundCall:
    """One call of a public operator: its spec, which rule it is (``""`` the forward,
    ``"_backward"`` or ``"_jvp"``), its array operands by name (``None`` for an absent optional
    one) and its options (defaults filled in)."""
    fname: str
    spec: Spec
    rule: str
    operands: Dict[str, Any]
    options: Dict[str, Any]

    @property
    def backward(self) -> bool:
        return self.rule == "_backward"

    @property
    def core(self) -> Dict[str, int]:
        """The number of core axes of each operand."""
        return self.spec.core_ndims(self.operands)

    @property
    def cotangents(self) -> Tuple[str, ...]:
        return self.spec.cotangent_names if self.backward else ()

    @property
    def tangents(self) -> Tuple[str, ...]:
        return self.spec.tangent_names if self.rule == "_jvp" else ()

    def grouped(self, results):
        """The flat ``results`` (see :func:`flat`) in the shape the rule returns them."""
        if self.rule != "_jvp":
            return results[0] if len(results) == 1 else tuple(results)
        n = len(self.spec.outputs)
        if n == 1:
            return results[0], results[1]
        return tuple(results[:n]), tuple(results[n:])


def signature(fn) -> inspect.Signature:
    found = _SIGNATURES.get(fn)
    if found is None:
        found = _SIGNATURES[fn] = inspect.signature(fn)
    return found


def operand_names(fn) -> Tuple[str, ...]:
    return tuple(p.name for p in signature(fn).parameters.values()
                 if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def bind(fn, args, kwargs) -> BoundCall:
    """Read a call ``fn(*args, **kwargs)`` of public operator ``fn`` (TypeError, as Python's own,
    for a wrong argument)."""
    fname = fn.__name__
    bound = signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    names = operand_names(fn)
    operands = {name: bound.arguments[name] for name in names}
    options = {k: v for k, v in bound.arguments.items() if k not in operands}
    rule = next((r for r in ("_backward", "_jvp") if fname.endswith(r)), "")
    return BoundCall(fname, SPECS[fname.removesuffix(rule)], rule, operands, options)


def flat(result) -> tuple:
    """An operator's result as a flat tuple of arrays: a jvp's ``(outputs, tangents)`` (each an
    array or a tuple) become the outputs then the tangents."""
    if not isinstance(result, tuple):
        return (result,)
    return tuple(x for part in result for x in (part if isinstance(part, tuple) else (part,)))


def sample_outputs(fn, shapes, options, xp=None):
    """``fn``'s outputs (a tuple) for an empty batch of operands of the given core shapes and
    dtypes (``shapes``: name -> ``(core shape, dtype)``, or None for an absent operand): the
    operator validates shapes and dtypes, and tells each output's dtype and core shape
    (``out.shape[1:]``), without computing anything. A jvp's are flattened (:func:`flat`)."""
    import numpy as np
    xp = xp or np
    stand_ins = {n: None if sd is None else xp.empty((0,) + tuple(sd[0]), dtype=sd[1])
                 for n, sd in shapes.items()}
    return flat(fn(**stand_ins, **options))
