"""Shared fixtures: offline environment, the demo model and data built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# A hospital tool never phones home: set before anything imports a hub client.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files from this run")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the repository with the demo model and data trained into it."""
    root = tmp_path_factory.mktemp("demo")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_adult_demo
    finally:
        sys.path.pop(0)
    assert train_adult_demo.main(["--root", str(root)]) == 0
    (root / "audits").mkdir()
    shutil.copy(REPO / "audits" / "adult-income.yaml", root / "audits" / "adult-income.yaml")
    shutil.copytree(REPO / "policies", root / "policies")
    return root


def run_cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``guardrail`` as a subprocess of this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "guardrail", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )
