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


# layer rule: a module may import its own layer's siblings only where allowed, and lower layers
LAYERS = {
    "cli": 1,
    "api": 1,
    "runner": 2,
    "train_runner": 2,
    "federate_runner": 2,
    "federation": 2,
    "provenance": 2,
    "outcomes": 2,
    "auditors": 3,
    "policy": 3,
    "report": 3,
    "training": 3,
    "federated": 3,
    "history": 3,
    "spec": 4,
    "adapters": 4,
    "datasets": 4,
    "fairness": 4,
    "privacy": 4,
    "explain": 4,
    "core": 5,
    "errors": 5,
}
SIBLINGS_MAY_NOT_MIX = {"auditors", "policy", "report", "training", "federated", "history"}
# Jupyter's display hook (_repr_html_) on the core result types renders through the report
# layer, imported only when a notebook displays a result: the one sanctioned upward import.
DISPLAY_HOOKS = {("core/types.py", "report")}


def _guardrail_imports(path: Path) -> list[str]:
    """Imports of guardrail modules anywhere in the file (lazy ones included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("guardrail."):
            found.append(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found += [a.name.split(".")[1] for a in node.names if a.name.startswith("guardrail.")]
    return found


@pytest.mark.parametrize("path", sorted((REPO / "guardrail").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path: Path) -> None:
    parts = path.relative_to(REPO / "guardrail").with_suffix("").parts
    if parts[0] in ("__init__", "__main__"):
        return
    own = parts[0]
    relative = path.relative_to(REPO / "guardrail").as_posix()
    for target in _guardrail_imports(path):
        if target == own or (relative, target) in DISPLAY_HOOKS:
            continue
        assert LAYERS[target] >= LAYERS[own], f"{own} (layer {LAYERS[own]}) imports {target} (layer {LAYERS[target]})"
        if own in SIBLINGS_MAY_NOT_MIX:
            assert target not in SIBLINGS_MAY_NOT_MIX, f"{own} imports its sibling {target}"
