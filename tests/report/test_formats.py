"""Every format renders; run.json round-trips; JUnit and Markdown say the right things."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

import guardrail.report as report
from guardrail.core.errors import UsageError
from guardrail.core.exitcodes import ExitCode
from guardrail.core.types import OutcomeStatus, Requirement, RuleOutcome, RunRecord, Severity
from guardrail.report.json import parse_json, render_json
from guardrail.report.markdown import escape_cell

PAYLOAD_GROUP = "A|B `x` <b>"


@pytest.mark.parametrize("fmt", report.FORMATS)
@pytest.mark.parametrize("fail_on", list(Severity))
def test_every_format_renders(record: RunRecord, fmt: str, fail_on: Severity) -> None:
    text = report.render(record, fmt, fail_on=fail_on)
    assert text.strip()
    assert text.endswith("\n")
    assert report.render(record, fmt, fail_on=fail_on) == text, "output must be deterministic"


def test_file_names_cover_formats() -> None:
    assert set(report.FILE_NAMES) == set(report.FORMATS)
    assert report.FILE_NAMES == {
        "html": "report.html",
        "json": "run.json",
        "junit": "junit.xml",
        "markdown": "summary.md",
        "sarif": "results.sarif",
        "card-md": "model_card.md",
        "card-json": "model_card.json",
    }


def test_unknown_format_lists_valid_ones(record: RunRecord) -> None:
    with pytest.raises(UsageError) as info:
        report.render(record, "pdf")
    for fmt in report.FORMATS:
        assert fmt in str(info.value)


def test_fail_on_accepts_strings_and_rejects_unknown(record: RunRecord) -> None:
    assert report.render(record, "junit", fail_on="warn") == report.render(record, "junit", fail_on=Severity.WARN)
    with pytest.raises(UsageError, match="deny, warn, info"):
        report.render(record, "junit", fail_on="fatal")


# --- json -------------------------------------------------------------------------------


def test_json_round_trips_exactly(record: RunRecord) -> None:
    text = render_json(record)
    assert parse_json(text) == record
    assert render_json(parse_json(text)) == text


def test_json_round_trips_each_outcomes_requirement_and_reads_records_written_without_it(record: RunRecord) -> None:
    need = Requirement("between", (0.8, 1.25), "worst")
    first = dataclasses.replace(record.verdict.outcomes[0], requirement=need)
    kept = dataclasses.replace(record, verdict=dataclasses.replace(record.verdict, outcomes=(first, *record.verdict.outcomes[1:])))
    text = render_json(kept)
    assert json.loads(text)["verdict"]["outcomes"][0]["requirement"] == {
        "op": "between", "threshold": [0.8, 1.25], "on": "worst", "tolerance": 0.0
    }
    assert parse_json(text) == kept and parse_json(text).verdict.outcomes[0].requirement == need
    old = json.loads(text)
    for written in old["verdict"]["outcomes"]:
        del written["requirement"]  # as run.json was written before outcomes kept their requirement
    assert [o.requirement for o in parse_json(json.dumps(old)).verdict.outcomes] == [None] * len(record.verdict.outcomes)


def test_json_round_trips_unicode_and_payloads(record_factory: Callable[..., RunRecord]) -> None:
    record = record_factory(group_a="Frau \u00e9\u4e2d <script>", scope='sex"\n', name="n\u00e4me\u2028")
    text = render_json(record)
    assert "\u4e2d" in text, "ensure_ascii=False keeps text readable"
    assert parse_json(text) == record


def test_json_layout(record: RunRecord) -> None:
    data = json.loads(render_json(record))
    assert data["schema_version"] == 1
    assert list(data)[:2] == ["run_id", "name"], "field order follows the dataclass"
    assert render_json(record).startswith('{\n  "run_id"')


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"run_id": "x"}', "schema_version"),
        ('{"schema_version": "1"}', "must be an integer"),
        ('{"schema_version": 99}', "schema_version 99"),
        ('{"schema_version": 1, "run_id": "x"}', "not a valid guardrail run record"),
        ('{"schema_version": 1, "bogus": 1}', "not a valid guardrail run record"),
        ('{"schema_version": 1, "x": NaN}', "NaN"),
    ],
)
def test_parse_json_rejects_malformed(text: str, match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        parse_json(text, where="out/run.json")
    assert info.value.where is not None and info.value.where.startswith("out/run.json")
    assert info.value.hint


def test_load_record_reads_what_write_reports_wrote(record: RunRecord, tmp_path: Path) -> None:
    paths = report.write_reports(record, tmp_path, ["json"])
    assert paths == {"json": tmp_path / "run.json"}
    assert report.load_record(paths["json"]) == record


def test_load_record_errors_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file") as missing:
        report.load_record(tmp_path / "nope.json")
    assert missing.value.where == str(tmp_path / "nope.json") and missing.value.hint
    with pytest.raises(UsageError, match="folder"):
        report.load_record(tmp_path)
    bad = tmp_path / "run.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(UsageError, match="UTF-8"):
        report.load_record(bad)
    bad.write_text('{\n  "schema_version": 1,\n  oops\n}', encoding="utf-8")
    with pytest.raises(UsageError) as info:
        report.load_record(bad)
    assert info.value.where == f"{bad}:3:3"


# --- junit ------------------------------------------------------------------------------


def _suite(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def _case(suite: ET.Element, rule_id: str) -> ET.Element:
    (case,) = [c for c in suite.iter("testcase") if c.get("name", "").startswith(f"{rule_id} ")]
    return case


def test_junit_counts_and_mapping(record: RunRecord) -> None:
    suite = _suite(report.render(record, "junit"))
    assert suite.get("name") == "guardrail: credit-scoring-v2"
    assert suite.get("timestamp") == record.started_at
    # 8 outcomes + 1 errored audit
    assert suite.get("tests") == "9"
    assert suite.get("failures") == "2"  # deny fail + deny inconclusive
    assert suite.get("errors") == "2"  # rule error + audit error
    assert suite.get("skipped") == "3"  # skipped, waived, non-blocking inconclusive
    assert suite.get("time") == "1.750"

    fail = _case(suite, "dp-ratio")
    assert fail.get("classname") == "eu-ai-act-baseline"
    assert fail.get("name") == "dp-ratio fairness.demographic_parity_ratio[sex]"
    failure = fail.find("failure")
    assert failure is not None and failure.get("type") == "deny"
    assert failure.get("message") == "Female | sex: ratio 0.6 < 0.8"
    assert _case(suite, "dp-diff").find("*") is None
    inconclusive = _case(suite, "eo-ratio").find("failure")
    assert inconclusive is not None and inconclusive.get("type") == "inconclusive"
    assert _case(suite, "shap-top").find("error") is not None
    assert _case(suite, "privacy-eps").find("skipped") is not None
    assert _case(suite, "accuracy-floor").find("skipped") is not None
    warn = _case(suite, "fpr-gap")
    assert warn.find("failure") is None
    out = warn.find("system-out")
    assert out is not None and out.text is not None and "WARN (not blocking)" in out.text
    assert _case(suite, "tpr-info").find("skipped") is not None

    (audit,) = [c for c in suite.iter("testcase") if c.get("classname") == "audit"]
    error = audit.find("error")
    assert error is not None and error.get("type") == "ModelError"
    assert error.text is not None and "check that the model matches the data" in error.text
    assert audit.get("time") == "0.500"


def test_junit_warn_blocks_when_fail_on_warn(record: RunRecord) -> None:
    suite = _suite(report.render(record, "junit", fail_on=Severity.WARN))
    failure = _case(suite, "fpr-gap").find("failure")
    assert failure is not None and failure.get("type") == "warn"
    assert suite.get("failures") == "3"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["guardrail.fail_on"] == "warn"
    assert props["guardrail.exit_code"] == str(int(ExitCode.INCOMPLETE))


def test_junit_escapes_and_strips_invalid_xml(record_factory: Callable[..., RunRecord]) -> None:
    nasty = 'a"<b>&\x00\x1b]0;title\x07'
    record = record_factory(rule_id=nasty, message=nasty, name=nasty)
    suite = _suite(report.render(record, "junit"))
    case = _case(suite, 'a"<b>&\ufffd\ufffd]0;title\ufffd')
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == 'a"<b>&\ufffd\ufffd]0;title\ufffd'


# --- markdown ---------------------------------------------------------------------------


def test_markdown_summary(record: RunRecord) -> None:
    text = report.render(record, "markdown")
    first = text.splitlines()[0]
    assert first.startswith("# ") and "INCOMPLETE" in first
    assert "```sh\nguardrail run audits/credit.yaml --out reports/credit\n```" in text
    assert "explain\\-shap" not in text  # hyphens are not escaped
    assert "**explain-shap** (explain): error" in text
    assert "ModelError" in text
    assert "⚠️ warning (fail, not blocking)" in text
    assert len(text.encode("utf-8")) < 1024 * 1024


def test_markdown_escapes_group_name_in_cells(record_factory: Callable[..., RunRecord]) -> None:
    record = record_factory(group_a=PAYLOAD_GROUP, message=f"ratio for {PAYLOAD_GROUP}\nis low")
    text = report.render(record, "markdown")
    (row,) = [line for line in text.splitlines() if "dp-ratio" in line and line.startswith("|")]
    assert "A\\|B \\`x\\` &lt;b&gt;" in row
    assert "<b>" not in text
    # the row keeps exactly its 7 cells: 8 unescaped pipes
    assert row.replace("\\|", "").count("|") == 8


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("`code`", "\\`code\\`"),
        ("<img src=x>", "&lt;img src=x&gt;"),
        ("line\nbreak\r\nx", "line break x"),
        ("[link](javascript:x)", "\\[link\\](javascript:x)"),
        ("&amp;", "&amp;amp;"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_cell(raw: str, escaped: str) -> None:
    assert escape_cell(raw) == escaped


def test_markdown_fence_survives_backticks(record_factory: Callable[..., RunRecord]) -> None:
    record = record_factory()
    command = "guardrail run ```evil```"
    record = dataclasses.replace(record, provenance=dataclasses.replace(record.provenance, command=command))
    text = report.render(record, "markdown")
    assert f"````sh\n{command}\n````" in text


def test_markdown_stays_short_with_many_outcomes(
    record_factory: Callable[..., RunRecord], outcome_factory: Callable[..., RuleOutcome]
) -> None:
    many = tuple(outcome_factory(f"rule-{i}", OutcomeStatus.FAIL, message="x" * 5000) for i in range(1000))
    text = report.render(record_factory(outcomes=many), "markdown")
    assert len(text.encode("utf-8")) < 200_000
    assert "800 more outcomes" in text


# --- write_reports ----------------------------------------------------------------------


def test_write_reports_writes_every_format(record: RunRecord, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written, paths = report.publish(record, out, report.FORMATS)
    assert list(paths) == list(report.FORMATS)
    assert sorted(p.name for p in out.iterdir()) == sorted(report.FILE_NAMES.values())
    for fmt, path in paths.items():
        assert path.read_text(encoding="utf-8") == report.render(written, fmt)
    # run.json records the digest of every other report, and is otherwise the record given
    assert written == dataclasses.replace(record, outputs=written.outputs)
    digests = {d.path: d.sha256 for d in written.outputs}
    assert set(digests) == {"report.html", "junit.xml", "summary.md", "results.sarif", "model_card.md", "model_card.json"}
    assert digests["summary.md"] == hashlib.sha256((out / "summary.md").read_bytes()).hexdigest()


def test_write_reports_rejects_unknown_format_before_writing(record: RunRecord, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'pdf'"):
        report.write_reports(record, tmp_path, ["json", "pdf"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("broken", report.FORMATS)
def test_write_reports_leaves_nothing_when_a_renderer_raises(
    record: RunRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    def boom(record: RunRecord, fail_on: Severity) -> str:
        raise RuntimeError("renderer exploded")

    original = report.renderer_of
    monkeypatch.setattr(report, "renderer_of", lambda fmt: boom if fmt == broken else original(fmt))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="renderer exploded"):
        report.write_reports(record, out, report.FORMATS)
    left = list(out.iterdir()) if out.exists() else []
    assert left == [], f"nothing may be written, found {left}"


def test_report_imports_no_ml_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, guardrail.report\n"
        "heavy = {'numpy', 'pandas', 'torch', 'sklearn', 'fairlearn', 'scipy'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_write_reports_accepts_one_format_as_a_string(record: RunRecord, tmp_path: Path) -> None:
    assert report.write_reports(record, tmp_path, "markdown") == {"markdown": tmp_path / "summary.md"}


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_minimal_record_renders(record: RunRecord, fmt: str) -> None:
    from guardrail.core.types import AuditResult, AuditStatus, GroupValue, MetricResult, PolicyVerdict

    explain = AuditResult(
        audit_id="explain",
        auditor="explain",
        status=AuditStatus.OK,
        metrics=(
            MetricResult(key="explain.faithfulness", value=1e-7),
            MetricResult(key="explain.stability", value=None, reason="only one sample"),
            MetricResult(
                key="fairness.tpr",
                scope="age",
                value=0.5,
                by_group=(GroupValue("old", 0.5, 10), GroupValue("young", None, 0, reason="empty")),
            ),
        ),
    )
    skipped = AuditResult(audit_id="privacy", auditor="privacy", status=AuditStatus.SKIPPED)
    bare = dataclasses.replace(
        record,
        results=(explain, skipped),
        verdict=PolicyVerdict(),
        provenance=dataclasses.replace(record.provenance, packages={}, seeds={}, files=(), git_commit=None),
    )
    text = report.render(bare, fmt)
    assert text.strip()
    if fmt == "html":
        assert "1.000e-07" in text and "only one sample" in text
        assert "No policy rules were evaluated." in text
        assert "<h4>Metrics</h4>" in text
    if fmt == "json":
        assert parse_json(text) == bare


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("results", 0, "metrics", 0, "details"), [1, 2]),
        (("verdict", "outcomes", 0, "observed"), "x"),
        (("results",), {}),
        (("results", 0, "metrics", 0, "n"), True),
    ],
    ids=["details-list", "observed-string", "results-object", "n-bool"],
)
def test_load_record_type_checks_every_field(record, tmp_path, path, value) -> None:  # type: ignore[no-untyped-def]
    """A hand-edited run.json with a wrong type is a usage error, not a crash."""
    import json as _json

    from guardrail.core.errors import UsageError
    from guardrail.report import load_record, render

    data = _json.loads(render(record, "json"))
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    broken = tmp_path / "run.json"
    broken.write_text(_json.dumps(data))
    with pytest.raises(UsageError, match="not a valid guardrail run record"):
        load_record(broken)


def test_every_format_is_one_row_of_the_table() -> None:
    """Each report format is one row of guardrail.core.vocab.REPORT_FORMATS: the spec's choices,
    the command line's, the file names and the renderers all come from it."""
    import typing

    from guardrail.cli import build_parser
    from guardrail.core.vocab import DEFAULT_FORMATS, FORMAT_NAMES, REPORT_FORMATS, FormatName
    from guardrail.report import FILE_NAMES, FORMATS, renderer_of
    from guardrail.spec.models import ReportSpec

    assert FORMAT_NAMES == typing.get_args(FormatName) == FORMATS
    assert len({f.file_name for f in REPORT_FORMATS}) == len(REPORT_FORMATS)
    assert FILE_NAMES == {f.name: f.file_name for f in REPORT_FORMATS}
    assert ReportSpec(out="out").formats == DEFAULT_FORMATS
    from tests.report.conftest import make_record

    record = make_record()
    for name in FORMAT_NAMES:
        renderer = renderer_of(name)
        assert renderer is not None and isinstance(renderer(record, Severity.DENY), str), name
    assert renderer_of("pdf") is None
    for name in FORMAT_NAMES:
        assert build_parser().parse_args(["audit", "spec.yaml", "--format", name]).formats == [name]
    with pytest.raises(UsageError, match="invalid choice: 'pdf'"):
        build_parser().parse_args(["audit", "spec.yaml", "--format", "pdf"])
