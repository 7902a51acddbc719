"""A spec's ``federate:`` section as a federated job (:class:`~guardrail.federation.job.Job`), and
the check that a resumed job is the federation its checkpoint belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.core.errors import SpecError, UsageError
from guardrail.federation.job import DPSettings, Fault, Job
from guardrail.spec.packs import resolve_policy_reference

if TYPE_CHECKING:
    from guardrail.spec.federate import FederateSpec
    from guardrail.spec.loader import LoadedSpec


def job_from_spec(section: FederateSpec, loaded: LoadedSpec, work_dir: Path, resume: bool) -> Job:
    """The job of a spec's ``federate:`` section, working in ``work_dir``.

    Raises :class:`SpecError` (located in the spec) for a node that ``hospitals.only`` or a
    fault names but the layout does not have, and for ``min_nodes`` above the nodes there are.
    """
    from guardrail.federation.sites import build_hospitals

    hospitals = section.hospitals
    nodes = build_hospitals(
        merge={str(k): str(v) for k, v in hospitals.merge.items()}, split={str(k): v for k, v in hospitals.split.items()}, test_size=hospitals.test_size, seed=section.seed
    )
    names = tuple(node.name for node in nodes)
    if hospitals.only is not None:
        unknown = [name for name in hospitals.only if name not in names]
        if unknown:
            raise SpecError(
                f"federate.hospitals.only names unknown node(s) {', '.join(map(repr, unknown))}",
                where=loaded.document.where(("federate", "hospitals", "only")),
                hint=f"this layout's nodes are {', '.join(names)}",
            )
        names = tuple(name for name in names if name in hospitals.only)
    for fault in section.faults:
        if fault.hospital not in names:
            raise SpecError(
                f"federate.faults names unknown node {fault.hospital!r}",
                where=loaded.document.where(("federate", "faults")),
                hint=f"the nodes are {', '.join(names)}",
            )
    if section.min_nodes > len(names):
        raise SpecError(
            f"federate.min_nodes is {section.min_nodes} but the federation has {len(names)} node(s)",
            where=loaded.document.where(("federate", "min_nodes")),
            hint=f"set min_nodes to at most {len(names)}",
        )
    dp = section.privacy.dp
    model = section.model
    if model.kind == "bert-tiny":
        source = "bert-tiny"
    else:
        from guardrail.training.models import pretrained_folder

        source = str(pretrained_folder(model.path, model.package, loaded.path.parent))
    base = loaded.path.parent
    return Job(
        work_dir=str(work_dir),
        hospital_names=names,
        merge={str(k): str(v) for k, v in hospitals.merge.items()},
        split={str(k): int(v) for k, v in hospitals.split.items()},
        test_size=hospitals.test_size,
        model_source=source,
        max_length=model.max_length,
        tiny=model.config() if model.kind == "bert-tiny" else {},
        pretrain_notes=section.pretrain.notes if model.kind == "bert-tiny" and section.pretrain.enabled else 0,
        pretrain_epochs=section.pretrain.epochs if model.kind == "bert-tiny" and section.pretrain.enabled else 0,
        rounds=section.rounds,
        local_epochs=section.local_epochs,
        batch_size=section.batch_size,
        lr=section.lr,
        optimizer=section.optimizer,
        seed=section.seed,
        strategy=section.strategy.name,
        proximal_mu=section.strategy.proximal_mu,
        fraction_train=section.fraction_train,
        min_nodes=section.min_nodes,
        round_timeout=section.round_timeout,
        dp=None
        if dp is None
        else DPSettings(dp.noise_multiplier, dp.delta, dp.max_grad_norm, dp.accountant, dp.grad_sample_mode),
        max_epsilon=section.privacy.max_epsilon,
        min_group_size=section.fairness.min_group_size,
        bootstrap=section.fairness.bootstrap,
        confidence=section.fairness.confidence,
        round_policies=tuple(  # a file relative to the spec, or a shipped pack (guardrail:<name>)
            str(resolve_policy_reference(p, base, where=loaded.document.where(("federate", "round_policies", i)), key=f"federate.round_policies[{i}]"))
            for i, p in enumerate(section.round_policies)
        ),
        faults=tuple(Fault(f.hospital, f.round, f.stage) for f in section.faults),
        device=section.device,
        resume=resume,
        reproducible_noise=section.reproducible_noise,
    )


COMPATIBLE_FIELDS = (
    "hospital_names", "merge", "split", "test_size", "model_source", "max_length", "tiny", "pretrain_notes",
    "pretrain_epochs", "seed", "dp",
)


def check_same_federation(saved: Job, job: Job) -> None:
    """Refuse to resume ``job`` from a checkpoint of another federation (:data:`COMPATIBLE_FIELDS` differ)."""
    differ = [name for name in COMPATIBLE_FIELDS if getattr(saved, name) != getattr(job, name)]
    if differ:
        raise UsageError(
            f"cannot resume: the checkpoint is of a different federation ({', '.join(differ)} changed)",
            where=str(job.work),
            hint="resume with the same hospitals, model and DP settings, or train into a new `out` folder",
        )
