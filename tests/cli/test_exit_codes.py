"""The CLI, run as a subprocess on files in a temp folder, gives each documented exit code."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.docs.blocks import DOCS, README, marked

SPEC = """\
schema_version: 1
kind: audit
name: {name}
model: {{adapter: predictions, column: pred}}
data: {{path: data.csv, target: y, sensitive: [group]}}
audits:
{audits}policies: [policy.yaml]
report: {{out: out}}
"""
FAIRNESS = "  - {id: fairness, use: fairness, params: {min_group_size: 2}}\n"
POLICY = """\
schema_version: 1
kind: policy
name: tiny
rules:
  - id: DP
    metric: fairness.demographic_parity_difference
    op: le
    threshold: {threshold}
    rationale: Selection rates must be close.
"""


def _folder(tmp_path: Path, *, threshold: float = 0.5, audits: str = FAIRNESS, name: str = "t") -> Path:
    # group a: selection 2/4, group b: selection 1/4 -> DP difference 0.25
    rows = ["y,pred,group"] + [f"{y},{p},a" for y, p in [(1, 1), (0, 1), (1, 0), (0, 0)]]
    rows += [f"{y},{p},b" for y, p in [(1, 1), (0, 0), (1, 0), (0, 0)]]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "policy.yaml").write_text(POLICY.format(threshold=threshold))
    (tmp_path / "spec.yaml").write_text(SPEC.format(audits=audits, name=name))
    return tmp_path / "spec.yaml"


def _assert_one_clear_line(stderr: str) -> None:
    """Besides progress lines ("guardrail: ..."), exactly one line: the error."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("guardrail: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")


def test_passing_spec_exits_0_and_writes_every_report(tmp_path: Path) -> None:
    done = run_cli("audit", _folder(tmp_path, threshold=0.3), "--quiet")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["history.sqlite", "junit.xml", "report.html", "run.json", "summary.md"]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["verdict"]["outcomes"][0]["status"] == "pass"


def test_policy_violation_exits_1(tmp_path: Path) -> None:
    done = run_cli("audit", _folder(tmp_path, threshold=0.1))
    assert done.returncode == 1, done.stderr
    assert "t: FAIL (exit 1): At least one blocking rule failed or was inconclusive." in done.stdout
    assert "DP" in done.stdout and "fail" in done.stdout


def test_fail_on_warn_makes_warnings_block(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy.read_text() + "    severity: warn\n")
    # under --fail-on deny a warn-only policy checks nothing that could block: incomplete, never a pass
    done = run_cli("audit", spec)
    assert done.returncode == 2
    assert "No blocking (deny) rule was judged on evidence" in done.stdout
    assert run_cli("audit", spec, "--quiet", "--fail-on", "warn").returncode == 1


CRASHER = '''
from guardrail.auditors.base import AuditorParams


class CrashingAuditor:
    name = "crasher"
    extra = "none"
    Params = AuditorParams

    def __init__(self, params):
        self.params = params

    def run(self, ctx):
        raise RuntimeError("deliberate crash in a third-party auditor")
'''


