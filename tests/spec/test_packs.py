"""Policy packs shipped inside the package, named ``guardrail:<name>`` wherever a policy path is
accepted (issue 16): resolution from any folder, unknown names, ``extends:`` by name,
``guardrail list`` and ``validate``, and the provenance of a pack as used."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from guardrail.core.errors import SpecError
from guardrail.report.verify import verify
from guardrail.run.audit import run
from guardrail.spec.loader import load_policy, load_spec
from guardrail.spec.packs import PACK_PREFIX, pack_names, pack_path, pack_reference, pack_summary, resolve_policy_reference
from tests.conftest import REPO, run_cli

PACKS = REPO / "guardrail" / "packs"
SHIPPED = sorted(p.stem for p in PACKS.glob("*.yaml"))

SPEC = """\
schema_version: 1
kind: audit
name: packs
model: {{adapter: predictions, column: pred}}
data: {{path: data.csv, target: y, sensitive: [group]}}
audits:
  - {{id: fairness, use: fairness, params: {{min_group_size: 2, bootstrap: 20}}}}
policies:
{policies}report: {{out: out, history: false}}
"""

CHILD = """\
schema_version: 1
kind: policy
name: ours
extends: [{parent}]
rules:
  - id: OURS-1
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.5
    rationale: Our own limit on top of the pack.
