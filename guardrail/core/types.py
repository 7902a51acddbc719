"""Frozen result types shared by every layer, with a lossless JSON round-trip.

These types are the contract between auditors, the policy engine, the renderers and the CLI.
They hold plain data only (numbers, strings, tuples, JSON-able mappings) so that a
:class:`RunRecord` read back from ``run.json`` equals the one that was written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guardrail.core.exitcodes import ExitCode
from guardrail.core.vocab import SMALL_GROUP as SMALL_GROUP  # re-exported: results name their reasons with it
from guardrail.core.vocab import AuditStatus as AuditStatus
from guardrail.core.vocab import OutcomeStatus as OutcomeStatus
from guardrail.core.vocab import Severity as Severity

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.core.verdict import Verdict

SCHEMA_VERSION = 1
"""Version of the ``run.json`` layout; bumped on any incompatible change."""

@dataclass(frozen=True)
class Quantile:
    """One quantile of a bootstrap distribution."""

    level: float
    value: float


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` at ``level`` computed by ``method``.

    Bootstrap intervals also keep the number of ``resamples``, how many of them left the
    value ``undefined`` (e.g. a group without positives), and a table of ``quantiles`` of
    the bootstrap distribution, from which an interval at another level can be read.
    """

    low: float
    high: float
    level: float = 0.95
    method: str = "percentile"
    resamples: int = 0
    undefined: int = 0
    quantiles: tuple[Quantile, ...] = ()

    def __repr__(self) -> str:
        resamples = f", {self.resamples} resamples" if self.resamples else ""
        return f"<Interval {_num(self.low)}–{_num(self.high)} ({self.level:.0%} {self.method}{resamples})>"

    def bound(self, tail: float, side: str) -> float:
        """The ``side`` ("low"/"high") bound leaving probability ``tail`` outside, read from
        the quantile table by linear interpolation.

        Beyond the table's extreme levels (a tail the resamples cannot resolve), the bound is
        extrapolated with a normal tail fitted to the central interval, and never drawn in
        from the table's extreme: corrections may widen an interval, never narrow it.
        """
        if not self.quantiles:
            if abs(tail - (1 - self.level) / 2) > 1e-12:
                raise ValueError("this interval has no quantile table to read other levels from")
            return self.low if side == "low" else self.high
        level = tail if side == "low" else 1 - tail
        levels = [q.level for q in self.quantiles]
        values = [q.value for q in self.quantiles]
        if level < levels[0] or level > levels[-1]:
            return self._normal_tail(level, values[0] if level < levels[0] else values[-1])
        if level == levels[0]:
            return values[0]
        if level == levels[-1]:
            return values[-1]
        for (l0, v0), (l1, v1) in zip(zip(levels, values), zip(levels[1:], values[1:]), strict=False):
            if l0 <= level <= l1:
                return v0 + (v1 - v0) * (level - l0) / (l1 - l0)
        raise AssertionError("unreachable")

    def _normal_tail(self, level: float, extreme: float) -> float:
        from statistics import NormalDist

        by_level = {q.level: q.value for q in self.quantiles}
        center, low, high = by_level.get(0.5), by_level.get(0.025), by_level.get(0.975)
        if center is None or low is None or high is None or high <= low:
            return extreme
        spread = (high - low) / (2 * NormalDist().inv_cdf(0.975))
        extrapolated = center + NormalDist().inv_cdf(level) * spread
        return min(extrapolated, extreme) if level < 0.5 else max(extrapolated, extreme)


@dataclass(frozen=True)
class GroupValue:
    """One group's value of a metric, with the group's size.

    ``small`` marks a group below the auditor's minimum group size: it is reported, never
    dropped, and rules with ``min_group_n`` treat it as too small to judge.
    """

    group: str
    value: float | None
    n: int
    small: bool = False
    reason: str | None = None
    ci: Interval | None = None

    def __post_init__(self) -> None:
        _check_finite(self.value, f"group {self.group!r}")


