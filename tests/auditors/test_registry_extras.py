"""The pip extra named in a missing-dependency hint is the one the auditor declares."""

from __future__ import annotations

import tomllib

import pytest

from guardrail.auditors.registry import BUILTIN, BUILTIN_EXTRAS, default_registry
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_builtin_names_its_declared_extra(name: str) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert BUILTIN_EXTRAS[name] == default_registry().resolve(name).extra
    assert BUILTIN_EXTRAS[name] in extras
