"""The auditor contract, checked for every registered auditor: what the runner, the policy
checks and the report rely on without knowing which auditor it is."""

from __future__ import annotations

import inspect

import pytest

from guardrail.auditors.base import AuditorParams
from guardrail.auditors.registry import BUILTIN, default_registry
from guardrail.report.html import SECTIONS

REGISTRY = default_registry()


@pytest.mark.parametrize("name", REGISTRY.names())
def test_every_registered_auditor_keeps_the_contract(name: str) -> None:
    cls = REGISTRY.resolve(name)
    assert cls.name == name, "the class names itself as the registry does (results carry it)"
    assert issubclass(cls.Params, AuditorParams)
    required = {key: _example(field.annotation) for key, field in cls.Params.model_fields.items() if field.is_required()}
    auditor = cls(cls.Params.model_validate(required))  # every other parameter has a default
    assert list(inspect.signature(auditor.run).parameters) == ["ctx"]
    keys = getattr(cls, "METRIC_KEYS", None)
    assert isinstance(keys, tuple) and keys and all(isinstance(k, str) and "." in k for k in keys), (
        "METRIC_KEYS lets `guardrail validate` refuse a rule naming a key no auditor produces"
    )
    assert callable(getattr(auditor, "metric_catalog", None)), "the keys it produces for a given spec, with scopes"
    assert REGISTRY.extra(name), "a missing dependency's hint names what to install"
    if name in BUILTIN:  # a third party's auditor may have none: it gets the generic section
        assert name in SECTIONS, "a built-in auditor's results have their own part of the report"


def _example(annotation: object) -> object:
    """A value of a required parameter's type (a column name, for the privacy audit's)."""
    assert annotation is str, f"a required parameter of type {annotation}: give the contract test an example"
    return "member"


def test_unknown_params_are_refused_by_every_auditor() -> None:
    from pydantic import ValidationError

    for name in REGISTRY.names():
        with pytest.raises(ValidationError):
            REGISTRY.resolve(name).Params.model_validate({"no_such_param": 1})
