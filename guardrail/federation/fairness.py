"""Fairness every round: per-(hospital, group) confusion counts as flat metrics, and the
server's per-hospital and federation-wide fairness metrics from them.

A hospital sends, for each grouping (``sex``; ``age`` split at 55), the four confusion
cells of every group as integers in a Flower ``MetricRecord`` (which holds only numbers
and lists of numbers). Keys follow one scheme::

    cm/<attribute>=<group>/<cell>        e.g.  cm/sex=Female/tp   cm/age=55 and over/fn

``<cell>`` is one of ``tn``, ``fp``, ``fn``, ``tp`` (true label, then prediction). In the
attribute and the group, ``%``, ``/`` and ``=`` are percent-escaped (``%25``, ``%2F``,
``%3D``), so any label round-trips and a key splits unambiguously: strip ``cm/``, split
off the cell at the last ``/``, split attribute from group at the one ``=``. Keys without
the ``cm/`` prefix are other metrics and are ignored. Counts from several hospitals add up
(:func:`sum_counts`): the federation's table is the pooled table.

At the server the tables go through the fairness audit's own result builder
(:mod:`guardrail.fairness.results`: rates and disparities from count tables, exact intervals
for rates, the stratified bootstrap of the table within exact bounds for gaps), so the
numbers and intervals are those the fairness audit computes on the pooled rows. Groups smaller than ``min_group_size`` are never scored:
their rates and every disparity involving them come out undefined (``value=None``) with a
reason starting ``small_group``, and the raw estimate only in ``details["estimate"]`` — a
tiny group cannot show a perfect score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from guardrail.core.errors import DataError
from guardrail.core.scopes import hospital_scope, scope_part
from guardrail.core.types import MetricResult
from guardrail.fairness.metrics import DISPARITIES, RATES, DisparityName, RateName

if TYPE_CHECKING:
    import pandas as pd

PREFIX = "cm/"
CELLS: tuple[str, ...] = ("tn", "fp", "fn", "tp")
"""Cell ``2 * y_true + y_pred`` of a group's confusion table."""
AGE_CUTOFF = 55
GROUP_LABELS: Mapping[str, tuple[str, ...]] = {
    "sex": ("Female", "Male"),
    "age": (f"under {AGE_CUTOFF}", f"{AGE_CUTOFF} and over"),
}
"""The groupings and their groups, in report order; every group is always sent (zeros too)."""
FEDERATION = "federation"
WHERE = "fairness counts"
Cell = Literal["tn", "fp", "fn", "tp"]


@dataclass(frozen=True)
class CountTable:
    """One grouping's confusion counts: ``counts[g, y_true, y_pred]`` for group ``labels[g]``."""

    attribute: str
    labels: tuple[str, ...]
    counts: np.ndarray = field(compare=False)

    def __post_init__(self) -> None:
        if self.counts.shape != (len(self.labels), 2, 2):
            raise DataError(
                f"count table of {self.attribute!r} has shape {self.counts.shape}, expected ({len(self.labels)}, 2, 2)",
                where=WHERE,
            )

    @property
    def sizes(self) -> np.ndarray:
        sizes: np.ndarray = self.counts.sum(axis=(1, 2))
        return sizes


# -- hospital side ----------------------------------------------------------------------


