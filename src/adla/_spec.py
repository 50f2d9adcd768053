"""One declaration per operator: its operands and outputs with their core dimensions, how each
operand is read and whether it is differentiable, its options with their defaults, and what its
backward takes.

The front end reads this table (the core dimensions of every operand and cotangent, the
cotangents' names), and so do the test harness and the layers built over the operators (forward
mode, Dask, the PyTorch and JAX adapters): an operator is declared here once and nowhere
restated. Shapes that depend on options (``gemm``'s transposes) are checked by the operator's
rule; the core dimensions here are those with the default options.
"""
import inspect
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Dict, Optional, Tuple

FULL, SYMMETRIC, TRIANGULAR, DIAGONAL = "full", "symmetric", "triangular", "diagonal"


@dataclass(frozen=True)
class Operand:
    """An input or output: its name and core dimensions (``("n", "n")`` a matrix, ``("n",)`` a
    vector, ``()`` a scalar per batch element).

    ``reads``: how an input is read. ``"full"``; ``"symmetric"``, a symmetric matrix read from
    one triangle; ``"triangular"``, only one triangle read; ``"diagonal"``, only the diagonal.
    ``triangle``: that triangle, ``"lower"``, or ``"option"`` when the ``lower`` option chooses.
    For an output, ``reads`` is its structure (``"triangular"``: the other triangle is zero).
    """
    name: str
    core: Tuple[str, ...]
    reads: str = FULL
    triangle: Optional[str] = None
    differentiable: bool = True

    def lower(self, options: Dict[str, Any]) -> Optional[bool]:
        """Whether the lower triangle is the one read (None: not read by triangle)."""
        if self.triangle is None:
            return None
        if self.triangle == "option":
            return bool(options.get("lower", True))
        return self.triangle == "lower"


@dataclass(frozen=True)
class Spec:
    """An operator: ``name(*inputs, **options) -> outputs``,
    ``name_backward(*cotangents, *backward_primals, **backward_options)`` and
    ``name_jvp(*inputs, *tangents, **options) -> (outputs, output tangents)``."""
    name: str
    inputs: Tuple[Operand, ...]
    outputs: Tuple[Operand, ...]
    options: Dict[str, Any] = field(default_factory=dict)
    backward_primals: Tuple[str, ...] = ()
    cotangents: Optional[Tuple[str, ...]] = None     # outputs with cotangents (default: all)

    @property
    def signature(self) -> str:
        """The gufunc-style signature, e.g. ``(n,n),(n,k)->(n,k)``."""
        def group(operands):
            return ",".join("(" + ",".join(o.core) + ")" for o in operands)
        return f"{group(self.inputs)}->{group(self.outputs)}"

    @cached_property
    def backward_options(self) -> Tuple[str, ...]:
        """The forward's options the backward takes: all but ``check``."""
        return tuple(k for k in self.options if k != "check")

    @cached_property
    def cotangent_outputs(self) -> Tuple[Operand, ...]:
        taken = self.cotangents or tuple(o.name for o in self.outputs)
        return tuple(o for o in self.outputs if o.name in taken)

    @cached_property
    def cotangent_names(self) -> Tuple[str, ...]:
        """The backward's cotangent parameters: ``d`` and the output's name."""
        return tuple("d" + o.name for o in self.cotangent_outputs)

    @cached_property
    def tangent_names(self) -> Tuple[str, ...]:
        """The jvp's tangent parameters, one per input: ``d`` and the input's name."""
        return tuple("d" + o.name for o in self.inputs)

    @cached_property
    def differentiable(self) -> Tuple[str, ...]:
        """The inputs the backward returns gradients for, in order."""
        return tuple(o.name for o in self.inputs if o.differentiable)

    def operand(self, name: str) -> Operand:
        """An input or output by name (a cotangent ``dX`` by its output's name ``X``)."""
        for o in self.inputs + self.outputs:
            if o.name == name:
                return o
        raise KeyError(f"{self.name} has no operand {name}")

    @cached_property
    def _ndims(self) -> Dict[str, int]:
        # Once per spec: every call of the operator asks.
        ndims = {o.name: len(o.core) for o in self.inputs + self.outputs}
        ndims.update({"d" + o.name: len(o.core) for o in self.cotangent_outputs})
        ndims.update({"d" + o.name: len(o.core) for o in self.inputs})      # tangents
        return ndims

    def core_ndims(self, names) -> Dict[str, int]:
        """The number of core axes of each named operand (cotangents: their output's)."""
        return {name: self._ndims[name] for name in names}


