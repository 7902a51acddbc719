"""One answer: the in-memory, streaming and Ray engines give the same numbers (issue 19).

A spec over a hive-partitioned Parquet folder is audited by every engine; count tables,
points and intervals (same seed) must be identical, with partitions of very different sizes
and a group present in one partition only. The run record says which engine ran, how many
rows and partitions it read and what it sampled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from guardrail.core.errors import DataError
from guardrail.core.types import MetricResult, RunRecord
from tests.scale.conftest import write_folder

pytest.importorskip("pyarrow")
pytest.importorskip("duckdb")

PARTITIONS = {"2026-07": 1, "2026-08": 5_000, "2026-09": 999}
"""Rows per month: a one-row partition beside a large one."""


def decisions(seed: int = 0) -> dict[str, pd.DataFrame]:
    """Synthetic decisions per month; race "Other" occurs in September only."""
    rng = np.random.default_rng(seed)
    parts = {}
    for month, n in PARTITIONS.items():
        races = ["Black", "White", "Asian"] + (["Other"] if month == "2026-09" else [])
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        sex = rng.choice(["Female", "Male"], size=n)
        race = rng.choice(races, size=n)
        logit = 0.9 * x1 - 0.6 * x2 + 0.4 * (sex == "Male") - 0.3 * (race == "Black")
        label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        score = np.round(1 / (1 + np.exp(-(logit + rng.normal(scale=0.5, size=n)))), 4)
        parts[month] = pd.DataFrame(
            {"x1": x1, "x2": x2, "sex": sex, "race": race, "approved": label, "score": score, "decision": (score >= 0.5).astype(int)}
        )
    return parts


def train_model(root: Path, parts: dict[str, pd.DataFrame]) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = pd.concat(parts.values(), ignore_index=True)
    model = LogisticRegression().fit(frame[["x1", "x2"]], frame["approved"])
    path = root / "model.skops"
    sio.dump(model, path)
    return path


def write_spec(root: Path, *, model: str, audits: str, engine: str = "", sensitive: str = "[sex, race]") -> Path:
    spec = root / "audit.yaml"
    spec.write_text(
        f"""schema_version: 1
