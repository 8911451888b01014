"""The import graph of finintel follows the layers documented in docs/architecture.md.

Every module under src/finintel is parsed with `ast` (nothing is imported), and each of its
finintel imports is collected, also the ones inside functions. Two rules are checked:

- layers: a module imports only from its own layer or from lower layers, as listed in the
  "## Layers" table of docs/architecture.md (read from the document, so they cannot drift);
- cycles: no module is on an import cycle (imports under `if TYPE_CHECKING:` do not count,
  because they never run).

A self-test runs the same checker on a small planted source tree, so the checks cannot pass
because they look at nothing.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "src" / "finintel"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
LAYERS_HEADING = "## Layers"


# ------------------------------------------------------------------------------------------
# The checker: plain functions over a source tree and a markdown text, tested on their own below.


@dataclass(frozen=True)
class Import:
    """One import of a package module by another, with where it is written."""

    importer: str
    imported: str
    line: int
    type_checking: bool  # written under `if TYPE_CHECKING:`


@dataclass(frozen=True)
class Layer:
    name: str
    members: tuple[str, ...]  # dotted module or package names


def module_names(package_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (`pkg/__init__.py` is `pkg`)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below `node`, each with whether it sits under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child, type_checking
            for statement in child.body:
                yield statement, True
                yield from _walk(statement, True)
            for statement in child.orelse:
                yield statement, type_checking
                yield from _walk(statement, type_checking)
        else:
            yield child, type_checking
            yield from _walk(child, type_checking)


def _closest_module(name: str, known: Mapping[str, Path]) -> str | None:
    """The module `name` refers to: itself, or the closest enclosing package module."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def collect_imports(package_dir: Path) -> dict[str, list[Import]]:
    """The package imports of every module, including imports inside functions."""
    known = module_names(package_dir)
    package = package_dir.name
    result: dict[str, list[Import]] = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found: list[Import] = []
        for node, type_checking in _walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one.
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target != package and not target.startswith(package + "."):
                    continue
                imported = _closest_module(target, known)
                if imported is not None and imported != module:
                    found.append(Import(module, imported, node.lineno, type_checking))
        result[module] = found
    return result


def parse_layers(markdown: str, package: str) -> list[Layer]:
    """The layers, top first, from the table under the "## Layers" heading."""
    lines = markdown.splitlines()
    try:
        start = lines.index(LAYERS_HEADING)
    except ValueError:
        raise AssertionError(
            f"no {LAYERS_HEADING!r} section in the architecture document"
        ) from None
    layers: list[Layer] = []
    header_seen = False
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header_seen:
            header_seen = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        names = re.findall(r"`([^`]+)`", cells[1]) if len(cells) > 1 else []
        members = tuple(package if name == "__init__" else f"{package}.{name}" for name in names)
        layers.append(Layer(cells[0], members))
    if not layers:
        raise AssertionError(f"the {LAYERS_HEADING!r} section has no table of layers")
    return layers


def layer_of(module: str, layers: Sequence[Layer]) -> int | None:
    """The index (0 = top) of the layer whose member is the longest prefix of `module`."""
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, layer in enumerate(layers):
        for member in layer.members:
            inside = module == member or module.startswith(member + ".")
            if inside and (best is None or len(member) > best[0]):
                best = (len(member), index)
    return None if best is None else best[1]


def layer_violations(imports: Sequence[Import], layers: Sequence[Layer]) -> list[str]:
    """One readable line per import of a higher layer."""
    lines = []
    for imp in imports:
        low, high = layer_of(imp.importer, layers), layer_of(imp.imported, layers)
        if low is None or high is None or high >= low:
            continue
        lines.append(
            f"{imp.importer} imports {imp.imported} "
            f"(layer {layers[high].name} above layer {layers[low].name}), line {imp.line}"
        )
    return lines


def import_graph(imports: Mapping[str, Sequence[Import]]) -> dict[str, set[str]]:
    """Module -> modules it imports when it runs (imports under TYPE_CHECKING left out)."""
    return {
        module: {imp.imported for imp in found if not imp.type_checking}
        for module, found in imports.items()
    }


def cycle_through(module: str, graph: Mapping[str, set[str]]) -> list[str] | None:
    """A shortest import cycle from `module` back to itself, or None when there is none."""
    parent: dict[str, str] = {}
    queue = deque([module])
    while queue:
        current = queue.popleft()
        for nxt in sorted(graph.get(current, ())):
            if nxt == module:
                path = [current]
                while path[-1] != module:
                    path.append(parent[path[-1]])
                return [*reversed(path), module]
            if nxt not in parent:
                parent[nxt] = current
                queue.append(nxt)
    return None


def describe_cycle(cycle: Sequence[str]) -> str:
    return " imports ".join(cycle)


# ------------------------------------------------------------------------------------------
# The rules on finintel itself.

MODULES = sorted(module_names(PACKAGE_DIR))
IMPORTS = collect_imports(PACKAGE_DIR)

# Known violations by importing module, each with its reason, while the owner of that module
# fixes it: the test is marked xfail(strict=True), so once the code is fixed the test passes
# unexpectedly and fails, and the entry must be removed. Empty today: the pipeline no longer
# builds the report, and models/risk_base.py broke the risk <-> composite/scorecard cycles.
KNOWN_LAYER_VIOLATIONS: dict[str, str] = {}
KNOWN_CYCLES: dict[str, str] = {}


