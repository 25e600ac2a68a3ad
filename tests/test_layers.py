"""The layout in layers (docs/architecture.md, ../shared/DESIGN.md): an app imports only from the layers below it,
never in a loop, and not even inside a function, except the few deliberate lazy imports listed here (and in
docs/architecture.md) with their reason. Production code only: tests, benchmarks and migrations are not
layers.

Issue 14: the apps imported each other in loops made legal by 25 function-local imports; this test fails on any
new cycle, any import upward, and any new function-local import across apps."""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top. An app may import from the apps before it, never from one after it. The project package
#: (studio_saas: settings, URLconfs, the API's error handler, ops views) wires the apps together, so it sits on
#: top; no app imports it (settings are read through django.conf).
LAYERS = ["engine", "tenants", "jobs", "clients", "templates_app", "generation", "galleries", "billing", "studio_saas"]
#: Engine modules that load torch, numpy or dlib when imported: imported inside the job handlers and the
#: `engine` command only, so a web process and a worker's parent never load them (CUDA is initialised only in
#: the worker's child that runs the job: tests/jobs/test_no_torch_import.py).
HEAVY_ENGINE_MODULES = {"engine.training", "engine.likeness", "engine.device", "engine.faces", "engine.safety"}
SKIP_DIRS = {"tests", "bench", "migrations", "static", "templates", "docs", "scripts", ".venv", "node_modules"}


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    source: str  # the importing app
    target: str  # the module imported
    function: str  # the enclosing function ("" at module level)

    @property
    def target_app(self) -> str:
        return self.target.split(".")[0]

    def __str__(self) -> str:
        where = f" (inside {self.function}())" if self.function else ""
        return f"{self.path}:{self.line} {self.source} -> {self.target}{where}"


def _imports() -> list[Import]:
    found = []
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if set(rel.parts) & SKIP_DIRS:
                continue
            tree = ast.parse(path.read_text(), str(rel))

            def visit(node: ast.AST, function: str, app: str = app, rel: Path = rel) -> None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                        visit(child, child.name)
                    elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.dump(child.test):
                        continue  # annotations only
                    elif isinstance(child, ast.Import | ast.ImportFrom):
                        if isinstance(child, ast.ImportFrom):
                            if child.level or not child.module:
                                continue
                            modules = [child.module]
                            if child.module == "engine":
                                modules = [f"engine.{alias.name}" for alias in child.names]
                        else:
                            modules = [alias.name for alias in child.names]
                        for module in modules:
                            if module.split(".")[0] in LAYERS and module.split(".")[0] != app:
                                found.append(Import(str(rel), child.lineno, app, module, function))
                    else:
                        visit(child, function)

            visit(tree, "")
    return found


IMPORTS = _imports()


def test_the_scan_sees_the_apps_imports() -> None:
    edges = {(i.source, i.target_app) for i in IMPORTS}
    assert ("generation", "jobs") in edges and ("billing", "jobs") in edges and ("clients", "tenants") in edges


def test_no_app_imports_upward() -> None:
    upward = [str(i) for i in IMPORTS if LAYERS.index(i.target_app) > LAYERS.index(i.source)]
    assert upward == [], "imports from a higher layer (an effect upward is a signal or a hook in ready()):\n" + (
        "\n".join(upward)
    )


def test_no_cycle_between_apps() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for i in IMPORTS:
        graph[i.source].add(i.target_app)
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def walk(app: str, path: list[str]) -> None:
        seen[app] = 1
        for nxt in sorted(graph[app]):
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in seen:
                walk(nxt, [*path, nxt])
        seen[app] = 2

    for app in LAYERS:
        if app not in seen:
            walk(app, [app])
    assert cycles == []


def _deliberate(i: Import) -> bool:
    # AppConfig.ready(): models aren't loaded when apps.py is imported, so the hooks an app registers (media
    # fields and audiences, enqueue hooks, signal receivers) are imported there.
    if i.path.endswith("/apps.py") and i.function == "ready":
        return True
    return i.target in HEAVY_ENGINE_MODULES


def test_no_function_local_import_across_apps_except_the_deliberate_ones() -> None:
    hidden = [str(i) for i in IMPORTS if i.function and not _deliberate(i)]
    assert hidden == [], "a cross-app import inside a function hides the route (import it at the top):\n" + (
        "\n".join(hidden)
    )


@pytest.mark.parametrize("module", sorted(HEAVY_ENGINE_MODULES))
def test_the_deliberate_lazy_imports_are_listed_in_the_architecture_notes(module: str) -> None:
    assert module in (ROOT / "docs" / "architecture.md").read_text()


def test_the_engine_has_no_django() -> None:
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] == "django"]
    assert offenders == []