def _op(name, *inputs, outputs, options=None, primals=(), cotangents=None):
    return Spec(name, tuple(inputs), tuple(outputs), dict(options or {}), tuple(primals),
                cotangents)


def _in(name, *core, reads=FULL, triangle=None, differentiable=True):
    return Operand(name, core, reads, triangle, differentiable)


def _out(name, *core, structure=FULL, triangle=None):
    return Operand(name, core, structure, triangle)


_SCALED = dict(alpha=1.0)
_TRIANGULAR = dict(transpose=False, rightside=False, lower=True, alpha=1.0)

SPECS: Dict[str, Spec] = {s.name: s for s in [
    _op("gemm", _in("A", "m", "k"), _in("B", "k", "n"), _in("C", "m", "n"),
        outputs=[_out("D", "m", "n")],
        options=dict(transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0),
        primals=("A", "B", "C")),
    _op("gemm2", _in("A", "m", "k"), _in("B", "k", "n"), outputs=[_out("D", "m", "n")],
        options=dict(transpose_a=False, transpose_b=False, alpha=1.0), primals=("A", "B")),
    _op("syrk", _in("A", "m", "k"), outputs=[_out("C", "m", "m", structure=SYMMETRIC)],
        options=dict(transpose=False, **_SCALED), primals=("A",)),
    _op("trmm", _in("A", "n", "n", reads=TRIANGULAR, triangle="option"), _in("B", "n", "k"),
        outputs=[_out("C", "n", "k")], options=_TRIANGULAR, primals=("A", "B")),
    _op("trsm", _in("A", "n", "n", reads=TRIANGULAR, triangle="option"), _in("B", "n", "k"),
        outputs=[_out("X", "n", "k")], options=dict(_TRIANGULAR, check=True),
        primals=("A", "B", "X")),
    _op("potrf", _in("A", "n", "n", reads=SYMMETRIC, triangle="option"),
        outputs=[_out("L", "n", "n", structure=TRIANGULAR, triangle="option")],
        options=dict(lower=True, check=True), primals=("L",)),
    _op("potri", _in("L", "n", "n", reads=TRIANGULAR, triangle="option"),
        outputs=[_out("Ainv", "n", "n", structure=SYMMETRIC)],
        options=dict(lower=True, check=True), primals=("L", "Ainv")),
    _op("potrs", _in("L", "n", "n", reads=TRIANGULAR, triangle="option"), _in("B", "n", "k"),
        outputs=[_out("X", "n", "k")], options=dict(lower=True, check=True),
        primals=("L", "B", "X")),
    _op("sumlogdiag", _in("A", "n", "n", reads=DIAGONAL), outputs=[_out("s")],
        primals=("A",)),
    _op("gelqf", _in("A", "m", "n"),
        outputs=[_out("Q", "m", "n"), _out("L", "m", "m", structure=TRIANGULAR,
                                           triangle="lower")],
        primals=("Q", "L")),
    _op("geqrf", _in("A", "m", "n"),
        outputs=[_out("Q", "m", "n"), _out("R", "n", "n", structure=TRIANGULAR,
                                           triangle="upper")],
        primals=("Q", "R")),
    _op("syevd", _in("A", "n", "n", reads=SYMMETRIC, triangle="lower"),
        outputs=[_out("U", "n", "n"), _out("lam", "n")], options=dict(check=True),
        primals=("U", "lam")),
    _op("inverse", _in("A", "n", "n"), outputs=[_out("Ainv", "n", "n")],
        options=dict(check=True), primals=("Ainv",)),
    _op("det", _in("A", "n", "n"), outputs=[_out("d")], primals=("A", "d")),
    _op("slogdet", _in("A", "n", "n"), outputs=[_out("sign"), _out("logabsdet")],
        primals=("A",), cotangents=("logabsdet",)),
    _op("gesvd", _in("A", "m", "n"),
        outputs=[_out("U", "m", "k"), _out("s", "k"), _out("Vt", "k", "n")],
        options=dict(check=True), primals=("U", "s", "Vt")),
    _op("gesv", _in("A", "n", "n"), _in("B", "n", "k"), outputs=[_out("X", "n", "k")],
        options=dict(transpose=False, check=True), primals=("A", "B", "X")),
    _op("extractdiag", _in("A", "n", "n"), outputs=[_out("d", "k")], options=dict(offset=0),
        primals=("A",)),
    _op("makediag", _in("d", "k"), outputs=[_out("A", "n", "n")], options=dict(offset=0),
        primals=("d",)),
    _op("extracttrian", _in("A", "n", "n"), outputs=[_out("v", "t")],
        options=dict(offset=0, lower=True), primals=("A",)),
    _op("maketrian", _in("v", "t"), outputs=[_out("A", "n", "n")],
        options=dict(offset=0, lower=True), primals=("v",)),
]}


