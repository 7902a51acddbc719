"""Scope names: features joined by ``+``, each escaped, so that no column name can pose as an
intersection, a multiclass suffix, a rule reference's brackets or a glob pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
import pytest

from guardrail.api import audit_fairness
from guardrail.auditors.catalog import split_ref
from guardrail.core.scopes import scope_features, scope_name
from guardrail.policy.engine import matches


def _audit(features: pd.DataFrame, **kwargs: object) -> set[str]:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, len(features))
    y_pred = y_true ^ (rng.random(len(features)) < 0.2)
    result = audit_fairness(y_true, y_pred, sensitive_features=features, bootstrap=0, **kwargs)
    return {m.scope for m in result.metrics if m.scope is not None}


def test_a_column_named_like_an_intersection_has_its_own_scope() -> None:
    rng = np.random.default_rng(3)
    columns = {name: rng.choice(["a", "b"], 400) for name in ("group+sex", "group", "sex")}

    one_by_one = _audit(pd.DataFrame(columns), groupings="each")
    intersection = _audit(pd.DataFrame({k: columns[k] for k in ("group", "sex")}), groupings="intersection")

    assert one_by_one == {"group%2Bsex", "group", "sex"}
    assert intersection == {"group+sex"}
    assert not one_by_one & intersection


def test_every_grouping_of_colliding_names_gets_a_distinct_scope() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({name: rng.choice(["a", "b"], 400) for name in ("group+sex", "group", "sex")})

    scopes = _audit(frame, groupings="both")

    assert scopes == {"group%2Bsex", "group", "sex", "group%2Bsex+group+sex"}


@pytest.mark.parametrize(
    "features",
    [("group+sex",), ("group", "sex"), ("a/class=B",), ("x[1]",), ("50%", "%2B"), ("*", "?"), ("sex", "race", "age")],
)
def test_scope_names_invert_and_never_act_as_patterns(features: tuple[str, ...]) -> None:
    scope = scope_name(features)

    assert scope_features(scope) == features
    assert fnmatchcase(scope, scope), "the catalog matches a rule's scope against these as glob patterns"
    assert split_ref(f"fairness.x[{scope}]") == ("fairness.x", scope)
    assert "/" not in scope and "=" not in scope


def test_a_rule_on_the_column_does_not_judge_the_intersection() -> None:
    from guardrail.core.types import MetricResult

    column = MetricResult("fairness.x", 0.1, scope=scope_name(("group+sex",)))
    intersection = MetricResult("fairness.x", 0.2, scope=scope_name(("group", "sex")))

    assert matches("fairness.x[group+sex]", intersection) and not matches("fairness.x[group+sex]", column)
    assert matches("fairness.x[group%2Bsex]", column)


def test_multiclass_class_labels_are_escaped_in_the_scope() -> None:
    rng = np.random.default_rng(5)
    classes = np.array(["a/class=b", "c"], dtype=object)
    y_true = classes[rng.integers(0, 2, 300)]
    features = pd.DataFrame({"sex": rng.choice(["F", "M"], 300)})

    result = audit_fairness(y_true, y_true, sensitive_features=features, task="multiclass", bootstrap=0)

    assert {m.scope for m in result.metrics} == {"sex/class=a%2Fclass%3Db", "sex/class=c"}
