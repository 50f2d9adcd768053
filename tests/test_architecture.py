"""The layers of docs/architecture.md hold: no import cycle among adla's modules, no backend
importing the layers above it, and both backends implementing the whole backend contract."""
import ast
import inspect
import pathlib

import pytest

import adla
from adla import _backend, _cpu
from stand_in import gpu_backend_on_numpy

PACKAGE = pathlib.Path(adla.__file__).parent
# The backends and what they may import: each other's shared rules and the contract, no more.
BACKEND_LAYER = {"adla._cpu", "adla._gpu.backend", "adla._array_rules", "adla._backend",
                 "adla._memory", "adla._lapack", "adla._lapack_avx2"}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def adla_imports(path):
    """The adla modules ``path`` imports, at the top or inside functions (lazy imports count)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "adla"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "adla":
                continue
            submodules = {f"{target}.{a.name}" for a in node.names}
            if submodules <= set(MODULES) | EXTENSIONS:     # "from . import _cpu": modules only
                found |= submodules
            else:
                found.add(target)
    return found - {name}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
EXTENSIONS = {"adla._lapack", "adla._lapack_avx2", "adla._memory"}
GRAPH = {name: adla_imports(path) & set(MODULES) for name, path in MODULES.items()}


def test_no_import_cycle():
    done, active = set(), []

    def visit(name):
        if name in active:
            cycle = active[active.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        active.append(name)
        for target in sorted(GRAPH[name]):
            visit(target)
        active.pop()
        done.add(name)
    for name in sorted(GRAPH):
        visit(name)


def test_backends_import_nothing_above_them():
    for name in sorted(BACKEND_LAYER & set(GRAPH)):
        above = {m for m in GRAPH[name] if m not in BACKEND_LAYER and m != "adla._gpu"}
        assert not above, f"{name} imports {sorted(above)} from the layers above it"


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_backend_implements_the_contract(backend):
    module = _cpu if backend == "cpu" else gpu_backend_on_numpy()
    assert hasattr(module, "xp")
    for name in _backend.FUNCTIONS:
        assert hasattr(module, name), f"{backend} backend lacks {name}"
        wanted = list(inspect.signature(getattr(_backend.Backend, name)).parameters)[1:]
        got = list(inspect.signature(getattr(module, name)).parameters)
        assert got == wanted, f"{backend} backend's {name}{tuple(got)}: contract {tuple(wanted)}"


def test_status_codes_agree_with_the_kernels():
    assert _cpu.K.STATUS_NONFINITE == _backend.STATUS_NONFINITE
    assert _cpu.K.STATUS_NO_MEMORY == _backend.STATUS_NO_MEMORY


def test_public_functions_follow_their_specs():
    """Every operator is declared once, in _spec.SPECS, and its forward, backward and jvp take
    exactly what the declaration says: inputs, then keyword-only options with the declared
    defaults; cotangents (d + output name), the backward's primals, then the options but check;
    inputs, their tangents (d + input name), then the options."""
    from adla._spec import SPECS
    operators = {n for n in adla.__all__ if callable(getattr(adla, n))
                 and not n.endswith(("_backward", "_jvp"))} - {"LinAlgError",
                                                                "degenerate_tolerance"}
    assert operators == set(SPECS)
    for name, spec in SPECS.items():
        inputs = [o.name for o in spec.inputs]
        for fn, positional, options in (
                (getattr(adla, name), inputs, spec.options),
                (getattr(adla, name + "_backward"),
                 list(spec.cotangent_names) + list(spec.backward_primals),
                 {k: spec.options[k] for k in spec.backward_options}),
                (getattr(adla, name + "_jvp"), inputs + list(spec.tangent_names), spec.options)):
            params = inspect.signature(fn).parameters.values()
            assert [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD] == positional, fn
            keyword = {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}
            assert keyword == options, fn
        assert set(spec.backward_primals) <= {o.name for o in spec.inputs + spec.outputs}


ADAPTERS = {"adla._dask", "adla._adapters", "adla.torch", "adla.jax", "adla._xla_ffi"}


def test_adapters_sit_on_top():
    # The dask, PyTorch and JAX adapters read the operators and their specs; nothing below them
    # imports them (the public package reaches _dask only lazily, for dask operands).
    users = {name for name in GRAPH if name.startswith("adla.examples")}   # on top, too
    for name in sorted(set(GRAPH) - ADAPTERS - users - {"adla"}):
        assert not GRAPH[name] & ADAPTERS, f"{name} imports {sorted(GRAPH[name] & ADAPTERS)}"
    assert GRAPH["adla"] & ADAPTERS == {"adla._dask"}


def test_import_adla_imports_no_optional_framework():
    import subprocess
    import sys
    code = ("import sys, adla, numpy as np; adla.potrf(np.eye(3)); "
            "print(sorted(m for m in ('dask', 'distributed', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
