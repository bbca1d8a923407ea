"""The package imports only downwards: no import cycle between its modules, and no underscore name
imported from another module (a private name is its module's own). Read from the source with ``ast``,
so imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aigciqa

PACKAGE = Path(aigciqa.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str, modules) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) of every import of ``aigciqa`` modules in a file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, None, node.lineno) if submodule in modules
                             else (base, alias.name, node.lineno))
    return [(m, n, line) for m, n, line in found if m.split(".")[0] == "aigciqa"]


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: {m for m, _, _ in imports_of(path, name, modules) if m in modules and m != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_is_imported_from_another_module():
    modules = package_modules()
    private = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {module}"
               for name_, path in modules.items()
               for module, name, line in imports_of(path, name_, modules)
               if name and name.startswith("_") and not name.startswith("__") and module != name_]
    assert not private, "\n".join(private)


def test_the_checks_see_cycles_and_private_imports(tmp_path):
    """The checks above can fail: a planted cycle is found, and so is a planted private import."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from aigciqa.model.runs import _hidden\nfrom aigciqa.model import runs\n")
    found = {(m, n) for m, n, _ in imports_of(planted, "aigciqa.model.planted", package_modules())}
    assert found == {("aigciqa.model.runs", "_hidden"), ("aigciqa.model.runs", None)}


@pytest.mark.parametrize("module", ["aigciqa.model.runs", "aigciqa.common.files"])
def test_lowest_layers_import_no_stage(module):
    """The run-folder layer and the shared utilities import nothing above them."""
    graph = import_graph()
    assert all(m.startswith(("aigciqa.common", "aigciqa.errors")) for m in graph[module]), graph[module]