def groups_of(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each row's group per grouping: sex, and age under 55 / 55 and over."""
    age = rows["age"].to_numpy(dtype=float)
    if np.isnan(age).any():
        raise DataError("age is missing for some rows", where=WHERE, hint="pass rows with a recorded age")
    older = GROUP_LABELS["age"][1]
    return {
        "sex": rows["sex"].astype(str).to_numpy(dtype=object),
        "age": np.where(age >= AGE_CUTOFF, older, GROUP_LABELS["age"][0]).astype(object),
    }


def confusion_tables(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    groups: Mapping[str, Sequence[str] | np.ndarray],
    labels: Mapping[str, tuple[str, ...]] = GROUP_LABELS,
) -> dict[str, CountTable]:
    """Per-group confusion tables of binary decisions, one per grouping, groups in ``labels`` order."""
    truth, pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if len(truth) != len(pred):
        raise DataError(f"{len(truth)} labels but {len(pred)} predictions", where=WHERE)
    tables = {}
    for attribute, members in groups.items():
        order = labels.get(attribute) or tuple(sorted({str(m) for m in members}))
        index = {label: i for i, label in enumerate(order)}
        unknown = sorted({str(m) for m in members} - set(index))
        if unknown:
            raise DataError(
                f"grouping {attribute!r} has unexpected group(s) {', '.join(map(repr, unknown))}",
                where=WHERE,
                hint=f"groups of {attribute!r} are {', '.join(map(repr, order))}",
            )
        codes = np.fromiter((index[str(m)] for m in members), dtype=np.int64, count=len(members))
        if len(codes) != len(truth):
            raise DataError(f"grouping {attribute!r} has {len(codes)} rows, expected {len(truth)}", where=WHERE)
        flat = np.bincount(codes * 4 + truth * 2 + pred, minlength=len(order) * 4)
        tables[attribute] = CountTable(attribute, order, flat.reshape(len(order), 2, 2))
    return tables


def hospital_counts(rows: pd.DataFrame, y_pred: Sequence[int] | np.ndarray, label: str = "heart_disease") -> dict[str, int]:
    """A hospital's metric record: confusion counts by sex and by age group of its decisions."""
    return encode_counts(confusion_tables(rows[label].to_numpy(), y_pred, groups_of(rows)))


def encode_counts(tables: Mapping[str, CountTable]) -> dict[str, int]:
    """Flat ``cm/<attribute>=<group>/<cell>`` → count, every cell of every group (zeros too).

    >>> table = CountTable("sex", ("Female", "Male"), np.array([[[3, 1], [0, 2]], [[5, 0], [1, 4]]]))
    >>> encode_counts({"sex": table})["cm/sex=Female/fp"]
    1
    """
    record: dict[str, int] = {}
    for attribute, table in tables.items():
        for g, label in enumerate(table.labels):
            for c, cell in enumerate(CELLS):
                record[count_key(attribute, label, cell)] = int(table.counts[g].reshape(-1)[c])
    return record


def count_key(attribute: str, group: str, cell: str) -> str:
    """The metric key of one confusion cell of one group.

    >>> count_key("age", "55 and over", "tp"), count_key("a/b", "x=y%", "fn")
    ('cm/age=55 and over/tp', 'cm/a%2Fb=x%3Dy%25/fn')
    """
    if cell not in CELLS:
        raise DataError(f"unknown confusion cell {cell!r}", where=WHERE, hint=f"use one of {', '.join(CELLS)}")
    return f"{PREFIX}{_escape(attribute)}={_escape(group)}/{cell}"


# -- server side ------------------------------------------------------------------------


def parse_key(key: str) -> tuple[str, str, str] | None:
    """``(attribute, group, cell)`` of a count key; ``None`` for a key that is not one."""
    if not key.startswith(PREFIX):
        return None
    body, _, cell = key[len(PREFIX) :].rpartition("/")
    parts = body.split("=")
    if cell not in CELLS or len(parts) != 2 or not parts[0]:
        raise DataError(
            f"malformed confusion-count key {key!r}",
            where=WHERE,
            hint="keys look like 'cm/<attribute>=<group>/<tn|fp|fn|tp>' with %, / and = escaped",
        )
    return _unescape(parts[0]), _unescape(parts[1]), cell


def decode_counts(
    metrics: Mapping[str, object], labels: Mapping[str, tuple[str, ...]] = GROUP_LABELS
) -> dict[str, CountTable]:
    """The count tables in a metric record (other keys ignored); inverse of :func:`encode_counts`.

    Known groupings list their groups in ``labels`` order (a group not sent counts 0);
    others in text order. Raises :class:`DataError` for negative, fractional or partial counts.
    """
    cells: dict[str, dict[str, dict[str, int]]] = {}
    for key, value in metrics.items():
        parsed = parse_key(key)
        if parsed is None:
            continue
        attribute, group, cell = parsed
        cells.setdefault(attribute, {}).setdefault(group, {})[cell] = _count(key, value)
    tables = {}
    for attribute, by_group in cells.items():
        known = labels.get(attribute, ())
        extra = sorted(set(by_group) - set(known))
        if known and extra:
            raise DataError(
                f"grouping {attribute!r} has unexpected group(s) {', '.join(map(repr, extra))}",
                where=WHERE,
                hint=f"groups of {attribute!r} are {', '.join(map(repr, known))}",
            )
        order = known or tuple(extra)
        _check_bounds(attribute, order)
        counts = np.zeros((len(order), 2, 2), dtype=np.int64)
        for g, label in enumerate(order):
            present = by_group.get(label)
            if present is None:
                continue
            if set(present) != set(CELLS):
                raise DataError(
                    f"group {label!r} of {attribute!r} lacks cell(s) {', '.join(c for c in CELLS if c not in present)}",
                    where=WHERE,
                    hint="send all four cells of every group (encode_counts does)",
                )
            counts[g] = np.array([present[c] for c in CELLS]).reshape(2, 2)
        tables[attribute] = CountTable(attribute, order, counts)
    return tables


def _check_bounds(attribute: str, labels: Sequence[str]) -> None:
    """A hospital's record obeys the bounds on one grouping that every audit applies
    (:mod:`guardrail.fairness.groups`): a record from a node cannot make the server or the
    report pay for 20,000 groups or a 5 MB label."""
    from guardrail.fairness.groups import LONG_LABEL_HINT, MAX_GROUPS, MAX_LABEL_CHARS, TOO_MANY_GROUPS, TOO_MANY_GROUPS_HINT

    if len(labels) > MAX_GROUPS:
        what = f"grouping {attribute!r} of the fairness counts"
        raise DataError(TOO_MANY_GROUPS.format(what=what, count=len(labels), limit=MAX_GROUPS), where=WHERE, hint=TOO_MANY_GROUPS_HINT)
    for name in (attribute, *labels):
        if len(name) > MAX_LABEL_CHARS:
            raise DataError(
                f"the fairness counts name a group or grouping of {len(name):,} characters, more than the limit of {MAX_LABEL_CHARS}",
                where=WHERE,
                hint=LONG_LABEL_HINT,
            )


def sum_counts(records: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """Cell-wise sum of several hospitals' count records (the federation's pooled counts).

    Use it as the strategy's metric aggregation for ``cm/`` keys: Flower's default weighted
    mean would turn counts into fractions.
    """
    total: dict[str, int] = {}
    for record in records:
        for key, value in record.items():
            if parse_key(key) is not None:
                total[key] = total.get(key, 0) + _count(key, value)
    return total


@dataclass(frozen=True)
class FederatedFairness:
    """Fairness metrics of one round: per hospital and over the whole federation."""

    per_hospital: Mapping[str, tuple[MetricResult, ...]]
    federation: tuple[MetricResult, ...]

    def all(self) -> tuple[MetricResult, ...]:
        return (*(m for ms in self.per_hospital.values() for m in ms), *self.federation)


def aggregate_fairness(
    records: Mapping[str, Mapping[str, object]],
    *,
    min_group_size: int = 30,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    rates: Sequence[RateName] = RATES,
    disparities: Sequence[DisparityName] = DISPARITIES,
) -> FederatedFairness:
    """Per-hospital and federation-wide fairness metrics from hospital name → count record.

    Scopes are ``hospital=<name>/<attribute>`` and ``federation/<attribute>``; the
    federation's table is the cell-wise sum of the hospitals' (the pooled rows' table).
    """

    def metrics_of(tables: Mapping[str, CountTable], scope: str) -> tuple[MetricResult, ...]:
        return tuple(
            metric
            for table in tables.values()
            for metric in fairness_metrics(
                table,
                scope=f"{scope}/{scope_part(table.attribute)}",
                min_group_size=min_group_size,
                bootstrap=bootstrap,
                confidence=confidence,
                seed=seed,
                rates=tuple(rates),
                disparities=tuple(disparities),
            )
        )

    per_hospital = {hospital: metrics_of(decode_counts(record), hospital_scope(hospital)) for hospital, record in records.items()}
    federation = metrics_of(decode_counts(sum_counts(records.values())), FEDERATION)
    return FederatedFairness(per_hospital, federation)


def fairness_metrics(
    table: CountTable,
    *,
    scope: str,
    min_group_size: int = 30,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    rates: tuple[RateName, ...] = RATES,
    disparities: tuple[DisparityName, ...] = DISPARITIES,
) -> list[MetricResult]:
    """Rates per group and disparities of one count table, with bootstrap intervals.

    Keys and meaning are the fairness audit's (``fairness.<rate>``, ``fairness.<disparity>``);
    groups below ``min_group_size`` make their rates and every disparity undefined.
    """
    from guardrail.fairness.bootstrap import grouping_rng, resample_counts
    from guardrail.fairness.results import GroupTable, disparity_metric, rate_metric

    if min_group_size < 1 or bootstrap < 0 or not 0.5 < confidence < 1:
        raise DataError(
            f"min_group_size {min_group_size!r}, bootstrap {bootstrap!r} or confidence {confidence!r} out of range",
            where=WHERE,
            hint="min_group_size ≥ 1, bootstrap ≥ 0, 0.5 < confidence < 1",
        )
    counts, labels = table.counts, table.labels
    # the fairness audit's stream for a grouping of this name: the same pooled table, the same resamples
    boot = resample_counts(counts, bootstrap, grouping_rng(seed, table.attribute)) if bootstrap else None
    evidence = GroupTable(labels, counts, boot, confidence, min_group_size)
    common: dict[str, object] = {
        "sensitive_features": [table.attribute],
        "min_group_size": min_group_size,
        "small_groups": [labels[i] for i in np.flatnonzero(evidence.small)],
    }
    results = [
        rate_metric(evidence, name, key=f"fairness.{name}", scope=scope, details=common, small="withhold") for name in rates
    ]
    results += [
        disparity_metric(evidence, name, key=f"fairness.{name}", scope=scope, details=common, small="withhold")
        for name in disparities
    ]
    return results


def _escape(text: str) -> str:
    return str(text).replace("%", "%25").replace("/", "%2F").replace("=", "%3D")


def _unescape(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def _count(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)):
        raise DataError(f"count {key!r} is {value!r}, not a number", where=WHERE)
    if isinstance(value, float) and not value.is_integer() or value < 0:
        raise DataError(
            f"count {key!r} is {value!r}, not a whole number ≥ 0",
            where=WHERE,
            hint="aggregate 'cm/' keys with sum_counts, not Flower's default weighted mean",
        )
    return int(value)


def _binary(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not np.isin(array, (0, 1)).all():
        raise DataError(f"{name} must be a 1-d sequence of 0/1", where=WHERE)
    return array.astype(np.int64)
