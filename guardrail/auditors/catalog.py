"""Which metrics a spec's audits can produce, and the check of policy rules against them.

Every built-in auditor declares two things:

* ``METRIC_KEYS`` (class attribute): glob patterns of every key it can produce under any
  params and any spec (``fairness.*_difference``), so that a policy file can be checked
  on its own;
* ``metric_catalog(spec)``: the keys it may produce for one spec, each with the scopes it
  reports them in (glob patterns too: ``sex``, ``sex+race``, ``sex/class=*``, or ``*`` where
  the scopes come from the data, such as feature names or words).

Before any audit runs, every rule of every policy is checked against the union of the
catalogs: a key no audit of the spec can produce, or a scope it never audits, is a spec
error (exit 3) with the rule's file and line and the closest key or scope. A rule that
says what to do when its evidence is missing (``on_missing: skip`` or ``warn``) may name a
key the spec's audits do not produce, as long as some auditor can produce it with other
params (optional evidence, e.g. a LiRA rule in a pack shared by specs without LiRA).
A spec using an auditor that declares no catalog (a third-party one) gets the scope checks
of the keys that are declared, but no "unknown key" errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from guardrail.core.errors import Problem, SpecError

if TYPE_CHECKING:
    from guardrail.spec.loader import LoadedPolicy

UNSCOPED = ""
"""The scope pattern of a metric reported without a scope."""
ANY_SCOPE = "*"
"""Scopes that come from the data (feature names, words, hospitals)."""


@dataclass(frozen=True)
class MetricCatalog:
    """Metric keys (glob patterns) and the scopes (glob patterns; ``""`` = unscoped) each is reported in."""

    entries: tuple[tuple[str, frozenset[str]], ...] = ()
    possible: tuple[str, ...] = ()
    """Key patterns producible under other params or specs (for rules on optional evidence)."""
    complete: bool = True
    """False when an audit of the spec declares no catalog: unknown keys are then not errors."""

    @classmethod
    def of(cls, keys: Iterable[tuple[str, Iterable[str]]], possible: Iterable[str] = ()) -> MetricCatalog:
        return cls(tuple((key, frozenset(scopes)) for key, scopes in keys), tuple(possible))

    def __add__(self, other: MetricCatalog) -> MetricCatalog:
        return MetricCatalog(self.entries + other.entries, self.possible + other.possible, self.complete and other.complete)

    def scopes(self, key: str) -> frozenset[str] | None:
        """Every scope pattern ``key`` is reported in, or None when no entry produces ``key``."""
        found = [scopes for pattern, scopes in self.entries if fnmatchcase(key, pattern)]
        return frozenset().union(*found) if found else None

    def could_produce(self, key: str) -> bool:
        return self.scopes(key) is not None or any(fnmatchcase(key, pattern) for pattern in self.possible)

    def keys(self) -> list[str]:
        return sorted({pattern for pattern, _ in self.entries})


@dataclass(frozen=True)
class RuleProblem:
    """A rule that can never be answered by this spec's audits."""

    rule_id: str
    metric: str
    message: str
    hint: str
    where: str | None = field(default=None)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"fairness.x[sex]"`` → ``("fairness.x", "sex")``; an unscoped ref has scope None."""
    if ref.endswith("]") and "[" in ref:
        key, _, scope = ref[:-1].partition("[")
        return key, scope
    return ref, None


def rule_problems(policies: Sequence[LoadedPolicy], catalog: MetricCatalog) -> list[RuleProblem]:
    """Every rule of ``policies`` whose metric ``catalog`` can never produce (see the module docstring)."""
    problems = []
    for loaded in policies:
        for rule in loaded.policy.rules:
            problem = _problem(rule.metric, rule.on_missing, catalog)
            if problem is not None:
                message, hint = problem
                path, line = loaded.rule_lines.get(rule.id, (loaded.path, 0))
                where = f"{path}:{line}" if line else str(path)
                problems.append(RuleProblem(rule.id, rule.metric, f"rule {rule.id}: {message}", hint, where))
    return problems


def check_rules(policies: Sequence[LoadedPolicy], catalog: MetricCatalog) -> None:
    """Raise :class:`SpecError` (exit 3) naming every rule ``catalog`` can never answer, one
    problem each (the command line prints a line per rule)."""
    problems = rule_problems(policies, catalog)
    if problems:
        raise SpecError.of([Problem(problem.message, problem.where, problem.hint) for problem in problems])


def _problem(ref: str, on_missing: str, catalog: MetricCatalog) -> tuple[str, str] | None:
    key, scope = split_ref(ref)
    scopes = catalog.scopes(key)
    if scopes is None:
        if not catalog.complete or (on_missing in ("skip", "warn") and catalog.could_produce(key)):
            return None
        close = difflib.get_close_matches(key, _concrete(catalog.keys()), n=1, cutoff=0.6)
        optional = catalog.could_produce(key)
        message = f"no audit of this spec produces {key}"
        if optional:
            hint = "add the audit (or the params) that produces it, or set on_missing: warn or skip on the rule"
        elif close:
            hint = f"did you mean {close[0]}?"
        else:
            hint = "see the metric keys on the user guide's audit pages (docs/fairness.md and its neighbours), or `guardrail schema policy`"
        return message, hint
    if scope is None or any(fnmatchcase(scope, pattern) for pattern in scopes):
        return None
    named = sorted(s for s in scopes if s and s != ANY_SCOPE)
    close = difflib.get_close_matches(scope, named, n=1, cutoff=0.5)
    if UNSCOPED in scopes and not named:
        return f"{key} has no scopes, but the rule asks for [{scope}]", f"use {key} without [{scope}]"
    listed = ", ".join(named) if named else "none"
    hint = f"did you mean {key}[{close[0]}]?" if close else f"the audited scopes of {key} are: {listed}"
    return f"this spec never audits {key} in scope [{scope}]", hint


def _concrete(patterns: list[str]) -> list[str]:
    """Keys to suggest: the patterns without wildcards (a suggestion must be a key one can write)."""
    return [p for p in patterns if not any(c in p for c in "*?[")]


REGRESSION_PREFIX = "regression."


def with_regression(catalog: MetricCatalog, *, recorded: bool) -> MetricCatalog:
    """``catalog`` plus the ``regression.<key>`` metrics a run gains against an approved run
    (:mod:`guardrail.history.regression`): possible when the run is recorded in a history
    (an approved run may be there), optional evidence otherwise."""
    regression = tuple((REGRESSION_PREFIX + key, scopes) for key, scopes in catalog.entries)
    if recorded:
        return catalog + MetricCatalog(regression)
    return catalog + MetricCatalog(possible=tuple(key for key, _ in regression))


def check_vocabulary(policy: LoadedPolicy, patterns: Sequence[str] | None) -> None:
    """A policy file checked on its own (``guardrail validate policy.yaml``): raise
    :class:`SpecError` for a rule on a key that no auditor produces under any params.
    ``patterns`` is every registered auditor's ``METRIC_KEYS``, None when one declares none."""
    if patterns is None:
        return
    catalog = MetricCatalog(entries=tuple((p, frozenset({ANY_SCOPE, UNSCOPED})) for p in patterns))
    check_rules([policy], catalog)
