"""Spec and policy files: strict validation, errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.errors import SpecError
from guardrail.spec.loader import load_policy, load_spec

SPEC = """\
schema_version: 1
kind: audit
name: t
model: {{adapter: predictions, column: pred}}
data:
  path: data.csv
  target: y
  sensitive: [sex]
audits:
  - id: fairness
    use: fairness
{extra}report:
  out: out
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text("y,pred,sex\n1,1,a\n0,0,b\n")
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


def test_valid_spec_resolves_paths_relative_to_the_spec(folder: Path) -> None:
    loaded = load_spec(_write(folder, SPEC.format(extra="")))
    assert loaded.data_path == folder / "data.csv"
    assert loaded.out_dir == folder / "out"
    assert loaded.spec.report.formats == ("html", "json", "junit", "markdown")
    assert len(loaded.sha256) == 64


def test_unknown_key_names_file_line_and_suggests(folder: Path) -> None:
    text = SPEC.format(extra="").replace("  target: y\n", "  target: y\n  sensitve: [race]\n")
    with pytest.raises(SpecError) as info:
        load_spec(_write(folder, text))
    message = str(info.value)
    assert message.startswith(f"{folder / 'spec.yaml'}:8: data.sensitve: unknown key 'sensitve'; did you mean 'sensitive'?")
    assert "allowed keys here:" in message


def test_unknown_key_in_nested_union_model(folder: Path) -> None:
    text = SPEC.format(extra="").replace("column: pred}", "column: pred, scor_column: s}")
    with pytest.raises(SpecError, match=r"spec.yaml:4: model.scor_column: unknown key 'scor_column'; did you mean 'score_column'"):
        load_spec(_write(folder, text))


def test_wrong_type_and_bad_literal(folder: Path) -> None:
    with pytest.raises(SpecError, match=r"spec.yaml:1: schema_version: Input should be 1"):
        load_spec(_write(folder, SPEC.format(extra="").replace("schema_version: 1", "schema_version: 2")))
    text = SPEC.format(extra="") + "  formats: [html, jsn]\n"
    with pytest.raises(SpecError, match=r"spec.yaml:14: report.formats\[1\]: .*did you mean 'json'"):
        load_spec(_write(folder, text))


def test_missing_required_key(folder: Path) -> None:
    with pytest.raises(SpecError, match=r"spec.yaml:5: data.target: required key missing"):
        load_spec(_write(folder, SPEC.format(extra="").replace("  target: y\n", "")))


def test_malformed_yaml_names_the_line(folder: Path) -> None:
    with pytest.raises(SpecError, match=r"spec.yaml:\d+: malformed YAML"):
        load_spec(_write(folder, "schema_version: 1\nkind: audit\nname: [unclosed\n"))


def test_duplicate_keys_and_audit_ids_are_errors(folder: Path) -> None:
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        load_spec(_write(folder, SPEC.format(extra="").replace("name: t\n", "name: t\nname: u\n")))
    twice = "  - id: fairness\n    use: fairness\n"
    with pytest.raises(SpecError, match="audit ids must be unique; repeated: fairness"):
        load_spec(_write(folder, SPEC.format(extra=twice)))


def test_missing_data_file_is_located(folder: Path) -> None:
    with pytest.raises(SpecError, match=r"spec.yaml:6: data.path: data file not found"):
        load_spec(_write(folder, SPEC.format(extra="").replace("data.csv", "nope.csv")))


def test_policy_kind_mismatch_and_rule_validation(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("schema_version: 1\nkind: audit\nname: p\nrules: []\n")
    with pytest.raises(SpecError, match=r"kind: expected 'policy' here, got 'audit' \(kinds: audit, policy\)"):
        load_policy(path)
    path.write_text(
        "schema_version: 1\nkind: policy\nname: p\nrules:\n"
        "  - {id: R1, metric: m, op: between, threshold: 0.8, rationale: r}\n"
    )
    with pytest.raises(SpecError, match=r"p.yaml:5: rules\[0\]: Value error, op 'between' needs threshold"):
        load_policy(path)
    path.write_text("schema_version: 1\nkind: policy\nname: p\nrules:\n  - {id: R1, metric: m, op: ge, threshold: 1}\n")
    with pytest.raises(SpecError, match=r"rules\[0\].rationale: required key missing"):
        load_policy(path)


def test_shipped_specs_and_policies_validate() -> None:
    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "policies").glob("*.yaml")):
        policy = load_policy(path)
        assert all(rule.rationale.strip() for rule in policy.policy.rules)


def test_json_schema_in_sync_with_models() -> None:
    from guardrail.spec.models import AuditSpec, PolicySpec
    from guardrail.spec.schema import json_schema

    assert set(json_schema("audit")["properties"]) == set(AuditSpec.model_fields)
    assert set(json_schema("policy")["properties"]) == set(PolicySpec.model_fields)
    assert json_schema("audit")["additionalProperties"] is False


def test_yaml_boolean_words_as_keys_stay_names(tmp_path: Path) -> None:
    """YAML 1.1 reads a bare `on` as true; as a key it must stay the rule field `on`."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "schema_version: 1\nkind: policy\nname: p\nrules:\n"
        "  - {id: R1, metric: m, op: ge, threshold: 0.8, on: worst, rationale: r}\n"
    )
    assert load_policy(path).policy.rules[0].on == "worst"
