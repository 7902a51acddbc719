"""The CI recipes in docs/ci run as written: their commands, executed locally, audit the demo,
fail the job on the demo's violations, and leave the files the CI system collects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

INSTALL = "pip install"  # the install step is what `make test` already did


def _run(command: str, cwd: Path, env: dict[str, str]) -> int:
    bin_dir = str(Path(sys.executable).parent)
    full_env = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=full_env, timeout=300, check=False).returncode


@pytest.fixture
def checkout(demo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(demo_root, root)
    shutil.copytree(REPO / "scripts", root / "scripts")
    return root


def test_github_actions_workflow_commands(checkout: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load((REPO / "docs" / "ci" / "github-actions.yml").read_text())
    steps = [s for s in workflow["jobs"]["audit"]["steps"] if "run" in s and INSTALL not in s["run"]]
    summary = tmp_path / "step-summary.md"
    codes = {step["name"]: _run(step["run"], checkout, {"GITHUB_STEP_SUMMARY": str(summary)}) for step in steps}
    assert codes == {"Train the demo model": 0, "Audit": 1, "Job summary": 0}  # exit 1 fails the job
    assert "guardrail: adult-income" in summary.read_text()
    uploaded = next(s for s in workflow["jobs"]["audit"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert (checkout / uploaded["with"]["path"] / "report.html").is_file()
    sarif = next(s for s in workflow["jobs"]["audit"]["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    log = json.loads((checkout / sarif["with"]["sarif_file"]).read_text())
    assert {r["ruleId"] for r in log["runs"][0]["results"]} >= {"FAIR-001", "FAIR-002"}


@pytest.mark.slow  # the same train and audit commands as the GitHub workflow above: ~30 s
def test_gitlab_job_commands(checkout: Path) -> None:
    job = yaml.safe_load((REPO / "docs" / "ci" / "gitlab-ci.yml").read_text())["responsible-ai-audit"]
    codes = [_run(command, checkout, {}) for command in job["script"] if INSTALL not in command]
    assert codes == [0, 1]
    assert (checkout / job["artifacts"]["reports"]["junit"]).is_file()
    assert all((checkout / path).is_dir() for path in job["artifacts"]["paths"])
