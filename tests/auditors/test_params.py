"""Auditor params refuse a name listed twice, with one message, whichever auditor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from guardrail.auditors.explainability import ExplainabilityParams
from guardrail.auditors.fairness import FairnessParams
from guardrail.auditors.mitigation import MitigationParams
from guardrail.auditors.privacy import PrivacyParams


@pytest.mark.parametrize(
    ("params", "field", "names"),
    [
        (ExplainabilityParams, "methods", ["lime", "lime"]),
        (ExplainabilityParams, "sensitive", ["sex", "sex"]),
        (MitigationParams, "sensitive", ["sex", "sex"]),
        (PrivacyParams, "attacks", ["loss", "loss"]),
        (PrivacyParams, "groupings", ["site", "site"]),
        (FairnessParams, "sensitive", ["sex", "sex"]),
    ],
)
def test_a_name_listed_twice_is_refused(params: type, field: str, names: list[str]) -> None:
    extra = {"membership_column": "member"} if params is PrivacyParams else {}
    with pytest.raises(ValidationError, match="list each name once"):
        params(**{field: names, **extra})
    assert getattr(params(**{field: names[:1], **extra}), field) == tuple(names[:1])
