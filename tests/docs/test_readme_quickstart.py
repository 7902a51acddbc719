"""The README's "audit your own model in five steps", run as written in an empty folder.

The files are the README's blocks, byte for byte; the commands are the ``$`` lines of its
output blocks; what they print must be what the README shows. It stays in the default run
(the issue's check that the front door works) although it takes ~10–30 s: the snippet and
the audit each import scikit-learn and skops in a fresh interpreter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.docs.blocks import marked

FILES = ("save_model.py", "spec.yaml", "policy.yaml")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Steps 1–3: the README's files written out, and its snippet run."""
    here = tmp_path_factory.mktemp("quickstart")
    for name in FILES:
        (here / name).write_text(marked("quickstart", name).body, encoding="utf-8")
    done = subprocess.run([sys.executable, "save_model.py"], cwd=here, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (here / "model.skops").is_file() and (here / "audit-data.csv").is_file()
    return here


def _shown_exit_code(printed: str) -> int:
    found = re.search(r"\(exit (\d)\)", printed.split("\n", 1)[0])
    return int(found[1]) if found else 0


@pytest.mark.parametrize("step", ["quickstart-validate", "quickstart-audit"])
def test_readme_quickstart_prints_what_the_readme_shows(folder: Path, step: str) -> None:
    shown = marked("output", step)
    command = shown.command()
    assert command[0] == "guardrail"
    done = run_cli(*command[1:], cwd=folder)
    assert done.stdout == shown.printed(), f"README ({shown.where}) shows other output than `{' '.join(command)}` prints"
    assert done.returncode == _shown_exit_code(shown.printed()), done.stderr


def test_readme_quickstart_uses_a_pack_by_name() -> None:
    assert "extends: [guardrail:baseline]" in marked("quickstart", "policy.yaml").body
    assert "policies: [policy.yaml]" in marked("quickstart", "spec.yaml").body


@pytest.mark.slow  # a third fresh interpreter importing skops; the default run covers the sklearn path
def test_readme_predictions_only_variant_gives_the_same_audit(folder: Path, tmp_path: Path) -> None:
    """The spec with the README's ``predictions`` model line, on a table that holds the
    model's outputs, audits to the same verdict table as the model itself."""
    import pandas as pd
    import skops.io as sio

    model = sio.load(folder / "model.skops")
    table = pd.read_csv(folder / "audit-data.csv")
    inputs = table[list(model.feature_names_in_)]
    table["pred"], table["score"] = model.predict(inputs), model.predict_proba(inputs)[:, 1]
    table.to_csv(tmp_path / "audit-data.csv", index=False)
    model_line = marked("quickstart", "predictions").body.strip()
    spec = marked("quickstart", "spec.yaml").body
    sklearn_line = next(line for line in spec.splitlines() if line.startswith("model:"))
    (tmp_path / "spec.yaml").write_text(spec.replace(sklearn_line, model_line), encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(marked("quickstart", "policy.yaml").body, encoding="utf-8")
    done = run_cli("audit", "spec.yaml", cwd=tmp_path)
    assert done.stdout == marked("output", "quickstart-audit").printed(), done.stderr
