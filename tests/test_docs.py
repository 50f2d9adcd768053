"""The public API documents itself: every public function has a numpydoc docstring (Parameters,
Returns, Raises where it can raise, Examples) whose examples run here as doctests, and type
annotations."""
import doctest
import inspect
import re

import numpy as np
import pytest

import adla

PUBLIC = [getattr(adla, name) for name in adla.__all__ if inspect.isfunction(getattr(adla, name))]
MODULES = sorted({inspect.getmodule(f) for f in PUBLIC}, key=lambda m: m.__name__)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_examples_run(module):
    with np.printoptions(legacy=False):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("function", PUBLIC, ids=lambda f: f.__name__)
def test_numpydoc_sections_and_annotations(function):
    doc = inspect.getdoc(function)
    sections = re.findall(r"^(\w+)\n-+$", doc, flags=re.M)
    required = ["Parameters", "Returns", "Examples"]
    if function is not adla.degenerate_tolerance:
        required.insert(2, "Raises")
    assert sections == required, f"{function.__name__}: sections {sections}"
    signature = inspect.signature(function)
    assert signature.return_annotation is not inspect.Signature.empty
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, parameter.name
        assert f"{parameter.name}" in doc.split("Returns\n")[0], parameter.name