def test_crashing_auditor_exits_2_and_the_report_keeps_the_other_results(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "crash_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "crash_plugin.py").write_text(CRASHER)
    (plugins / "crash_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-plugin\nVersion: 1.0\n")
    (plugins / "crash_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[guardrail.auditors]\ncrasher = crash_plugin:CrashingAuditor\n"
    )
    audits = FAIRNESS + "  - {id: boom, use: crasher}\n"
    done = run_cli("audit", _folder(tmp_path, threshold=0.3, audits=audits), env={"PYTHONPATH": f"{plugins}:{REPO}"})
    assert done.returncode == 2, done.stderr
    assert "INCOMPLETE" in done.stdout and "deliberate crash" in done.stdout
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    statuses = {r["audit_id"]: r["status"] for r in record["results"]}
    assert statuses == {"fairness": "ok", "boom": "error"}
    assert record["results"][0]["metrics"], "the fairness results are still reported"
    assert "deliberate crash" in (tmp_path / "out" / "report.html").read_text()


def test_unknown_key_exits_3_with_one_clear_line(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    spec.write_text(spec.read_text().replace("name: t", "name: t\nnmae: typo"))
    done = run_cli("audit", spec)
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert "spec.yaml:4: nmae: unknown key 'nmae'; did you mean 'name'?" in done.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for an invalid spec"


def test_malformed_yaml_exits_3(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("schema_version: 1\nkind: audit\n  name: : [\n")
    done = run_cli("audit", spec)
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert "malformed YAML" in done.stderr


def test_unknown_auditor_exits_3_with_suggestion(tmp_path: Path) -> None:
    done = run_cli("validate", _folder(tmp_path, audits="  - {id: f, use: fairnes}\n"))
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert "spec.yaml:7: unknown auditor 'fairnes'; did you mean 'fairness'?" in done.stderr


def test_bad_auditor_params_are_located(tmp_path: Path) -> None:
    done = run_cli("validate", _folder(tmp_path, audits="  - {id: f, use: fairness, params: {metrics: [tpr, fpx]}}\n"))
    assert done.returncode == 3
    assert "spec.yaml:7: audits[0].params.metrics[1]:" in done.stderr and "did you mean 'fpr'" in done.stderr


class _Payload:
    pass


@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".skops"])
def test_pickle_model_file_is_refused_before_unpickling(tmp_path: Path, suffix: str) -> None:
    spec = _folder(tmp_path)
    marker = tmp_path / "unpickled"
    model = tmp_path / f"model{suffix}"
    # Unpickling this would create the marker file: it must never exist.
    model.write_bytes(pickle.dumps(_Touch(str(marker))))
    spec.write_text(spec.read_text().replace("{adapter: predictions, column: pred}", f"{{adapter: sklearn, path: model{suffix}}}"))
    done = run_cli("audit", spec)
    assert done.returncode == 3, done.stderr
    _assert_one_clear_line(done.stderr)
    assert "refusing to load" in done.stderr and "pickle" in done.stderr and "skops" in done.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.replace("y,pred,group", "label,pred,group"), "data.target names column 'y', which the data file does not have"),
        (lambda d: d.replace("1,1,a\n", "1,1,\n", 1), "sensitive column 'group' has 1 missing value(s)"),
        (lambda d: d.replace("1,1,a\n", "1,,a\n", 1), "prediction column 'pred' has 1 missing value(s)"),
        (lambda d: d.replace("0,1,a\n", "2,1,a\n", 1).replace("0,0,a", "3,0,a"), "has 4 classes"),
        (lambda d: d.replace("0,1,a\n", "0,7,a\n", 1), "the model does not match its data"),
        (lambda d: "y,pred,group\n", "the data file has no rows"),
    ],
    ids=["missing-column", "nan-sensitive", "nan-prediction", "multiclass", "model-mismatch", "empty"],
)
def test_bad_data_exits_3_with_a_clear_line(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    spec = _folder(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text(edit(data.read_text()))
    done = run_cli("audit", spec)
    assert done.returncode == 3, (done.stdout, done.stderr)
    _assert_one_clear_line(done.stderr)
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("{group: [a]}", "has value(s) not declared in data.groups: 'b' (4 rows)"),
        ("{group: [a, b, c]}", "group(s) 'c' of 'group', declared in data.groups, have no rows"),
        ("{sex: [a]}", "groups names column(s) sex that are not in data.sensitive"),
    ],
    ids=["unseen-group", "empty-group", "undeclared-column"],
)
def test_declared_groups_catch_unseen_and_empty_groups(tmp_path: Path, groups: str, message: str) -> None:
    spec = _folder(tmp_path)
    spec.write_text(spec.read_text().replace("sensitive: [group]}", f"sensitive: [group], groups: {groups}}}"))
    done = run_cli("audit", spec)
    assert done.returncode == 3, done.stderr
    _assert_one_clear_line(done.stderr)
    assert message in done.stderr
    spec.write_text(spec.read_text().replace(f"groups: {groups}", "groups: {group: [a, b]}"))
    assert run_cli("audit", spec, "--quiet").returncode == 0  # declared correctly: the audit runs


def test_usage_error_exits_3_not_argparse_2(tmp_path: Path) -> None:
    done = run_cli("audit")
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert run_cli("frobnicate").returncode == 3


def test_validate_accepts_the_shipped_demo_spec_and_policies() -> None:
    done = run_cli("validate", REPO / "policies" / "baseline.yaml")
    assert done.returncode == 0, done.stderr
    assert "ok (policy 'baseline', 3 rule(s))" in done.stdout


