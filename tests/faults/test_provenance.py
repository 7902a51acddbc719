"""Provenance of what was read (issue 20, defect 10): the digests a run records are of the
bytes it audited. A data file replaced while the audits run leaves the record vouching for
the audited bytes (and ``verify`` then reports the file as changed); a file that changes
while it is read refuses the run (exit 3)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import guardrail.adapters.tables as tables
from guardrail.auditors.base import AuditorParams
from guardrail.auditors.registry import default_registry
from guardrail.core.errors import DataError, SpecError
from guardrail.core.types import AuditResult, AuditStatus
from guardrail.report.verify import verify
from guardrail.run.audit import run
from guardrail.run.provenance import CHANGED_WHILE_READ, InputFiles
from tests.cli.test_exit_codes import _folder
from tests.conftest import run_cli

SWAPPED = "y,pred,group\n" + "".join(f"{i % 2},1,{'ab'[i % 2]}\n" for i in range(40))


class SwapParams(AuditorParams):
    path: str


class SwappingAuditor:
    """Replaces the data file while the audits run, as another job writing to it would."""

    name = "swapper"
    extra = "none"
    Params = SwapParams

    def __init__(self, params: SwapParams) -> None:
        self.params = params

    def run(self, ctx: object) -> AuditResult:
        replacement = Path(self.params.path).with_suffix(".new")
        replacement.write_text(SWAPPED)
        replacement.replace(self.params.path)
        return AuditResult(audit_id="swap", auditor=self.name, status=AuditStatus.OK)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_data_file_replaced_during_the_audits_is_recorded_as_it_was_audited(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3, audits="  - {id: fairness, use: fairness, params: {min_group_size: 2}}\n"
                   f"  - {{id: swap, use: swapper, params: {{path: '{tmp_path / 'data.csv'}'}}}}\n")
    audited = (tmp_path / "data.csv").read_bytes()
    registry = default_registry()
    registry.register("swapper", f"{__name__}:SwappingAuditor")
    result = run(spec, registry=registry)
    record, loaded = result.record, result.spec
    assert (tmp_path / "data.csv").read_text() == SWAPPED, "the file was swapped during the run"
    (data,) = [f for f in record.provenance.files if f.role == "data"]
    assert (data.sha256, data.bytes) == (_sha256(audited), len(audited))
    fairness = next(r for r in record.results if r.audit_id == "fairness")
    assert next(m.n for m in fairness.metrics if m.n) == 8, "the audit saw the 8 original rows"
    record = result.publish(("json",)).record
    checks = {c.role: c.status for c in verify(record, loaded.out_dir / "run.json")}
    assert checks["data"] == "changed" and checks["spec"] == checks["policy"] == "ok"
    done = run_cli("verify", loaded.out_dir / "run.json")
    assert done.returncode == 1 and "data" in done.stderr and "changed" in done.stderr


def test_a_data_file_that_changes_while_it_is_read_refuses_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    real = tables.read_table

    def read_then_change(path: Path, **kwargs: object) -> object:
        frame = real(path, **kwargs)  # type: ignore[arg-type]
        path.write_text(SWAPPED)  # another process writes while guardrail reads
        return frame

    monkeypatch.setattr(tables, "read_table", read_then_change)
    with pytest.raises(DataError, match=CHANGED_WHILE_READ.format(role="data")) as caught:
        run(spec)
    assert caught.value.exit_code == 3
    assert not (tmp_path / "out").exists()


def test_a_policy_that_changes_while_it_is_read_refuses_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import guardrail.run.audit as runner

    spec = _folder(tmp_path, threshold=0.3)
    real = runner.load_policy  # type: ignore[attr-defined]

    def load_then_change(path: Path) -> object:
        loaded = real(path)
        path.write_text(path.read_text().replace("0.3", "0.9"))
        return loaded

    monkeypatch.setattr(runner, "load_policy", load_then_change)
    with pytest.raises(SpecError, match=CHANGED_WHILE_READ.format(role="policy")):
        run(spec)


def test_a_model_folder_changed_while_the_audits_read_it_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.safetensors").write_bytes(b"w" * 100)
    (folder / "ledger.json").write_text("{}")
    inputs = InputFiles()
    inputs.read("model", folder, lambda: None)
    inputs.check_unchanged("model", folder)  # nothing changed
    assert [f.bytes for f in inputs.of("model")] == [2, 100]
    (folder / "ledger.json").write_text('{"epsilon": 8}')
    with pytest.raises(Exception, match=CHANGED_WHILE_READ.format(role="model")):
        inputs.check_unchanged("model", folder)
