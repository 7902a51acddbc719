"""The history from Python: guardrail.audit records, open_history approves, diff_runs compares."""

from __future__ import annotations

from pathlib import Path

import pytest

import guardrail
from guardrail.core.errors import UsageError
from tests.cli.test_exit_codes import _folder


def test_history_api_round_trip(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.9, name="api-run")
    first = guardrail.audit(spec)
    second = guardrail.audit(spec)
    with guardrail.open_history(spec) as history:  # the spec names its history
        assert [r.run_id for r in history.runs()] == [second.run_id, first.run_id]
        history.approve(first.run_id, by="carol")
    third = guardrail.audit(spec)
    regression = next(r for r in third.results if r.audit_id == "regression-vs-approved")
    assert regression.params["approved_run"] == first.run_id
    assert all(m.value == 0 for m in regression.metrics if m.value is not None)  # same data, same model
    diff = guardrail.diff_runs("approved", "latest", history=tmp_path / "out")
    assert (diff.before, diff.after) == (first.run_id, third.run_id)
    assert diff.worse() == () and all(c.change == 0 for c in diff.metrics)
    assert guardrail.diff_runs(first, tmp_path / "out" / "run.json").after == third.run_id
    assert diff._repr_html_().startswith("<pre>diff ") and "demographic_parity_difference" in diff._repr_html_()


def test_history_off_records_nothing(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.9)
    guardrail.audit(spec, history=False)
    assert not (tmp_path / "out" / "history.sqlite").exists()
    with pytest.raises(UsageError, match="no audit history here"):
        guardrail.open_history(tmp_path / "out")
