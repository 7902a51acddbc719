"""Heavy libraries load only where needed, and imports point down the layers."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "transformers", "opacus", "flwr", "ray", "fairlearn", "captum", "lime", "sklearn", "skops")
ML = (*HEAVY, "numpy", "pandas", "scipy")

PROBE = """
import json, sys
from guardrail.cli import main
try:
    main({argv!r})
finally:
    print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {mods!r})), file=sys.stderr)
"""


def _loaded_after(argv: list[str], mods: tuple[str, ...]) -> tuple[int, list[str], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, mods=set(mods))], capture_output=True, text=True, timeout=120, check=False
    )
    elapsed = time.perf_counter() - started
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    return done.returncode, loaded, elapsed


def test_help_imports_no_heavy_library_and_is_fast() -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code, loaded, _ = _loaded_after(["--help"], ML)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert loaded == []
    # the child's CPU time, not the wall clock: under load the child waits for a core, it does no
    # more work (measured ~0.2 s; importing torch alone costs more than a second)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 5.0, f"guardrail --help used {cpu:.1f} s of CPU"


def test_list_and_schema_import_no_heavy_library() -> None:
    for argv in (["list"], ["schema", "policy"]):
        code, loaded, _ = _loaded_after(argv, HEAVY)
        assert code == 0 and loaded == [], argv


def test_validate_imports_no_heavy_library() -> None:
    code, loaded, _ = _loaded_after(["validate", str(REPO / "policies" / "baseline.yaml")], HEAVY)
    assert code == 0 and loaded == []


def test_report_rerender_imports_no_ml_library(tmp_path: Path) -> None:
    from guardrail.report import render
    from tests.report.conftest import make_record

    record_path = tmp_path / "run.json"
    record_path.write_text(render(make_record(), "json"))
    code, loaded, _ = _loaded_after(["report", str(record_path), "--format", "html", "--quiet"], ML)
    assert code == 0 and loaded == []
    code, loaded, _ = _loaded_after(["verify", str(record_path), "--quiet"], ML)
    assert code == 0 and loaded == []  # the hand-made record lists no files, so nothing can differ
    assert (tmp_path / "report.html").exists()


# layer rule: a module may import its own component, its layer's other components only where
# allowed, and lower layers. A component is a top-level package, except that the Flower half of
# the federation (guardrail/federation/flower) is a component of its own, above the pure half.
LAYERS = {
    "__init__": 0,  # the package root (guardrail.__version__, the lazy API): nothing imports it
    "__main__": 1,
    "cli": 1,
    "api": 1,
    "run": 2,
    "federation.flower": 3,
    "auditors": 4,
    "policy": 4,
    "report": 4,
    "training": 4,
    "history": 4,
    "spec": 5,
    "adapters": 5,
    "datasets": 5,
    "fairness": 5,
    "data_audit": 5,
    "robustness": 5,
    "privacy": 5,
    "explain": 5,
    "federation": 5,
    "scale": 5,
    "core": 6,
}
SIBLINGS_MAY_NOT_MIX = {"auditors", "policy", "report", "training", "history"}
TOP_LEVEL_MODULES = {"__init__", "__main__", "cli", "api"}
# Jupyter's display hook (_repr_html_) on the core result types renders through the report
# layer, imported only when a notebook displays a result: the one sanctioned upward import.
DISPLAY_HOOKS = {("core/types.py", "report")}
# The Flower app import strings that deployments written by guardrail 0.1 name, re-exported for
# one release (tests/federation/test_deployment.py proves they still load the apps).
DEPRECATED_SHIMS = {("federation/server_app.py", "federation.flower"), ("federation/client_app.py", "federation.flower")}
PACKAGE = REPO / "guardrail"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> list[str]:
    return _imports_of(path.read_text(), _module_name(path), is_package=path.name == "__init__.py")


def _imports_of(source: str, module: str, *, is_package: bool = False, runtime: bool = False) -> list[str]:
    """Every guardrail module ``source`` imports, lazy imports included: ``from guardrail.a import
    b`` names ``guardrail.a.b`` when that is a module, else ``guardrail.a``; relative imports
    are resolved. With ``runtime``, imports for type checkers only (under ``if TYPE_CHECKING:``)
    and those of Jupyter display hooks (``_repr_html_``) are left out."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if runtime and isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if runtime and isinstance(node, ast.FunctionDef) and node.name == "_repr_html_":
            return
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name == "guardrail" or a.name.startswith("guardrail."))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "guardrail" or base.startswith("guardrail."):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.append(candidate if _exists(candidate) else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def _exists(module: str) -> bool:
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _component(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if parts[0] == "federation" and parts[1:2] == ["flower"]:
        return "federation.flower"
    return parts[0]


def test_only_the_entry_points_sit_at_the_top() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL_MODULES, f"top-level modules beyond the entry points: {sorted(top - TOP_LEVEL_MODULES)}"
    for package in (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        assert package.name in LAYERS, f"guardrail/{package.name}/ has no layer in LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path: Path) -> None:
    module = _module_name(path)
    own = _component(module)
    if own == "__init__":
        return
    relative = path.relative_to(PACKAGE).as_posix()
    for imported in _imported_modules(path):
        target = _component(imported)
        if target == own or (relative, target) in DISPLAY_HOOKS | DEPRECATED_SHIMS:
            continue
        assert target in LAYERS, f"{module} imports {imported}, whose component {target!r} has no layer"
        assert LAYERS[target] >= LAYERS[own], f"{module} ({own}, layer {LAYERS[own]}) imports {imported} ({target}, layer {LAYERS[target]})"
        if own in SIBLINGS_MAY_NOT_MIX:
            assert target not in SIBLINGS_MAY_NOT_MIX, f"{module} ({own}) imports its sibling {imported}"


def test_the_layer_check_sees_lazy_root_and_relative_imports() -> None:
    """The checker itself: imports inside functions, ``from guardrail import x`` and relative
    imports are all seen (a check of top-level names only missed an upward import)."""
    source = "def f():\n    from guardrail import __version__\n    from guardrail.run import federate\n    from ..core import errors\n"
    imported = _imports_of(source, "guardrail.federation.probe")
    assert imported == ["guardrail", "guardrail.run.federate", "guardrail.core.errors"]
    assert [_component(m) for m in imported] == ["__init__", "run", "core"]
    assert _component("guardrail.federation.flower.server_app") == "federation.flower"


def test_no_module_imports_itself_back() -> None:
    """No import cycle between guardrail's modules, lazy imports included (a cycle is two
    modules that should be one, or a third that both need). Imports for type checkers only and
    Jupyter display hooks, which run after every module has loaded, are not part of it."""
    graph = {
        _module_name(path): {
            m for m in _imports_of(path.read_text(), _module_name(path), is_package=path.name == "__init__.py", runtime=True)
        } - {_module_name(path)}
        for path in MODULES
    }
    # a package's __init__ is imported by every module under it; it may not import them back
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "\n".join(cycles)