"""


def _packaged(name: str) -> bytes:
    """The bytes of a pack as the installed package holds it (not through the repo's symlink)."""
    return resources.files("guardrail").joinpath("packs", f"{name}.yaml").read_bytes()


def _spec(folder: Path, *policies: str) -> Path:
    rows = ["y,pred,group"] + [f"{i % 2},{(i // 2) % 2},{'ab'[i % 2]}" for i in range(40)]
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    (folder / "spec.yaml").write_text(SPEC.format(policies="".join(f"  - {p}\n" for p in policies)))
    return folder / "spec.yaml"


def test_the_packs_are_the_files_of_the_package_folder() -> None:
    assert len(SHIPPED) == 9 and "data-governance" in SHIPPED and "robustness" in SHIPPED and "baseline" in SHIPPED and "eu-ai-act-high-risk" in SHIPPED
    assert list(pack_names()) == SHIPPED
    for name in SHIPPED:
        assert pack_path(PACK_PREFIX + name) == PACKS / f"{name}.yaml"
        assert pack_path(name) == PACKS / f"{name}.yaml"  # a bare name too
        assert pack_reference(PACKS / f"{name}.yaml") == PACK_PREFIX + name


def test_the_repository_policies_folder_is_a_relative_symlink_to_the_packs() -> None:
    link = REPO / "policies"
    assert link.is_symlink() and os.readlink(link) == os.path.join("guardrail", "packs")
    assert sorted(p.stem for p in link.glob("*.yaml")) == SHIPPED
    # a policy named through the symlink is the pack itself: one copy of every file
    assert pack_reference(link / "baseline.yaml") == "guardrail:baseline"
    if shutil.which("git") and (REPO / ".git").exists():
        done = subprocess.run(["git", "-C", str(REPO), "ls-files", "-s", "policies"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            assert done.stdout.split()[0] == "120000", "git must store policies as a symlink"


def test_a_pack_name_resolves_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_policy("guardrail:baseline")
    assert loaded.path == PACKS / "baseline.yaml" and loaded.policy.name == "baseline"
    assert loaded.path.read_bytes() == _packaged("baseline")
    assert resolve_policy_reference("guardrail:baseline", tmp_path) == PACKS / "baseline.yaml"
    assert resolve_policy_reference("mine.yaml", tmp_path) == tmp_path.resolve() / "mine.yaml"


def test_an_unknown_pack_name_lists_the_packs_and_suggests_the_closest() -> None:
    with pytest.raises(SpecError) as caught:
        load_policy("guardrail:basline")
    error = caught.value
    assert error.message == "unknown policy pack 'guardrail:basline'; did you mean 'guardrail:baseline'?"
    assert error.hint is not None and all(f"guardrail:{name}" in error.hint for name in SHIPPED)
    with pytest.raises(SpecError, match="unknown policy pack 'guardrail:../policies/baseline'"):
        load_policy("guardrail:../policies/baseline")  # a name, never a path into the package


def test_an_unknown_pack_in_a_spec_names_the_file_line_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, "guardrail:baseline", "guardrail:eu-ai-act-high-risc")
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert caught.value.where == "spec.yaml:10"
    assert caught.value.message.startswith("policies[1]: unknown policy pack 'guardrail:eu-ai-act-high-risc'")
    assert "did you mean 'guardrail:eu-ai-act-high-risk'?" in caught.value.message
    done = run_cli("validate", spec, cwd=tmp_path)
    assert done.returncode == 3 and "spec.yaml:10: policies[1]: unknown policy pack" in done.stderr


def test_a_spec_names_packs_and_files_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text(CHILD.format(parent="guardrail:baseline"))
    loaded = load_spec(_spec(tmp_path, "guardrail:eu-ai-act-high-risk", "ours.yaml"))
    assert loaded.policy_paths == (PACKS / "eu-ai-act-high-risk.yaml", tmp_path.resolve() / "ours.yaml")


def test_a_users_policy_extends_a_pack_by_name(tmp_path: Path) -> None:
    (tmp_path / "ours.yaml").write_text(CHILD.format(parent="guardrail:baseline"))
    loaded = load_policy(tmp_path / "ours.yaml")
    assert [rule.id for rule in loaded.policy.rules] == ["FAIR-001", "FAIR-002", "FAIR-003", "OURS-1"]
    assert loaded.sources == (tmp_path.resolve() / "ours.yaml", PACKS / "baseline.yaml")
    assert loaded.rule_lines["FAIR-001"][0] == PACKS / "baseline.yaml"
    (tmp_path / "typo.yaml").write_text(CHILD.format(parent="guardrail:baseline-v2"))
    with pytest.raises(SpecError) as caught:
        load_policy(tmp_path / "typo.yaml")
    assert caught.value.message.startswith("extends[0]: unknown policy pack 'guardrail:baseline-v2'")
    assert caught.value.where is not None and caught.value.where.endswith("typo.yaml:4")


def test_relative_extends_of_a_users_own_files_keep_working(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    shutil.copy(PACKS / "baseline.yaml", tmp_path / "base" / "parent.yaml")
    (tmp_path / "ours.yaml").write_text(CHILD.format(parent="base/parent.yaml"))
    assert len(load_policy(tmp_path / "ours.yaml").policy.rules) == 4


def test_a_pack_extends_its_parent_by_name_wherever_it_is_copied(tmp_path: Path) -> None:
    """A copy of the EU AI Act pack, edited in a user's folder, still finds the baseline."""
    shutil.copy(PACKS / "eu-ai-act-high-risk.yaml", tmp_path / "eu.yaml")
    assert "extends: [guardrail:baseline, guardrail:data-governance, guardrail:robustness]" in (tmp_path / "eu.yaml").read_text()
    rules = {rule.id: rule for rule in load_policy(tmp_path / "eu.yaml").policy.rules}
    assert "FAIR-001" in rules and rules["FAIR-003"].severity == "deny"
    assert "DATA-MISS" in rules and "ROB-PERTURB" in rules  # the data-governance and robustness rules come through the same extends


def test_list_shows_each_pack_by_name_with_its_description(tmp_path: Path) -> None:
    done = run_cli("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    packs = done.stdout.split("policy packs", 1)[1].splitlines()[1:]
    assert [line.split()[0] for line in packs] == [f"guardrail:{name}" for name in SHIPPED]
    for line, name in zip(packs, SHIPPED, strict=True):
        summary = pack_summary(name)
        assert 10 < len(summary) <= 101 and line.rstrip().endswith(summary)
    assert "guardrail:baseline" in packs[0] and "Minimum fairness bar" in packs[0]
    assert "policies/" not in done.stdout and ".yaml" not in done.stdout


def test_validate_accepts_pack_names_from_any_folder(tmp_path: Path) -> None:
    done = run_cli("validate", "guardrail:baseline", "guardrail:eu-ai-act-high-risk", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "guardrail:baseline: ok (policy 'baseline', 3 rule(s))",
        "guardrail:eu-ai-act-high-risk: ok (policy 'eu-ai-act-high-risk', 23 rule(s))",
    ]
    done = run_cli("validate", "guardrail:nope", cwd=tmp_path)
    assert done.returncode == 3 and "unknown policy pack 'guardrail:nope'" in done.stderr


def test_provenance_hashes_the_pack_as_used_under_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ours.yaml").write_text(CHILD.format(parent="guardrail:baseline"))
    record = run(_spec(tmp_path, "guardrail:no-regression", "ours.yaml")).record
    policies = {f.path: f for f in record.provenance.files if f.role == "policy"}
    assert set(policies) == {"guardrail:no-regression", str(tmp_path.resolve() / "ours.yaml"), "guardrail:baseline"}
    for name in ("no-regression", "baseline"):  # named directly, and extended by the user's policy
        packaged = _packaged(name)
        assert policies[f"guardrail:{name}"].sha256 == hashlib.sha256(packaged).hexdigest()
        assert policies[f"guardrail:{name}"].bytes == len(packaged)
    assert record.spec["policies"] == ["guardrail:no-regression", "ours.yaml"]
    # verify finds the pack of the installed guardrail by its name
    checks = {check.path: check.status for check in verify(record, tmp_path / "out" / "run.json")}
    assert checks["guardrail:no-regression"] == "ok" and checks["guardrail:baseline"] == "ok"


def test_a_round_policy_may_be_a_pack(tmp_path: Path) -> None:
    from guardrail.run.federation_job import job_from_spec

    spec = REPO / "audits" / "heart-federated.yaml"
    assert "round_policies: [guardrail:federated-round]" in spec.read_text()
    loaded = load_spec(spec, inputs_must_exist=False)
    assert loaded.spec.federate is not None
    job = job_from_spec(loaded.spec.federate, loaded, tmp_path / "work", False)
    assert job.round_policies == (str(PACKS / "federated-round.yaml"),)
    assert loaded.policy_paths == (PACKS / "federated-hospital.yaml", PACKS / "robustness.yaml")
