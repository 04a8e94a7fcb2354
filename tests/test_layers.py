"""The package's import graph: no cycles (function-level imports included, ``if TYPE_CHECKING:``
blocks left out, as they never run), and the layers kept apart (a table of forbidden edges).

Read from the source with ``ast``: nothing is imported, so the test sees the imports a
function would make only when it runs, too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupytunnel"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``name`` imports, anywhere in its body but type-checking blocks.
    ``from pkg import mod`` counts as an import of ``pkg.mod`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:  # jupytunnel.ssh.master.Master -> jupytunnel.ssh.master
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.startswith("jupytunnel"):
                for alias in node.names:
                    add(f"{module}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# (importer, imported, why): no module under the first may import one under the second.
# A prefix names a module and everything below it.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("jupytunnel", "jupytunnel.cli", "only the CLI (and __main__, its entry) imports the CLI; commands return data"),
    ("jupytunnel.ssh", "jupytunnel.remote", "ssh/ is below the remote side"),
    ("jupytunnel.ssh", "jupytunnel.commands", "ssh/ is below the commands"),
    ("jupytunnel.ssh", "jupytunnel.tunnel", "ssh/ is below the tunnel"),
    ("jupytunnel.remote", "jupytunnel.commands", "remote/ is below the commands"),
    ("jupytunnel.remote", "jupytunnel.tunnel", "remote/ is below the tunnel"),
    ("jupytunnel.state", "jupytunnel.remote.server", "state holds remote data, not remote logic"),
]
# Where a forbidden edge is the rule's own exception (prefixes, as above).
ALLOWED = [("jupytunnel.__main__", "jupytunnel.cli")]
# The lowest modules of remote/: its data and shared scripts, and the interfaces; no logic.
REMOTE_BASE = ("jupytunnel.remote", "jupytunnel.remote.base", "jupytunnel.remote.slurm")
REMOTE_LOGIC = (
    "jupytunnel.remote.host", "jupytunnel.remote.server", "jupytunnel.remote.launchers",
    "jupytunnel.remote.places", "jupytunnel.remote.jobs", "jupytunnel.ssh.master",
)  # fmt: skip


def test_the_graph_is_read_from_the_source() -> None:
    """The reader itself: a function-level import counts, a type-checking one does not."""
    graph = import_graph()
    assert "jupytunnel.remote.host" in graph["jupytunnel.remote.places"]  # inside methods only
    assert "jupytunnel.ssh.master" not in graph["jupytunnel.remote.places"]  # TYPE_CHECKING only
    assert "jupytunnel.ssh.master" in graph["jupytunnel.remote.server"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(("importer", "imported", "why"), FORBIDDEN)
def test_forbidden_edges(importer: str, imported: str, why: str) -> None:
    graph = import_graph()
    broken = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        if _in(a, importer) and not _in(a, imported)
        for b in targets
        if _in(b, imported) and not any(_in(a, x) and _in(b, y) for x, y in ALLOWED)
    )
    assert not broken, f"{why}: " + ", ".join(broken)


def test_remote_data_imports_no_remote_logic() -> None:
    """``state`` reads ``ServerInfo`` from ``remote``: that module, the interfaces and the pure
    Slurm scripts import nothing that runs a remote command."""
    graph = import_graph()
    for name in REMOTE_BASE:
        assert not graph[name] & set(REMOTE_LOGIC), f"{name} imports {sorted(graph[name] & set(REMOTE_LOGIC))}"


def test_ssh_package_does_not_import_its_master() -> None:
    """``import jupytunnel.ssh`` (the vocabulary, ``Ssh``) stays light: no master, no argv."""
    assert import_graph()["jupytunnel.ssh"] <= {
        "jupytunnel.errors",
        "jupytunnel.net",
        "jupytunnel.paths",
        "jupytunnel.runner",
    }
