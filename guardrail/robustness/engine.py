"""The robustness audit: every probe's changed inputs scored in one batched pass, then the
flip rates, score changes, accuracy drops and coverage per group with intervals.

Probes (each a :class:`Plan`: the frames it needs scored, and how to turn their scores into
metrics):

* **counterfactual** — tabular: the sensitive attribute set to each other value, everything
  else held (:func:`guardrail.robustness.tabular.counterfactuals`); text: identity terms
  swapped by a lexicon (:mod:`guardrail.robustness.lexicon`), only in the documents that
  contain one (the share covered is reported);
* **perturbation** — tabular: numeric features moved by ``strength`` × their spread
  (:func:`guardrail.robustness.tabular.spread`) at each strength (a curve); text: typos, case, whitespace, number formatting and
  unit conversions (:mod:`guardrail.robustness.text`);
* **site_style** — each held-out note rewritten in every other hospital's style from its own
  record (:mod:`guardrail.robustness.site_style`), checked to change nothing but the style.

A decision *flips* when the model's label for the changed input differs from its label for
the original. The originals' decisions are those the audit run already made
(:class:`KnownDecisions`); only without them (or when the model's labels cannot be named from
them) are the originals scored, in the same pass as every change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.errors import DataError
from guardrail.core.scopes import scope_name, scope_part
from guardrail.core.types import MetricResult
from guardrail.robustness import stats
from guardrail.robustness.scoring import BatchScorer, Scored, changed

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.fairness.groups import Grouping
    from guardrail.robustness.lexicon import Lexicon

PROBES = ("counterfactual", "perturbation", "site_style")
NO_SCORES = "the model gives no positive-class score (a multiclass model, or one without probabilities)"
DEFAULT_STRENGTHS = (0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class RobustnessOptions:
    """What to probe and how to report it (the auditor's params, resolved)."""

    probes: tuple[str, ...] = ("counterfactual", "perturbation")
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    perturbations: tuple[str, ...] = ("typos", "case", "whitespace", "numbers", "units")
    lexicon: Lexicon | None = None
    attributes: tuple[str, ...] | None = None
    numeric: tuple[str, ...] | None = None
    text_column: str | None = None
    site_column: str = "site"
    min_group_size: int = 30
    bootstrap: int = 1000
    confidence: float = 0.95
    examples: int = 3


@dataclass(frozen=True)
class ProbeData:
    """The rows probed and what is known of them."""

    data: pd.DataFrame
    """The rows probed (index 0..n-1): the model's inputs, the sensitive columns and any the probes read."""
    rows: np.ndarray
    """Each probed row's position in the audit data (for the examples)."""
    correct: Callable[[np.ndarray], np.ndarray] | None
    """Whether decisions are right, row by row (None when the rows have no labels)."""
    sensitive: tuple[str, ...]
    feature_sets: tuple[tuple[str, ...], ...]
    inputs: tuple[str, ...]
    """The model's input columns."""
    missing_sensitive: str = "error"
    where: str = "data"
    known: KnownDecisions | None = None
    """The model's decisions on these rows, already made by the audit run (not scored again)."""


@dataclass(frozen=True)
class KnownDecisions:
    """The audit run's own predictions on the probed rows, in the form auditors get them
    (:class:`~guardrail.auditors.base.AuditContext`): booleans (is it the positive class) for a
    binary task, indices into ``class_labels`` for a multiclass one."""

    predicted: np.ndarray
    scores: np.ndarray | None
    task: str
    positive_label: Any = None
    class_labels: tuple[Any, ...] = ()

    def as_scored(self, classes: Sequence[Any]) -> Scored | None:
        """These decisions as the model's labels (the other class of a binary model named from
        ``classes``, the labels the model declared); ``None`` when they cannot be named."""
        if self.task == "multiclass" and self.class_labels:
            return Scored(np.asarray(self.class_labels, dtype=object)[self.predicted], self.scores)
        if self.task == "binary" and len(classes) == 2 and self.positive_label in classes:
            negative = next(c for c in classes if c != self.positive_label)
            labels = np.empty(len(self.predicted), dtype=object)
            labels[:] = negative
            labels[np.asarray(self.predicted, dtype=bool)] = self.positive_label
            return Scored(labels, self.scores)
        return None


@dataclass(frozen=True)
class RobustnessAudit:
    metrics: tuple[MetricResult, ...]
    artifacts: dict[str, Any]


Finish = Callable[[Scored, list[Scored]], None]


@dataclass
class Plan:
    """One probe: the frames it needs scored, and what it does with their scores (and the originals')."""

    frames: list[pd.DataFrame]
    finish: Finish


@dataclass
class Collector:
    """What the probes found: metrics, artifacts and notes."""

    options: RobustnessOptions
    seed: int
    metrics: list[MetricResult] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    site_style: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def shares(self, grouping: Grouping, indicator: np.ndarray, name: str, scope: str, details: dict[str, Any]) -> list[MetricResult]:
        o = self.options
        found = stats.share_metrics(
            grouping, indicator, name=name, scope=scope, level=o.confidence, min_group_size=o.min_group_size,
            bootstrap=o.bootstrap, seed=self.seed, details=details,
        )  # fmt: skip
        self.metrics += found
        return found


def audit(model: Any, positive_label: Any, probe_data: ProbeData, options: RobustnessOptions, *, seed: int) -> RobustnessAudit:
    """Run every probe of ``options`` on ``probe_data`` through ``model``, scored in one batched pass."""
    collector = Collector(options, seed)
    text = options.text_column
    plans: list[Plan] = []
    for probe in options.probes:
        if probe == "counterfactual":
            plans += _text_counterfactual(probe_data, collector) if text else _tabular_counterfactuals(probe_data, collector)
        elif probe == "perturbation":
            plans += _text_perturbations(probe_data, collector) if text else _tabular_perturbations(probe_data, collector)
        elif probe == "site_style":
            if not text:
                raise DataError(
                    "the site-style probe rewrites clinical notes: the model reads no text column",
                    where=probe_data.where,
                    hint="use probes: [counterfactual, perturbation] for a tabular model, or give params.text_column",
                )
            plans += _site_style(probe_data, collector)
        else:  # the params model allows only PROBES
            raise AssertionError(probe)
    scorer = BatchScorer(model, positive_label)
    frames = [f for plan in plans for f in plan.frames]
    known = probe_data.known
    named: Scored | None = None
    if not frames:  # nothing was changed: no probe needs the originals' decisions
        base, rest = Scored(np.asarray([], dtype=object), None), []
    elif known is None:
        base, *rest = scorer.score([_inputs(probe_data), *frames])
    else:  # the run already scored the originals: score only the changes, unless the labels cannot be named
        rest = scorer.score(frames)
        named = known.as_scored(scorer.classes)
        base = named if named is not None else scorer.score([_inputs(probe_data)])[0]
    for plan in plans:
        mine, rest = rest[: len(plan.frames)], rest[len(plan.frames) :]
        plan.finish(base, mine)
    artifacts: dict[str, Any] = {
        "probes": collector.probes,
        "examples": collector.examples,
        "notes": collector.notes,
        "scoring": {**scorer.summary(), "originals": "from the run" if named is not None else "scored"},
    }
    if collector.curve:
        artifacts["curve"] = sorted(collector.curve, key=lambda c: (c["grouping"], c["strength"]))
    if collector.pairs:
        artifacts["counterfactual_pairs"] = collector.pairs
    if collector.site_style is not None:
        artifacts["site_style"] = collector.site_style
    return RobustnessAudit(tuple(collector.metrics), artifacts)


def _inputs(probe_data: ProbeData, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The model's input columns of ``frame`` (default: the probed rows)."""
    source = probe_data.data if frame is None else frame
    return source.loc[:, list(probe_data.inputs)].reset_index(drop=True)


def _groupings(probe_data: ProbeData, rows: np.ndarray | None = None) -> list[Grouping]:
    from guardrail.fairness.groups import encode

    frame = probe_data.data if rows is None else probe_data.data.iloc[rows]
    return [encode(frame, fs, missing=probe_data.missing_sensitive, where=probe_data.where) for fs in probe_data.feature_sets]


def _text(value: object) -> str:
    """A decision or a value as the report shows it (numpy scalars as plain numbers)."""
    item = getattr(value, "item", None)
    return str(item() if callable(item) else value)


def _example(
    probe: str, scope: str, probe_data: ProbeData, row: int, base: Scored, after: Scored, at: int, *,
    group: str, before_text: str = "", after_text: str = "", changes: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:  # fmt: skip
    return {
        "probe": probe,
        "scope": scope,
        "row": int(probe_data.rows[row]),
        "group": group,
        "before": before_text,
        "after": after_text,
        "changes": list(changes),
        "decision_before": _text(base.decisions[row]),
        "decision_after": _text(after.decisions[at]),
        "score_before": None if base.scores is None else float(base.scores[row]),
        "score_after": None if after.scores is None else float(after.scores[at]),
    }


def _chosen(flipped_rows: np.ndarray, weight: np.ndarray | None, count: int) -> list[int]:
    """Up to ``count`` of the flipped rows, the largest score changes first (else in order)."""
    if count == 0 or len(flipped_rows) == 0:
        return []
    if weight is None:
        return [int(r) for r in flipped_rows[:count]]
    order = np.argsort(-weight[flipped_rows], kind="stable")
    return [int(flipped_rows[i]) for i in order[:count]]


def _group_of(grouping: Grouping, row: int) -> str:
    assert grouping.codes is not None
    return grouping.labels[int(grouping.codes[row])]


# -- counterfactual: tabular -------------------------------------------------------------


def _tabular_counterfactuals(probe_data: ProbeData, out: Collector) -> list[Plan]:
    from guardrail.robustness.tabular import counterfactuals

    attributes = out.options.attributes or probe_data.sensitive
    plans: list[Plan] = []
    for attribute in attributes:
        scope = scope_part(attribute)
        details: dict[str, Any] = {"probe": "counterfactual", "kind": "tabular", "attribute": attribute}
        values = probe_data.data[attribute].dropna().nunique() if attribute in probe_data.inputs else 0
        if attribute not in probe_data.inputs or values < 2:
            reason = (
                f"{attribute!r} is not an input of the model: setting it cannot change a decision "
                "(whether another column stands in for it is the explainability and data audits' proxy question)"
                if attribute not in probe_data.inputs
                else f"{attribute!r} takes {values} value(s) among the rows probed: there is no other value to set it to"
            )
            out.metrics += [
                stats.not_applicable(key, scope, reason, details)
                for key in ("counterfactual_flip_rate", "counterfactual_flip_rate_difference", "counterfactual_score_change")
            ]
            out.probes.append({"probe": "counterfactual", "kind": "tabular", "scope": scope, "rows": 0, "applicable": 0, "label": reason})
            out.notes.append(f"Counterfactual on {attribute}: {reason}.")
            continue
        found = counterfactuals(_inputs(probe_data), attribute)
        plans.append(Plan([found.frame], _finish_counterfactual(probe_data, out, found, scope, details)))
    return plans


def _finish_counterfactual(probe_data: ProbeData, out: Collector, found: Any, scope: str, details: dict[str, Any]) -> Finish:
    from guardrail.fairness.groups import encode

    def finish(base: Scored, scored: list[Scored]) -> None:
        after = scored[0]
        n = len(probe_data.data)
        flips = changed(base.decisions[found.source], after.decisions)
        flipped = np.zeros(n, dtype=bool)
        np.logical_or.at(flipped, found.source, flips)
        change = None
        if base.scores is not None and after.scores is not None:
            change = np.zeros(n)
            np.maximum.at(change, found.source, np.abs(after.scores - base.scores[found.source]))
        values = [_text(v) for v in found.values]
        detail = {**details, "values": values, "rows": n}
        grouping = encode(probe_data.data, (found.attribute,), missing=probe_data.missing_sensitive, where=probe_data.where)
        out.shares(grouping, flipped, "counterfactual_flip_rate", scope, detail)
        o = out.options
        out.metrics.append(
            stats.score_change_metric(
                grouping, change, scope=scope, level=o.confidence, min_group_size=o.min_group_size,
                bootstrap=o.bootstrap, seed=out.seed, details=detail, no_scores=NO_SCORES,
            )  # fmt: skip
        )
        for i, source in enumerate(values):
            for j, target in enumerate(values):
                rows = (found.original[found.source] == i) & (found.assigned == j)
                if i != j and rows.any():
                    out.pairs.append(
                        {"attribute": found.attribute, "from": source, "to": target,
                         "flip_rate": float(flips[rows].mean()), "n": int(rows.sum())}  # fmt: skip
                    )
        out.probes.append(
            {"probe": "counterfactual", "kind": "tabular", "scope": scope, "rows": n, "applicable": n,
             "label": f"{found.attribute} set to each other value ({', '.join(values)})"}  # fmt: skip
        )
        # examples: the flipped rows with the largest score change, each row once
        weight = None if base.scores is None or after.scores is None else np.abs(after.scores - base.scores[found.source])
        shown: set[int] = set()
        for at in _chosen(np.flatnonzero(flips), weight, len(flips)):
            row = int(found.source[at])
            if len(shown) >= o.examples:
                break
            if row in shown:
                continue
            shown.add(row)
            before_value = _text(probe_data.data[found.attribute].iloc[row])
            out.examples.append(
                _example(
                    "counterfactual", scope, probe_data, row, base, after, at, group=_group_of(grouping, row),
                    changes=[{"feature": found.attribute, "before": before_value, "after": values[int(found.assigned[at])]}],
                )  # fmt: skip
            )

    return finish


# -- perturbation: tabular ---------------------------------------------------------------


def _tabular_perturbations(probe_data: ProbeData, out: Collector) -> list[Plan]:
    from guardrail.robustness.tabular import movable, numeric_features, shifted

    candidates = out.options.numeric or tuple(c for c in probe_data.inputs if c not in probe_data.sensitive)
    features = movable(probe_data.data, candidates)
    still = [n for n in numeric_features(probe_data.data, candidates) if n not in features]
    if still:
        out.notes.append(
            f"Perturbation leaves {', '.join(still)} as they are: the middle half of their rows holds one value "
            "(interquartile range 0), so no share of their spread is a neutral change."
        )
    if not features:
        reason = "the model reads no numeric feature whose middle half varies (besides the sensitive ones): nothing to move"
        out.notes.append(f"Perturbation: {reason}.")
        for fs in probe_data.feature_sets:
            scope = scope_name(fs)
            out.metrics.append(stats.not_applicable("perturbation_flip_rate", scope, reason, {"probe": "perturbation", "kind": "tabular"}))
        return []
    frames = [shifted(_inputs(probe_data), features, s, seed=out.seed) for s in out.options.strengths]

    def finish(base: Scored, scored: list[Scored]) -> None:
        groupings = _groupings(probe_data)
        for shift, after in zip(frames, scored, strict=True):
            flipped = changed(base.decisions, after.decisions)
            details = {"probe": "perturbation", "kind": "tabular", "strength": shift.strength, "features": list(features),
                       "rows": len(flipped)}  # fmt: skip
            for grouping in groupings:
                scope = f"{grouping.scope}/strength={shift.strength:g}"
                rate = out.shares(grouping, flipped, "perturbation_flip_rate", scope, details)[0]
                _accuracy(probe_data, out, grouping, base, after, scope, details)
                out.curve.append(_curve_point(grouping.scope, shift.strength, rate))
            if shift.strength != max(out.options.strengths):
                continue  # examples at the largest strength only, where the most decisions change
            strength_scope = f"strength={shift.strength:g}"
            changes = _changed_features(probe_data, shift.frame, features)
            weight = None if base.scores is None or after.scores is None else np.abs(after.scores - base.scores)
            for row in _chosen(np.flatnonzero(flipped), weight, out.options.examples):
                out.examples.append(
                    _example("perturbation", strength_scope, probe_data, row, base, after, row,
                             group=_group_of(groupings[0], row), changes=changes(row))  # fmt: skip
                )
        out.probes.append(
            {"probe": "perturbation", "kind": "tabular", "scope": "strength", "rows": len(probe_data.data),
             "applicable": len(probe_data.data),
             "label": f"{', '.join(features)} each moved by {', '.join(f'{s:g}' for s in out.options.strengths)} × its spread (IQR / 1.349)"}  # fmt: skip
        )

    return [Plan([f.frame for f in frames], finish)]


def _changed_features(probe_data: ProbeData, frame: pd.DataFrame, features: Sequence[str]) -> Callable[[int], list[dict[str, str]]]:
    def changes(row: int) -> list[dict[str, str]]:
        found = []
        for name in features:
            before, after = probe_data.data[name].iloc[row], frame[name].iloc[row]
            if before != after and not (before != before and after != after):
                found.append({"feature": name, "before": f"{float(before):.6g}", "after": f"{float(after):.6g}"})
        return found

    return changes


def _curve_point(grouping: str, strength: float, rate: MetricResult) -> dict[str, Any]:
    def pair(ci: Any) -> list[float] | None:
        return None if ci is None else [ci.low, ci.high]

    return {
        "grouping": grouping,
        "strength": strength,
        "overall": rate.value,
        "ci": pair(rate.ci),
        "by_group": [{"group": g.group, "value": g.value, "ci": pair(g.ci), "n": g.n} for g in rate.by_group],
    }


def _accuracy(
    probe_data: ProbeData, out: Collector, grouping: Grouping, base: Scored, after: Scored, scope: str, details: dict[str, Any],
    rows: np.ndarray | None = None,
) -> None:  # fmt: skip
    if probe_data.correct is None:
        return
    before_right = probe_data.correct(base.decisions)
    if rows is None:
        after_right = probe_data.correct(after.decisions)
    else:
        before_right, after_right = before_right[rows], _correct_at(probe_data, after.decisions, rows)
    o = out.options
    out.metrics.append(
        stats.accuracy_drop_metric(
            grouping, before_right, after_right, scope=scope, level=o.confidence, min_group_size=o.min_group_size,
            bootstrap=o.bootstrap, seed=out.seed, details=details,
        )  # fmt: skip
    )


def _correct_at(probe_data: ProbeData, decisions: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether ``decisions`` (one per row of ``rows``) are right for those rows."""
    assert probe_data.correct is not None
    full = np.empty(len(probe_data.data), dtype=object)
    full[:] = None
    full[rows] = decisions
    right: np.ndarray = probe_data.correct(full)[rows]
    return right


# -- text probes ------------------------------------------------------------------------


def _texts(probe_data: ProbeData, column: str) -> list[str]:
    return ["" if v is None or v != v else str(v) for v in probe_data.data[column].tolist()]


def _with_texts(probe_data: ProbeData, column: str, rows: np.ndarray, texts: Sequence[str]) -> pd.DataFrame:
    frame = _inputs(probe_data).iloc[rows].reset_index(drop=True)
    frame[column] = list(texts)
    return frame


def _text_probe(
    probe_data: ProbeData, out: Collector, *, probe: str, qualifier: str, label: str,
    changed_texts: list[str | None], not_applicable: str, accuracy: bool,
) -> Plan | None:  # fmt: skip
    """A probe that rewrites some documents: flip rate (and accuracy drop) over the rewritten ones,
    coverage over all of them."""
    column = out.options.text_column
    assert column is not None
    originals = _texts(probe_data, column)
    rows = np.asarray([i for i, t in enumerate(changed_texts) if t is not None and t != originals[i]], dtype=np.int64)
    applicable = np.zeros(len(originals), dtype=bool)
    applicable[rows] = True
    o = out.options
    details: dict[str, Any] = {"probe": probe, "kind": "text", **({"perturbation": qualifier} if probe == "perturbation" else {"swap": qualifier})}
    flip_key = f"{probe}_flip_rate"
    suffix = f"perturbation={scope_part(qualifier)}" if probe == "perturbation" else f"swap={scope_part(qualifier)}"
    for grouping in _groupings(probe_data):
        out.metrics.append(
            stats.coverage_metric(
                grouping, applicable, scope=f"{grouping.scope}/{suffix}", level=o.confidence, min_group_size=o.min_group_size,
                details={**details, "rows": len(originals)},
            )  # fmt: skip
        )
    out.probes.append(
        {"probe": probe, "kind": "text", "scope": suffix, "rows": len(originals), "applicable": int(len(rows)), "label": label}
    )
    if len(rows) == 0:
        # The counterfactual question stays open (no value: a rule on it is never passed); a
        # perturbation with nothing to change is one of several, shown by its coverage of 0.
        if probe == "counterfactual":
            out.notes.append(f"{label}: {not_applicable}; the counterfactual probe is inconclusive.")
            for fs in probe_data.feature_sets:
                scope = f"{scope_name(fs)}/{suffix}"
                keys = (flip_key, f"{flip_key}_difference", "counterfactual_score_change")
                out.metrics += [stats.not_applicable(k, scope, not_applicable, {**details, "rows": 0}) for k in keys]
        else:
            out.notes.append(f"{label}: {not_applicable}, so it was not measured.")
        return None
    frame = _with_texts(probe_data, column, rows, [changed_texts[i] or "" for i in rows])

    def finish(base: Scored, scored: list[Scored]) -> None:
        after = scored[0]
        before = base.take(rows)
        flipped = changed(before.decisions, after.decisions)
        detail = {**details, "rows": int(len(rows))}
        for grouping in _groupings(probe_data, rows):
            scope = f"{grouping.scope}/{suffix}"
            out.shares(grouping, flipped, flip_key, scope, detail)
            if probe == "counterfactual":
                change = None if before.scores is None or after.scores is None else after.scores - before.scores
                out.metrics.append(
                    stats.score_change_metric(
                        grouping, change, scope=scope, level=o.confidence, min_group_size=o.min_group_size,
                        bootstrap=o.bootstrap, seed=out.seed, details=detail, no_scores=NO_SCORES,
                    )  # fmt: skip
                )
            if accuracy:
                _accuracy(probe_data, out, grouping, base, after, scope, detail, rows=rows)
        weight = None if before.scores is None or after.scores is None else np.abs(after.scores - before.scores)
        first = _groupings(probe_data, rows)[0]
        for at in _chosen(np.flatnonzero(flipped), weight, o.examples):
            row = int(rows[at])
            out.examples.append(
                _example(probe, suffix, probe_data, row, base, after, at, group=_group_of(first, at),
                         before_text=originals[row], after_text=changed_texts[row] or "")  # fmt: skip
            )

    return Plan([frame], finish)


def _text_counterfactual(probe_data: ProbeData, out: Collector) -> list[Plan]:
    from guardrail.robustness.lexicon import DEFAULT_LEXICON, swap_terms

    lexicon = out.options.lexicon or DEFAULT_LEXICON
    column = out.options.text_column
    assert column is not None
    swapped = []
    for text in _texts(probe_data, column):
        new, count = swap_terms(text, lexicon)
        swapped.append(new if count else None)
    shown = ", ".join(f"{a}↔{b}" for a, b in lexicon.pairs[:4])
    plan = _text_probe(
        probe_data, out, probe="counterfactual", qualifier="terms", label=f"identity terms swapped ({shown}, … {len(lexicon.pairs)} pairs)",
        changed_texts=swapped, not_applicable=f"no document contains an identity term of the lexicon {lexicon.name!r}",
        accuracy=False,
    )  # fmt: skip
    return [plan] if plan is not None else []


def _text_perturbations(probe_data: ProbeData, out: Collector) -> list[Plan]:
    from guardrail.robustness.text import DESCRIPTIONS, perturb_texts

    column = out.options.text_column
    assert column is not None
    texts = _texts(probe_data, column)
    plans = []
    for name in out.options.perturbations:
        plan = _text_probe(
            probe_data, out, probe="perturbation", qualifier=name, label=DESCRIPTIONS[name],
            changed_texts=perturb_texts(texts, name, seed=out.seed),
            not_applicable=f"no document has anything the {name!r} perturbation changes", accuracy=True,
        )  # fmt: skip
        if plan is not None:
            plans.append(plan)
    return plans


# -- site style --------------------------------------------------------------------------


def _site_style(probe_data: ProbeData, out: Collector) -> list[Plan]:
    from guardrail.fairness.groups import encode
    from guardrail.federation.notes import SITE_STYLES, STYLE_NAMES
    from guardrail.robustness.site_style import check_only_style_changed, own_styles, restyle

    column, site_column = out.options.text_column, out.options.site_column
    assert column is not None
    data = probe_data.data
    own = own_styles(data, site_column)
    notes = {style: restyle(data, style) for style in STYLE_NAMES}
    check_only_style_changed(data, notes)
    sites = [site for site in SITE_STYLES]
    n = len(data)
    original = [notes[style][i] for i, style in enumerate(own)]
    frames = [_with_texts(probe_data, column, np.arange(n), original)]
    frames += [_with_texts(probe_data, column, np.arange(n), notes[SITE_STYLES[site]]) for site in sites]

    def finish(base: Scored, scored: list[Scored]) -> None:
        own_note, by_site = scored[0], dict(zip(sites, scored[1:], strict=True))
        grouping = encode(data, (site_column,), missing="error", where=probe_data.where)
        flips = {site: changed(own_note.decisions, after.decisions) for site, after in by_site.items()}
        other = np.zeros(n, dtype=bool)
        own_site = data[site_column].astype(str).to_numpy()
        for site, flipped in flips.items():
            other |= flipped & (own_site != site)
        details = {"probe": "site_style", "kind": "text", "rows": n, "styles": dict(SITE_STYLES)}
        out.shares(grouping, other, "site_style_flip_rate", scope_part(site_column), details)
        cells = []
        o = out.options
        for site in sites:
            mine = np.flatnonzero(own_site == site)
            for style_of in sites:
                if style_of == site:
                    cells.append({"site": site, "style_of": style_of, "value": 0.0, "ci": None, "n": int(len(mine)), "own": True})
                    continue
                scope = f"{scope_part(site_column)}={scope_part(site)}/style={scope_part(style_of)}"
                detail = {"probe": "site_style", "kind": "text", "site": site, "style_of": style_of,
                          "style": SITE_STYLES[style_of], "rows": int(len(mine))}  # fmt: skip
                if len(mine) == 0:
                    metric = stats.not_applicable("site_style_flip_rate", scope, f"no held-out patient of {site} in the data", detail)
                    out.metrics.append(metric)
                else:
                    from guardrail.fairness.intervals import rate_interval

                    share = flips[style_of][mine]
                    ci = rate_interval(int(share.sum()), len(share), o.confidence)
                    metric = MetricResult(
                        key="robustness.site_style_flip_rate", scope=scope, value=float(share.mean()), ci=ci,
                        n=int(len(share)), higher_is_better=False, details=detail,
                    )  # fmt: skip
                    out.metrics.append(metric)
                cells.append(
                    {"site": site, "style_of": style_of, "value": metric.value,
                     "ci": None if metric.ci is None else [metric.ci.low, metric.ci.high], "n": int(len(mine)), "own": False}  # fmt: skip
                )
        out.site_style = {"sites": sites, "styles": dict(SITE_STYLES), "cells": cells}
        out.probes.append(
            {"probe": "site_style", "kind": "text", "scope": scope_part(site_column), "rows": n, "applicable": n,
             "label": "each held-out note rewritten in every other hospital's style from the same record"}  # fmt: skip
        )
        for site in sites:
            after = by_site[site]
            candidates = np.flatnonzero(flips[site] & (own_site != site))
            for row in _chosen(candidates, None, 1 if o.examples else 0):
                out.examples.append(
                    _example("site_style", f"style={scope_part(site)}", probe_data, int(row), own_note, after, int(row),
                             group=own_site[row], before_text=original[row], after_text=notes[SITE_STYLES[site]][row])  # fmt: skip
                )

    return [Plan(frames, finish)]
