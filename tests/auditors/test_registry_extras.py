"""The pip extra named in a missing-dependency hint is the one the registry row declares."""

from __future__ import annotations

import tomllib

import pytest

from guardrail.auditors.registry import BUILTIN, AuditorRegistry, default_registry
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_builtin_names_an_extra_the_package_declares(name: str) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert default_registry().extra(name) == BUILTIN[name].extra
    assert BUILTIN[name].extra in extras


def test_a_third_party_auditor_without_an_extra_names_itself() -> None:
    registry = AuditorRegistry()
    registry.register("acme", "acme_audits:AcmeAuditor")
    assert registry.extra("acme") == "acme"
    registry.register("beta", "beta_audits:BetaAuditor", extra="beta-audits")
    assert registry.extra("beta") == "beta-audits"
