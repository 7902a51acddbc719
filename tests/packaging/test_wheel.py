"""A wheel built from the repository holds the policy packs, and an audit run from a folder
outside the repository, with that wheel's guardrail, finds them by name (issue 16)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKS = sorted(p.name for p in (REPO / "guardrail" / "packs").glob("*.yaml"))

# Run guardrail's CLI with whatever ``guardrail`` the interpreter imports first; say which.
RUNNER = """\
import sys
import guardrail
print("guardrail imported from", guardrail.__file__, file=sys.stderr)
from guardrail.cli import main
raise SystemExit(main(sys.argv[1:]))
"""

SPEC = """\
schema_version: 1
kind: audit
name: own-model
seed: 0
model: {adapter: sklearn, path: model.skops}
data: {path: data.csv, target: y, sensitive: [sex]}
audits:
  - {id: fairness, use: fairness, params: {bootstrap: 50}}
  - {id: data, use: data, params: {bootstrap: 50}}
  - {id: robustness, use: robustness, params: {bootstrap: 50, strengths: [0.1]}}
policies: [guardrail:eu-ai-act-high-risk, guardrail:no-regression]
report: {out: out, formats: [json]}
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of the sources (built outside the checkout: no build/ left in it)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "guardrail", source / "guardrail", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (root / "dist").glob("guardrail-*.whl")
    return built


def test_the_wheel_holds_every_policy_pack(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for pack in PACKS:
            assert f"guardrail/packs/{pack}" in names, f"{pack} is not in {wheel.name}"
            assert archive.read(f"guardrail/packs/{pack}") == (REPO / "guardrail" / "packs" / pack).read_bytes()
    assert len(PACKS) == 9
    assert not any(name.startswith("policies/") for name in names)


def _own_model(folder: Path) -> None:
    """A small scikit-learn model saved with skops, and the CSV it is audited on."""
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "sex": rng.choice(["F", "M"], size=n)})
    frame["y"] = (frame["x1"] + 0.5 * frame["x2"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    sio.dump(LogisticRegression().fit(frame[["x1", "x2"]], frame["y"]), folder / "model.skops")
    frame.to_csv(folder / "data.csv", index=False)


def _guardrail(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=300,
        check=False,
    )
    imported = Path(done.stderr.split("guardrail imported from ", 1)[1].splitlines()[0])
    assert site in imported.parents, f"guardrail came from {imported}, not from the wheel"
    return done


# fresh interpreters run list, validate, audit and verify with the wheel's guardrail: ~18 s
# (~45 s on a loaded machine); the wheel's file list is checked in the default run above
@pytest.mark.slow
def test_an_audit_outside_the_repository_uses_the_wheels_packs_by_name(wheel: Path, tmp_path: Path) -> None:
    site, work = tmp_path / "site", tmp_path / "work"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    work.mkdir()
    _own_model(work)
    (work / "spec.yaml").write_text(SPEC)

    listed = _guardrail(site, work, "list")
    assert listed.returncode == 0, listed.stderr
    assert all(f"guardrail:{pack.removesuffix('.yaml')} " in listed.stdout for pack in PACKS)

    checked = _guardrail(site, work, "validate", "spec.yaml", "guardrail:eu-ai-act-high-risk")
    assert checked.returncode == 0, checked.stderr

    done = _guardrail(site, work, "audit", "spec.yaml", "--quiet")
    assert done.returncode in (0, 1, 2), done.stderr  # a verdict, not an error
    record = json.loads((work / "out" / "run.json").read_text())
    rules = {outcome["rule_id"] for outcome in record["verdict"]["outcomes"]}
    assert {"FAIR-001", "EUAI-ACC-1", "REG-001", "DATA-MISS", "ROB-PERTURB"} <= rules  # the baseline came through the EU pack's extends
    policies = {f["path"]: f["sha256"] for f in record["provenance"]["files"] if f["role"] == "policy"}
    expected = {
        f"guardrail:{name}": hashlib.sha256((site / "guardrail" / "packs" / f"{name}.yaml").read_bytes()).hexdigest()
        for name in ("eu-ai-act-high-risk", "baseline", "data-governance", "robustness", "no-regression")
    }
    assert policies == expected

    verified = _guardrail(site, work, "verify", "out/run.json", "--quiet")
    assert verified.returncode == 0, verified.stderr
