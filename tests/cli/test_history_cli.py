"""guardrail history / approve / diff, the regression gate against the approved run, and
audits recording into one history at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from guardrail.history import HistoryStore
from tests.cli.test_exit_codes import POLICY, _assert_one_clear_line, _folder
from tests.conftest import run_cli

REGRESSION_RULE = """\
  - id: REG-DP
    metric: regression.fairness.demographic_parity_difference
    op: le
    threshold: 0.02
    on_missing: skip
    rationale: No wider selection-rate gap than the approved model, beyond 0.02.
"""


def _spec_with_regression_rule(tmp_path: Path) -> Path:
    """The 8-row table of the exit-code tests, 50 times over: intervals narrow enough to
    tell a change of 0.25 from noise."""
    spec = _folder(tmp_path, threshold=0.9)
    (tmp_path / "policy.yaml").write_text(POLICY.format(threshold=0.9) + REGRESSION_RULE)
    header, *rows = (tmp_path / "data.csv").read_text().splitlines()
    (tmp_path / "data.csv").write_text("\n".join([header, *rows * 50]) + "\n")
    return spec


def _widen_gap(folder: Path) -> None:
    """Group b's selected rows are no longer selected: DP difference 0.25 -> 0.5."""
    text = (folder / "data.csv").read_text()
    (folder / "data.csv").write_text(text.replace("1,1,b", "1,0,b"))


def test_runs_are_recorded_approved_and_gated_against_regression(tmp_path: Path) -> None:
    spec = _spec_with_regression_rule(tmp_path)
    first = run_cli("audit", spec, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "history: run recorded in out/history.sqlite" in first.stdout

    approved = run_cli("approve", "latest", "--history", "out", "--by", "alice", "--note", "REV-7", cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("approved run ") and "by alice" in approved.stdout

    _widen_gap(tmp_path)
    second = run_cli("audit", spec, cwd=tmp_path)
    assert second.returncode == 1, second.stdout + second.stderr  # 0.25 worse than approved > 0.02
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    regression = next(r for r in record["results"] if r["audit_id"] == "regression-vs-approved")
    gap = next(m for m in regression["metrics"] if m["key"] == "regression.fairness.demographic_parity_difference")
    assert abs(gap["value"] - 0.25) < 1e-12 and gap["details"]["approved_value"] == 0.25
    outcome = next(o for o in record["verdict"]["outcomes"] if o["rule_id"] == "REG-DP")
    assert outcome["status"] == "fail"
    assert "regression-vs-approved" in (tmp_path / "out" / "report.html").read_text()

    listing = run_cli("history", "out", cwd=tmp_path)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert len(lines) == 3 and " FAIL " in lines[1] and lines[2].rstrip().endswith("*")
    as_json = json.loads(run_cli("history", spec, "--json", cwd=tmp_path).stdout)
    assert [run["approved"] for run in as_json] == [False, True]

    diff = run_cli("diff", "approved", "latest", "--history", "out", "--fail-on-worse", cwd=tmp_path)
    assert diff.returncode == 1, diff.stderr
    assert "DP        fairness.demographic_parity_difference[group]  pass    fail" not in diff.stdout  # DP still passes
    row = next(line for line in diff.stdout.splitlines() if line.strip().startswith("fairness.demographic_parity_difference[group]"))
    assert "+0.2500" in row and "worse" in row
    data = json.loads(run_cli("diff", "approved", "latest", "--history", "out", "--json", cwd=tmp_path).stdout)
    change = next(m for m in data["metrics"] if m["ref"] == "fairness.demographic_parity_difference[group]")
    assert change["direction"] == "worse" and abs(change["change"] - 0.25) < 1e-12


def test_diff_of_two_run_json_files_needs_no_history(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.9)
    assert run_cli("audit", spec, "--quiet", "--no-history", "--out", tmp_path / "a").returncode == 0
    assert run_cli("audit", spec, "--quiet", "--no-history", "--out", tmp_path / "b").returncode == 0
    assert not (tmp_path / "a" / "history.sqlite").exists()
    same = run_cli("diff", tmp_path / "a" / "run.json", tmp_path / "b" / "run.json", "--fail-on-worse")
    assert same.returncode == 0, same.stderr
    assert "0 changed, 0 worse beyond their interval" in same.stdout


def test_history_errors_are_one_line_with_exit_3(tmp_path: Path) -> None:
    missing = run_cli("history", tmp_path)
    assert missing.returncode == 3 and "no audit history here" in missing.stderr
    _assert_one_clear_line(missing.stderr)
    no_db = run_cli("diff", "latest", "approved")
    assert no_db.returncode == 3 and "no history was given" in no_db.stderr
    _assert_one_clear_line(no_db.stderr)
    spec = _folder(tmp_path)
    assert run_cli("audit", spec, "--quiet").returncode == 0
    unapproved = run_cli("diff", "approved", "latest", "--history", tmp_path / "out")
    assert unapproved.returncode == 3 and "no approved run" in unapproved.stderr
    _assert_one_clear_line(unapproved.stderr)


def test_a_report_that_cannot_be_written_leaves_no_history_entry(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    history = tmp_path / "h.sqlite"
    assert run_cli("audit", spec, "--quiet", "--history", history).returncode == 0
    (tmp_path / "out" / "summary.md").unlink()
    (tmp_path / "out" / "summary.md").mkdir()  # a folder in the way of one report
    failed = run_cli("audit", spec, "--quiet", "--history", history)
    assert failed.returncode == 3, failed.stderr
    with HistoryStore(history, create=False) as store:
        assert len(store.runs()) == 1


def test_two_audits_recording_at_once_both_land(tmp_path: Path) -> None:
    history = tmp_path / "shared.sqlite"
    folders = [tmp_path / name for name in ("one", "two")]
    specs = []
    for folder in folders:
        folder.mkdir()
        specs.append(_folder(folder))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "guardrail", "audit", str(spec), "--quiet", "--history", str(history)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with HistoryStore(history, create=False) as store:
        assert store.integrity() == "ok"
        recorded = {r.run_id for r in store.runs()}
    assert recorded == {json.loads((f / "out" / "run.json").read_text())["run_id"] for f in folders}
