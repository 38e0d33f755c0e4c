"""Import discipline of the package: the stages import downwards only, nothing imports in a cycle,
and no function hides an import of the package.

The package's folders follow the pipeline; a layer may import its own and the layers listed before
it, never those after it::

    base (atomic, errors, vocabulary, logs)  <  weightspace  <  data  <  nn  <  models  <  train  <  report
    <  cli, devtools

Imports inside functions are allowed only for optional heavy dependencies (plotting, SciPy,
scikit-learn, PyG), so that a cycle cannot hide behind one.

``python -m scalegmn.devtools.imports`` prints every violation and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "scalegmn"

#: Layer of each top-level module or subpackage; a module may import only layers <= its own.
LAYERS: dict[str, int] = {
    "__init__": 0, "atomic": 0, "errors": 0, "vocabulary": 0, "logs": 0, "schema": 0, "execution": 0,
    "overrides": 0,
    "weightspace": 1,
    "data": 2,
    "nn": 3,
    "models": 4,
    "train": 5,
    "report": 6,
    "cli": 7, "devtools": 7,
}

#: Third-party packages a function may import lazily: heavy or optional, and needed by few code paths.
LAZY_ALLOWED = ("matplotlib", "scipy", "sklearn", "torch_geometric", "torch.utils.tensorboard", "wandb", "mlflow",
                "pandas",
                "safetensors")


@dataclass(frozen=True)
class Import:
    """One import statement of the package: who imports what, where, and whether inside a function."""
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    line: int
    in_function: bool


def package_root() -> Path:
    """The ``scalegmn/`` folder this module belongs to."""
    return Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` (a package's ``__init__.py`` names the package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The most specific module of the package that ``name`` (module or module.attribute) names."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(sub) for sub in ast.walk(node) if sub is not node)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        nested = id(node) in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, nested)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield Import(module, full if _resolve(full, modules) == full else base,
                             node.lineno, nested)


def layer(module: str) -> int:
    """The layer of a dotted module name (:data:`LAYERS`); KeyError for a folder not listed."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in LAYERS:
        raise KeyError(f"{module}: no layer for '{key}'; add it to scalegmn.devtools.imports.LAYERS")
    return LAYERS[key]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def violations(root: Path | None = None) -> list[str]:
    """Every cycle, upward import and function-level import of the package, one line each."""
    root = root or package_root()
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    problems: list[str] = []
    for module, path in modules.items():
        where = path.relative_to(root.parent)
        for imp in _imports(module, path, modules):
            internal = imp.target == PACKAGE or imp.target.startswith(PACKAGE + ".")
            if imp.in_function and (internal or not imp.target.startswith(LAZY_ALLOWED)):
                problems.append(f"{where}:{imp.line}: import of {imp.target} inside a function; "
                                "import it at the top of the module")
            if not internal:
                continue
            target = _resolve(imp.target, modules)
            if target == module or module.startswith(target + ".") and target == PACKAGE:
                continue
            graph[module].add(target)
            if layer(target) > layer(module):
                problems.append(f"{where}:{imp.line}: upward import of {target} (layer "
                                f"{layer(target)}) from layer {layer(module)}")
    for component in _cycles(graph):
        problems.append("import cycle: " + " <-> ".join(component))
    return problems


def main() -> int:
    """Print every violation and a summary line; exit status 1 if there is any."""
    problems = violations()
    for line in problems:
        print(line)
    print(f"{len(problems)} import problem(s)" if problems else "imports: no cycle, no upward import")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
