"""Reproducible: the same spec and seed give byte-identical ``run.json`` apart from the
fields listed as volatile, each with its reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.cli.test_exit_codes import _folder
from tests.conftest import run_cli

VOLATILE: dict[str, str] = {
    "run_id": "made from the start time and a random suffix: unique per run",
    "started_at": "wall-clock time",
    "finished_at": "wall-clock time",
    "duration_s": "measured time",
    "scan.seconds": "measured time of the engine's read",
    "outputs.sha256": "the other reports show the run id and times, so their digests differ",
    "outputs.bytes": "durations are printed in the HTML report, so its length may differ",
}
"""The fields of run.json that differ between two runs of one spec; nothing else may."""

AUDITS = (
    "  - {id: fairness, use: fairness, params: {min_group_size: 2, bootstrap: 200}}\n"
    "  - {id: fairness-each, use: fairness, params: {min_group_size: 2, groupings: each, bootstrap: 50}}\n"
)


def _blank(value: Any, path: str = "") -> Any:
    if isinstance(value, dict):
        return {k: "<volatile>" if f"{path}{k}" in VOLATILE or k in VOLATILE else _blank(v, f"{path}{k}.") for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(item, path) for item in value]
    return value


def _canonical(text: str) -> str:
    """run.json with the volatile fields blanked, in the same layout (indent 2, key order kept)."""
    return json.dumps(_blank(json.loads(text)), indent=2, ensure_ascii=False) + "\n"


def test_the_same_spec_and_seed_give_the_same_run_json(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3, audits=AUDITS)
    spec.write_text(spec.read_text().replace("name: t\n", "name: t\nseed: 11\n"))
    texts = []
    for out in ("a", "b"):
        done = run_cli("audit", spec, "--quiet", "--out", tmp_path / "out", "--history", tmp_path / "h.sqlite")
        assert done.returncode == 0, done.stderr
        texts.append((tmp_path / "out" / "run.json").read_text())
        (tmp_path / "out" / "run.json").rename(tmp_path / f"{out}.json")
    first, second = texts
    assert first != second, "two runs have their own run ids"
    assert _canonical(first) == _canonical(second)
    # blanking is exact: the raw texts differ only on the lines of volatile fields
    changed = {
        re.sub(r'^\s*"([^"]+)".*$', r"\1", a)
        for a, b in zip(first.splitlines(), second.splitlines(), strict=True)
        if a != b
    }
    assert changed <= {"run_id", "started_at", "finished_at", "duration_s", "seconds", "sha256", "bytes"}, changed
