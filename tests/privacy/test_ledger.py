"""The ledger: immutable history, JSON round trip, clear errors on bad files, stopping rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrail.core.errors import DataError
from guardrail.privacy.ledger import NON_POISSON, Ledger, load_ledger

pytest.importorskip("opacus")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")

SHA = "a" * 64


def _ledger() -> Ledger:
    return Ledger(delta=1e-5, max_grad_norm=1.0, data_sha256=SHA, model="mlp")


def test_record_is_immutable_and_merges() -> None:
    empty = _ledger()
    one = empty.record(1.0, 0.01, 10)
    two = one.record(1.0, 0.01, 5).record(2.0, 0.01, 3)
    assert empty.steps == 0 and one.steps == 10
    assert two.history == ((1.0, 0.01, 15), (2.0, 0.01, 3))


def test_epsilon_equals_opacus_for_the_same_history() -> None:
    from opacus.accountants import PRVAccountant, RDPAccountant

    ledger = _ledger().record(1.0, 1 / 128, 500).record(1.3, 1 / 64, 200)
    rdp, prv = RDPAccountant(), PRVAccountant()
    rdp.history = [(1.0, 1 / 128, 500), (1.3, 1 / 64, 200)]
    prv.history = list(rdp.history)
    assert ledger.epsilon(accountant="rdp") == rdp.get_epsilon(1e-5)
    # PRV is numerical: the same history may differ in the last digits (1e-10 seen under load)
    assert ledger.epsilon(accountant="prv") == pytest.approx(prv.get_epsilon(1e-5), rel=1e-6)


def test_json_round_trip(tmp_path: Path) -> None:
    ledger = _ledger().record(1.0, 0.02, 40).stopped("max_epsilon").with_notes("hello")
    ledger = Ledger(**{**ledger.__dict__, "sampling": NON_POISSON})
    path = ledger.save(tmp_path / "ledger.json")
    again = load_ledger(path)
    assert again == ledger
    data = json.loads(path.read_text())
    assert data["epsilon"]["rdp"] == pytest.approx(ledger.epsilon(accountant="rdp"))
    assert "assumes Poisson" in data["epsilon_note"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="something-else"), "not a guardrail privacy ledger"),
        (lambda d: d.update(schema_version=99), "unsupported ledger schema_version 99"),
        (lambda d: d["segments"][0].update(sample_rate=3.0), "sample_rate must be in"),
        (lambda d: d.pop("delta"), "malformed ledger"),
        (lambda d: d.update(steps=7), "inconsistent ledger"),
    ],
)
def test_bad_ledger_file_is_a_clear_data_error(
    tmp_path: Path, mutate: object, message: str
) -> None:
    data = _ledger().record(1.0, 0.02, 40).to_dict(with_epsilon=False)
    assert callable(mutate)
    mutate(data)
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as info:
        load_ledger(path)
    assert str(path) in str(info.value) and "Hint:" in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text(_ledger().to_json()[:30])
    with pytest.raises(DataError, match="not valid JSON"):
        load_ledger(path)


def test_would_exceed_stops_before_the_step() -> None:
    ledger = _ledger()
    k = ledger.steps_within(1.2, 1.0, 1 / 128)
    at_limit = ledger.record(1.0, 1 / 128, k)
    assert not ledger.would_exceed(1.2, 1.0, 1 / 128, k)
    assert at_limit.would_exceed(1.2, 1.0, 1 / 128, 1)
    assert at_limit.epsilon() <= 1.2
