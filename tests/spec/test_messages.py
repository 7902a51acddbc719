"""Spec and policy errors in a person's words: every problem of a file, one line each, at its
line, with the form expected; nothing of pydantic's vocabulary; a file of the wrong kind named
as such in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.core.errors import SpecError
from guardrail.spec.loader import load_policy, load_spec
from tests.conftest import run_cli

SPEC = """\
schema_version: 1
kind: audit
name: t
model: {adapter: predictions, column: pred}
data: {path: data.csv, target: y, sensitive: [group]}
audits:
  - {id: fairness, use: fairness}
policies: [policy.yaml]
report: {out: out}
"""
POLICY = """\
schema_version: 1
kind: policy
name: tiny
rules:
  - id: DP
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.5
    rationale: Selection rates must be close.
"""
RULE = POLICY.split("rules:\n")[1]
PYDANTIC_WORDS = (
    "Input should",
    "tuple[",
    "dict[",
    "literal_error",
    "model_type",
    "Field required",
    "Value error",
    "valid dictionary",
    "Extra inputs",
    "String should",
    "union_tag",
    "discriminator",
    "instance of",
    "(and ",  # the old "first problem (and N more: ...)"
)


def _spec(old: str, new: str) -> str:
    assert old in SPEC
    return SPEC.replace(old, new)


def _policy(old: str, new: str) -> str:
    assert old in POLICY
    return POLICY.replace(old, new)


# (id, "spec" or "policy", file text, [(line, the problem's text after "file:line: "), ...] in order)
CASES: list[tuple[str, str, str, list[tuple[int, str]]]] = [
    ("policies-mapping", "spec", _spec("[policy.yaml]", "{a: policy.yaml}"), [(8, "policies: expected a list of policy files, got a mapping")]),
    ("policies-text", "spec", _spec("[policy.yaml]", "policy.yaml"), [(8, "policies: expected a list of policy files, got the text 'policy.yaml' Hint: write a list: `policies: [policy.yaml]`")]),
    ("schema-version", "spec", _spec("schema_version: 1", "schema_version: 2"), [(1, "schema_version: expected 1, got 2")]),
    ("seed-negative", "spec", SPEC + "seed: -1\n", [(10, "seed: expected a whole number of at least 0, got -1")]),
    ("seed-fraction", "spec", SPEC + "seed: 1.5\n", [(10, "seed: expected a whole number, got 1.5")]),
    ("seed-text", "spec", SPEC + "seed: abc\n", [(10, "seed: expected a whole number, got the text 'abc'")]),
    ("name-pattern", "spec", _spec("name: t", "name: 'a b'"), [(3, "name: expected a name of letters, digits, '_', '.' and '-'")]),
    ("name-empty", "spec", _spec("name: t", "name: ''"), [(3, "name: must not be empty")]),
    ("adapter-typo", "spec", _spec("adapter: predictions", "adapter: sklarn"), [(4, "model.adapter: expected one of 'sklearn', 'predictions', 'torch', got 'sklarn'; did you mean 'sklearn'?")]),
    ("adapter-missing", "spec", _spec("adapter: predictions, ", ""), [(4, "model.adapter: required key missing Hint: add `adapter:` with one of 'sklearn', 'predictions', 'torch'")]),
    ("model-text", "spec", _spec("{adapter: predictions, column: pred}", "model.skops"), [(4, "model: expected a mapping of keys, got the text 'model.skops'")]),
    ("data-list", "spec", _spec("{path: data.csv, target: y, sensitive: [group]}", "[data.csv]"), [(5, "data: expected a mapping of keys, got a list of 1 item")]),
    ("sensitive-empty", "spec", _spec("sensitive: [group]", "sensitive: []"), [(5, "data.sensitive: needs at least 1 item(s)")]),
    ("sensitive-text", "spec", _spec("sensitive: [group]", "sensitive: group"), [(5, "data.sensitive: expected a list of column names, got the text 'group'")]),
    ("task-typo", "spec", _spec("sensitive: [group]", "sensitive: [group], task: binry"), [(5, "data.task: expected one of 'binary', 'multiclass', 'regression', got the text 'binry'; did you mean 'binary'?")]),
    ("positive-label-list", "spec", _spec("sensitive: [group]", "sensitive: [group], positive_label: [1]"), [(5, "data.positive_label: expected text, a whole number or true/false, got a list of 1 item")]),
    ("groups-text", "spec", _spec("sensitive: [group]", "sensitive: [group], groups: {group: a}"), [(5, "data.groups.group: expected a list of")]),
    ("params-list", "spec", _spec("use: fairness}", "use: fairness, params: [1]}"), [(7, "audits[0].params: expected a mapping of keys, got a list of 1 item")]),
    ("audits-empty", "spec", _spec("audits:\n  - {id: fairness, use: fairness}", "audits: []"), [(6, "audits: needs at least 1 item(s)")]),
    ("formats-typo", "spec", _spec("{out: out}", "{out: out, formats: [html, jsn]}"), [(9, "report.formats[1]: expected one of 'html', 'json'")]),
    ("history-list", "spec", _spec("{out: out}", "{out: out, history: [1]}"), [(9, "report.history: expected text or true/false, got a list of 1 item")]),
    ("report-missing", "spec", _spec("report: {out: out}\n", ""), [(1, "report: required key missing Hint: add `report:` with out:")]),
    ("torch-both", "spec", _spec("{adapter: predictions, column: pred}", "{adapter: torch, path: m, module: 'a:b', weights: w.safetensors}"), [(4, "model: give exactly one of path (a model folder) and module")]),
    (
        "three-problems",
        "spec",
        _spec("name: t", "nmae: t").replace("{out: out}", "{out: out, formats: jsn}") + "seed: -3\n",
        [
            (3, "nmae: unknown key 'nmae'; did you mean 'name'? Hint: allowed keys here: audits,"),
            (9, "report.formats: expected a list of report formats, got the text 'jsn'"),
            (10, "seed: expected a whole number of at least 0, got -3"),
        ],
    ),
    ("kind-typo-and-more", "spec", _spec("kind: audit", "kind: audti") + "seed: -1\n", [(2, "kind: unknown kind 'audti'; did you mean 'audit'? (kinds: audit, policy) Hint: set `kind: audit`"), (10, "seed: expected a whole number of at least 0")]),
    ("threshold-text", "policy", _policy("threshold: 0.5", "threshold: high"), [(8, "rules[0].threshold: expected a number or a list of 2 numbers, got the text 'high'")]),
    ("threshold-three", "policy", _policy("threshold: 0.5", "threshold: [1, 2, 3]"), [(8, "rules[0].threshold: expected a number or a list of 2 numbers, got a list of 3 items")]),
    ("threshold-mapping", "policy", _policy("threshold: 0.5", "threshold: {low: 1}"), [(8, "rules[0].threshold: expected a number or a list of 2 numbers, got a mapping")]),
    # YAML's yes/.nan/.inf were once read as 1.0, NaN and infinity: a rule judged against them is meaningless
    ("threshold-yes", "policy", _policy("threshold: 0.5", "threshold: yes"), [(8, "rules[0].threshold: expected a number or a list of 2 numbers, got true")]),
    ("threshold-nan", "policy", _policy("threshold: 0.5", "threshold: .nan"), [(8, "rules[0].threshold: expected a number or a list of 2 numbers, got nan")]),
    ("threshold-inf", "policy", _policy("threshold: 0.5", "threshold: [0, .inf]"), [(8, "rules[0].threshold[1]: expected a number")]),
    ("tolerance-nan", "policy", _policy("threshold: 0.5", "threshold: 0.5\n    tolerance: .nan"), [(9, "rules[0].tolerance: expected a number")]),
    ("threshold-item", "policy", _policy("threshold: 0.5", "threshold: [a, 2]"), [(8, "rules[0].threshold[0]: expected a number, got the text 'a'")]),
    ("between-single", "policy", _policy("op: le", "op: between"), [(5, "rules[0]: op 'between' needs threshold: [low, high] with low <= high")]),
    ("op-typo", "policy", _policy("op: le", "op: lte"), [(7, "rules[0].op: expected one of 'le', 'ge', 'lt', 'gt', 'between', 'eq', 'present', got the text 'lte'")]),
    ("on-typo", "policy", POLICY + "    on: ci_lo\n", [(10, "rules[0].on: expected one of 'value', 'ci_low', 'ci_high', 'worst', got the text 'ci_lo'; did you mean 'ci_low'?")]),
    ("severity-typo", "policy", POLICY + "    severity: error\n", [(10, "rules[0].severity: expected one of 'deny', 'warn', 'info', got the text 'error'")]),
    ("min-group-zero", "policy", POLICY + "    min_group_n: 0\n", [(10, "rules[0].min_group_n: expected a whole number of at least 1, got 0")]),
    ("tolerance-negative", "policy", POLICY + "    tolerance: -1\n", [(10, "rules[0].tolerance: expected a number of at least 0, got -1")]),
    ("waiver-date-text", "policy", POLICY + "    waiver: {owner: a, reason: b, expires: soon}\n", [(10, "rules[0].waiver.expires: expected a date (YYYY-MM-DD), got the text 'soon'")]),
    ("waiver-date-impossible", "policy", POLICY + "    waiver: {owner: a, reason: b, expires: 2024-13-01}\n", [(10, "rules[0].waiver.expires: cannot read the date '2024-13-01'")]),
    ("waiver-two-missing", "policy", POLICY + "    waiver: {owner: a}\n", [(10, "rules[0].waiver.reason: required key missing"), (10, "rules[0].waiver.expires: required key missing Hint: add `expires:` with a date (YYYY-MM-DD)")]),
    ("rules-mapping", "policy", POLICY.split("rules:")[0] + "rules: {DP: 1}\n", [(4, "rules: expected a list of rules")]),
    ("rule-text", "policy", POLICY.split("rules:")[0] + "rules:\n  - DP\n", [(5, "rules[0]: expected a mapping of keys, got the text 'DP'")]),
    ("no-rules", "policy", POLICY.split("rules:")[0] + "rules: []\n", [(1, "a policy needs rules, or `extends:` to inherit them")]),
    ("extends-text", "policy", _policy("name: tiny", "name: tiny\nextends: base.yaml"), [(4, "extends: expected a list of policy files, got the text 'base.yaml'")]),
    ("rationale-empty", "policy", _policy("rationale: Selection rates must be close.", "rationale: ''"), [(9, "rules[0].rationale: must not be empty")]),
    ("rationale-missing", "policy", _policy("    rationale: Selection rates must be close.\n", ""), [(5, "rules[0].rationale: required key missing Hint: add `rationale:` with text")]),
    ("metric-number", "policy", _policy("metric: fairness.demographic_parity_difference", "metric: 5"), [(6, "rules[0].metric: expected text, got 5")]),
    ("id-too-long", "policy", _policy("id: DP", "id: " + "x" * 250), [(5, "rules[0].id: expected at most 200 characters, got 250")]),
    ("inconclusive-typo", "policy", _policy("name: tiny", "name: tiny\ninconclusive: ignore"), [(4, "inconclusive: expected one of 'block', 'warn', got the text 'ignore'")]),
    ("description-list", "policy", _policy("name: tiny", "name: tiny\ndescription: [a]"), [(4, "description: expected text, got a list of 1 item")]),
    ("duplicate-rule-ids", "policy", POLICY + RULE, [(1, "rule ids must be unique; repeated: DP")]),
    (
        "two-rules-two-problems",
        "policy",
        _policy("op: le", "op: lte") + RULE.replace("id: DP", "id: EO").replace("op: le", "op: ge\n    severity: eror"),
        [(7, "rules[0].op: expected one of"), (13, "rules[1].severity: expected one of 'deny', 'warn', 'info', got the text 'eror'")],
    ),
    ("policy-kind-missing", "policy", _policy("kind: policy\n", ""), [(1, "kind: required key missing Hint: add `kind: policy`")]),
]

WRONG_KINDS: list[tuple[str, str, str, int, str]] = [
    ("policy-as-spec", "spec", POLICY, 2, "this is a policy file (kind: policy), where an audit spec (kind: audit) is needed Hint: pass an audit spec; a policy file goes under `policies:`"),
    ("policy-without-kind-as-spec", "spec", _policy("kind: policy\n", ""), 1, "this file has no `kind:` and holds a policy (rules:), where an audit spec (kind: audit) is needed"),
    ("policy-with-kind-audit", "spec", _policy("kind: policy", "kind: audit"), 2, "kind: audit, but this file holds a policy (rules:) Hint: set `kind: policy`"),
    ("spec-as-policy", "policy", SPEC, 2, "this is an audit spec (kind: audit), where a policy file (kind: policy) is needed Hint: `policies:` and `extends:` name policy files"),
    ("spec-with-kind-policy", "policy", _spec("kind: audit", "kind: policy"), 2, "kind: policy, but this file holds an audit spec (model:, data:, audits:, report:) Hint: set `kind: audit`"),
    ("spec-without-kind-as-policy", "policy", _spec("kind: audit\n", ""), 1, "this file has no `kind:` and holds an audit spec (model:, data:, audits:, report:), where a policy file"),
    ("misspelt-kind-on-a-policy-as-spec", "spec", _policy("kind: policy", "kind: polcy"), 2, "this is a policy file (kind: polcy), where an audit spec (kind: audit) is needed"),
]


def _problems(kind: str, text: str, folder: Path) -> tuple[Path, list[str]]:
    path = folder / ("spec.yaml" if kind == "spec" else "policy.yaml")
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path) if kind == "spec" else load_policy(path)
    return path, [str(problem) for problem in caught.value.problems]


def _assert_plain(lines: list[str]) -> None:
    for line in lines:
        for word in PYDANTIC_WORDS:
            assert word not in line, f"pydantic's {word!r} reached the user: {line}"


@pytest.mark.parametrize(("kind", "text", "expected"), [pytest.param(k, t, e, id=i) for i, k, t, e in CASES])
def test_every_problem_in_plain_words_at_its_line(kind: str, text: str, expected: list[tuple[int, str]], tmp_path: Path) -> None:
    path, lines = _problems(kind, text, tmp_path)
    _assert_plain(lines)
    assert len(lines) == len(expected), lines
    for line, (number, words) in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}:{number}: {words}"), line


@pytest.mark.parametrize(("kind", "text", "number", "words"), [pytest.param(k, t, n, w, id=i) for i, k, t, n, w in WRONG_KINDS])
def test_a_file_of_the_wrong_kind_is_named_as_such_in_one_line(kind: str, text: str, number: int, words: str, tmp_path: Path) -> None:
    path, lines = _problems(kind, text, tmp_path)
    _assert_plain(lines)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{number}: {words}"), lines[0]
    assert "unknown key" not in lines[0] and "required key" not in lines[0]


def test_extended_policies_are_checked_the_same_way(tmp_path: Path) -> None:
    """A parent's problems are all reported, at the parent's lines; a spec named in `extends:`
    is said to be a spec."""
    (tmp_path / "parent.yaml").write_text(_policy("op: le", "op: lte") + "    severity: eror\n")
    child = tmp_path / "child.yaml"
    child.write_text("schema_version: 1\nkind: policy\nname: child\nextends: [parent.yaml]\n")
    with pytest.raises(SpecError) as caught:
        load_policy(child)
    lines = [str(p) for p in caught.value.problems]
    _assert_plain(lines)
    assert [line.split(": ", 1)[0] for line in lines] == [f"{tmp_path / 'parent.yaml'}:7", f"{tmp_path / 'parent.yaml'}:10"]
    (tmp_path / "parent.yaml").write_text(SPEC)
    with pytest.raises(SpecError, match=r"parent.yaml:2: this is an audit spec \(kind: audit\), where a policy file"):
        load_policy(child)


def test_str_of_an_error_with_several_problems_holds_them_all_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + "seed: -1\ndescription: [a]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    error = caught.value
    assert len(error.problems) == 2 and "\n" not in str(error)
    assert str(error) == " | ".join(str(p) for p in error.problems)
    assert (error.where, error.message) == (f"{path}:10", "seed: expected a whole number of at least 0, got -1")


def _folder(tmp_path: Path, spec: str) -> Path:
    (tmp_path / "data.csv").write_text("y,pred,group\n1,1,a\n0,0,b\n")
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "spec.yaml").write_text(spec)
    return tmp_path / "spec.yaml"


def test_the_cli_prints_every_problem_of_a_file_one_line_each(tmp_path: Path) -> None:
    spec = _folder(tmp_path, _spec("name: t", "nmae: t").replace("[policy.yaml]", "{a: policy.yaml}") + "seed: -1\n")
    done = run_cli("audit", spec, cwd=tmp_path)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "error: spec.yaml:3: nmae: unknown key 'nmae'; did you mean 'name'? Hint: allowed keys here: audits, baseline, "
        "data, description, engine, federate, kind, model, name, policies, report, schema_version, seed, train",
        "error: spec.yaml:8: policies: expected a list of policy files, got a mapping",
        "error: spec.yaml:10: seed: expected a whole number of at least 0, got -1",
    ]
    assert not (tmp_path / "out").exists()


def test_every_audit_entry_s_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Two bad audits entries (an unknown `use:`, a misspelt param): two lines, not the first only."""
    audits = "audits:\n  - {id: f, use: fairnes}\n  - {id: g, use: fairness, params: {min_group_sise: 2}}\n"
    spec = _folder(tmp_path, SPEC.replace("audits:\n  - {id: fairness, use: fairness}\n", audits))
    done = run_cli("validate", spec, cwd=tmp_path)
    assert done.returncode == 3
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("error: spec.yaml:7: ") and "fairnes" in lines[0]
    assert lines[1].startswith("error: spec.yaml:8: ") and "min_group_sise" in lines[1]


def test_audit_of_a_policy_file_says_so_in_one_line(tmp_path: Path) -> None:
    _folder(tmp_path, SPEC)
    done = run_cli("audit", "policy.yaml", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        "error: policy.yaml:2: this is a policy file (kind: policy), where an audit spec (kind: audit) is needed "
        "Hint: pass an audit spec; a policy file goes under `policies:` in the spec (see `guardrail schema audit`)"
    ]


def test_validate_reports_each_file_and_goes_on(tmp_path: Path) -> None:
    spec = _folder(tmp_path, SPEC)
    (tmp_path / "bad.yaml").write_text(_policy("op: le", "op: lte").replace("kind: policy\n", ""))
    done = run_cli("validate", "bad.yaml", spec.name, cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        "error: bad.yaml:1: kind: required key missing Hint: add `kind: policy`",
        "error: bad.yaml:6: rules[0].op: expected one of 'le', 'ge', 'lt', 'gt', 'between', 'eq', 'present', got the text 'lte'; "
        "did you mean 'lt'?",
    ]
    assert done.stdout.splitlines() == ["spec.yaml: ok (audit spec 't', 1 audit(s), 1 policy file(s))"]