kind: audit
name: engines
seed: 7
model: {model}
data: {{path: log, target: approved, sensitive: {sensitive}}}
{engine}
audits:
{audits}
policies: [guardrail:baseline]
report: {{out: out, formats: [json]}}
"""
    )
    return spec


FAIRNESS = "  - {id: fairness, use: fairness, params: {bootstrap: 200}}\n"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines")
    parts = decisions()
    write_folder(root, parts)
    train_model(root, parts)
    return root


def audit(spec: Path, engine: str) -> RunRecord:
    import guardrail

    return guardrail.audit(spec, engine=engine, write=False, history=False)


def same_metrics(a: RunRecord, b: RunRecord) -> None:
    """Every metric of ``a`` equals ``b``'s: value, interval, every group's value, n and interval."""
    left, right = _by_ref(a), _by_ref(b)
    assert left.keys() == right.keys()
    for ref, metric in left.items():
        other = right[ref]
        assert _same(metric.value, other.value), ref
        assert metric.ci == other.ci, ref
        assert metric.n == other.n, ref
        assert [(g.group, g.n) for g in metric.by_group] == [(g.group, g.n) for g in other.by_group], ref
        assert all(_same(g.value, h.value) and g.ci == h.ci for g, h in zip(metric.by_group, other.by_group, strict=True)), ref


def _same(x: float | None, y: float | None) -> bool:
    return x == y or (x is not None and y is not None and math.isnan(x) and math.isnan(y))


def _by_ref(record: RunRecord) -> dict[str, MetricResult]:
    return {f"{r.audit_id}:{m.ref}": m for r in record.results for m in r.metrics}


def test_memory_and_stream_agree_on_a_model_audit(logged: Path) -> None:
    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS,
                      engine="engine: {batch_rows: 700}")
    memory, stream = audit(spec, "memory"), audit(spec, "stream")
    same_metrics(memory, stream)
    assert memory.scan is not None and stream.scan is not None
    assert memory.scan["engine"] == "memory" and stream.scan["engine"] == "stream"
    assert memory.scan["rows"] == stream.scan["rows"] == sum(PARTITIONS.values())
    assert stream.scan["partitions"] == 3
    sample = stream.scan["sample"]
    assert sample["of_rows"] == sum(PARTITIONS.values()) and sample["strata"] == ["sex", "race"]
    aucs = [m for m in stream.metrics() if m.key == "fairness.auc"]
    assert aucs and all(m.details["score_resolution"]["method"] == "exact" for m in aucs)
    other = {g.group: g.n for m in stream.metrics() if m.ref == "fairness.count[race]" for g in m.by_group}
    assert other["Other"] == (decisions()["2026-09"]["race"] == "Other").sum()


def test_a_hive_partition_column_is_a_group(logged: Path) -> None:
    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS, sensitive="[month]")
    memory, stream = audit(spec, "memory"), audit(spec, "stream")
    same_metrics(memory, stream)
    counts = {g.group: g.n for m in stream.metrics() if m.ref == "fairness.count[month]" for g in m.by_group}
    assert counts == PARTITIONS


def test_predictions_only_audits_agree(logged: Path) -> None:
    spec = write_spec(logged, model="{adapter: predictions, column: decision, score_column: score}", audits=FAIRNESS)
    same_metrics(audit(spec, "memory"), audit(spec, "stream"))


def test_a_row_audit_reads_the_same_sample_whatever_the_batches(logged: Path) -> None:
    audits = FAIRNESS + "  - {id: mitigation, use: mitigation, params: {bootstrap: 50}}\n"
    small = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=audits,
                       engine="engine: {batch_rows: 333, sample_rows: 1500}")
    first = audit(small, "stream")
    large = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=audits,
                       engine="engine: {batch_rows: 100000, sample_rows: 1500}")
    second = audit(large, "stream")
    same_metrics(first, second)
    assert first.scan is not None and second.scan is not None
    assert first.scan["sample"] == second.scan["sample"]
    assert first.scan["sample"]["rows"] < first.scan["rows"]


def test_the_record_and_reports_say_how_the_rows_were_read(logged: Path) -> None:
    import guardrail

    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS)
    record = guardrail.audit(spec, engine="stream", formats=["json", "html", "markdown"], history=False)
    written = json.loads((logged / "out" / "run.json").read_text())
    assert written["scan"]["engine"] == "stream" and written["scan"]["rows"] == record.scan["rows"]  # type: ignore[index]
    html = (logged / "out" / "report.html").read_text()
    assert "Streaming engine" in html and f"{sum(PARTITIONS.values()):,} rows in 3 partitions" in html
    assert "Streaming engine" in (logged / "out" / "summary.md").read_text()
    data_files = [f for f in record.provenance.files if f.role == "data"]
    assert len(data_files) == 3  # each partition's digest, for guardrail verify


def _metric(record: RunRecord, ref: str) -> Any:
    return next(m for m in record.metrics() if m.ref == ref)


@pytest.mark.slow
def test_the_ray_engine_agrees_with_memory_and_stream(logged: Path, ray_cluster: Any) -> None:
    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS,
                      engine=f"engine: {{address: '{ray_cluster.address}', batch_rows: 700}}")
    ray = audit(spec, "ray")
    same_metrics(audit(spec, "memory"), ray)
    same_metrics(audit(spec, "stream"), ray)
    assert ray.scan is not None and ray.scan["engine"] == "ray" and ray.scan["partitions"] == 3
    assert ray.scan["rows"] == sum(PARTITIONS.values())


def test_auto_streams_a_folder_and_reads_one_small_file_in_memory(logged: Path) -> None:
    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS)
    assert audit(spec, "auto").scan["engine"] == "stream"  # type: ignore[index]
    single = logged / "single"
    single.mkdir(exist_ok=True)
    pd.concat(decisions().values()).to_parquet(single / "all.parquet", index=False)
    one = spec.with_name("one.yaml")
    one.write_text(spec.read_text().replace("path: log,", "path: single/all.parquet,"))
    assert audit(one, "auto").scan["engine"] == "memory"  # type: ignore[index]


def test_a_query_gives_the_rows_it_selects(logged: Path) -> None:
    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS)
    query = "SELECT * FROM read_parquet('log/*/*.parquet') WHERE race <> 'Other'"
    spec.write_text(spec.read_text().replace("data: {path: log,", f'data: {{query: "{query}",'))
    memory, stream = audit(spec, "memory"), audit(spec, "stream")
    same_metrics(memory, stream)
    kept = sum((frame["race"] != "Other").sum() for frame in decisions().values())
    assert stream.scan is not None and stream.scan["rows"] == kept


def test_streaming_refuses_an_audit_that_needs_every_row_in_memory(logged: Path) -> None:
    from tests.conftest import run_cli

    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS + "  - {id: data, use: data}\n")
    done = run_cli("audit", spec, "--engine", "stream", "--no-history")
    assert done.returncode == 3, done.stderr
    assert "audit 'data' (use: data)" in done.stderr and "--engine memory" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("damage", ["schema", "truncated", "missing-sensitive"])
def test_a_bad_partition_met_mid_stream_stops_the_run_and_writes_nothing(tmp_path: Path, damage: str) -> None:
    from tests.conftest import run_cli

    parts = decisions()
    write_folder(tmp_path, parts)
    train_model(tmp_path, parts)
    last = tmp_path / "log" / "month=2026-09" / "part-0.parquet"
    if damage == "schema":
        parts["2026-09"].assign(x1=parts["2026-09"]["x1"].astype(str)).to_parquet(last, index=False)
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[:200])
    else:
        parts["2026-09"].assign(sex=parts["2026-09"]["sex"].where(parts["2026-09"].index != 7)).to_parquet(last, index=False)
    spec = write_spec(tmp_path, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS,
                      engine="engine: {batch_rows: 500}")
    done = run_cli("audit", spec, "--engine", "stream")
    assert done.returncode == 3, done.stderr
    assert "month=2026-09" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_progress_stays_quiet_in_ci_logs(logged: Path) -> None:
    from tests.conftest import run_cli

    spec = write_spec(logged, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS)
    done = run_cli("audit", spec, "--engine", "stream", "--no-history", "--out", logged / "ci-out", env={"CI": "true"})
    assert done.returncode in (0, 1), done.stderr
    assert "scanned" not in done.stderr and "\r" not in done.stderr


def test_validate_checks_a_folder_s_columns_from_its_schema(logged: Path) -> None:
    from tests.conftest import run_cli

    spec = write_spec(logged, model="{adapter: predictions, column: decision, score_column: score}", audits=FAIRNESS)
    assert run_cli("validate", spec).returncode == 0
    spec.write_text(spec.read_text().replace("target: approved", "target: aproved"))
    done = run_cli("validate", spec)
    assert done.returncode == 3 and "'aproved'" in done.stderr and "did you mean 'approved'" in done.stderr


def test_a_multiclass_model_that_knows_a_class_the_data_lacks(tmp_path: Path) -> None:
    """Classes are the target's values over every row and the model's: each batch codes them alike."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    x = rng.normal(size=(900, 2))
    grade = np.where(x[:, 0] > 0.5, "high", np.where(x[:, 0] < -0.5, "low", "mid"))
    sio.dump(LogisticRegression().fit(pd.DataFrame(x, columns=["x1", "x2"]), grade), tmp_path / "model.skops")
    parts = {month: frame.assign(grade=np.where(frame["x1"] > 0, "high", "mid")) for month, frame in decisions().items()}
    write_folder(tmp_path, parts)
    spec = write_spec(tmp_path, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS, engine="engine: {batch_rows: 900}")
    spec.write_text(spec.read_text().replace("target: approved", "target: grade, task: multiclass").replace("policies: [guardrail:baseline]\n", ""))
    memory = guardrail_audit(spec, "memory")
    stream = guardrail_audit(spec, "stream")
    same_metrics(memory, stream)
    assert any("class=low" in m.scope for m in stream.metrics())


def guardrail_audit(spec: Path, engine: str) -> RunRecord:
    import guardrail

    return guardrail.audit(spec, engine=engine, write=False, history=False, gate=False)


def test_declared_groups_are_checked_alike_with_a_missing_group(tmp_path: Path) -> None:
    parts = decisions()
    parts["2026-08"] = parts["2026-08"].assign(sex=parts["2026-08"]["sex"].where(parts["2026-08"].index % 50 != 0))
    write_folder(tmp_path, parts)
    train_model(tmp_path, parts)
    spec = write_spec(tmp_path, model="{adapter: sklearn, path: model.skops}", audits=FAIRNESS)
    declared = "missing_sensitive: group, groups: {sex: [Female, Male]}}"
    spec.write_text(spec.read_text().replace("sensitive: [sex, race]}", f"sensitive: [sex, race], {declared}"))
    same_metrics(guardrail_audit(spec, "memory"), guardrail_audit(spec, "stream"))
    spec.write_text(spec.read_text().replace("[Female, Male]", "[Female, Male, Other]"))
    for engine in ("memory", "stream"):
        with pytest.raises(DataError, match="'Other' of 'sex', declared in data.groups, have no rows"):
            guardrail_audit(spec, engine)
