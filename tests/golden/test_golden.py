"""Golden run.json and JUnit for the demo spec; volatile fields normalised.

Refresh after an intended change with ``pytest tests/golden --update-golden``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

GOLDEN = Path(__file__).parent / "data"
VOLATILE = {"run_id", "started_at", "finished_at", "duration_s", "spec_path", "seconds"}  # seconds: timings in artifacts
FLOAT_DIGITS = 12


def _normalise(value: Any, key: str = "") -> Any:
    if key in VOLATILE:
        return f"<{key}>"
    if key == "outputs":  # digests of reports that embed the run id and times
        return [{"role": o["role"], "path": o["path"]} for o in value]
    if isinstance(value, dict):
        if key == "provenance":
            files = [{"role": f["role"], "path": Path(f["path"]).name} for f in value["files"]]
            return {"files": files, "seeds": value["seeds"]}
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, key) for v in value]
    if key == "path" and isinstance(value, str):
        return Path(value).name  # absolute paths differ per machine
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    return value


def _normalise_junit(text: str) -> str:
    text = re.sub(r'time="[^"]*"', 'time="<t>"', text)
    text = re.sub(r'name="guardrail.run_id" value="[^"]*"', 'name="guardrail.run_id" value="<run_id>"', text)
    return re.sub(r'timestamp="[^"]*"', 'timestamp="<t>"', text)


@pytest.fixture(scope="module")
def demo_outputs(demo_root: Path) -> Path:
    done = run_cli("audit", demo_root / "audits" / "adult-income.yaml", "--quiet", cwd=demo_root)
    assert done.returncode == 1, done.stderr
    return demo_root / "reports" / "adult-income"


def _check(name: str, actual: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"golden file {path} missing; run pytest with --update-golden"
    assert actual == path.read_text(), f"{name} changed; review and refresh with --update-golden"


def test_run_json_matches_golden(demo_outputs: Path, request: pytest.FixtureRequest) -> None:
    record = json.loads((demo_outputs / "run.json").read_text())
    normalised = json.dumps(_normalise(record), indent=2, ensure_ascii=False) + "\n"
    _check("adult-income.run.json", normalised, request.config.getoption("--update-golden"))


def test_junit_matches_golden(demo_outputs: Path, request: pytest.FixtureRequest) -> None:
    actual = _normalise_junit((demo_outputs / "junit.xml").read_text())
    _check("adult-income.junit.xml", actual, request.config.getoption("--update-golden"))
