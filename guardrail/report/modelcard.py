"""A model card from the run record, with the sections of Hugging Face model cards.

Everything in it comes from the record: what the spec says the model is for, the data it
was audited on, the metrics per group with their intervals, the verdict, and the
limitations the audit itself found (inconclusive rules, underpowered comparisons, small
groups, audits that were not run). Nothing is invented: a section without evidence says so.
"""

from __future__ import annotations

import json
from typing import Any

from guardrail.core.types import MetricResult, OutcomeStatus, RunRecord, Severity
from guardrail.core.verdict import display_status
from guardrail.core.vocab import UNDERPOWERED
from guardrail.report import _format
from guardrail.report.markdown import escape_cell

CARD_RATES = ("selection_rate", "tpr", "fpr", "accuracy")
NOT_STATED = "Not stated in the audit spec (add a `description:`)."


def card_data(record: RunRecord, fail_on: Severity = Severity.DENY) -> dict[str, Any]:
    """The model card as plain data (the JSON format, and the source of the Markdown)."""
    spec = record.spec
    data = spec.get("data", {}) if isinstance(spec.get("data"), dict) else {}
    model = spec.get("model", {}) if isinstance(spec.get("model"), dict) else {}
    digests = {f.role: f for f in record.provenance.files}
    metrics = record.metrics()
    verdict = record.judged(fail_on)
    return {
        "model_details": {
            "name": record.name,
            "adapter": model.get("adapter"),
            "file": model.get("path") or model.get("weights") or model.get("column"),
            **({"module": model["module"]} if model.get("module") else {}),
            "sha256": digests["model"].sha256 if "model" in digests else None,
            "audited_with": f"guardrail {record.provenance.guardrail_version}",
            "run_id": record.run_id,
        },
        "intended_use": spec.get("description") or NOT_STATED,
        "data": {
            "file": data.get("path"),
            "sha256": digests["data"].sha256 if "data" in digests else None,
            "rows": max((m.n or 0 for m in metrics), default=None),
            "target": data.get("target"),
            "task": data.get("task", "binary"),
            "sensitive_features": data.get("sensitive", []),
        },
        "metrics_by_group": [_group_table(m) for m in metrics if _card_rate(m)],
        "evaluation": {
            "verdict": verdict.word,
            "verdict_sentence": verdict.sentence,
            "exit_code": int(verdict.code),
            "outcomes": [
                {"rule": o.rule_id, "policy": o.policy, "status": display_status(o, fail_on), "message": o.message}
                for o in record.verdict.outcomes
            ],
        },
        "limitations": _limitations(record),
        "privacy": _privacy(record),
    }


