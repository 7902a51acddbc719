"""guardrail.check: results in memory judged against a policy exactly as `guardrail audit` judges them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

import guardrail
from guardrail.core.errors import SpecError, UsageError
from guardrail.core.types import RunRecord
from guardrail.datasets import load_adult
from guardrail.policy.inline import PYTHON_SOURCE

RULES: list[dict[str, Any]] = [
    {"id": "FAIR-001", "metric": "fairness.demographic_parity_ratio", "op": "ge", "threshold": 0.8, "on": "worst",
     "severity": "deny", "min_group_n": 30, "rationale": "Four-fifths rule on selection rates."},
    {"id": "FAIR-002", "metric": "fairness.equal_opportunity_difference[sex]", "op": "le", "threshold": 0.1,
     "severity": "warn", "rationale": "Equal opportunity between women and men."},
    {"id": "FAIR-003", "metric": "fairness.min_group_size", "op": "ge", "threshold": 30, "severity": "info",
     "rationale": "Groups under 30 people are too small to judge."},
]


def _policy_file(folder: Path, rules: list[dict[str, Any]], name: str = "checked") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "kind": "policy", "name": name, "rules": rules}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunRecord, Path]:
    """A fairness audit of a model's decisions on 4,000 Adult test rows, run by its spec."""
    folder = tmp_path_factory.mktemp("check")
    test = load_adult("test").head(4000)
    decided = test.assign(pred=((test["education_num"] >= 13) | (test["capital_gain"] > 5000)).astype(int))
    decided[["sex", "race", "income_over_50k", "pred"]].to_csv(folder / "predictions.csv", index=False)
    policy = _policy_file(folder, RULES)
    spec = {
        "schema_version": 1, "kind": "audit", "name": "check",
        "model": {"adapter": "predictions", "column": "pred"},
        "data": {"path": "predictions.csv", "target": "income_over_50k", "sensitive": ["sex", "race"]},
        "audits": [{"id": "fairness", "use": "fairness", "params": {"bootstrap": 100}}],
        "policies": [policy.name, "guardrail:baseline"],
        "report": {"out": "reports", "formats": ["json"]},
    }
    (folder / "audit.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return guardrail.audit(folder / "audit.yaml", write=False), policy


def _without_locations(verdict: Any) -> list[Any]:
    return [dataclasses.replace(o, location=None) for o in verdict.outcomes]


def test_check_gives_the_verdict_the_audit_recorded(audited: tuple[RunRecord, Path]) -> None:
    record, policy = audited
    assert {o.status.value for o in record.verdict.outcomes} >= {"pass", "fail"}, "a verdict worth comparing"
    both = guardrail.check(record, [policy, "guardrail:baseline"])
    assert both == record.verdict
    alone = guardrail.check(record.results[0], policy)
    assert alone == dataclasses.replace(record.verdict, outcomes=record.verdict.outcomes[: len(alone.outcomes)], policies=record.verdict.policies[:1])
    assert guardrail.check(list(record.results), str(policy)) == alone


def test_a_pack_name_is_a_policy(audited: tuple[RunRecord, Path]) -> None:
    from guardrail.spec.packs import pack_path

    record, _ = audited
    by_name = guardrail.check(record, "guardrail:baseline")
    assert by_name == guardrail.check(record, pack_path("guardrail:baseline"))
    assert by_name.policies[0].name == "baseline" and by_name.outcomes


def test_rules_given_in_python_judge_as_the_file_does(audited: tuple[RunRecord, Path]) -> None:
    record, policy = audited
    from_file = guardrail.check(record, policy)
    as_rules = guardrail.check(record, RULES)
    assert _without_locations(as_rules) == [dataclasses.replace(o, policy="in-memory") for o in _without_locations(from_file)]
    assert all(o.location is None for o in as_rules.outcomes)
    assert as_rules.policies[0].path == PYTHON_SOURCE and as_rules.policies[0].rules == len(RULES)
    as_mapping = guardrail.check(record, {"name": "checked", "rules": RULES})
    assert _without_locations(as_mapping) == _without_locations(from_file)
    extended = guardrail.check(record, {"extends": [str(policy)], "disable": [{"id": "FAIR-003", "reason": "not here"}]})
    assert [o.rule_id for o in extended.outcomes] == [o.rule_id for o in from_file.outcomes if o.rule_id != "FAIR-003"]
    assert extended.outcomes[0].location == from_file.outcomes[0].location, "inherited rules point into their file"
    # what a notebook shows and tabulates of it
    assert "FAIR-001" in as_rules._repr_html_() and list(as_rules.to_frame().rule) == [o.rule_id for o in as_rules.outcomes]


def test_a_misspelt_rule_key_reads_as_in_a_policy_file(tmp_path: Path, audited: tuple[RunRecord, Path]) -> None:
    record, _ = audited
    typo = [{**RULES[0], "treshold": 0.8}]
    del typo[0]["threshold"]
    with pytest.raises(SpecError) as in_file:
        guardrail.check(record, _policy_file(tmp_path, typo))
    with pytest.raises(SpecError) as in_python:
        guardrail.check(record, typo)
    assert in_python.value.message == in_file.value.message
    assert in_python.value.message.startswith("rules[0].treshold: unknown key 'treshold'; did you mean 'threshold'?")
    assert in_python.value.where == PYTHON_SOURCE and in_python.value.hint == in_file.value.hint
    with pytest.raises(SpecError, match="rules\\[0\\].op"):
        guardrail.check(record, [{**RULES[0], "op": "greater"}])


def test_what_is_neither_result_nor_policy_is_a_usage_error(audited: tuple[RunRecord, Path]) -> None:
    record, policy = audited
    with pytest.raises(UsageError, match="a policy is a file path, a pack name"):
        guardrail.check(record, 0.8)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="judges an AuditResult, a list of them or a RunRecord, got dict"):
        guardrail.check({}, policy)  # type: ignore[arg-type]
