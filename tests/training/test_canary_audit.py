"""The DP-claim check runs against guardrail's own trainer and catches planted trainer bugs.

Each audit is one extra DP-SGD run through :class:`guardrail.training.loop.Trainer` on the
real UCI Heart Disease rows (920 patients) plus 1000 white-box canaries. Bugs are planted
with ``monkeypatch`` where the trainer hands σ, C and its sampler to Opacus, while the
trainer's ledger still records what the config says:

* ``noise_divided_by_10`` — Opacus gets σ/10;
* ``clipping_disabled`` — Opacus clips at 1e6 with noise std still σ·C;
* ``sampling_5x`` — the Poisson loader draws each row at 5·q (same number of steps).

A correct trainer must raise no alarm in 20 seeds; each bug must be caught in ≥ 19 of 20
(``sampling_5x`` is marked slow).
Run with ``-s`` to see ε_lower per seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
import torch

from guardrail.core.errors import UsageError
from guardrail.privacy.canary import CanaryAuditReport, load_canary_report, save_canary_report
from guardrail.training import DPConfig, TrainConfig
from guardrail.training.canary_audit import (
    CANARY_NORM,
    _canary_model_class,
    canary_audit_from_spec,
    canary_audit_tensors,
    canary_scores,
    run_canary_audit,
)
from tests.training.conftest import HEART_FEATURES

Bug = Literal["none", "noise_divided_by_10", "clipping_disabled", "sampling_5x"]

SEEDS = range(20)
SIGMA = 2.0
CLIP = 1.0
DELTA = 1e-5
# q = 92 / 920 = 0.1, 10 epochs = 100 steps at σ = 2: ε (RDP) ≈ 2.45–2.6 (q counts the canaries
# only through the batch rescaling, which keeps q ≈ 0.1)
RECIPE = TrainConfig(
    epochs=10,
    batch_size=92,
    lr=0.5,
    dp=DPConfig(delta=DELTA, noise_multiplier=SIGMA, max_grad_norm=CLIP),
)


@pytest.fixture(scope="module")
def heart() -> pd.DataFrame:
    from guardrail.datasets import load_heart_disease

    return load_heart_disease()


@pytest.fixture
def plant(monkeypatch: pytest.MonkeyPatch) -> Callable[[Bug], None]:
    """Plant a bug in the trainer's DP path; the ledger keeps recording the config's σ, C and q."""

    def planted(bug: Bug) -> None:
        import opacus.data_loader
        from opacus import PrivacyEngine

        if bug in ("noise_divided_by_10", "clipping_disabled"):
            original = PrivacyEngine.make_private

            def make_private(
                self: Any, *, noise_multiplier: float, max_grad_norm: float, **kwargs: Any
            ) -> Any:
                if bug == "noise_divided_by_10":
                    noise_multiplier = noise_multiplier / 10
                else:  # noise std σ·C as claimed, but nothing is clipped
                    noise_multiplier, max_grad_norm = noise_multiplier * max_grad_norm / 1e6, 1e6
                return original(
                    self, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, **kwargs
                )

            monkeypatch.setattr(PrivacyEngine, "make_private", make_private)
        elif bug == "sampling_5x":

            class OversamplingLoader(opacus.data_loader.DPDataLoader):
                def __init__(self, dataset: Any, *, sample_rate: float, **kwargs: Any) -> None:
                    super().__init__(dataset, sample_rate=min(1.0, 5 * sample_rate), **kwargs)
                    self.batch_sampler.steps = int(1 / sample_rate)  # type: ignore[union-attr]

            monkeypatch.setattr(opacus.data_loader, "DPDataLoader", OversamplingLoader)

    return planted


def _audits(heart: pd.DataFrame, seeds: range, config: TrainConfig = RECIPE) -> list[CanaryAuditReport]:
    return [
        run_canary_audit(heart, "heart_disease", HEART_FEATURES, config, hidden=(16,), seed=seed)
        for seed in seeds
    ]


def _summary(name: str, reports: list[CanaryAuditReport]) -> tuple[int, list[float], list[float]]:
    lower = [round(r.epsilon_lower, 3) for r in reports]
    claimed = [round(r.epsilon_claimed, 3) for r in reports]
    alarms = sum(r.violated for r in reports)
    print(
        f"\n{name}: alarms {alarms}/{len(reports)}; ε_lower {lower} "
        f"(median {np.median(lower):.3f}); ε_claimed {min(claimed)}–{max(claimed)}"
    )
    return alarms, lower, claimed


# --- the planted bugs, 20 seeds each ---------------------------------------------------


@pytest.mark.parametrize(
    "bug",
    [
        "none",
        # each bug is caught on the same canaries by tests/privacy/test_canary.py; here, through the trainer
        pytest.param("noise_divided_by_10", marks=pytest.mark.slow),  # ~15 s
        "clipping_disabled",
        pytest.param("sampling_5x", marks=pytest.mark.slow),  # 5× larger batches: ~25 s
    ],
)
def test_trainer_bugs_are_caught_and_the_correct_trainer_passes(
    bug: Bug,
    heart: pd.DataFrame,
    plant: Callable[[Bug], None],
    record_property: Callable[[str, object], None],
) -> None:
    plant(bug)
    reports = _audits(heart, SEEDS)
    alarms, lower, claimed = _summary(bug, reports)
    record_property("epsilon_lower", lower)
    record_property("epsilon_claimed", claimed)
    assert all(2.5 < c < 2.6 for c in claimed)  # the ledger's claim is the same, bug or not
    assert all(450 < r.included < 550 and r.canaries == 1000 for r in reports)
    if bug == "none":
        assert alarms == 0
        assert max(lower) < 0.5 * min(claimed)  # measured ≤ 1.07 (median 0.59) vs ≥ 2.45
    else:
        assert alarms >= 19


@pytest.mark.parametrize("mode", ["hooks", "ghost", pytest.param("functorch", marks=pytest.mark.slow)])  # functorch: ~20 s
def test_every_grad_sample_mode_is_audited(
    mode: Literal["hooks", "ghost", "functorch"], heart: pd.DataFrame, plant: Callable[[Bug], None]
) -> None:
    assert RECIPE.dp is not None
    config = TrainConfig(
        epochs=RECIPE.epochs,
        batch_size=RECIPE.batch_size,
        lr=RECIPE.lr,
        dp=DPConfig(delta=DELTA, noise_multiplier=SIGMA, max_grad_norm=CLIP, grad_sample_mode=mode),
    )
    correct = _audits(heart, range(3), config)
    plant("noise_divided_by_10")
    buggy = _audits(heart, range(3), config)
    _summary(f"{mode} correct", correct)
    _summary(f"{mode} noise÷10", buggy)
    assert not any(r.violated for r in correct)
    assert all(r.violated for r in buggy)


# --- the canaries themselves -----------------------------------------------------------


def test_canary_gradients_land_on_their_own_head_column_only() -> None:
    torch.manual_seed(0)
    m, k, d = 7, 3, 4
    body = torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.ReLU(), torch.nn.Linear(5, k))
    scale = CANARY_NORM * CLIP / math.sqrt((k - 1) / k)
    model = _canary_model_class()(body, m, k, scale)
    with torch.no_grad():
        model.head.weight.normal_()  # a trained head: the canary gradient must not depend on it
    rows = [(torch.randn(d), m, 1), (torch.zeros(d), 2, 0), (torch.zeros(d), 5, 2)]
    for x, index, label in rows:
        model.zero_grad()
        logits = model(x[None], torch.tensor([index]))
        torch.nn.functional.cross_entropy(logits, torch.tensor([label])).backward()
        head = model.head.weight.grad
        assert head is not None
        body_grad = torch.cat([p.grad.flatten() for p in body.parameters() if p.grad is not None])
        if index == m:  # a real row: the body's logits and gradient, nothing on the head
            assert torch.allclose(logits, body(x[None]))
            assert torch.count_nonzero(head) == 0 and torch.count_nonzero(body_grad) > 0
        else:  # a canary: logits valued 0, a fixed gradient of norm CANARY_NORM·C on column `index`
            assert torch.count_nonzero(logits) == 0 and torch.count_nonzero(body_grad) == 0
            assert torch.count_nonzero(head[:, [i for i in range(m) if i != index]]) == 0
            expected = -scale * (torch.nn.functional.one_hot(torch.tensor(label), k) - 1 / k)
            assert torch.allclose(head[:, index], expected.float())
            assert float(head.norm()) == pytest.approx(CANARY_NORM * CLIP, rel=1e-5)
            # the score direction is the descent direction: a step −lr·grad raises the score
            step = -head.detach().numpy()
            assert canary_scores(step, np.full(m, label))[index] == pytest.approx(CANARY_NORM * CLIP, rel=1e-5)


def test_scores_project_each_column_on_its_label() -> None:
    weight = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [0.0, 0.0, 2.0]])
    scores = canary_scores(weight, [0, 0, 2])
    unit = math.sqrt(2 / 3)
    assert scores.tolist() == pytest.approx([(1 - 1 / 3) / unit, (-1 / 3) / unit, 2 / unit])


def test_without_noise_every_included_canary_is_found(heart: pd.DataFrame) -> None:
    config = TrainConfig(
        epochs=10, batch_size=92, lr=0.5, dp=DPConfig(delta=DELTA, noise_multiplier=1e-3, max_grad_norm=CLIP)
    )
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    report = canary_audit_tensors(torch.nn.Linear(3, 2), x, y, 2, config, canaries=200, seed=1)
    assert all(g.correct == g.guesses for g in report.grid)  # the scores separate perfectly
    assert report.epsilon_claimed > 1e5 and not report.violated  # σ ≈ 0 claims nothing


# --- entry points ---------------------------------------------------------------------


def test_target_epsilon_from_a_spec_is_the_claim_and_the_report_round_trips(
    heart: pd.DataFrame, tmp_path: Any
) -> None:
    from guardrail.spec.training import TrainSpec

    spec = TrainSpec.model_validate(
        {
            "target": "heart_disease",
            "features": list(HEART_FEATURES),
            "model": {"kind": "mlp", "hidden": [16]},
            "epochs": 10,
            "batch_size": 92,
            "lr": 0.5,
            "out": "model",
            "device": "cpu",
            "privacy": {"dp": {"target_epsilon": 2.0, "delta": DELTA, "accountant": "rdp"}},
        }
    )
    report = canary_audit_from_spec(spec, heart, canaries=500, seed=4)
    assert report.epsilon_claimed == pytest.approx(2.0, rel=0.02)
    assert report.canaries == 500 and not report.violated
    path = save_canary_report(report, tmp_path / "dp_audit.json")
    assert load_canary_report(path) == report


def test_the_audit_run_claims_the_epsilon_of_the_real_training_run(heart: pd.DataFrame, tmp_path: Any) -> None:
    from guardrail.training import train_tabular

    trained = train_tabular(heart, "heart_disease", HEART_FEATURES, tmp_path / "m", RECIPE, hidden=(16,))
    report = run_canary_audit(heart, "heart_disease", HEART_FEATURES, RECIPE, hidden=(16,), seed=0)
    assert trained.epsilon is not None and trained.sample_rate == pytest.approx(0.1)
    # same q (batch rescaled for the canaries, rounded down), steps and σ: the same ε, up to rounding
    assert report.epsilon_claimed == pytest.approx(trained.epsilon, rel=0.01)
    assert report.epsilon_claimed <= trained.epsilon


def test_a_recipe_without_dp_or_with_bad_settings_is_refused(heart: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match="needs a DP training config"):
        run_canary_audit(heart, "heart_disease", HEART_FEATURES, TrainConfig())
    with pytest.raises(UsageError, match="canaries"):
        run_canary_audit(heart, "heart_disease", HEART_FEATURES, RECIPE, canaries=1)
    with pytest.raises(Exception, match="not in the data"):
        run_canary_audit(heart, "no_such_column", HEART_FEATURES, RECIPE)

