"""The public API: every exported name exists, is documented in numpydoc style and has examples."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import llmfund

PUBLIC = sorted(llmfund.__all__)


def test_all_names_exist_and_are_unique():
    assert len(PUBLIC) == len(set(PUBLIC))
    missing = [n for n in PUBLIC if not hasattr(llmfund, n)]
    assert not missing


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_numpydoc_docstring_with_examples(name):
    obj = getattr(llmfund, name)
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Examples\n--------" in doc, f"{name}: no Examples section"
    assert ">>> " in doc, f"{name}: the Examples section has no runnable example"
    if inspect.isfunction(obj):
        params = [p for p in inspect.signature(obj).parameters if p not in ("self",)]
        if params:
            assert "Parameters\n----------" in doc, f"{name}: no Parameters section"
        assert "Returns\n-------" in doc or "Yields\n------" in doc, f"{name}: no Returns section"


def _public_module_functions():
    for info in pkgutil.iter_modules(llmfund.__path__):
        if info.name.startswith("_") or info.name in {"cli", "presets", "figures"}:
            continue
        module = importlib.import_module(f"llmfund.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield info.name, name


@pytest.mark.parametrize("module,name", sorted(_public_module_functions()))
def test_every_public_module_name_is_exported(module, name):
    assert name in llmfund.__all__, f"llmfund.{module}.{name} is public but not re-exported"


def test_package_imports_without_matplotlib_loaded():
    # The figure helpers import matplotlib lazily; the core package must not.
    import subprocess
    import sys

    code = "import sys, llmfund; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
