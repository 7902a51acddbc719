"""What one input may cost: a group label of megabytes, or an ID-like sensitive column with a
group per row, stops the audit with a data error (exit 3) naming the column and the fix,
instead of gigabytes of output or a quadratic allocation that ends as "a bug in the auditor"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardrail.api import audit_fairness
from guardrail.core.errors import DataError, ExitCode
from guardrail.fairness.groups import (
    LONG_LABEL_HINT,
    MAX_GROUPS,
    MAX_LABEL_CHARS,
    TOO_MANY_GROUPS_HINT,
    check_sensitive,
)
from tests.conftest import run_cli

SPEC = """\
schema_version: 1
kind: audit
name: amplification
model: {adapter: predictions, column: pred}
data: {path: data.csv, target: y, sensitive: [group]}
audits:
  - {id: fairness, use: fairness}
report: {out: out}
"""


def _labels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    return y_true, np.where(rng.random(n) < 0.8, y_true, 1 - y_true)


@pytest.mark.parametrize("kind", ["object", "category"])
def test_a_megabyte_group_label_is_refused_naming_its_column_and_row(kind: str) -> None:
    y_true, y_pred = _labels(200)
    values = np.array(["a", "b"] * 100, dtype=object)
    values[37] = "x" * 1_000_000
    column = pd.Series(values, dtype=kind)

    with pytest.raises(DataError) as caught:
        audit_fairness(y_true, y_pred, sensitive_features=pd.DataFrame({"notes": column}), bootstrap=0)

    error = caught.value
    assert error.exit_code == ExitCode.USAGE == 3
    assert "'notes'" in error.message and "data row 38" in error.message and f"{MAX_LABEL_CHARS}" in error.message
    assert error.hint == LONG_LABEL_HINT
    assert len(str(error)) < 1000, "the error does not repeat the label"


def test_a_label_at_the_limit_is_audited_and_one_character_more_is_refused() -> None:
    y_true, y_pred = _labels(200)
    at_limit = np.where(np.arange(200) % 2 == 0, "a" * MAX_LABEL_CHARS, "b")
    beyond = np.where(np.arange(200) % 2 == 0, "a" * (MAX_LABEL_CHARS + 1), "b")

    result = audit_fairness(y_true, y_pred, sensitive_features=pd.Series(at_limit, name="g"), bootstrap=0)
    with pytest.raises(DataError, match="data row 1,"):
        audit_fairness(y_true, y_pred, sensitive_features=pd.Series(beyond, name="g"), bootstrap=0)

    assert {g.group for g in result.metrics[0].by_group} == {"a" * MAX_LABEL_CHARS, "b"}


@pytest.mark.parametrize("bootstrap", [0, 50])
def test_an_id_like_sensitive_column_is_refused_before_any_per_group_work(bootstrap: int) -> None:
    """20,000 groups once asked the pairwise bootstrap for 18.6 GiB and exited 2."""
    n = 20_000
    y_true, y_pred = _labels(n)

    with pytest.raises(DataError) as caught:
        audit_fairness(y_true, y_pred, sensitive_features=pd.Series(np.arange(n), name="customer_id"), bootstrap=bootstrap)

    assert caught.value.exit_code == 3
    assert "'customer_id'" in caught.value.message and "20,000 groups" in caught.value.message
    assert caught.value.hint == TOO_MANY_GROUPS_HINT


def test_an_intersection_beyond_the_limit_is_refused_though_each_feature_is_within_it() -> None:
    n = 8_000
    y_true, y_pred = _labels(n)
    rng = np.random.default_rng(1)
    features = pd.DataFrame({"zip": rng.integers(0, 40, n), "age": rng.integers(0, 40, n)})

    each = audit_fairness(y_true, y_pred, sensitive_features=features, groupings="each", bootstrap=0)
    with pytest.raises(DataError) as caught:
        audit_fairness(y_true, y_pred, sensitive_features=features, groupings="intersection", bootstrap=0)

    assert {m.scope for m in each.metrics} == {"zip", "age"}
    assert caught.value.exit_code == 3
    assert "intersection of 'zip', 'age'" in caught.value.message and f"{MAX_GROUPS:,}" in caught.value.message
    assert "groupings: each" in (caught.value.hint or "")


def test_a_grouping_at_the_limit_is_audited_with_gap_intervals_and_one_group_more_is_refused() -> None:
    n = (MAX_GROUPS + 1) * 20
    y_true, y_pred = _labels(n)
    site = np.arange(n) % (MAX_GROUPS + 1)
    within = site < MAX_GROUPS

    result = audit_fairness(
        y_true[within], y_pred[within], sensitive_features=pd.Series(site[within], name="site"), bootstrap=50,
        metrics=["selection_rate"],
    )
    with pytest.raises(DataError, match=f"'site' has {MAX_GROUPS + 1:,} groups"):
        audit_fairness(y_true, y_pred, sensitive_features=pd.Series(site, name="site"), bootstrap=50, metrics=["selection_rate"])

    gap = next(m for m in result.metrics if m.key == "fairness.demographic_parity_difference")
    assert len(gap.by_group) == MAX_GROUPS and gap.ci is not None


def _cli_folder(tmp_path: Path, column: str) -> Path:
    rows = 20_000
    y_true, y_pred = _labels(rows)
    group = np.arange(rows).astype(str) if column == "id" else np.array(["a", "b"] * (rows // 2), dtype=object)
    if column == "label":
        group[5] = "x" * 5_000_000
    pd.DataFrame({"y": y_true, "pred": y_pred, "group": group}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path / "spec.yaml"


@pytest.mark.parametrize("column", ["id", "label"], ids=["20,000 groups", "a 5 MB label"])
def test_the_cli_reports_the_limit_in_small_output(tmp_path: Path, column: str) -> None:
    """A 5 MB label once made 1 GB of output and 3.4 GB of memory."""
    spec = _cli_folder(tmp_path, column)

    done = run_cli("audit", spec)

    assert done.returncode != 0
    assert "sensitive column 'group' has" in done.stdout + done.stderr
    assert len(done.stdout) + len(done.stderr) < 5000, "the error does not repeat the label"
    assert sum(p.stat().st_size for p in (tmp_path / "out").glob("*") if p.is_file()) < 2_000_000


@pytest.mark.parametrize("column", ["id", "label"], ids=["20,000 groups", "a 5 MB label"])
def test_the_cli_exits_3_with_one_line_and_writes_nothing(tmp_path: Path, column: str) -> None:
    spec = _cli_folder(tmp_path, column)

    done = run_cli("audit", spec)

    assert done.returncode == 3, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if not line.startswith("guardrail: ")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "'group'" in errors[0]
    assert not (tmp_path / "out" / "run.json").exists()


@pytest.mark.parametrize("column", ["id", "label"])
def test_the_column_check_refuses_what_an_audit_would(column: str) -> None:
    values = pd.Series(np.arange(MAX_GROUPS + 1).astype(str), name=column)
    if column == "label":
        values = pd.Series(["a", "b" * (MAX_LABEL_CHARS + 1)] * 3, name=column)

    with pytest.raises(DataError, match=f"sensitive column '{column}' has") as caught:
        check_sensitive(values, column, where="data.csv")

    assert caught.value.exit_code == 3 and caught.value.where == "data.csv"
