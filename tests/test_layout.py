"""The layout's import rules (docs/development.md, "Layers"), checked on every import of the package.

Every ``import`` and ``from ... import`` of ``lf_template_ext``, at module level and inside
functions (where the heavy or cyclic ones hide), is read from the source with ``ast``; a rule
that fails prints the offending edge as ``file:line``. The rules:

1. no import cycle between modules;
2. only ``lf_template_ext/lf/`` imports ``llamafactory``;
3. ``model/`` and ``compiler/`` import neither LF, transformers, torch nor tokenizers, and do no
   file I/O (no ``open``, no ``os``/``pathlib``/``shutil``/``tempfile``/``io``);
4. nothing outside ``cli/`` imports ``cli/``;
5. a package imports only packages of a lower layer (or its own): the table :data:`LAYERS`.

``test_rules_catch_a_bad_import`` adds bad imports to a copy of the package and shows each rule
failing, so none of these checks can pass vacuously.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "lf_template_ext"

#: Layer of each part of the package: an import must go to the same or a lower layer.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_version": 0,
    "model": 1,
    "compiler": 2,
    "modeldir": 3,
    "native": 4,
    "lf": 5,
    "render": 6,
    "verifier": 7,
    "workflows": 8,
    "lf.plugin": 9,
    "api": 10,
    "": 10,  # the package's __init__: the public API
    "cli": 11,
}
HEAVY = ("llamafactory", "transformers", "torch", "tokenizers")
IO_MODULES = ("os", "pathlib", "shutil", "tempfile", "io")
PURE = ("model", "compiler")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted, without the package prefix ("" = the package __init__)
    target: str  # imported module (inside the package), or "EXT:<top-level name>"
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source or PACKAGE} imports {self.target}"


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root / PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def scan(root: Path) -> tuple[dict[str, Path], list[Edge], list[tuple[str, str]]]:
    """Every module, every import edge, and every ``open(...)`` call as ``(module, file:line)``."""
    modules = _modules(root)
    edges: list[Edge] = []
    opens: list[tuple[str, str]] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        rel = path.relative_to(root)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                opens.append((name, where))
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                    mod = ".".join(base + ([node.module] if node.module else []))
                    absolute = f"{PACKAGE}.{mod}" if mod else PACKAGE
                else:
                    absolute = node.module or ""
                if absolute == PACKAGE or absolute.startswith(PACKAGE + "."):
                    inner = absolute[len(PACKAGE) + 1 :]
                    for a in node.names:  # `from . import x` imports the module x when there is one
                        sub = f"{inner}.{a.name}" if inner else a.name
                        targets.append(f"{PACKAGE}.{sub}" if sub in modules else absolute)
                else:
                    targets = [absolute]
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    inner = target[len(PACKAGE) + 1 :]
                    while inner and inner not in modules:  # `import a.b.c` of a name inside a module
                        inner = inner.rpartition(".")[0]
                    if inner != name:
                        edges.append(Edge(name, inner, where))
                else:
                    edges.append(Edge(name, "EXT:" + target.split(".")[0], where))
    return modules, edges, opens


def layer_of(module: str) -> tuple[str, int]:
    best = ""
    for part in LAYERS:
        if part and (module == part or module.startswith(part + ".")) and len(part) > len(best):
            best = part
    return best, LAYERS[best]


def _in(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def cycles(modules: dict[str, Path], edges: list[Edge]) -> list[list[Edge]]:
    """One cycle (as its edges) per strongly connected component with more than one module."""
    graph: dict[str, dict[str, Edge]] = {m: {} for m in modules}
    for e in edges:
        if not e.target.startswith("EXT:"):
            graph[e.source].setdefault(e.target, e)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan, iterative enough for a package of this size
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    out = []
    for comp in comps:  # walk from the first module back to itself inside the component
        members = set(comp)
        path, seen, v = [], set(), comp[0]
        while v not in seen:
            seen.add(v)
            nxt = next(w for w in graph[v] if w in members)
            path.append(graph[v][nxt])
            v = nxt
        start = next(i for i, e in enumerate(path) if e.source == v)
        out.append(path[start:])
    return out


def violations(root: Path) -> dict[str, list[str]]:
    modules, edges, opens = scan(root)
    found: dict[str, list[str]] = {"cycle": [], "llamafactory": [], "pure": [], "cli": [], "layers": []}
    for cyc in cycles(modules, edges):
        found["cycle"].append(" -> ".join(str(e) for e in cyc))
    for e in edges:
        ext = e.target[4:] if e.target.startswith("EXT:") else None
        if ext == "llamafactory" and not _in(e.source, "lf"):
            found["llamafactory"].append(str(e))
        if any(_in(e.source, p) for p in PURE):
            if ext in HEAVY or ext in IO_MODULES:
                found["pure"].append(str(e))
        if ext is None:
            if _in(e.target, "cli") and not _in(e.source, "cli"):
                found["cli"].append(str(e))
            (src_part, src), (dst_part, dst) = layer_of(e.source), layer_of(e.target)
            if dst > src:
                found["layers"].append(f"{e} (layer {src_part or PACKAGE}={src} -> {dst_part or PACKAGE}={dst})")
    for module, where in opens:
        if any(_in(module, p) for p in PURE):
            found["pure"].append(f"{where}: {module} calls open()")
    return found


def test_every_module_has_a_layer():
    modules, _, _ = scan(REPO)
    for m in modules:
        part, _ = layer_of(m)
        assert part or m in ("", "api"), f"{m} is in no layer of LAYERS: add its package to the table and the docs"


@pytest.mark.parametrize("rule", ["cycle", "llamafactory", "pure", "cli", "layers"])
def test_import_rule(rule):
    found = violations(REPO)[rule]
    assert not found, f"import rule '{rule}' broken:\n  " + "\n  ".join(found)


BAD_IMPORTS = {
    # rule -> (file, line appended at its end)
    "cycle": ("lf_template_ext/model/spec.py", "def _bad():\n    from ..compiler import assemble  # noqa\n"),
    "llamafactory": ("lf_template_ext/verifier/report.py", "def _bad():\n    import llamafactory  # noqa\n"),
    "pure": ("lf_template_ext/compiler/jinja_text.py", "def _bad():\n    import transformers  # noqa\n"),
    "cli": ("lf_template_ext/workflows/repair.py", "def _bad():\n    from ..cli import common  # noqa\n"),
    "layers": ("lf_template_ext/render/hf.py", "def _bad():\n    from ..workflows import engines  # noqa\n"),
}


@pytest.mark.parametrize("rule", sorted(BAD_IMPORTS))
def test_rules_catch_a_bad_import(tmp_path, rule):
    """A deliberately added bad import makes its rule fail, naming the file and line."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.go", "go.*"))
    assert not any(violations(copy).values())
    rel, code = BAD_IMPORTS[rule]
    path = copy / rel
    lines = path.read_text(encoding="utf-8").count("\n")
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code, encoding="utf-8")
    found = violations(copy)[rule]
    assert found, f"rule '{rule}' missed the import added to {rel}"
    assert any(f"{rel}:{lines + 4}" in f for f in found), found


