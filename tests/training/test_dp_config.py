"""One construction of the trainer's DP settings, from a spec's section or a federated job's."""

from __future__ import annotations

import pytest

from guardrail.core.errors import UsageError
from guardrail.federation.job import DPSettings
from guardrail.spec.training import DPSpec
from guardrail.training import DPConfig


def test_a_train_section_keeps_every_setting() -> None:
    section = DPSpec(
        target_epsilon=3.0, delta=1e-5, max_grad_norm=0.5, accountant="prv", grad_sample_mode="ghost",
        max_epsilon=4.0, allow_non_poisson=True, reproducible_noise=True,
    )
    assert DPConfig.from_section(section) == DPConfig(
        delta=1e-5, max_grad_norm=0.5, noise_multiplier=None, target_epsilon=3.0, accountant="prv",
        grad_sample_mode="ghost", max_epsilon=4.0, allow_non_poisson=True,
    )


def test_a_federated_job_has_no_target_budget_or_loader_of_its_own() -> None:
    settings = DPSettings(noise_multiplier=1.1, delta=1e-5, max_grad_norm=2.0, accountant="rdp", grad_sample_mode="hooks")
    config = DPConfig.from_section(settings)
    assert config == DPConfig(delta=1e-5, max_grad_norm=2.0, noise_multiplier=1.1, accountant="rdp", grad_sample_mode="hooks")
    assert (config.target_epsilon, config.max_epsilon, config.allow_non_poisson) == (None, None, False)


def test_a_section_is_checked_as_a_config_is() -> None:
    settings = DPSettings(noise_multiplier=1.0, delta=1e-5, grad_sample_mode="fast")
    with pytest.raises(UsageError, match="unknown grad_sample_mode 'fast'"):
        DPConfig.from_section(settings)
