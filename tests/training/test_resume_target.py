"""``target_epsilon`` bounds the whole ledger, resumes included, and the DP-claim check
replays the σ a model was actually trained with (issue 14, defect 7).

The issue's scenario, scaled down: a PRV target, 2 epochs, then ``--resume`` to 4. With the
same target there is nothing left to spend, so the resume is refused before any step and the
model folder stays as it was; with a larger target the remaining epochs are planned within
it. Every ε is checked against a fresh Opacus accountant fed the ledger's history, with a
tolerance (PRV is numerical).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
import torch

from guardrail.core.errors import UsageError
from guardrail.privacy.accounting import epsilon
from guardrail.privacy.canary import load_canary_report
from guardrail.privacy.ledger import load_ledger
from guardrail.training import DPConfig, TrainConfig, Trainer
from guardrail.training.loop import BEYOND_TARGET
from guardrail.training.models import MLPConfig, build_mlp

N = 200
DELTA = 1e-3
TOLERANCE = 0.02  # PRV is an upper bound within eps_error = 0.01 of the estimate


def _opacus_epsilon(history: tuple[tuple[float, float, int], ...], accountant: str, delta: float) -> float:
    """The independent oracle: Opacus' own accountant fed the same history."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    oracle = PRVAccountant() if accountant == "prv" else RDPAccountant()
    oracle.history = list(history)
    return float(oracle.get_epsilon(delta))


def _trainer(dp: DPConfig, epochs: int, **kwargs: object) -> Trainer:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    config = TrainConfig(epochs=epochs, batch_size=20, lr=0.5, dp=dp, secret_noise=False)
    return Trainer(build_mlp(MLPConfig(4, 2, (8,))), [x, y], lambda m, i: m(i[0]), config, **kwargs)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")
@pytest.mark.parametrize("accountant", ["rdp", pytest.param("prv", marks=pytest.mark.slow)])  # PRV planning: ~35 s
def test_a_resumed_run_is_planned_within_what_is_left_of_the_target(accountant: Literal["rdp", "prv"]) -> None:
    first = _trainer(DPConfig(delta=DELTA, target_epsilon=1.5, accountant=accountant), epochs=2)
    first.run_epochs(2)
    assert first.ledger is not None
    spent = first.ledger.epsilon(accountant=accountant)
    assert spent == pytest.approx(1.5, abs=TOLERANCE) and spent <= 1.5

    dp = DPConfig(delta=DELTA, target_epsilon=3.0, accountant=accountant)
    resumed = _trainer(dp, epochs=4, ledger=first.ledger, state=first.state)
    resumed.run_epochs(2)
    ledger = resumed.ledger
    assert ledger is not None and ledger.steps == 40
    (sigma_1, rate, steps_1), (sigma_2, rate_2, steps_2) = ledger.history
    assert (steps_1, steps_2, rate, rate_2) == (20, 20, 0.1, 0.1)
    assert sigma_1 == first.noise_multiplier and sigma_2 == resumed.noise_multiplier
    assert sigma_2 < sigma_1  # more budget per step than the first run had
    oracle = _opacus_epsilon(ledger.history, accountant, DELTA)
    assert ledger.epsilon(accountant=accountant) == pytest.approx(oracle, rel=1e-6)  # PRV is numerical
    assert 3.0 - TOLERANCE <= oracle <= 3.0
    note = next(n for n in ledger.notes if n.startswith("resumed after 20 steps"))
    assert f"σ = {sigma_2:.4g}" in note and f"previous segment: σ = {sigma_1:.4g}" in note
    assert [r.noise_multiplier for r in resumed.state.history] == [sigma_1, sigma_1, sigma_2, sigma_2]


@pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")
def test_a_resume_with_the_target_already_spent_is_refused_before_any_step() -> None:
    dp = DPConfig(delta=DELTA, target_epsilon=1.5, accountant="prv")
    first = _trainer(dp, epochs=2)
    first.run_epochs(2)
    assert first.ledger is not None
    with pytest.raises(UsageError) as refused:
        _trainer(dp, epochs=4, ledger=first.ledger, state=first.state)
    error = refused.value
    assert error.exit_code == 3 and error.message.startswith(BEYOND_TARGET)
    assert "already spent ε = " in error.message and "of it is left" in error.message
    assert error.hint is not None and "raise target_epsilon" in error.hint
    # the hint names where continuing at the old σ would end: the silent overshoot of the issue
    continued = epsilon([*first.ledger.history, (first.noise_multiplier, 0.1, 20)], DELTA, "prv")
    assert continued > 1.5 and f"would end at ε = {continued:.3g}" in error.hint


