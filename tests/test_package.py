"""Each subpackage's ``__init__`` names its public API: every name in ``__all__`` exists, and
every public module of the subpackage is named (a new module must be added to it)."""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

import scalegmn

ROOT = Path(scalegmn.__file__).parent
PACKAGES = sorted(p.parent for p in ROOT.rglob("__init__.py") if p.parent != ROOT and "__pycache__" not in p.parts)


def _declared_all(init: Path) -> list[str]:
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_init_has_a_docstring_and_all(folder):
    init = folder / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree) not in (None, "", "."), f"{init}: say what the stage does"
    assert _declared_all(init), f"{init}: name the public API in __all__"


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_all_names_exist_and_every_public_module_is_named(folder):
    package = ".".join(folder.relative_to(ROOT.parent).parts)
    names = _declared_all(folder / "__init__.py")
    exported_modules = set()
    for name in names:
        module = f"{package}.{name}"
        if (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists():
            exported_modules.add(name)
        else:  # a re-exported class or function
            assert hasattr(importlib.import_module(package), name), f"{package}.__all__: no {name}"
    if exported_modules or not names:
        public = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
        public |= {p.parent.name for p in folder.glob("*/__init__.py")}
        assert public == exported_modules, f"{package}.__all__ should name the modules {sorted(public)}"
    for name in exported_modules:
        module = f"{package}.{name}"
        assert importlib.util.find_spec(module) is not None, module
