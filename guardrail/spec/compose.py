"""Policy packs that compose: a policy extends others and may only change them with a reason.

Semantics (tested as properties):

* inherited rules apply as they are, in the order of ``extends`` then of each parent;
* a rule whose id matches an inherited one replaces it only if it says why (``overrides:``);
  a rule that says ``overrides:`` must replace something;
* ``disable:`` removes inherited rules, each with a reason; it cannot name an unknown rule;
* two parents that define the same id differently are a conflict the child must resolve
  with an ``overrides:`` rule;
* the result is a flat policy, so evaluation knows nothing of inheritance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from guardrail.core.errors import Problem, SpecError
from guardrail.spec.models import PolicySpec, RuleSpec

if TYPE_CHECKING:
    from guardrail.spec.loader import LoadedPolicy
    from guardrail.spec.yamlsource import YamlDocument


def compose(child: PolicySpec, parents: Sequence[LoadedPolicy], document: YamlDocument) -> PolicySpec:
    """The flattened policy: ``parents``' rules, then ``child``'s disables and rules applied."""
    inherited: dict[str, RuleSpec] = {}
    conflicts: dict[str, list[str]] = {}
    for parent in parents:
        for rule in parent.policy.rules:
            if rule.id in inherited and inherited[rule.id] != rule:
                conflicts.setdefault(rule.id, []).append(parent.policy.name)
            inherited.setdefault(rule.id, rule)
    problems: list[Problem] = []  # every problem of the file, reported together
    for i, disabled in enumerate(child.disable):
        if disabled.id not in inherited:
            problems.append(Problem(
                f"disable[{i}]: no inherited rule {disabled.id!r} to disable",
                document.where(("disable", i, "id")),
                f"inherited rules: {', '.join(inherited) or '(none)'}",
            ))
            continue
        del inherited[disabled.id]
        conflicts.pop(disabled.id, None)
    own: list[RuleSpec] = []
    for i, rule in enumerate(child.rules):
        if rule.id in inherited:
            if rule.overrides is None:
                problems.append(Problem(
                    f"rules[{i}]: rule {rule.id!r} redefines an inherited rule without saying why",
                    document.where(("rules", i, "id")),
                    "add `overrides: <reason>` to replace it, or give the rule a new id",
                ))
                continue
            inherited[rule.id] = rule
            conflicts.pop(rule.id, None)
        elif rule.overrides is not None:
            problems.append(Problem(
                f"rules[{i}]: rule {rule.id!r} says it overrides an inherited rule, but none has that id",
                document.where(("rules", i, "overrides")),
            ))
        else:
            own.append(rule)
    for rule_id, names in conflicts.items():
        problems.append(Problem(
            f"rule {rule_id!r} is defined differently by the policies this one extends ({', '.join(names)})",
            document.where(("extends",)),
            f"resolve it here with a rule {rule_id!r} that has `overrides: <reason>`",
        ))
    if problems:
        raise SpecError.of(problems)
    rules = (*inherited.values(), *own)
    if not rules:
        raise SpecError("after disabling, this policy has no rules left", where=document.where(("disable",)))
    return child.model_copy(update={"rules": rules, "extends": (), "disable": ()})
