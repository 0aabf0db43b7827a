"""No import circle anywhere in our packages, counting function-level imports and modules loaded by name.

The graph has one node per module of ours and an edge for every ``import`` / ``from ... import`` at any depth
(lazy imports inside functions included), plus an edge for every string constant that spells one of our module
names (``dr_cli.main.COMMAND_MODULES``, ``loadtest.scenarios.SCENARIOS``, ``python -m`` children): those are
loaded by ``importlib`` or in a child process and are invisible to a plain import scan. An edge to a package
means its ``__init__``; importing ``a.b.c`` is an edge to ``a.b.c`` only (parents' ``__init__`` files are not
counted, as import linters do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dr_cli", "dr_deploy", "dr_image", "serving", "loadtest")


def _modules() -> dict[str, Path]:
    """Module name → file, for every ``.py`` under our packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``serving.cli.main`` → ``serving.cli``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _edges(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of ours that ``module`` imports (at any depth) or names in a string constant."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the sub-module when there is one.
            targets.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            targets.add(node.value)
    resolved = {_resolve(name, modules) for name in targets}
    return {name for name in resolved if name is not None and name != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of module names, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return [*path[path.index(following) :], following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def test_the_tree_has_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_modules_loaded_by_name_are_edges() -> None:
    graph = _graph()
    assert {"serving.commands", "loadtest.commands"} <= graph["dr_cli.main"]
    assert "loadtest.scenarios.ramp" in graph["loadtest.scenarios"]


def test_the_leaves_of_the_command_line_import_nothing_of_ours() -> None:
    graph = _graph()
    assert graph["dr_cli.errors"] == graph["dr_cli.types"] == graph["dr_cli.help"] == set()
    importers = {name for name in graph if "dr_cli.main" in graph[name]}
    assert importers == {"serving.__main__"}, "only entry points may import the root parser"


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": set(), "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
    ids=["chain", "triangle", "pair-beside-a-leaf"],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert _cycle(graph) == expected


def _runtime_imports_argparse(path: Path) -> bool:
    """Whether ``path`` imports argparse outside an ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    return any(
        isinstance(node, ast.Import)
        and any(a.name == "argparse" for a in node.names)
        and id(node) not in hidden
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize("package", ["loadtest", "dr_deploy"])
def test_only_the_commands_module_of_an_area_imports_argparse(package: str) -> None:
    users = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*.py")
        if _runtime_imports_argparse(path)
    }
    assert users == {f"{package}/commands.py"}


def _imported_names(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute imports, at any depth)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def _reaches_into_tests(path: Path) -> bool:
    """Whether ``path`` imports a test module or puts ``tests/`` on ``sys.path``."""
    text = path.read_text(encoding="utf-8")
    imports_tests = any(
        name.split(".")[0] in {"tests", "conftest", "containers"} for name in _imported_names(path)
    )
    return imports_tests or ("sys.path" in text and '"tests"' in text)


@pytest.mark.parametrize("package", PACKAGES)
def test_production_code_never_imports_test_code(package: str) -> None:
    offenders = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*.py")
        if _reaches_into_tests(path)
    )
    assert not offenders, f"production modules reaching into tests/: {offenders}"


def test_the_old_measure_script_would_be_caught(tmp_path: Path) -> None:
    script = tmp_path / "measure.py"
    script.write_text(
        'import sys\nsys.path.insert(0, str(ROOT / "tests" / "image"))\nfrom containers import X\n'
    )
    assert _reaches_into_tests(script)


def test_the_predictor_never_imports_the_image_tooling() -> None:
    graph = _graph()
    users = sorted(
        name
        for name in graph
        if name.startswith(("serving", "dr_cli"))
        and any(target.startswith("dr_image") for target in graph[name])
    )
    assert not users, f"the image ships serving/ and dr_cli/ only, but these import dr_image: {users}"