def test_a_replay_trains_each_segment_at_its_own_sigma_and_stops_at_its_end() -> None:
    history = ((1.0, 0.1, 7), (2.5, 0.1, 16))  # a σ change in the middle of an epoch
    trainer = _trainer(DPConfig(delta=DELTA, noise_multiplier=9.0), epochs=1, replay=history)
    trainer.run_epochs(10)
    assert trainer.ledger is not None and trainer.ledger.history == history
    assert trainer.state.steps_done == 23 and trainer.replay_done
    assert trainer.optimizer.noise_multiplier == 2.5  # Opacus adds the σ the ledger records


# --- end to end: `guardrail train` and `guardrail train --resume` -----------------------

SPEC = """\
schema_version: 1
kind: audit
name: heart-dp-resume
train:
  data: {{dataset: heart_disease, holdout: 0.3}}
  target: heart_disease
  features: [age, sex, max_heart_rate, st_depression, exercise_angina]
  model: {{kind: mlp, hidden: [8]}}
  epochs: {epochs}
  batch_size: 64
  lr: 0.5
  seed: 3
  out: model
  device: cpu
  privacy:
    dp: {{target_epsilon: {target}, delta: 1.0e-5, max_grad_norm: 1.0, accountant: prv}}
    canary_audit: {{enabled: true, canaries: 200}}
model: {{adapter: torch, path: model}}
data: {{path: model/audit-data.csv.gz, target: heart_disease, sensitive: [sex]}}
audits:
  - {{id: privacy, use: privacy, params: {{membership_column: member, attacks: [loss]}}}}
report: {{out: out, history: false}}
"""


def _spec(tmp_path: Path, *, epochs: int, target: float) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(epochs=epochs, target=target))
    return path


@pytest.mark.slow  # two trainings and a DP audit through the CLI: ~60 s; the planning itself is tested above
@pytest.mark.filterwarnings("ignore::UserWarning:opacus.*")
def test_train_then_resume_keeps_the_whole_ledger_within_the_target_and_the_dp_audit_replays_it(
    tmp_path: Path,
) -> None:
    from guardrail.run.train import train
    from tests.conftest import run_cli

    train(_spec(tmp_path, epochs=2, target=1.5))
    model = tmp_path / "model"
    before = {name: (model / name).read_bytes() for name in ("ledger.json", "model.safetensors", "dp_audit.json")}

    # the scenario: same target, 2 → 4 epochs. Nothing is left: exit 3, folder untouched
    refused = run_cli("train", _spec(tmp_path, epochs=4, target=1.5), "--resume", cwd=tmp_path)
    assert refused.returncode == 3, refused.stderr
    assert BEYOND_TARGET in refused.stderr and "raise target_epsilon" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert before == {name: (model / name).read_bytes() for name in before}

    # a target that covers the whole run: the two new epochs are planned within it
    run = train(_spec(tmp_path, epochs=4, target=2.5), resume=True)
    ledger = load_ledger(model / "ledger.json")
    assert ledger.history == run.result.ledger.history  # type: ignore[union-attr]
    assert len(ledger.history) == 2 and ledger.history[0][0] != ledger.history[1][0]
    oracle = _opacus_epsilon(ledger.history, "prv", 1e-5)
    assert 2.5 - TOLERANCE <= oracle <= 2.5
    assert run.result.epsilon == pytest.approx(oracle, rel=1e-6)  # PRV is numerical
    assert any(n.startswith("resumed after") for n in ledger.notes)
    epochs = json.loads((model / "history.json").read_text())["epochs"]
    assert [e["noise_multiplier"] for e in epochs] == [ledger.history[0][0]] * 2 + [ledger.history[1][0]] * 2

    # dp_audit.json audits the σ the model was trained with, segment by segment, not a fresh plan
    report = load_canary_report(model / "dp_audit.json")
    assert report.replayed
    assert [(s.noise_multiplier, s.steps) for s in report.history] == [(sigma, steps) for sigma, _, steps in ledger.history]
    assert report.epsilon_claimed == pytest.approx(oracle, rel=0.03) and report.epsilon_claimed <= oracle + 1e-9
