"""Policy packs that compose: inheritance, overrides and disables only with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.core.errors import SpecError
from guardrail.spec.loader import load_policy

HEADER = "schema_version: 1\nkind: policy\nname: {name}\n"


def _rule(rule_id: str, threshold: float = 0.8, extra: str = "") -> str:
    return f"  - {{id: {rule_id}, metric: m.x, op: ge, threshold: {threshold}, rationale: r{extra}}}\n"


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(HEADER.format(name=name) + body)
    return path


def test_child_inherits_overrides_with_reason_and_disables(tmp_path: Path) -> None:
    _write(tmp_path, "org", "rules:\n" + _rule("A") + _rule("B") + _rule("C"))
    child = _write(
        tmp_path,
        "model",
        "extends: [org.yaml]\ndisable:\n  - {id: B, reason: not applicable to this model}\nrules:\n"
        + _rule("A", 0.9, ", overrides: stricter for this model")
        + _rule("D"),
    )
    loaded = load_policy(child)
    assert [(r.id, r.threshold) for r in loaded.policy.rules] == [("A", 0.9), ("C", 0.8), ("D", 0.8)]
    assert [p.name for p in loaded.sources] == ["model.yaml", "org.yaml"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules:\n" + _rule("A", 0.9), "rule 'A' redefines an inherited rule without saying why"),
        ("rules:\n" + _rule("Z", 0.9, ", overrides: x"), "says it overrides an inherited rule, but none has that id"),
        ("disable:\n  - {id: Z, reason: x}\nrules:\n" + _rule("Q"), "no inherited rule 'Z' to disable"),
        ("disable:\n  - {id: A}\n", "disable[0].reason: required key missing"),
    ],
    ids=["override-without-reason", "override-of-nothing", "disable-unknown", "disable-without-reason"],
)
def test_changes_to_inherited_rules_need_a_reason(tmp_path: Path, body: str, message: str) -> None:
    _write(tmp_path, "org", "rules:\n" + _rule("A"))
    child = _write(tmp_path, "model", "extends: [org.yaml]\n" + body)
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        load_policy(child)
    assert "model.yaml:" in str(info.value)


def test_every_composition_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    _write(tmp_path, "org", "rules:\n" + _rule("A") + _rule("B"))
    child = _write(
        tmp_path,
        "model",
        "extends: [org.yaml]\ndisable:\n  - {id: Z, reason: x}\nrules:\n" + _rule("A", 0.9) + _rule("Y", 0.9, ", overrides: x"),
    )
    with pytest.raises(SpecError) as info:
        load_policy(child)
    said = [(p.where or "").rsplit("/", 1)[-1] + " " + p.message for p in info.value.problems]
    assert said == [
        "model.yaml:6 disable[0]: no inherited rule 'Z' to disable",
        "model.yaml:8 rules[0]: rule 'A' redefines an inherited rule without saying why",
        "model.yaml:9 rules[1]: rule 'Y' says it overrides an inherited rule, but none has that id",
    ]


def test_conflicting_parents_and_cycles_are_errors(tmp_path: Path) -> None:
    _write(tmp_path, "a", "rules:\n" + _rule("R", 0.8))
    _write(tmp_path, "b", "rules:\n" + _rule("R", 0.7))
    child = _write(tmp_path, "c", "extends: [a.yaml, b.yaml]\n")
    with pytest.raises(SpecError, match="rule 'R' is defined differently by the policies this one extends"):
        load_policy(child)
    resolved = _write(tmp_path, "d", "extends: [a.yaml, b.yaml]\nrules:\n" + _rule("R", 0.75, ", overrides: compromise"))
    assert load_policy(resolved).policy.rules[0].threshold == 0.75
    _write(tmp_path, "x", "extends: [y.yaml]\n")
    _write(tmp_path, "y", "extends: [x.yaml]\n")
    with pytest.raises(SpecError, match="cycle"):
        load_policy(tmp_path / "x.yaml")


def test_shipped_eu_pack_extends_baseline() -> None:
    repo = Path(__file__).resolve().parents[2]
    loaded = load_policy(repo / "policies" / "eu-ai-act-high-risk.yaml")
    ids = [rule.id for rule in loaded.policy.rules]
    assert ids[:3] == ["FAIR-001", "FAIR-002", "FAIR-003"] and "EUAI-ACC-1" in ids
    assert next(r for r in loaded.policy.rules if r.id == "FAIR-003").severity == "deny"
    assert all(rule.reference for rule in loaded.policy.rules)


ids = st.lists(st.sampled_from(list("ABCDEFGH")), unique=True, max_size=6)


@settings(max_examples=60, deadline=None)
@given(parent=ids, disabled=ids, overridden=ids, new=ids)
def test_inheritance_semantics(tmp_path_factory: pytest.TempPathFactory, parent, disabled, overridden, new) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("compose")
    disabled = [i for i in disabled if i in parent]
    overridden = [i for i in overridden if i in parent and i not in disabled]
    new = [i.lower() for i in new]  # ids the parent cannot have
    if not parent:
        return
    _write(folder, "parent", "rules:\n" + "".join(_rule(i) for i in parent))
    body = "extends: [parent.yaml]\n"
    if disabled:
        body += "disable:\n" + "".join(f"  - {{id: {i}, reason: r}}\n" for i in disabled)
    rules = [_rule(i, 0.5, ", overrides: why") for i in overridden] + [_rule(i, 0.6) for i in new]
    if rules:
        body += "rules:\n" + "".join(rules)
    child = _write(folder, "child", body)
    kept = [i for i in parent if i not in disabled]
    if not kept and not new:
        with pytest.raises(SpecError, match="no rules left"):
            load_policy(child)
        return
    result = {r.id: r.threshold for r in load_policy(child).policy.rules}
    assert list(result) == kept + new  # inherited order, then the child's own rules
    for i in kept:
        assert result[i] == (0.5 if i in overridden else 0.8)
    for i in new:
        assert result[i] == 0.6
