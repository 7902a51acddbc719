"""Spec and policy files: strict validation, errors that name file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guardrail.core.errors import SpecError
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
    with pytest.raises(SpecError, match=r"spec.yaml:1: schema_version: expected 1, got 2$"):
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
    with pytest.raises(SpecError, match=r"p.yaml:2: kind: audit, but this file holds a policy \(rules:\) Hint: set `kind: policy`"):
        load_policy(path)
    path.write_text(
        "schema_version: 1\nkind: policy\nname: p\nrules:\n"
        "  - {id: R1, metric: m, op: between, threshold: 0.8, rationale: r}\n"
    )
    with pytest.raises(SpecError, match=r"p.yaml:5: rules\[0\]: op 'between' needs threshold"):
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


# -- hostile files: refused before a node is built, each with its file and line ---------------------------------------
def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_its_first_anchor_without_expanding(folder: Path) -> None:
    import time

    from guardrail.spec.yamlsource import ALIASES_REFUSED

    started = time.process_time()  # CPU time: a loaded machine delays the test, it does not make it work more
    with pytest.raises(SpecError) as info:
        load_spec(_write(folder, SPEC.format(extra="") + _alias_bomb(9)))
    assert time.process_time() - started < 5, "nine levels (387 million values) are never built"
    assert str(info.value).startswith(f"{folder / 'spec.yaml'}:14: {ALIASES_REFUSED}")


@pytest.mark.parametrize(
    "yaml_text",
    ["seed: &s 3\ndescription: *s\n", "x: &x {a: 1}\ny: {<<: *x}\n", "description: *undefined\n"],
    ids=["anchor-and-alias", "merge-key", "alias-only"],
)
def test_every_anchor_and_alias_is_refused(folder: Path, yaml_text: str) -> None:
    with pytest.raises(SpecError, match="YAML anchors and aliases are not allowed"):
        load_spec(_write(folder, SPEC.format(extra="") + yaml_text))


def test_an_alias_bomb_in_an_extended_policy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("schema_version: 1\nkind: policy\nname: parent\nrules: []\n" + _alias_bomb(9))
    (tmp_path / "child.yaml").write_text("schema_version: 1\nkind: policy\nname: child\nextends: [parent.yaml]\nrules: []\n")
    with pytest.raises(SpecError, match=r"parent.yaml:5: YAML anchors and aliases are not allowed"):
        load_policy(tmp_path / "child.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("description: " + "[" * 50_000 + "]" * 50_000 + "\n", r"spec.yaml:14: values are nested more than 32 levels deep"),
        ("".join(f"{'  ' * i}k{i}:\n" for i in range(200)), r"spec.yaml:\d+: values are nested more than 32 levels deep"),
        ("description: [" + "0," * 50_001 + "0]\n", "the file holds more than 50,000 values"),
        ("# " + "x" * (1 << 20) + "\n", "the file is larger than 1 MiB"),
        ("seed: " + "9" * 5000 + "\n", r"spec.yaml:14: seed: cannot read the value '99999999999999999999… \(5,000 characters\)'"),
        ("created: 2024-13-45\n", r"spec.yaml:14: created: cannot read the date '2024-13-45': month must be in 1..12"),
        ("description: !!python/object/apply:os.system [touch x]\n", r"spec.yaml:14: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
        ("description: !include other.yaml\n", "unsupported YAML tag '!include'"),
        ("description: a\x00b\n", r"spec.yaml:14: malformed YAML: character '\\x00' \(U\+0000\) is not allowed"),
    ],
    ids=["deep-flow", "deep-block", "too-many-values", "too-large", "long-integer", "impossible-date", "python-tag", "custom-tag", "nul"],
)
def test_hostile_yaml_is_a_located_spec_error(folder: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(_write(folder, SPEC.format(extra="") + text))


def test_plain_tags_and_quoted_values_still_read(folder: Path) -> None:
    loaded = load_spec(_write(folder, SPEC.format(extra="").replace("name: t", "name: !!str 2024") + "seed: !!int '7'\n"))
    assert loaded.spec.name == "2024" and loaded.spec.seed == 7


def test_text_that_is_not_utf8_names_its_line(folder: Path) -> None:
    path = folder / "spec.yaml"
    path.write_bytes(SPEC.format(extra="").encode() + b"description: caf\xe9\n")
    with pytest.raises(SpecError, match=r"spec.yaml:14: not UTF-8 text \(invalid continuation byte at byte \d+\)"):
        load_spec(path)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "loop"])
def test_a_spec_path_that_is_no_regular_file_is_refused_without_opening_it(folder: Path, kind: str) -> None:
    import os

    path = folder / "special.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer for ever
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        os.symlink("other.yaml", path)
        os.symlink("special.yaml", folder / "other.yaml")
    words = {"fifo": "is a named pipe (FIFO)", "device": "is a device", "folder": "is a folder", "loop": "is a symlink loop"}
    with pytest.raises(SpecError, match=re.escape(words[kind])):
        load_spec(path)
    with pytest.raises(SpecError, match=re.escape(words[kind])):
        load_policy(path)


@pytest.mark.parametrize(
    ("key", "kind", "message"),
    [
        ("data", "fifo", "data.path: data file is a named pipe (FIFO), not a regular file: "),
        ("data", "loop", "data.path: 'special' is a symlink loop"),
        ("data", "device", "data.path: data file is a device, not a regular file: /dev/zero"),
        ("policies", "fifo", "policies[0]: policy file is a named pipe (FIFO), not a regular file"),
        ("policies", "device", "policies[0]: policy file is a device"),
        ("out", "loop", "report.out: 'special' is a symlink loop"),
    ],
)
def test_special_paths_named_in_a_spec_are_located_errors(folder: Path, key: str, kind: str, message: str) -> None:
    import os

    target = "special"
    if kind == "fifo":
        os.mkfifo(folder / target)
    elif kind == "loop":
        os.symlink("special2", folder / target)
        os.symlink("special", folder / "special2")
    else:
        target = "/dev/zero"
    text = SPEC.format(extra=f"policies: [{target}]\n" if key == "policies" else "")
    if key == "data":
        text = text.replace("path: data.csv", f"path: {target}")
    if key == "out":
        text = text.replace("out: out", f"out: {target}")
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(_write(folder, text))


@pytest.mark.parametrize(
    ("report", "flags", "message"),
    [
        ("  history: data.csv\n", {}, "spec.yaml:15: report.history data.csv is an input of this run"),
        ("  history: spec.yaml\n", {}, "report.history spec.yaml is an input of this run"),
        ("  history: out/run.json\n", {}, "spec.yaml:15: report.history out/run.json is the run.json report this run writes"),
        ("", {"history": "policy.yaml"}, "--history: report.history policy.yaml is an input of this run"),
        ("", {"history": "out/summary.md"}, "is the summary.md report this run writes"),
    ],
)
def test_the_history_never_collides_with_an_input_or_a_report(
    folder: Path, monkeypatch: pytest.MonkeyPatch, report: str, flags: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(folder)
    (folder / "policy.yaml").write_text("schema_version: 1\nkind: policy\nname: p\nrules: []\n")
    text = SPEC.format(extra="policies: [policy.yaml]\n") + report
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(_write(folder, text), **flags)  # type: ignore[arg-type]


def test_a_history_that_is_a_fifo_is_refused(folder: Path) -> None:
    import os

    os.mkfifo(folder / "history.db")
    with pytest.raises(SpecError, match=r"report.history .*history.db is a named pipe \(FIFO\), not a database file"):
        load_spec(_write(folder, SPEC.format(extra="") + "  history: history.db\n"))


def test_reports_never_overwrite_an_input(folder: Path) -> None:
    (folder / "summary.md").write_text(SPEC.format(extra="").replace("out: out", "out: ."))
    with pytest.raises(SpecError, match=r"report.out .* would overwrite an input of this run: .*summary.md"):
        load_spec(folder / "summary.md")


def test_report_file_names_are_the_reports_the_report_package_writes() -> None:
    from guardrail.core.vocab import REPORT_FILE_NAMES
    from guardrail.report import FILE_NAMES

    assert REPORT_FILE_NAMES == frozenset(FILE_NAMES.values())


def test_sha256_of_a_file_that_vanished_is_a_usage_error(tmp_path: Path) -> None:
    from guardrail.core.errors import UsageError
    from guardrail.spec.loader import sha256_file

    with pytest.raises(UsageError, match="cannot record the SHA-256 of .*gone.csv: it is not there"):
        sha256_file(tmp_path / "gone.csv")


@pytest.mark.parametrize(("written", "value"), [("1e-5", 1e-5), ("1.0e5", 1e5), ("-2E-3", -2e-3), ("0.5", 0.5), ("2", 2.0)])
def test_a_threshold_in_exponent_notation_is_a_number(tmp_path: Path, written: str, value: float) -> None:
    """YAML 1.1 (PyYAML's default) reads 1e-5 as text; a δ limit is written just so."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schema_version: 1\nkind: policy\nname: p\nrules:\n  - id: R\n    metric: privacy.delta\n"
        f"    op: le\n    threshold: {written}\n    rationale: r\n"
    )
    assert load_policy(policy).policy.rules[0].threshold == pytest.approx(value, rel=1e-15)