@dataclass(frozen=True)
class MetricResult:
    """One metric: a finite value, or ``None`` with the reason it could not be computed.

    ``key`` is namespaced by auditor (``fairness.demographic_parity_ratio``); ``scope``
    names what it was computed over (``sex``, or ``sex+race`` for an intersection).
    """

    key: str
    value: float | None
    scope: str | None = None
    reason: str | None = None
    ci: Interval | None = None
    by_group: tuple[GroupValue, ...] = ()
    n: int | None = None
    higher_is_better: bool | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_finite(self.value, self.ref)
        if self.value is None and not self.reason:
            raise ValueError(f"metric {self.ref} has no value and no reason")

    @property
    def ref(self) -> str:
        """The key with its scope, e.g. ``fairness.demographic_parity_ratio[sex]``."""
        return f"{self.key}[{self.scope}]" if self.scope else self.key

    def to_frame(self) -> pd.DataFrame:
        """This metric as a tidy DataFrame: its overall row (``group`` None), then one row
        per group (columns: :data:`guardrail.core.frames.METRIC_COLUMNS`) — except for a
        disparity, whose per-group values are another rate's and appear under that rate's key."""
        from guardrail.core.frames import frame, metric_rows

        return frame(metric_rows(self))

    def by_group_frame(self) -> pd.DataFrame:
        """This metric's group values, indexed by group like fairlearn's ``MetricFrame.by_group``
        (a ``MultiIndex`` named by the sensitive features for an intersection)."""
        from guardrail.core.frames import by_group_frame

        return by_group_frame([self], derived=True)

    def __repr__(self) -> str:
        ref = _cut(self.ref, 100)
        shown = f"{ref} = {_num(self.value)}" if self.value is not None else f"{ref}: no value ({_cut(self.reason)})"
        ci = f" ({self.ci.level:.0%} CI {_num(self.ci.low)}–{_num(self.ci.high)})" if self.ci is not None else ""
        n = f", n={self.n:,}" if self.n is not None else ""
        groups = f", {len(self.by_group)} groups" if self.by_group else ""
        return f"<MetricResult {shown}{ci}{n}{groups}>"

    def _repr_html_(self) -> str:
        """Jupyter display. The one import from an upper layer, deferred to display time."""
        from guardrail.report.notebook import metric_html

        return metric_html(self)


@dataclass(frozen=True)
class ErrorInfo:
    """Why an audit or a rule could not be evaluated, and how to fix it."""

    type: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class AuditResult:
    """What one auditor produced. An auditor that crashed has ``status == ERROR``."""

    audit_id: str
    auditor: str
    status: AuditStatus
    metrics: tuple[MetricResult, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, Any] = field(default_factory=dict)
    error: ErrorInfo | None = None
    duration_s: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        """Every metric as tidy rows (see :meth:`MetricResult.to_frame`), with the audit's id;
        an audit that errored or was skipped gives one row saying why."""
        from guardrail.core.frames import audit_rows, frame

        return frame(audit_rows(self))

    def by_group_frame(self, scope: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The groups of one scope (``"sex"``, ``"sex+race"`` or ``["sex", "race"]``; may be
        left out when there is one) as rows, one column per metric key, like fairlearn's
        ``MetricFrame.by_group`` (see :mod:`guardrail.core.frames`).

        >>> result = AuditResult("f", "fairness", AuditStatus.OK, (
        ...     MetricResult("fairness.tpr", 0.5, scope="sex", by_group=(GroupValue("F", 0.4, 40), GroupValue("M", 0.6, 60))),))
        >>> result.by_group_frame()["fairness.tpr"].to_dict()
        {'F': 0.4, 'M': 0.6}
        """
        from guardrail.core.frames import by_group_frame

        return by_group_frame(self.metrics, scope)

    def __repr__(self) -> str:
        what = _cut(self.audit_id, 60) + ("" if self.audit_id == self.auditor else f" ({_cut(self.auditor, 40)})")
        error = f", {self.error.type}: {_cut(self.error.message)}" if self.error is not None else ""
        return f"<AuditResult {what}: {len(self.metrics)} metrics, status {self.status.value}{error}, {self.duration_s:.1f} s>"

    def _repr_html_(self) -> str:
        """Jupyter display. The one import from an upper layer, deferred to display time."""
        from guardrail.report.notebook import audit_html

        return audit_html(self)


@dataclass(frozen=True)
class SourceLocation:
    """Where something is written: a file (absolute path) and a 1-based line."""

    path: str
    line: int


@dataclass(frozen=True)
class Requirement:
    """What a rule required of the value it judged, as data: ``op`` (the rule's ``le ge lt gt
    eq between``), the ``threshold`` applied (two numbers for ``between``), the bound it was
    judged ``on`` (``value ci_low ci_high worst``) and ``eq``'s ``tolerance``."""

    op: str
    threshold: tuple[float, ...]
    on: str = "value"
    tolerance: float = 0.0


@dataclass(frozen=True)
class RuleOutcome:
    """The verdict of one rule on one metric (one outcome per matched scope)."""

    rule_id: str
    policy: str
    metric: str
    severity: Severity
    status: OutcomeStatus
    reason: str
    expected: str
    message: str
    observed: float | None = None
    ci: Interval | None = None
    """The interval the rule was judged on (corrected, if the policy corrects), if any."""
    rationale: str | None = None
    reference: str | None = None
    location: SourceLocation | None = None
    """Where the rule is written (the policy file and the line of its ``id``)."""
    requirement: Requirement | None = None
    """The requirement judged against (``expected`` says it in words); ``None`` for a rule with
    no threshold (``present``) and in records written before it was kept."""

    def blocks(self, fail_on: Severity = Severity.DENY) -> bool:
        """Whether this outcome, if not a pass, stops a build under ``fail_on``."""
        if self.severity is Severity.DENY:
            return True
        return self.severity is Severity.WARN and fail_on is Severity.WARN

    def to_frame(self) -> pd.DataFrame:
        """This outcome as a one-row DataFrame (columns: :data:`guardrail.core.frames.OUTCOME_COLUMNS`)."""
        from guardrail.core.frames import OUTCOME_COLUMNS, frame, outcome_row

        return frame([outcome_row(self)], OUTCOME_COLUMNS)

    def __repr__(self) -> str:
        observed = f" = {_num(self.observed)}" if self.observed is not None else ""
        what = f"{_cut(self.rule_id, 60)} {self.status.value} ({self.severity.value}): {_cut(self.metric, 100)}"
        return f"<RuleOutcome {what}{observed}>"

    def _repr_html_(self) -> str:
        """Jupyter display. The one import from an upper layer, deferred to display time."""
        from guardrail.report.notebook import outcome_html

        return outcome_html(self)


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    path: str
    sha256: str
    rules: int


@dataclass(frozen=True)
class PolicyVerdict:
    outcomes: tuple[RuleOutcome, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()

    def counts(self) -> dict[str, int]:
        """Number of outcomes per status, every status present."""
        counts = {status.value: 0 for status in OutcomeStatus}
        for outcome in self.outcomes:
            counts[outcome.status.value] += 1
        return counts

    def to_frame(self) -> pd.DataFrame:
        """One row per rule outcome: rule, policy, metric, scope, status, severity, observed
        value, interval, expected, reason and message (:data:`guardrail.core.frames.OUTCOME_COLUMNS`)."""
        from guardrail.core.frames import OUTCOME_COLUMNS, frame, outcome_row

        return frame((outcome_row(o) for o in self.outcomes), OUTCOME_COLUMNS)

    def __repr__(self) -> str:
        policies = ", ".join(p.name for p in self.policies) or "none"
        return f"<PolicyVerdict {self._counted()}; policies: {_cut(policies)}>"

    def _counted(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items() if n)
        return f"{len(self.outcomes)} outcomes ({counts})" if counts else "no outcomes"

    def _repr_html_(self) -> str:
        """Jupyter display. The one import from an upper layer, deferred to display time."""
        from guardrail.report.notebook import verdict_html

        return verdict_html(self)


@dataclass(frozen=True)
class FileDigest:
    role: str
    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Provenance:
    guardrail_version: str
    python: str
    platform: str
    packages: Mapping[str, str]
    seeds: Mapping[str, int]
    files: tuple[FileDigest, ...]
    command: str
    git_commit: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """Everything about one audit run; written once as ``run.json``, read by every renderer."""

    run_id: str
    name: str
    started_at: str
    finished_at: str
    spec_path: str
    spec_sha256: str
    spec: Mapping[str, Any]
    results: tuple[AuditResult, ...]
    verdict: PolicyVerdict
    provenance: Provenance
    schema_version: int = SCHEMA_VERSION
    outputs: tuple[FileDigest, ...] = ()
    """Digests of the other reports written with this record (paths relative to its folder),
    so that ``guardrail verify`` can tell whether any of them changed since."""
    gated: bool = True
    """Whether the policies decide this run. ``False`` only when the caller asked for
    measurements without a gate (``--no-gate``); a gated run with no blocking rule judged
    on evidence is incomplete, never a pass (:mod:`guardrail.core.verdict`)."""
    scan: Mapping[str, Any] | None = None
    """How the rows were read: the engine (memory, stream, ray), why, the rows and partitions
    read, the seconds the pass took and, for a streaming engine, what was sampled for the
    audits that read rows (:mod:`guardrail.run.scan`). ``None`` in records older than it."""

    def judged(self, fail_on: Severity = Severity.DENY) -> Verdict:
        """The run's verdict word, exit code and explaining sentence: the one place they are computed."""
        from guardrail.core.verdict import judge

        return judge(self.results, self.verdict, gated=self.gated, fail_on=fail_on)

    def exit_code(self, fail_on: Severity = Severity.DENY) -> ExitCode:
        """The process exit code for this run (see :meth:`judged`).

        Precedence: incomplete (2) over violation (1) over pass (0); a gated run in which
        no blocking rule was judged on evidence is incomplete.
        """
        return self.judged(fail_on).code

    def metrics(self) -> tuple[MetricResult, ...]:
        """Every metric of every audit, in order."""
        return tuple(metric for result in self.results for metric in result.metrics)

    def to_frame(self) -> pd.DataFrame:
        """Every metric of every audit as tidy rows (see :meth:`AuditResult.to_frame`); the
        rule outcomes are ``record.verdict.to_frame()``."""
        from guardrail.core.frames import audit_rows, frame

        return frame(row for result in self.results for row in audit_rows(result))

    def by_group_frame(self, scope: str | Sequence[str] | None = None, *, audit: str | None = None) -> pd.DataFrame:
        """The groups of one scope as rows, one column per metric key (see
        :meth:`AuditResult.by_group_frame`), over every audit or the one whose id is ``audit``."""
        from guardrail.core.frames import by_group_frame

        results = [r for r in self.results if audit is None or r.audit_id == audit]
        if not results:
            raise ValueError(f"no audit {audit!r} in this run; audits: {', '.join(r.audit_id for r in self.results)}")
        return by_group_frame([m for r in results for m in r.metrics], scope)

    def __repr__(self) -> str:
        judged = self.judged()
        return (
            f"<RunRecord {_cut(self.name)} {self.run_id}: {judged.word} (exit {int(judged.code)}), "
            f"{len(self.results)} audits, {len(self.metrics())} metrics, {self.verdict._counted()}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter display. The one import from an upper layer, deferred to display time."""
        from guardrail.report.notebook import record_html

        return record_html(self)


def _num(value: float | None) -> str:
    """A number as a repr shows it: four significant digits."""
    return "None" if value is None else f"{value:.4g}"


def _cut(text: str | None, limit: int = 80) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _check_finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{what}: value must be finite or None (with a reason), got {value!r}")