def _params(known: Mapping[str, str]) -> list[object]:
    return [
        pytest.param(module, marks=pytest.mark.xfail(strict=True, reason=known[module]))
        if module in known
        else module
        for module in MODULES
    ]


@pytest.fixture(scope="module")
def layers() -> list[Layer]:
    return parse_layers(ARCHITECTURE_DOC.read_text(encoding="utf-8"), PACKAGE_DIR.name)


def test_the_layers_are_documented(layers: list[Layer]) -> None:
    names = [layer.name for layer in layers]
    assert len(names) == len(set(names)), f"a layer is named twice: {names}"
    members = [member for layer in layers for member in layer.members]
    twice = sorted({member for member in members if members.count(member) > 1})
    assert not twice, f"listed in more than one layer: {twice}"
    assert names[0] == "shells" and names[-1] == "ground floor", names


def test_the_graph_holds_the_real_imports() -> None:
    edges = {(imp.importer, imp.imported) for found in IMPORTS.values() for imp in found}
    assert len(MODULES) > 30 and len(edges) > 100, (len(MODULES), len(edges))
    assert ("finintel.cli", "finintel.pipeline") in edges


def test_every_module_has_a_layer(layers: list[Layer]) -> None:
    missing = [module for module in MODULES if layer_of(module, layers) is None]
    assert not missing, (
        f"modules missing from the {LAYERS_HEADING!r} table of docs/architecture.md: {missing}"
    )


def test_every_documented_name_is_a_module(layers: list[Layer]) -> None:
    known = set(MODULES)
    stale = [member for layer in layers for member in layer.members if member not in known]
    assert not stale, f"docs/architecture.md lists modules that do not exist: {stale}"


@pytest.mark.parametrize("module", _params(KNOWN_LAYER_VIOLATIONS))
def test_module_imports_only_its_layer_or_below(module: str, layers: list[Layer]) -> None:
    violations = layer_violations(IMPORTS[module], layers)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("module", _params(KNOWN_CYCLES))
def test_module_is_on_no_import_cycle(module: str) -> None:
    cycle = cycle_through(module, import_graph(IMPORTS))
    assert cycle is None, f"import cycle: {describe_cycle(cycle)}"


# ------------------------------------------------------------------------------------------
# The checker finds what is planted in a small source tree.

PLANTED_DOC = """\
# Planted

## Layers

| layer | modules and packages |
|---|---|
| top | `top`, `sub` |
| bottom | `low`, `a`, `b`, `c`, `d`, `__init__` |

## Next section

| not | layers |
|---|---|
| ignored | `top` |
"""

PLANTED_FILES = {
    "__init__.py": '"""Version."""\n',
    "top.py": "from pkg import low\nfrom . import a\n",
    "low.py": "def late():\n    from pkg.top import x\n    return x\n",
    "a.py": "import pkg.b\n",
    "b.py": "def late():\n    from .a import y\n    return y\n",
    "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n",
    "d.py": "import pkg.c\nimport os\n",
    "sub/__init__.py": "",
    "sub/leaf.py": "from ..low import late\nfrom pkg.sub import leaf2\n",
    "sub/leaf2.py": "from pkg import sub\n",
}


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    package_dir = tmp_path / "pkg"
    for name, text in PLANTED_FILES.items():
        path = package_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package_dir


def test_checker_reads_the_planted_tree(planted: Path) -> None:
    imports = collect_imports(planted)
    edges = {
        module: sorted((imp.imported, imp.type_checking) for imp in found)
        for module, found in imports.items()
    }
    assert edges == {
        "pkg": [],
        "pkg.top": [("pkg.a", False), ("pkg.low", False)],
        "pkg.low": [("pkg.top", False)],
        "pkg.a": [("pkg.b", False)],
        "pkg.b": [("pkg.a", False)],
        "pkg.c": [("pkg.d", True)],
        "pkg.d": [("pkg.c", False)],
        "pkg.sub": [],
        "pkg.sub.leaf": [("pkg.low", False), ("pkg.sub.leaf2", False)],
        "pkg.sub.leaf2": [("pkg.sub", False)],
    }


def test_checker_finds_a_planted_layer_violation(planted: Path) -> None:
    layers = parse_layers(PLANTED_DOC, "pkg")
    assert [layer.name for layer in layers] == ["top", "bottom"]
    imports = collect_imports(planted)
    found = [line for module in imports for line in layer_violations(imports[module], layers)]
    assert found == ["pkg.low imports pkg.top (layer top above layer bottom), line 2"]
    assert layer_of("pkg.sub.leaf", layers) == 0
    assert layer_of("pkg", layers) == 1
    assert layer_of("other", layers) is None


def test_checker_finds_a_planted_cycle(planted: Path) -> None:
    graph = import_graph(collect_imports(planted))
    cycle = cycle_through("pkg.a", graph)
    assert cycle is not None
    assert describe_cycle(cycle) == "pkg.a imports pkg.b imports pkg.a"
    assert cycle_through("pkg.top", graph) == ["pkg.top", "pkg.low", "pkg.top"]
    # An import under TYPE_CHECKING never runs, so c -> d -> c is no cycle.
    assert cycle_through("pkg.c", graph) is None
    assert cycle_through("pkg.sub.leaf", graph) is None


def test_checker_refuses_a_document_without_layers() -> None:
    with pytest.raises(AssertionError, match="no '## Layers' section"):
        parse_layers("# Architecture\n", "pkg")
    with pytest.raises(AssertionError, match="no table of layers"):
        parse_layers("## Layers\n\nprose only\n", "pkg")
