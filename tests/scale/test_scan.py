"""The runner's side of the engines: which engine runs, and how a scorer travels to a worker."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from guardrail.core.errors import SpecError
from guardrail.spec.loader import load_spec


def _spec(tmp_path: Path, *, data: str, engine: str = "", audits: str = "  - {id: fairness, use: fairness}\n") -> Path:
    spec = tmp_path / "audit.yaml"
    spec.write_text(
        f"schema_version: 1\nkind: audit\nname: scan\nmodel: {{adapter: predictions, column: decision}}\n"
        f"data: {data}\n{engine}\naudits:\n{audits}report: {{out: out}}\n"
    )
    return spec


def _choose(spec: Path, requested: str | None = None) -> tuple[str, str]:
    from guardrail.auditors.registry import default_registry
    from guardrail.run.audit import plan_audits
    from guardrail.run.scan import choose_engine

    loaded = load_spec(spec, inputs_must_exist=False)
    choice = choose_engine(loaded, plan_audits(loaded, default_registry()), requested)
    return choice.kind, choice.reason


def test_auto_reads_a_small_file_in_memory_and_streams_partitions_queries_and_large_files(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("y,sex,decision\n1,F,1\n")
    (tmp_path / "log").mkdir()
    assert _choose(_spec(tmp_path, data="{path: rows.csv, target: y, sensitive: [sex]}"))[0] == "memory"
    assert _choose(_spec(tmp_path, data="{path: log, target: y, sensitive: [sex]}"))[0] == "stream"
    assert _choose(_spec(tmp_path, data="{path: 'log/*.parquet', target: y, sensitive: [sex]}"))[0] == "stream"
    assert _choose(_spec(tmp_path, data="{query: 'SELECT 1', target: y, sensitive: [sex]}"))[0] == "stream"
    large = _spec(tmp_path, data="{path: rows.csv, target: y, sensitive: [sex]}", engine="engine: {stream_above_mb: 1}")
    (tmp_path / "rows.csv").write_bytes(b"y,sex,decision\n" + b"1,F,1\n" * 200_000)
    kind, reason = _choose(large)
    assert kind == "stream" and "above engine.stream_above_mb (1)" in reason
    assert _choose(large, "memory")[0] == "memory"


def test_an_address_in_the_spec_means_ray(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    spec = _spec(tmp_path, data="{path: log, target: y, sensitive: [sex]}", engine="engine: {address: '127.0.0.1:6379'}")
    assert _choose(spec) == ("ray", "engine.address names a Ray cluster")
    assert _choose(spec, "stream")[0] == "stream"


def test_auto_falls_back_to_memory_for_an_audit_that_needs_every_row_and_a_forced_engine_is_refused(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    spec = _spec(tmp_path, data="{path: log, target: y, sensitive: [sex]}", audits="  - {id: data, use: data}\n")
    kind, reason = _choose(spec)
    assert kind == "memory" and "audit 'data' (use: data)" in reason
    with pytest.raises(SpecError, match="the stream engine cannot run it"):
        _choose(spec, "stream")


def test_a_torch_model_moves_to_the_workers_device_when_its_scorer_arrives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    import guardrail.adapters.torch as torch_adapters
    from guardrail.adapters.torch import TorchAdapter
    from guardrail.run.scan import BatchScorer

    (tmp_path / "rows.csv").write_text("y,sex,decision\n1,F,1\n")
    loaded = load_spec(_spec(tmp_path, data="{path: rows.csv, target: y, sensitive: [sex]}"), inputs_must_exist=False)
    adapter = TorchAdapter(torch.nn.Linear(2, 2), {"classes": [0, 1]}, None, "cpu")
    scorer = BatchScorer(loaded, adapter, None, (0, 1), 2, where="rows.csv")
    assert scorer.runs_on_device
    payload = pickle.dumps(scorer)
    monkeypatch.setattr(torch_adapters, "pick_device", lambda requested=None: "meta")  # a worker whose device differs
    arrived = pickle.loads(payload)
    assert arrived.model.device == "meta" and next(arrived.model.model.parameters()).device.type == "meta"
    assert adapter.device == "cpu"  # the driver's model stays where it was