def render_model_card_json(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    return json.dumps(card_data(record, fail_on), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_model_card_markdown(record: RunRecord, fail_on: Severity = Severity.DENY) -> str:
    card = card_data(record, fail_on)
    details, data = card["model_details"], card["data"]
    lines = [
        f"# Model card: {escape_cell(record.name)}",
        "",
        "## Model details",
        "",
        f"- Adapter: {_text(details['adapter'])}; file: {_text(details['file'])}",
        f"- SHA-256: {_text(details['sha256'] or 'n/a')}",
        f"- Audited with {_text(details['audited_with'])}, run {_text(details['run_id'])}",
        "",
        "## Intended use",
        "",
        _text(card["intended_use"]),
        "",
        "## Data",
        "",
        f"- File: {_text(data['file'])} (SHA-256 {_text(data['sha256'] or 'n/a')}), {data['rows']} rows",
        f"- Target: {_text(data['target'])} ({_text(data['task'])})",
        f"- Sensitive features: {_text(', '.join(map(str, data['sensitive_features'])))}",
        "",
        "## Metrics by group",
        "",
    ]
    if not card["metrics_by_group"]:
        lines.append("No per-group metrics were computed.")
    for table in card["metrics_by_group"]:
        lines += [f"### {escape_cell(table['metric'])}", "", "| Group | n | Value | Interval |", "| --- | ---: | ---: | --- |"]
        for row in table["groups"]:
            interval = (
                f"{_format.number(row['ci_low'])}–{_format.number(row['ci_high'])} ({row['ci_level'] * 100:g}%)"
                if row["ci_low"] is not None
                else "—"
            )
            lines.append(f"| {escape_cell(row['group'])} | {row['n']} | {_format.number(row['value'])} | {interval} |")
        lines.append("")
    evaluation = card["evaluation"]
    lines += ["## Evaluation against policy", "", f"Verdict: **{evaluation['verdict']}** (exit code {evaluation['exit_code']}). {evaluation['verdict_sentence']}", ""]
    lines += [f"- {o['status']}: {_text(o['message'])}" for o in evaluation["outcomes"]] or ["- No policy rules were evaluated."]
    lines += ["", "## Limitations", ""]
    lines += [f"- {_text(item)}" for item in card["limitations"]]
    lines += ["", "## Privacy", "", _text(card["privacy"]), ""]
    return "\n".join(lines)


def _text(value: object) -> str:
    """Data as Markdown text: escaped, never cut short."""
    return escape_cell(str(value), limit=100_000)


def _card_rate(metric: MetricResult) -> bool:
    return metric.key.removeprefix("fairness.") in CARD_RATES and bool(metric.by_group)


def _group_table(metric: MetricResult) -> dict[str, Any]:
    return {
        "metric": metric.ref,
        "groups": [
            {
                "group": g.group,
                "n": g.n,
                "value": g.value,
                "ci_low": g.ci.low if g.ci else None,
                "ci_high": g.ci.high if g.ci else None,
                "ci_level": g.ci.level if g.ci else None,
                "below_minimum_size": g.small,
            }
            for g in metric.by_group
        ],
    }


def _limitations(record: RunRecord) -> list[str]:
    found: list[str] = []
    for outcome in record.verdict.outcomes:
        if outcome.status is OutcomeStatus.INCONCLUSIVE:
            found.append(f"Inconclusive: {outcome.message}")
        elif outcome.reason == UNDERPOWERED:
            found.append(outcome.message)
    small = sorted({g.group for m in record.metrics() for g in m.by_group if g.small})
    if small:
        found.append(f"Groups below the minimum size, whose rates are imprecise: {', '.join(small)}.")
    for result in record.results:
        if result.error is not None:
            found.append(f"Audit {result.audit_id!r} did not complete: {result.error.message}")
        note = result.artifacts.get("note")
        if isinstance(note, str):
            found.append(note)
    auditors = {result.auditor for result in record.results}
    for missing, what in (("explainability", "explanations"), ("privacy", "privacy risk")):
        if missing not in auditors:
            found.append(f"Not evaluated in this run: {what}.")
    return found


def _privacy(record: RunRecord) -> str:
    privacy = [r for r in record.results if r.auditor == "privacy"]
    if not privacy:
        return "No privacy audit was run: nothing is claimed about membership inference or differential privacy."
    metrics = {m.ref: m for r in privacy for m in r.metrics}
    parts = []
    epsilon, delta = metrics.get("privacy.dp.epsilon"), metrics.get("privacy.dp.delta")
    if epsilon is not None and epsilon.value is not None and delta is not None:
        accountant = str(epsilon.details.get("accountant", "")).upper()
        parts.append(
            f"Trained with DP-SGD: ε = {_format.number(epsilon.value)} ({accountant}) at δ = {_format.number(delta.value)}, "
            f"clipping norm {epsilon.details.get('max_grad_norm')}, sampling {epsilon.details.get('sampling')}."
        )
    elif epsilon is not None:
        parts.append(f"No differential-privacy guarantee: {epsilon.reason}.")
    for attack, name in (("lira", "LiRA"), ("loss", "loss-threshold")):
        auc = metrics.get(f"privacy.mia.{attack}.auc")
        if auc is not None:
            interval = f" [{_format.interval(auc.ci)}]" if auc.ci is not None else ""
            worst = [m for ref, m in metrics.items() if ref.startswith(f"privacy.mia.{attack}.auc[")]
            by_group = "; most exposed group per grouping: " + ", ".join(
                f"{m.scope} {_format.number(m.value)}" for m in worst
            ) if worst else ""
            parts.append(f"Membership inference ({name} attack): ROC AUC {_format.number(auc.value)}{interval}{by_group}.")
    claim = metrics.get("privacy.dp_audit.epsilon_lower")
    if claim is not None and claim.value is not None:
        parts.append(
            f"DP-claim check (one-run canary audit): ε lower bound {_format.number(claim.value)} against "
            f"the claimed {_format.number(claim.details.get('epsilon_claimed'))}: {claim.details.get('verdict')}."
        )
    return " ".join(parts) or "The privacy audit produced no metrics."