#: The modules above ``lf/`` that may take an unproven snapshot: the gate itself and the read-only checks
#: (they compare against LF's own encoding and write nothing). Every writer goes through ``verifier.gate``.
UNGATED_SNAPSHOT = {"verifier/gate.py", "verifier/probe.py", "workflows/check.py", "verifier/dataset.py", "cli/check_cmd.py"}


def _ungated_snapshots(root: Path) -> list[str]:
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        rel = path.relative_to(root / PACKAGE).as_posix()
        if rel.startswith("lf/") or rel in UNGATED_SNAPSHOT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("snapshot", "snapshot_of"):
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "lf_compat":
                    found.append(f"{rel}:{node.lineno}")
    return found


def test_every_write_is_gated(tmp_path):
    """The version policy's one seam (docs/lf-versions.md): writers take snapshots from ``verifier.gate``."""
    assert _ungated_snapshots(REPO) == []
    copy = tmp_path / "repo"
    shutil.copytree(REPO / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.go", "go.*"))
    repair = copy / PACKAGE / "workflows" / "repair.py"
    repair.write_text(repair.read_text(encoding="utf-8").replace("gate.snapshot(", "lf_compat.snapshot("), encoding="utf-8")
    assert any(f.startswith("workflows/repair.py:") for f in _ungated_snapshots(copy))