# ---- the jvp's documentation, from the declaration -------------------------------------------

_EXAMPLES = "Examples\n--------\n"


def _shape(operand):
    return "(" + ", ".join(("...",) + operand.core) + ")"


def _tangent_reading(operand):
    if operand.reads == SYMMETRIC:
        return (" It is read like its operand: the symmetric matrix built from the same "
                "triangle.")
    if operand.reads == TRIANGULAR:
        return " Only the triangle its operand is read in is read."
    if operand.reads == DIAGONAL:
        return " Only its diagonal is read."
    return ""


def _jvp_sections(spec: Spec) -> str:
    """Parameters, Returns and Raises of ``spec``'s jvp, in numpydoc form (unindented, as
    ``inspect.cleandoc`` leaves a docstring)."""
    forward = f":func:`{spec.name}`"
    lines = ["Parameters", "----------"]
    for o in spec.inputs:
        lines += [f"{o.name} : array_like, shape {_shape(o)}", f"    As for {forward}."]
    for o in spec.inputs:
        lines += [f"d{o.name} : array_like or None",
                  f"    Tangent of ``{o.name}``: it must broadcast to the shape of ``{o.name}``"
                  " without changing it; None is zero." + _tangent_reading(o)]
    if spec.options:
        lines += [", ".join(spec.options), f"    As for {forward}."]
    names = [o.name for o in spec.outputs]
    lines += ["", "Returns", "-------"]
    if len(names) == 1:
        lines += [f"{names[0]}, d{names[0]} : ndarray",
                  "    The forward's result and its tangent, of one shape and dtype (the "
                  "forward's)."]
    else:
        lines += [f"({', '.join(names)}), ({', '.join('d' + n for n in names)}) : "
                  "tuple of ndarray",
                  "    The forward's results and their tangents, each tangent of its result's "
                  "shape and dtype."]
    lines += ["", "Raises", "------"]
    if "check" in spec.options:
        lines += ["LinAlgError",
                  "    With `check`, where the forward raises; ``check=False`` gives NaN in the "
                  "failing matrices' results and tangents."]
    lines += ["ValueError",
              "    If an operand has the wrong shape for the others, the batch axes do not "
              "broadcast, or a tangent does not broadcast to its operand's shape without "
              "changing it.",
              "TypeError",
              "    If an operand's dtype is not a real float, integer or bool type.", ""]
    text = []
    for line in lines:                   # descriptions wrapped as in a hand-written docstring
        wrapped = (textwrap.wrap(line.strip(), 92, initial_indent="    ",
                                 subsequent_indent="    ") if line.startswith("    ") else [line])
        text += wrapped or [""]
    return "\n".join(text) + "\n"


def documented_jvp(op: str):
    """Decorator for ``op``'s jvp: its docstring (what it computes, then Examples) gains the
    Parameters, Returns and Raises sections its declaration implies."""
    def document(fn):
        # Cleaned first: Python 3.13 strips docstrings' indentation at compile time, earlier
        # versions do not.
        head, found, examples = inspect.cleandoc(fn.__doc__ or "").partition(_EXAMPLES)
        assert found, f"{fn.__name__}: its docstring needs an Examples section"
        fn.__doc__ = (head.rstrip() + "\n\n" + _jvp_sections(SPECS[op]) + "\n" + _EXAMPLES
                      + examples)
        return fn
    return document