def test_report_rerenders_from_run_json(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    assert run_cli("audit", spec, "--quiet").returncode == 0
    html = tmp_path / "out" / "report.html"
    html.unlink()
    done = run_cli("report", tmp_path / "out" / "run.json", "--format", "html", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert html.exists()


def test_schema_and_list() -> None:
    schema = json.loads(run_cli("schema", "audit").stdout)
    assert schema["title"].startswith("guardrail audit file")
    listing = run_cli("list").stdout
    assert "fairness" in listing and "guardrail.auditors.fairness:FairnessAuditor" in listing


def test_demo_spec_copy_runs_end_to_end(demo_root: Path, tmp_path: Path) -> None:
    shutil.copytree(demo_root, tmp_path / "repo")
    done = run_cli("audit", tmp_path / "repo" / "audits" / "adult-income.yaml", cwd=tmp_path / "repo")
    assert done.returncode == 1, done.stderr  # Adult's real disparities fail the baseline policy
    shown = [marked("output", "demo", page).body for page in (README, DOCS / "getting-started.md")]
    assert shown[0] == shown[1], "the README and the guide show the same demo output"
    printed = shown[0].split("\ndemo: ", 1)[0] + "\n"  # the last line is make's, not guardrail's
    assert done.stdout == printed, "the README's demo output must be what guardrail prints"


def test_guide_spec_error_example_is_true(demo_root: Path, tmp_path: Path) -> None:
    """The guide shows this exact message for a typo in the demo spec's params."""
    tmp_path = tmp_path / "repo"
    shutil.copytree(demo_root, tmp_path)
    spec = tmp_path / "audits" / "adult-income.yaml"
    spec.write_text(spec.read_text().replace("min_group_size: 30", "min_group_sise: 30"))
    done = run_cli("audit", "audits/adult-income.yaml", cwd=tmp_path)
    assert done.returncode == 3
    shown = marked("output", "spec-typo", DOCS / "getting-started.md")
    assert shown.command()[:3] == ["guardrail", "audit", "audits/adult-income.yaml"]
    expected = shown.printed().strip().splitlines()[-1]
    assert expected.startswith("error: audits/adult-income.yaml")
    assert done.stderr.strip().splitlines()[-1] == expected


def test_unwritable_output_is_a_usage_error_found_before_the_audit(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    (tmp_path / "afile").write_text("keep me")
    done = run_cli("audit", spec, "--out", tmp_path / "afile")
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert "the output path exists and is not a folder" in done.stderr
    assert "running audit" not in done.stderr
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_folder_in_the_way_of_one_report_leaves_the_others_untouched(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    (tmp_path / "out" / "report.html").mkdir(parents=True)
    done = run_cli("audit", spec)
    assert done.returncode == 3
    _assert_one_clear_line(done.stderr)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"], "nothing half-written"


def test_params_sensitive_typo_is_a_located_spec_error(tmp_path: Path) -> None:
    spec = _folder(tmp_path, audits="  - {id: f, use: fairness, params: {sensitive: [groop]}}\n")
    for command in ("validate", "audit"):
        done = run_cli(command, spec)
        assert done.returncode == 3, done.stderr
        _assert_one_clear_line(done.stderr)
        assert "spec.yaml:7: audits[0].params.sensitive.0: 'groop' is not one of data.sensitive (group)" in done.stderr


def test_yaml_boolean_positive_label_gets_a_quoting_hint(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text(data.read_text().replace("\n1,", "\nyes,").replace("\n0,", "\nno,"))
    data.write_text(data.read_text().replace(",1,", ",yes,").replace(",0,", ",no,"))
    spec.write_text(spec.read_text().replace("target: y,", "target: y, positive_label: yes,"))
    done = run_cli("audit", spec)
    assert done.returncode == 3
    assert "quote the label: positive_label: \"yes\"" in done.stderr
    spec.write_text(spec.read_text().replace("positive_label: yes", "positive_label: 'yes'"))
    assert run_cli("audit", spec, "--quiet").returncode == 0


def test_report_refuses_to_rewrite_run_json_in_place(tmp_path: Path) -> None:
    assert run_cli("audit", _folder(tmp_path), "--quiet").returncode == 0
    done = run_cli("report", tmp_path / "out" / "run.json", "--format", "json")
    assert done.returncode == 3 and "refusing to rewrite the canonical record in place" in done.stderr


def test_baseline_model_gives_delta_metrics_that_rules_can_gate(tmp_path: Path) -> None:
    spec = _folder(tmp_path)
    data = tmp_path / "data.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0] + ",old"] + [line + "," + line.split(",")[1] for line in lines[1:]]) + "\n")
    spec.write_text(spec.read_text().replace("data: {", "baseline: {adapter: predictions, column: old}\ndata: {"))
    (tmp_path / "policy.yaml").write_text(
        "schema_version: 1\nkind: policy\nname: no-regression\nrules:\n"
        "  - {id: REG-1, metric: fairness.delta.demographic_parity_difference, op: le, threshold: 0.0,"
        " on: ci_low, rationale: The new model may not widen the gap.}\n"
    )
    done = run_cli("audit", spec, "--quiet")
    # identical predictions: the delta is exactly 0, and no widening is shown; agreement on 8
    # rows does not prove agreement elsewhere, so the interval is not [0, 0] (an on: ci_high
    # rule would be inconclusive)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    outcome = record["verdict"]["outcomes"][0]
    assert outcome["metric"] == "fairness.delta.demographic_parity_difference[group]"
    assert outcome["status"] == "pass" and outcome["observed"] == 0.0
    assert outcome["ci"]["low"] <= 0.0 <= outcome["ci"]["high"]
    assert {f["role"] for f in record["provenance"]["files"]} == {"spec", "data", "policy"}


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_multiclass_and_regression_specs_run_end_to_end(tmp_path: Path, task: str) -> None:
    rows = ["y,pred,group"] + [f"{i % 3},{(i * 7) % 3},{'ab'[i % 2]}" for i in range(60)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "policy.yaml").write_text(
        "schema_version: 1\nkind: policy\nname: p\nrules:\n"
        "  - {id: R, metric: fairness.min_group_size, op: ge, threshold: 30, rationale: r}\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(audits=FAIRNESS, name="t").replace("sensitive: [group]}", f"sensitive: [group], task: {task}}}"))
    done = run_cli("audit", spec, "--quiet")
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    scopes = {m["scope"] for m in record["results"][0]["metrics"]}
    if task == "multiclass":
        assert scopes == {"group/class=0", "group/class=1", "group/class=2"}
    else:
        assert scopes == {"group"}
        assert "fairness.mean_absolute_error" in {m["key"] for m in record["results"][0]["metrics"]}


def test_verify_detects_a_one_byte_change_in_the_model(demo_root: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(demo_root, repo)
    assert run_cli("audit", "audits/adult-income.yaml", "--quiet", cwd=repo).returncode == 1
    record = repo / "reports" / "adult-income" / "run.json"
    done = run_cli("verify", record, cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "all 8 recorded file(s) match" in done.stdout
    assert "ok       reference data/adult-train.csv.gz" in done.stdout  # the data audit's training file is an input too
    model = repo / "models" / "adult-gbm.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    done = run_cli("verify", record, cwd=repo)
    assert done.returncode == 1
    assert "changed     model" not in done.stdout and "changed  model" in done.stdout
    assert "1 of 8 file(s)" in done.stderr and "model models/adult-gbm.skops (changed)" in done.stderr


def test_verify_detects_an_edited_report_and_rejects_a_broken_record(tmp_path: Path) -> None:
    assert run_cli("audit", _folder(tmp_path), "--quiet").returncode == 0
    summary = tmp_path / "out" / "summary.md"
    summary.write_text(summary.read_text().replace("PASS", "FAIL"))
    done = run_cli("verify", tmp_path / "out" / "run.json")
    assert done.returncode == 1 and "markdown" in done.stderr
    (tmp_path / "out" / "run.json").write_text("{")
    assert run_cli("verify", tmp_path / "out" / "run.json").returncode == 3


def test_a_running_waiver_lets_the_build_pass_and_is_reported(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        policy.read_text()
        + "    waiver: {owner: ml-lead, reason: fix in next release, expires: 2999-01-01}\n"
    )
    done = run_cli("audit", spec)
    assert done.returncode == 0, done.stderr
    assert "waived" in done.stdout
    assert "Waived by ml-lead until 2999-01-01: fix in next release" in (tmp_path / "out" / "report.html").read_text()
    policy.write_text(policy.read_text().replace("2999-01-01", "2020-01-01"))
    done = run_cli("audit", spec)
    assert done.returncode == 1
    assert "expired on 2020-01-01" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize(("command", "expected"), [(("list",), 0), (("schema", "audit"), 0), (("audit", "spec.yaml"), 1)])
def test_a_reader_that_stops_early_changes_neither_the_exit_code_nor_stderr(
    tmp_path: Path, command: tuple[str, ...], expected: int
) -> None:
    """``guardrail list | head -1``, made deterministic: the reader is gone before the first line."""
    import os
    import subprocess
    import sys

    spec = _folder(tmp_path, threshold=0.1)  # DP difference 0.25 > 0.1: a policy violation
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "guardrail", *(spec.name if word == "spec.yaml" else word for word in command)],
            cwd=spec.parent,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == expected, done.stderr
    assert "internal error" not in done.stderr


def test_a_closed_stderr_does_not_change_the_exit_code_of_an_error(tmp_path: Path) -> None:
    """``guardrail validate missing.yaml 2>&1 | <reader gone>``: still exit 3, not 1."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "guardrail", "validate", "missing.yaml"],
            cwd=tmp_path, stdout=write_end, stderr=write_end, timeout=120, check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 3
