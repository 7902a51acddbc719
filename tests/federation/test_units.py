"""Fast checks of the federated pieces that need no simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.federation.conftest import write_spec


def test_job_round_trips_through_json(tmp_path: Path) -> None:
    from guardrail.federation.job import DPSettings, Fault, Job

    job = Job(
        work_dir=str(tmp_path),
        hospital_names=("cleveland", "hungary"),
        merge={"Switzerland": "VA Long Beach"},
        tiny={"hidden_size": 32},
        dp=DPSettings(1.0, 1e-5),
        faults=(Fault("hungary", 2),),
        round_policies=("/p.yaml",),
    )
    assert Job.from_json(job.to_json()) == job
    assert job.fault_for("hungary", 2, "after_training") == Fault("hungary", 2)
    assert job.fault_for("hungary", 1, "after_training") is None


def test_template_corpus_holds_no_patient_note() -> None:
    from guardrail.datasets import load_heart_disease
    from guardrail.federation.flower.data import template_corpus, template_records
    from guardrail.federation.notes import write_notes

    real = set(write_notes(load_heart_disease()))
    synthetic = template_corpus(2000)
    assert len(set(synthetic)) > 1990 and not real & set(synthetic)
    assert template_corpus(50, seed=3) == template_corpus(50, seed=3)  # deterministic
    assert len(template_records(10)) == 10


def test_fedprox_adds_the_proximal_gradient_after_privatisation() -> None:
    import torch

    from guardrail.federation.flower.local import _add_proximal_term

    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    _add_proximal_term(optimizer, mu=0.5)  # anchors at w_global = [1, -2]
    with torch.no_grad():
        weight.copy_(torch.tensor([3.0, 0.0]))  # moved away by local steps
    weight.grad = torch.zeros(2)
    optimizer.step()  # w ← w − lr·μ(w − w_global)
    assert weight.detach().tolist() == [2.0, -1.0]


def test_planned_spend_is_opacus_poisson_loader_length() -> None:
    import torch
    from opacus.data_loader import DPDataLoader
    from torch.utils.data import TensorDataset

    from guardrail.federation.flower.local import planned_spend
    from guardrail.federation.job import DPSettings, Job

    job = Job(work_dir="/nowhere", hospital_names=("a", "b"), batch_size=32, local_epochs=3, dp=DPSettings(1.2, 1e-5))
    loader = DPDataLoader(TensorDataset(torch.zeros(228, 1)), sample_rate=32 / 228)
    assert planned_spend(job, 228) == (1.2, 32 / 228, 3 * len(loader))
    assert planned_spend(Job(work_dir="/nowhere", hospital_names=("a", "b")), 228) is None


def test_clients_get_a_gpu_share_only_with_cuda() -> None:
    from guardrail.federation.flower.simulate import client_resources

    assert client_resources(4, cuda_devices=0).num_gpus == 0.0
    assert client_resources(4, cuda_devices=1).num_gpus == 0.25
    assert client_resources(2, cuda_devices=4).num_gpus == 1.0


def test_unknown_node_in_only_is_a_spec_error_with_the_nodes_listed(tmp_path: Path) -> None:
    from guardrail.core.errors import SpecError
    from guardrail.run.federate import prepare

    spec = write_spec(tmp_path, hospitals={"only": ["cleveland", "hungry"]})
    with pytest.raises(SpecError, match="hungry") as error:
        prepare(spec)
    assert error.value.hint is not None and "hungary" in error.value.hint
    assert not (tmp_path / "model").exists()  # nothing written


@pytest.mark.parametrize(
    ("federate", "message"),
    [
        ({"faults": [{"hospital": "oslo", "round": 1}]}, "unknown node 'oslo'"),
        ({"min_nodes": 3}, "min_nodes is 3"),
        ({"strategy": {"name": "fedavg", "proximal_mu": 0.1}}, "proximal_mu applies to fedprox"),
        ({"privacy": {"max_epsilon": 3}}, "max_epsilon is a DP budget"),
        ({"hospitals": {"merge": {"Switzerland": "Bern"}}}, ":7: federate.hospitals.merge.Switzerland: expected one of 'Cleveland', 'Hungary', 'VA Long Beach', 'Switzerland', got the text 'Bern'"),
        ({"rounds": 0}, "rounds"),
    ],
)
def test_bad_federate_sections_exit_3_without_traceback(tmp_path: Path, federate: dict[str, object], message: str) -> None:
    spec = write_spec(tmp_path, **federate)
    done = run_cli("federate", spec, "--quiet")
    assert done.returncode == 3, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "model").exists()


def test_federate_needs_a_federate_section(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    text = spec.read_text()
    spec.write_text(text[: text.index("federate:")] + text[text.index("model:\n  adapter") :])
    done = run_cli("federate", spec)
    assert done.returncode == 3 and "no `federate:` section" in done.stderr


def test_federated_modules_import_flower_only_in_the_apps() -> None:
    import ast

    from tests.conftest import REPO

    def top_level_imports(path: Path) -> list[str]:
        tree = ast.parse(path.read_text())
        return [
            node.module or ""
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
        ] + [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]

    # the pure half imports no Flower; only the 0.1 import strings of the apps (re-exports) reach the Flower half
    for path in (REPO / "guardrail" / "federation").glob("*.py"):
        imported = top_level_imports(path)
        assert not any(name.split(".")[0] == "flwr" for name in imported), path.name
        reaches_flower = any(name.startswith("guardrail.federation.flower") for name in imported)
        assert reaches_flower == (path.stem in ("client_app", "server_app")), path.name
    for app in ("client_app", "server_app"):
        assert any(name.split(".")[0] == "flwr" for name in top_level_imports(REPO / "guardrail" / "federation" / "flower" / f"{app}.py"))


def test_plan_writes_the_flower_app_and_prints_every_machine_s_commands(tmp_path: Path) -> None:
    import tomllib

    spec = write_spec(tmp_path, pretrain={"notes": 100, "epochs": 1})
    done = run_cli("federate", spec, "--plan", tmp_path / "deploy", "--host", "fl.example.org", "--quiet")
    assert done.returncode == 0, done.stderr
    app = tomllib.loads((tmp_path / "deploy" / "app" / "pyproject.toml").read_text())
    components = app["tool"]["flwr"]["app"]["components"]
    assert components == {
        "serverapp": "guardrail.federation.flower.server_app:app",
        "clientapp": "guardrail.federation.flower.client_app:app",
    }
    done = run_cli("federate", spec, "--plan", tmp_path / "deploy", "--host", "fl.example.org")
    for expected in ("flower-superlink", "partition-id=0 num-partitions=2", "partition-id=1 num-partitions=2", "flwr run"):
        assert expected in done.stdout
    assert "--insecure" not in done.stdout  # TLS unless asked otherwise


def test_host_without_plan_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("federate", write_spec(tmp_path), "--host", "fl.example.org")
    assert done.returncode == 3 and "--host and --insecure apply to --plan" in done.stderr


def test_fedprox_term_is_added_after_opacus_clips_and_is_not_clipped() -> None:
    """Through Opacus' DPOptimizer (σ = 0): the step is −lr·(mean of clipped per-sample gradients + μ(w − w_global))."""
    import warnings

    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from guardrail.federation.flower.local import _add_proximal_term

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    x, y = torch.randn(4, 3) * 10, torch.randn(4, 1)  # large inputs: every per-sample gradient is clipped
    base = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp_model, dp_optimizer, _ = PrivacyEngine().make_private(
            module=model, optimizer=base, data_loader=loader, noise_multiplier=0.0, max_grad_norm=1.0, poisson_sampling=False
        )
    anchor = model.weight.detach().clone()
    _add_proximal_term(base, mu=2.0)
    with torch.no_grad():
        model.weight.add_(torch.tensor([[0.5, -0.5, 0.25]]))  # as if local steps had moved it
    start = model.weight.detach().clone()
    # the expected update, by hand: per-sample gradients, each clipped to norm 1, averaged
    per_sample = []
    for i in range(4):
        w = start.clone().requires_grad_(True)
        loss = torch.nn.functional.mse_loss(x[i : i + 1] @ w.T, y[i : i + 1], reduction="sum")
        (grad,) = torch.autograd.grad(loss, w)
        per_sample.append(grad * min(1.0, 1.0 / float(grad.norm())))
    clipped_mean = torch.stack(per_sample).mean(0)
    expected = start - 0.1 * (clipped_mean + 2.0 * (start - anchor))
    dp_optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")  # Opacus' hooks on data inputs
        loss = torch.nn.functional.mse_loss(dp_model(x), y, reduction="sum")
        loss.backward()
    dp_optimizer.step()
    torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-5, atol=1e-6)
