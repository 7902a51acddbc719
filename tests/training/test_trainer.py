"""The DP training loop: refusal of loaders that break accounting, max_epsilon, resume, rounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from guardrail.core.errors import DataError, UsageError
from guardrail.privacy.ledger import NON_POISSON, POISSON, Ledger
from guardrail.training import DPConfig, TrainConfig, Trainer, train_tabular
from guardrail.training.data import FIXED_BATCHES_MESSAGE, WEIGHTED_SAMPLER_MESSAGE
from guardrail.training.models import MLPConfig, build_mlp

N = 200


def _data() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, 4, generator=generator)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return [x, y]


def _trainer(dp: DPConfig | None, **kwargs: object) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(epochs=2, batch_size=20, lr=0.5, dp=dp)
    return Trainer(
        build_mlp(MLPConfig(4, 2, (8,))),
        _data(),
        lambda m, i: m(i[0]),
        config,
        **kwargs,
    )  # type: ignore[arg-type]


DP = DPConfig(delta=1e-3, noise_multiplier=1.0, max_grad_norm=1.0)


def test_weighted_sampler_is_refused() -> None:
    dataset = TensorDataset(*_data())
    loader = DataLoader(
        dataset, batch_size=20, sampler=WeightedRandomSampler([1.0] * N, N)
    )
    with pytest.raises(DataError, match="WeightedRandomSampler") as info:
        _trainer(DP, loader=loader)
    assert WEIGHTED_SAMPLER_MESSAGE in str(info.value) and "allow_non_poisson" in str(
        info.value
    )


def test_fixed_shuffled_batches_and_wrong_length_are_refused() -> None:
    dataset = TensorDataset(*_data())
    with pytest.raises(DataError, match="fixed-size batches"):
        _trainer(DP, loader=DataLoader(dataset, batch_size=20, shuffle=True))
    assert "RandomSampler" in FIXED_BATCHES_MESSAGE.format(kind="RandomSampler")
    half = TensorDataset(*(t[: N // 2] for t in _data()))
    with pytest.raises(
        DataError, match="covers 100 examples but the training data has 200"
    ):
        _trainer(DP, loader=DataLoader(half, batch_size=20, shuffle=True))


def test_non_poisson_allowed_explicitly_is_recorded() -> None:
    dataset = TensorDataset(*_data())
    dp = DPConfig(delta=1e-3, noise_multiplier=1.0, allow_non_poisson=True)
    trainer = _trainer(dp, loader=DataLoader(dataset, batch_size=20, shuffle=True))
    trainer.run_epochs(1)
    assert trainer.ledger is not None
    assert trainer.ledger.sampling == NON_POISSON and trainer.ledger.history == (
        (1.0, 0.1, 10),
    )
    assert "assumes Poisson" in trainer.ledger.to_json()


def test_poisson_rate_comes_from_the_dataset_size() -> None:
    trainer = _trainer(DP)
    trainer.run_epochs(2)
    assert trainer.ledger is not None and trainer.ledger.sampling == POISSON
    assert trainer.ledger.history == ((1.0, 20 / N, 20),)


def test_max_epsilon_stops_before_the_step_that_would_exceed_it() -> None:
    dp = DPConfig(delta=1e-3, noise_multiplier=1.0, max_epsilon=1.0)
    trainer = _trainer(dp)
    trainer.run_epochs(50)
    ledger = trainer.ledger
    assert (
        ledger is not None
        and ledger.stopped_reason is not None
        and "max_epsilon=1.0" in ledger.stopped_reason
    )
    assert ledger.epsilon() <= 1.0 < ledger.record(1.0, 20 / N, 1).epsilon()


def test_rounds_append_to_a_given_ledger() -> None:
    """Federated use: k local steps per round, one ledger carried across rounds."""
    ledger = Ledger(delta=1e-3, max_grad_norm=1.0, data_sha256="x" * 64)
    for _ in range(3):
        trainer = _trainer(DP, ledger=ledger)
        trainer.run_steps(4)
        assert trainer.ledger is not None
        ledger = trainer.ledger
    assert ledger.history == ((1.0, 20 / N, 12),)
    with pytest.raises(UsageError, match="the ledger to continue has delta"):
        _trainer(DPConfig(delta=1e-4, noise_multiplier=1.0), ledger=ledger)


def test_target_epsilon_is_reached_at_the_planned_end() -> None:
    trainer = _trainer(DPConfig(delta=1e-3, target_epsilon=2.0))
    trainer.run_epochs(2)
    assert trainer.epsilon() == pytest.approx(2.0, abs=0.05)


def test_exactly_one_noise_setting() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        DPConfig(delta=1e-3)
    with pytest.raises(UsageError, match="exactly one"):
        DPConfig(delta=1e-3, noise_multiplier=1.0, target_epsilon=1.0)


def test_resume_continues_the_ledger_and_matches_a_straight_run(tmp_path: Path) -> None:
    import pandas as pd

    x, y = _data()
    frame = pd.DataFrame(x.numpy(), columns=["a", "b", "c", "d"]).assign(
        label=y.numpy()
    )
    config = TrainConfig(epochs=2, batch_size=20, lr=0.5, dp=DP, optimizer="adam", secret_noise=False)
    first = train_tabular(
        frame, "label", ["a", "b", "c", "d"], tmp_path / "resumed", config, hidden=(8,)
    )
    resumed = train_tabular(
        frame,
        "label",
        ["a", "b", "c", "d"],
        tmp_path / "resumed",
        TrainConfig(**{**config.__dict__, "epochs": 4}),
        hidden=(8,),
        resume=True,
    )
    straight = train_tabular(
        frame,
        "label",
        ["a", "b", "c", "d"],
        tmp_path / "straight",
        TrainConfig(**{**config.__dict__, "epochs": 4}),
        hidden=(8,),
    )
    assert first.steps_done == 20 and resumed.steps_done == straight.steps_done == 40
    assert resumed.epsilon_rdp == straight.epsilon_rdp
    assert resumed.epsilon_prv == pytest.approx(straight.epsilon_prv, rel=1e-6)  # PRV is numerical
    assert resumed.ledger == straight.ledger.__class__(
        **{**straight.ledger.__dict__, "model": resumed.ledger.model}
    )  # type: ignore[union-attr]
    from safetensors.torch import load_file

    a, b = (
        load_file(str(tmp_path / "resumed" / "model.safetensors")),
        load_file(str(tmp_path / "straight" / "model.safetensors")),
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_resume_with_other_data_is_refused(tmp_path: Path) -> None:
    import pandas as pd

    x, y = _data()
    frame = pd.DataFrame(x.numpy(), columns=["a", "b", "c", "d"]).assign(
        label=y.numpy()
    )
    config = TrainConfig(epochs=1, batch_size=20, lr=0.5, dp=DP)
    train_tabular(
        frame, "label", ["a", "b", "c", "d"], tmp_path / "m", config, hidden=(8,)
    )
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        train_tabular(
            frame.iloc[:150],
            "label",
            ["a", "b", "c", "d"],
            tmp_path / "m",
            config,
            hidden=(8,),
            resume=True,
        )


@pytest.mark.parametrize("mode", ["hooks", "ghost", "ew", "functorch"])
def test_every_grad_sample_mode_trains(mode: str) -> None:
    trainer = _trainer(
        DPConfig(delta=1e-3, noise_multiplier=1.0, grad_sample_mode=mode)
    )  # type: ignore[arg-type]
    before = [p.detach().clone() for p in trainer.module.parameters()]
    trainer.run_epochs(1)
    assert trainer.ledger is not None and trainer.ledger.steps == 10
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before, trainer.module.parameters(), strict=True)
    )


def _weights_after_training(config: TrainConfig) -> list[torch.Tensor]:
    torch.manual_seed(0)
    trainer = Trainer(build_mlp(MLPConfig(4, 2, (8,))), _data(), lambda m, i: m(i[0]), config)  # type: ignore[arg-type]
    trainer.run_epochs(config.epochs)
    return [p.detach().clone() for p in trainer.module.parameters()]


def test_secret_noise_is_not_the_seeds_noise_and_seeded_noise_repeats() -> None:
    seeded = TrainConfig(epochs=1, batch_size=20, lr=0.5, dp=DP, secret_noise=False)
    secret = TrainConfig(epochs=1, batch_size=20, lr=0.5, dp=DP)  # the default
    first, again = _weights_after_training(seeded), _weights_after_training(seeded)
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b)
    one, other = _weights_after_training(secret), _weights_after_training(secret)
    assert any(not torch.equal(a, b) for a, b in zip(one, other, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(one, first, strict=True))


def test_the_spec_path_uses_secret_noise_unless_told_and_the_ledger_says_when_it_does_not(tmp_path: Path) -> None:
    import pandas as pd

    from guardrail.spec.training import TrainSpec
    from guardrail.training import config_from_spec
    from guardrail.training.loop import REPRODUCIBLE_NOISE_NOTE

    section = {
        "target": "label",
        "features": ["a", "b", "c", "d"],
        "model": {"kind": "mlp", "hidden": [8]},
        "epochs": 1,
        "out": "m",
        "privacy": {"dp": {"noise_multiplier": 1.0, "delta": 1e-3}},
    }
    assert config_from_spec(TrainSpec.model_validate(section)).secret_noise is True
    seeded = {**section, "privacy": {"dp": {"noise_multiplier": 1.0, "delta": 1e-3, "reproducible_noise": True}}}
    assert config_from_spec(TrainSpec.model_validate(seeded)).secret_noise is False
    assert config_from_spec(TrainSpec.model_validate({**section, "privacy": {}})).secret_noise is False

    x, y = _data()
    frame = pd.DataFrame(x.numpy(), columns=["a", "b", "c", "d"]).assign(label=y.numpy())
    notes = {}
    for name, secret in (("secret", True), ("seeded", False)):
        config = TrainConfig(epochs=1, batch_size=20, lr=0.5, dp=DP, secret_noise=secret)
        result = train_tabular(frame, "label", ["a", "b", "c", "d"], tmp_path / name, config, hidden=(8,))
        assert result.ledger is not None
        notes[name] = result.ledger.notes
    assert REPRODUCIBLE_NOISE_NOTE in notes["seeded"] and REPRODUCIBLE_NOISE_NOTE not in notes["secret"]


def test_the_privacy_audits_reference_models_use_seeded_noise() -> None:
    """Reference models are the auditor's own and never released: seeded noise keeps the audit repeatable."""
    from guardrail.run.context import reference_recipe
    from guardrail.spec.training import TrainSpec

    section = TrainSpec.model_validate(
        {"target": "label", "features": ["a"], "model": {"kind": "mlp"}, "out": "m", "resume": True,
         "privacy": {"dp": {"noise_multiplier": 1.0, "delta": 1e-3}}}
    )
    recipe = reference_recipe(section, "/tmp/scratch")
    assert recipe.privacy.dp is not None and recipe.privacy.dp.reproducible_noise is True
    assert recipe.out == "/tmp/scratch" and recipe.resume is False
    assert section.privacy.dp is not None and section.privacy.dp.reproducible_noise is False  # the spec is untouched
