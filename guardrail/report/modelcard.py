"""A model card from the run record, with the sections of Hugging Face model cards.

Everything in it comes from the record: what the spec says the model is for, the data it
was audited on (with a ``use: data`` audit, what that audit found in the data: representation,
base rates, missingness, proxies, shift, duplicates and leakage), the metrics per group with their intervals, the verdict
(with a ``use: robustness`` audit, what its probes found: counterfactual, perturbation and site-style flip rates), and the
limitations the audit itself found (inconclusive rules, underpowered comparisons, small
groups, audits that were not run). Nothing is invented: a section without evidence says so.
"""

from __future__ import annotations

import json
from typing import Any

from guardrail.core.types import AuditResult, GroupValue, Interval, MetricResult, OutcomeStatus, RunRecord, Severity
from guardrail.core.verdict import display_status
from guardrail.core.vocab import UNDERPOWERED
from guardrail.report import _format
from guardrail.report.data_view import summary
from guardrail.report.markdown import escape_cell
from guardrail.report.robustness_view import summary as robustness_summary

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
            "data_audits": [_data_audit(r) for r in record.results if r.auditor == "data" and r.error is None],
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
            "robustness_audits": [_robustness_audit(r) for r in record.results if r.auditor == "robustness" and r.error is None],
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
    ]
    for audit in data["data_audits"]:
        lines += [f"### Data audit {escape_cell(audit['audit_id'])}", ""]
        lines += [f"- {_text(sentence)}" for sentence in audit["summary"]] or ["- The data audit produced no findings."]
        lines += [f"- Not examined: {_text(note.rstrip('.'))}." for note in audit["notes"]]
        lines.append("")
    lines += [
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
    for audit in evaluation["robustness_audits"]:
        lines += ["", f"### Robustness audit {escape_cell(audit['audit_id'])}", ""]
        lines += [f"- {_text(sentence)}" for sentence in audit["summary"]] or ["- The robustness audit produced no findings."]
        lines += [f"- Not probed: {_text(note.rstrip('.'))}." for note in audit["notes"]]
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


def _data_audit(result: AuditResult) -> dict[str, Any]:
    """What a data audit found, for the card's data section: rows, each group's share against its
    population, label base rates, the gaps in missingness, the proxies, the shift and the leakage,
    what was not examined, and the same findings said as sentences."""
    metrics, artifacts = result.metrics, result.artifacts
    by_ref = {(m.key, m.scope): m for m in metrics}
    found = artifacts.get("proxies")
    proxies: dict[str, Any] = found if isinstance(found, dict) else {}
    threshold = proxies.get("threshold")
    shifted = by_ref.get(("data.shifted_features", None))
    largest = by_ref.get(("data.max_shift_js", None))
    return {
        "audit_id": result.audit_id,
        "rows": artifacts.get("rows"),
        "reference": artifacts.get("reference"),
        "sensitive_features": list(artifacts.get("sensitive") or []),
        "representation": [_shares(m, by_ref.get(("data.representation_ratio", m.scope))) for m in metrics if m.key == "data.group_share"],
        "base_rates": [
            {
                **_measure(m, "rate"),
                "groups": [_group(g, "rate") for g in m.by_group],
                "difference": _gap(by_ref.get(("data.base_rate_difference", m.scope))),
                "ratio": _gap(by_ref.get(("data.base_rate_ratio", m.scope))),
            }
            for m in metrics
            if m.key == "data.base_rate"
        ],
        "missingness_gaps": sorted(
            ({"scope": m.scope.rpartition("/column=")[0], "feature": m.details.get("column") or _column(m.scope),
              "difference": m.value, **_bounds(m.ci), "min_group": m.details.get("min_group"), "max_group": m.details.get("max_group")}
             for m in metrics if m.key == "data.missing_rate_difference" and m.scope is not None and m.value is not None),
            key=lambda gap: -float(gap["difference"]),
        ),  # fmt: skip
        "proxies": [
            {k: row.get(k) for k in ("feature", "sensitive", "nmi", "ci_low", "ci_high")}
            for row in proxies.get("table") or []
            if isinstance(threshold, float | int) and isinstance(row.get("nmi"), float | int) and row["nmi"] >= threshold
        ],
        "shift": None if shifted is None else {
            "shifted_features": list(shifted.details.get("features") or []),
            "alpha": shifted.details.get("alpha"),
            "threshold": shifted.details.get("threshold"),
            "largest": None if largest is None else {"feature": largest.details.get("feature"), **_measure(largest, "js")},
        },  # fmt: skip
        "duplicates": _row_share(by_ref.get(("data.duplicate_rows", None)), "duplicates"),
        "leakage": _row_share(by_ref.get(("data.leaked_rows", None)), "leaked"),
        "conflicting_labels": _row_share(by_ref.get(("data.conflicting_labels", None)), "conflicting_rows"),
        "notes": [str(n) for n in artifacts.get("notes") or []],
        "summary": list(summary(metrics, lambda said: "".join(s.text for s in said))),
    }


def _robustness_audit(result: AuditResult) -> dict[str, Any]:
    """What a robustness audit found, for the card's evaluation: its probes' sentences (flip rates
    with their intervals and groups, or why a probe was inconclusive) and what was not probed."""
    return {
        "audit_id": result.audit_id,
        "summary": list(robustness_summary(result.metrics, lambda said: "".join(s.text for s in said))),
        "notes": [str(n) for n in result.artifacts.get("notes") or []],
    }


def _column(scope: str) -> str:
    from urllib.parse import unquote

    return unquote(scope.rpartition("column=")[2])


def _bounds(ci: Interval | None) -> dict[str, float | None]:
    return {"ci_low": ci.low if ci else None, "ci_high": ci.high if ci else None, "ci_level": ci.level if ci else None}


def _measure(metric: MetricResult, name: str) -> dict[str, Any]:
    return {"scope": metric.scope, name: metric.value, **_bounds(metric.ci)} if metric.scope else {name: metric.value, **_bounds(metric.ci)}


def _group(value: GroupValue, name: str) -> dict[str, Any]:
    return {"group": value.group, "n": value.n, name: value.value, **_bounds(value.ci), "below_minimum_size": value.small}


def _shares(share: MetricResult, ratio: MetricResult | None) -> dict[str, Any]:
    population = ratio.details.get("population", {}) if ratio is not None else {}
    ratios = {g.group: g for g in ratio.by_group} if ratio is not None else {}
    groups = []
    for g in share.by_group:
        row = _group(g, "share")
        if g.group in ratios:
            found = ratios[g.group]
            row |= {"population_share": population.get(g.group), "ratio": found.value,
                    "ratio_ci_low": found.ci.low if found.ci else None, "ratio_ci_high": found.ci.high if found.ci else None}  # fmt: skip
        groups.append(row)
    source = ratio.details.get("source") if ratio is not None else None
    return {"scope": share.scope, "smallest_share": share.value, **_bounds(share.ci), "source": source, "groups": groups}


def _gap(metric: MetricResult | None) -> dict[str, Any] | None:
    if metric is None:
        return None
    return {"value": metric.value, **_bounds(metric.ci),
            "min_group": metric.details.get("min_group"), "max_group": metric.details.get("max_group")}  # fmt: skip


def _row_share(metric: MetricResult | None, part: str) -> dict[str, Any] | None:
    if metric is None:
        return None
    return {"share": metric.value, **_bounds(metric.ci), "rows": metric.details.get(part), "of": metric.details.get("rows")}


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
