"""The shape of the package: no import cycle among module-level imports of ``defcheck`` and ``defcheck_plugins``,
every import resolves to a module that exists (lazy ones included: they fail only when run), no module imports an
old 0.1 path or the package root for ``__version__``, and no module in ``defcheck/`` is over 450 lines.

Imports are read from the source (``ast``), not traced: a module-level import is one executed when the module is
(top level, class bodies, ``if``/``try`` blocks, but not ``if TYPE_CHECKING:``); a function-level one runs later.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from defcheck import _compat

PACKAGES = ("defcheck", "defcheck_plugins")
MAX_LINES = 450
# Modules in defcheck/ allowed over MAX_LINES while they are being split: empty now that issue 13 split
# engine/runner.py, engine/overlap.py, ci/project.py and sweep/core.py. It only shrinks: a listed module under the
# limit fails test_known_long_modules_are_still_long (take it off), and a module not listed fails when over.
KNOWN_LONG: set[str] = set()


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported defcheck module
    line: int
    module_level: bool
    names: tuple[str, ...]  # for ``from X import a, b``: a, b


def all_modules() -> dict[str, Path]:
    """Every module of the two packages, by name, with its file."""
    modules: dict[str, Path] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules[package_name] = Path(package.__file__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            spec = importlib.util.find_spec(info.name)
            assert spec is not None and spec.origin is not None, info.name
            if spec.origin.endswith(".py"):
                modules[info.name] = Path(spec.origin)
    return modules


MODULES = all_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> list[Import]:
    """The imports of defcheck modules in ``module``'s source, module-level or not."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, module_level)
            return  # annotations only: never executed
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for child in ast.iter_child_nodes(node):
                visit(child, False)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    found.append(Import(module, alias.name, node.lineno, module_level, ()))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            if base.split(".")[0] in PACKAGES:
                names = tuple(alias.name for alias in node.names)
                submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES]
                targets = submodules if len(submodules) == len(names) else [base, *submodules]
                for target in targets:
                    found.append(Import(module, target, node.lineno, module_level, names))
        for child in ast.iter_child_nodes(node):
            visit(child, module_level)

    for statement in tree.body:
        visit(statement, True)
    return found


IMPORTS = [entry for module in sorted(MODULES) for entry in imports_of(module)]


def test_the_walk_sees_both_packages():
    assert {"defcheck.plugin", "defcheck.engine.runner", "defcheck.cli.app", "defcheck_plugins.circuits"} <= set(
        MODULES
    )
    assert any(entry.source == "defcheck_plugins.circuits" and entry.target == "defcheck.plugin" for entry in IMPORTS)
    assert any(not entry.module_level for entry in IMPORTS) and any(entry.module_level for entry in IMPORTS)


def test_every_import_names_a_module_that_exists():
    missing = [f"{e.source}:{e.line} imports {e.target}" for e in IMPORTS if e.target not in MODULES]
    assert not missing, "imports of modules that do not exist (or old 0.1 paths):\n" + "\n".join(missing)


def test_no_module_imports_an_old_path():
    old = [
        f"{e.source}:{e.line} imports {e.target}, now {_compat.MOVED[e.target]}"
        for e in IMPORTS
        if e.target in _compat.MOVED
    ]
    assert not old, "\n".join(old)


def test_no_module_imports_the_package_root_for_its_version():
    offenders = [f"{e.source}:{e.line}" for e in IMPORTS if e.target == "defcheck" and "__version__" in e.names]
    assert not offenders, "import __version__ from defcheck._version, not the package root: " + ", ".join(offenders)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself): Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def packages_entered(source: str, target: str) -> list[str]:
    """The packages whose ``__init__`` importing ``target`` from ``source`` runs first: those above ``target`` that
    ``source`` is not inside (the two roots aside: every module is inside one)."""
    parts = target.split(".")
    above = [".".join(parts[:end]) for end in range(2, len(parts))]
    return [package for package in above if source != package and not source.startswith(package + ".")]


def test_packages_entered():
    assert packages_entered("defcheck.engine.overlap", "defcheck.report.common") == ["defcheck.report"]
    assert packages_entered("defcheck.report.json", "defcheck.report.common") == []
    assert packages_entered("defcheck_plugins.loaders", "defcheck.plugin") == []


def test_no_import_cycle_among_module_level_imports():
    """Counting the ``__init__`` of a package another one imports a module of (``engine.overlap`` importing
    ``report.common`` runs ``report/__init__`` first), which is how such cycles bite."""
    edges: dict[str, set[str]] = {}
    for entry in IMPORTS:
        if entry.module_level and entry.target in MODULES and entry.target != entry.source:
            edges.setdefault(entry.source, set()).add(entry.target)
            for package in packages_entered(entry.source, entry.target):
                edges[entry.source].add(package)
    found = cycles(edges)
    assert not found, "import cycles among module-level imports:\n" + "\n".join(" <-> ".join(c) for c in found)


DEFCHECK_ROOT = MODULES["defcheck"].parent


def line_counts() -> dict[str, int]:
    return {
        path.relative_to(DEFCHECK_ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(DEFCHECK_ROOT.rglob("*.py"))
    }


def test_no_new_module_over_the_line_limit():
    long = {name: count for name, count in line_counts().items() if count > MAX_LINES and name not in KNOWN_LONG}
    assert not long, f"modules in defcheck/ over {MAX_LINES} lines (split them): {long}"


def test_known_long_modules_are_still_long():
    counts = line_counts()
    fixed = sorted(name for name in KNOWN_LONG if counts.get(name, 0) <= MAX_LINES)
    assert not fixed, f"within the limit now (or gone): remove {fixed} from KNOWN_LONG"
