"""``guardrail federate SPEC``: federated training across simulated hospital nodes on Flower.

Orchestration only (layer 2): turn the spec's ``federate:`` section into a job, build the
initial global model (a tiny BERT whose tokenizer is fitted on a template corpus, or a
local pretrained folder), run the job on Flower's simulation engine in a subprocess with a
hard timeout (:mod:`guardrail.federation.flower.simulate`), and write the output folder:

``<out>/``
    the global model (``model.safetensors``, config, tokenizer, ``guardrail-model.json``)
    that ``model: {adapter: torch, path: <out>}`` loads; ``ledger.json``, the ledger of the
    hospital with the largest ε (each patient's records sit at one hospital, so each
    patient's guarantee is that hospital's ε, and the largest bounds them all);
    ``ledgers/<hospital>.json``, one ledger per hospital with the round of every spend;
    ``federated.json``, the per-round history (per-hospital status, loss, accuracy, ε,
    fairness metrics, policy findings); ``audit-data.csv.gz``, every node's rows as notes
    with ``hospital``, ``age_group`` and ``member``, for the standard audit of the global
    model; and ``federation/``, the job, the initial model and the checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.model_folder import HF_ARCHITECTURE
from guardrail.core.atomic import write_all_atomic
from guardrail.core.errors import SpecError
from guardrail.federation.history import (
    FEDERATED_FILE,
    LEDGERS_DIR,
    Settings,
    history_document,
    history_json,
    hospital_record,
)
from guardrail.federation.job import (
    CHECKPOINT_STATE,
    CHECKPOINT_WEIGHTS,
    INITIAL_MODEL,
    JOB_FILE,
    RESULT_FILE,
    Job,
)
from guardrail.run.federation_job import check_same_federation, job_from_spec
from guardrail.spec.loader import load_spec
from guardrail.spec.packs import pack_reference
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    from guardrail.spec.federate import FederateSpec

ProgressFn = Callable[[str], None]
AUDIT_TABLE = "audit-data.csv.gz"
WORK_DIR = "federation"
PRETRAIN_FILE = "pretraining.json"


@dataclass(frozen=True)
class HospitalSummary:
    name: str
    sites: tuple[str, ...]
    train_rows: int
    test_rows: int
    epsilon: float | None
    accuracy: float | None
    status: str
    """Status in the last round (ok, failed, refused-budget, …)."""


@dataclass(frozen=True)
class FederateRun:
    """A finished ``guardrail federate``."""

    out: Path
    rounds_done: int
    rounds_planned: int
    stopped_reason: str | None
    hospitals: tuple[HospitalSummary, ...]
    epsilon_max: float | None
    delta: float | None
    seconds: float
    files: tuple[Path, ...]
    federated_file: Path
    audit_table: Path

    @property
    def failures(self) -> int:
        return sum(1 for r in self._rounds() for h in r["hospitals"].values() if h.get("status") == "failed")

    def _rounds(self) -> list[dict[str, Any]]:
        return list(json.loads(self.federated_file.read_text())["rounds"])

    def summary(self) -> str:
        """What ``guardrail federate`` prints: rounds, each hospital's ε and accuracy, where the files are."""
        lines = [f"federated training: {self.rounds_done} of {self.rounds_planned} round(s) in {self.seconds:.1f} s"]
        if self.stopped_reason:
            lines.append(f"stopped early: {self.stopped_reason}")
        width = max(len(h.name) for h in self.hospitals)
        for h in self.hospitals:
            epsilon = "no DP" if h.epsilon is None else f"epsilon {h.epsilon:.3g}"
            accuracy = "—" if h.accuracy is None else f"{h.accuracy:.3f}"
            lines.append(
                f"  {h.name:<{width}}  {h.train_rows:>4} train / {h.test_rows:>3} held out  "
                f"held-out accuracy {accuracy}  {epsilon}  last round: {h.status}"
            )
        if self.epsilon_max is not None:
            lines.append(f"privacy: DP-SGD at every hospital; largest epsilon {self.epsilon_max:.3g} at delta {self.delta:g}")
        else:
            lines.append("privacy: none (no federate.privacy.dp)")
        lines.append(f"model: {display_path(self.out)}; history: {display_path(self.federated_file)}; audit table: {display_path(self.audit_table)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PreparedFederation:
    """A job ready to run: saved in its work folder with its initial model (or checkpoint)."""

    job: Job
    section: FederateSpec
    out: Path
    started: float


def federate(spec_path: str | Path, *, resume: bool = False, progress: ProgressFn | None = None) -> FederateRun:
    """Run what the spec's ``federate:`` section describes on Flower's simulation engine; see the module docstring.

    Raises
    ------
    SpecError
        If the spec has no ``federate:`` section, is invalid, or names unknown hospitals.
    UsageError
        If ``resume`` meets a checkpoint of a different federation.
    FederationError
        If the simulation fails or runs past ``federate.timeout``.
    """
    say = progress or (lambda _message: None)
    prepared = prepare(spec_path, resume=resume, progress=say)
    job = prepared.job
    from guardrail.federation.flower.simulate import run_simulation

    finished = _finished_result(job)
    if finished is not None:
        say("the checkpoint has finished every planned round (or stopped); rewriting the outputs from it")
        return finish(prepared, finished, engine=_recorded_engine(job))
    mark_engine(job, "simulation")
    nodes = ", ".join(job.hospital_names)
    say(f"federated training on Flower's simulation engine: {len(job.hospital_names)} hospitals ({nodes}), {job.rounds} round(s)")
    result_file = run_simulation(job, prepared.section.timeout)
    say("writing the global model, ledgers and history")
    return finish(prepared, json.loads(result_file.read_text()), engine="simulation")


def _finished_result(job: Job) -> dict[str, Any] | None:
    """The last result when resuming a federation that has nothing left to do (no simulation needed)."""
    result_file = job.work / RESULT_FILE
    if not job.resume or not result_file.is_file() or not (job.checkpoint_dir / CHECKPOINT_STATE).is_file():
        return None
    result: dict[str, Any] = json.loads(result_file.read_text())
    checkpoint = json.loads((job.checkpoint_dir / CHECKPOINT_STATE).read_text())
    if checkpoint["rounds_done"] != result["rounds_done"]:
        return None
    if result["rounds_done"] >= job.rounds or result.get("stopped_reason"):
        return result
    return None


ENGINE_FILE = "engine.txt"
"""In the job's work folder: the engine that ran (or is running) the job's rounds."""
ENGINES = ("simulation", "deployment")


def mark_engine(job: Job, engine: str) -> None:
    """Record, before it starts, which engine runs ``job`` (a later resume of a finished run keeps it)."""
    write_all_atomic({job.work / ENGINE_FILE: engine})


def _recorded_engine(job: Job) -> str:
    """The engine :func:`mark_engine` recorded for ``job`` (``simulation`` when none did)."""
    try:
        engine = (job.work / ENGINE_FILE).read_text().strip()
    except OSError:
        return "simulation"
    return engine if engine in ENGINES else "simulation"


def prepare(spec_path: str | Path, *, resume: bool = False, progress: ProgressFn | None = None) -> PreparedFederation:
    """Validate the ``federate:`` section and write the job and the initial model (or check the checkpoint)."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    loaded = load_spec(spec_path, inputs_must_exist=False)
    section = loaded.spec.federate
    if section is None:
        raise SpecError(
            "this spec has no `federate:` section, so there is nothing to train",
            where=display_path(loaded.path),
            hint="add a federate: section (see `guardrail schema audit` and audits/heart-federated.yaml)",
        )
    out = (loaded.path.parent / section.out).resolve()
    job = job_from_spec(section, loaded, out / WORK_DIR, resume or section.resume)
    saved_job = job.work / JOB_FILE
    continuing = job.resume and (job.checkpoint_dir / CHECKPOINT_STATE).is_file()
    if continuing:
        check_same_federation(Job.from_json(saved_job.read_text()), job)
    else:
        say("building the initial global model")
        _write_initial_model(job, section)
    job.save()
    return PreparedFederation(job, section, out, started)


def finish(prepared: PreparedFederation, result: dict[str, Any], *, engine: str) -> FederateRun:
    """Write the output folder from the ServerApp's result (``result.json``)."""
    return _write_output(
        prepared.job, prepared.section, result, prepared.out, time.perf_counter() - prepared.started, engine
    )


def _write_initial_model(job: Job, section: FederateSpec) -> dict[str, float]:
    """Build (and, for bert-tiny, pretrain on template notes) the initial global model; returns pretraining stats."""
    import torch

    from guardrail.federation.flower.data import template_corpus, template_records
    from guardrail.federation.flower.pretrain import (
        FINDINGS,
        pretrain_reader,
        with_binary_head,
    )
    from guardrail.training.io import model_files
    from guardrail.training.models import (
        TinyBertConfig,
        build_tiny_bert,
        load_pretrained,
    )

    torch.manual_seed(job.seed)
    stats: dict[str, float] = {}
    if job.model_source != "bert-tiny":
        module, tokenizer = load_pretrained(Path(job.model_source), 2)
    elif job.pretrain_notes:
        records = template_records(job.pretrain_notes, seed=job.seed)
        notes = template_corpus(job.pretrain_notes, seed=job.seed)
        module, tokenizer = build_tiny_bert(notes, len(FINDINGS), TinyBertConfig(**job.tiny, split_digits=True))
        stats = pretrain_reader(
            module, tokenizer, records, notes, max_length=job.max_length, epochs=job.pretrain_epochs, seed=job.seed
        )
        module = with_binary_head(module, seed=job.seed)
    else:
        module, tokenizer = build_tiny_bert(template_corpus(seed=job.seed), 2, TinyBertConfig(**job.tiny, split_digits=True))
    files = model_files(module, _description(job), tokenizer)
    files[PRETRAIN_FILE] = json.dumps(stats, indent=1)
    folder = job.work / INITIAL_MODEL
    (job.checkpoint_dir / CHECKPOINT_STATE).unlink(missing_ok=True)
    write_all_atomic({folder / name: data for name, data in files.items()})
    return stats


def _description(job: Job) -> dict[str, Any]:
    from guardrail.federation.flower.data import TEXT_COLUMN

    return {
        "architecture": HF_ARCHITECTURE,
        "source": "bert-tiny" if job.model_source == "bert-tiny" else Path(job.model_source).name,
        "text_column": TEXT_COLUMN,
        "max_length": job.max_length,
        "features": [TEXT_COLUMN],
        "target": "heart_disease",
        "classes": [0, 1],
        "private": job.dp is not None,
        "federated": True,
    }


def _write_output(
    job: Job, section: FederateSpec, result: dict[str, Any], out: Path, seconds: float, engine: str
) -> FederateRun:
    from guardrail.federation import ledgers
    from guardrail.federation.flower.data import audit_table, hospitals_of
    from guardrail.federation.flower.local import load_node, load_weights, model_with
    from guardrail.federation.notes import PROVENANCE
    from guardrail.privacy.ledger import LEDGER_FILE
    from guardrail.training.io import model_files

    nodes = [load_node(job, index) for index in range(len(job.hospital_names))]
    weights = load_weights(job.checkpoint_dir / CHECKPOINT_WEIGHTS)
    module = model_with(nodes[0], weights)
    files: dict[Path, str | bytes] = {
        out / name: data for name, data in model_files(module, _description(job), nodes[0].tokenizer).items()
    }
    records: dict[str, dict[str, Any]] = result["records"]
    epsilon_by_round: dict[str, dict[int, float]] = {}
    final_epsilon: dict[str, float] = {}
    ledger_of: dict[str, Any] = {}
    if job.dp is not None:
        accountant = job.dp.accountant
        for node in nodes:
            record = records[node.name]
            epsilon_by_round[node.name] = ledgers.epsilon_by_round(record, job.dp.delta, accountant)
            final_epsilon[node.name] = list(epsilon_by_round[node.name].values())[-1] if record["round"] else 0.0
            ledger = ledgers.hospital_ledger(
                record,
                delta=job.dp.delta,
                max_grad_norm=job.dp.max_grad_norm,
                data_sha256=node.data.data_sha256,
                model=f"federated:{out.name}",
                hospital=node.name,
                stopped_reason=result.get("stopped_reason"),
            )
            ledger = dataclasses.replace(ledger, extra={**ledger.extra, "accountant": accountant})
            ledger_of[node.name] = ledger
            files[out / LEDGERS_DIR / f"{node.name}.json"] = ledger.to_json()
        worst = max(final_epsilon, key=final_epsilon.__getitem__)
        worst_ledger = ledger_of[worst]
        files[out / LEDGER_FILE] = dataclasses.replace(
            worst_ledger,
            notes=(
                *worst_ledger.notes,
                (
                    f"federated: the ledger of {worst}, the hospital with the largest ε; each patient's records "
                    "are at one hospital, so every patient's guarantee is at least this strong"
                ),
            ),
        ).to_json()
    else:
        (out / LEDGER_FILE).unlink(missing_ok=True)
    rounds = result["rounds"]
    last = rounds[-1]["hospitals"] if rounds else {}
    hospitals = []
    for node, hospital in zip(nodes, hospitals_of(job.to_json()), strict=True):
        final = last.get(node.name, {})
        hospitals.append(
            HospitalSummary(
                node.name,
                hospital.sites,
                len(hospital.train),
                len(hospital.test),
                final_epsilon.get(node.name),
                final.get("accuracy"),
                final.get("status", "not-run"),
            )
        )
    epsilon_max = max((h.epsilon for h in hospitals if h.epsilon is not None), default=None)
    document = history_document(
        provenance=PROVENANCE,
        engine=engine,
        strategy=job.strategy,
        settings=_settings(job),
        hospitals=[
            hospital_record(
                h.name, h.sites, h.train_rows, h.test_rows, h.epsilon, epsilon_by_round.get(h.name, {}), records[h.name]
            )
            for h in hospitals
        ],
        rounds=rounds,
        rounds_done=result["rounds_done"],
        stopped_reason=result.get("stopped_reason"),
        epsilon_max=epsilon_max,
        delta=None if job.dp is None else job.dp.delta,
        seconds=seconds,
        simulation_seconds=result.get("seconds"),
    )
    files[out / FEDERATED_FILE] = history_json(document)
    files[out / AUDIT_TABLE] = _gzip_csv(audit_table(job))
    written = write_all_atomic(files)
    for stale in (out / LEDGERS_DIR).glob("*.json"):  # hospitals no longer in the federation, or an earlier DP run
        if stale not in files:
            stale.unlink()
    return FederateRun(
        out=out,
        rounds_done=int(result["rounds_done"]),
        rounds_planned=job.rounds,
        stopped_reason=result.get("stopped_reason"),
        hospitals=tuple(hospitals),
        epsilon_max=epsilon_max,
        delta=None if job.dp is None else job.dp.delta,
        seconds=seconds,
        files=tuple(written),
        federated_file=out / FEDERATED_FILE,
        audit_table=out / AUDIT_TABLE,
    )


def _settings(job: Job) -> Settings:
    """The job's settings as federated.json records them."""
    return {
        "rounds": job.rounds,
        "local_epochs": job.local_epochs,
        "batch_size": job.batch_size,
        "lr": job.lr,
        "optimizer": job.optimizer,
        "proximal_mu": job.proximal_mu,
        "fraction_train": job.fraction_train,
        "min_nodes": job.min_nodes,
        "round_timeout": job.round_timeout,
        "model": _description(job)["source"],
        "max_length": job.max_length,
        "dp": None if job.dp is None else dataclasses.asdict(job.dp),
        "max_epsilon": job.max_epsilon,
        "min_group_size": job.min_group_size,
        "faults": [dataclasses.asdict(f) for f in job.faults],
        "round_policies": [pack_reference(p) or Path(p).name for p in job.round_policies],
        "pretraining": _pretraining(job),
        "reproducible_noise": job.reproducible_noise,
    }


def _pretraining(job: Job) -> dict[str, Any] | None:
    """How the initial reader was pretrained (public template notes), with its training accuracy per finding."""
    if not job.pretrain_notes:
        return None
    stats_file = job.work / INITIAL_MODEL / PRETRAIN_FILE
    stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
    return {
        "notes": job.pretrain_notes,
        "epochs": job.pretrain_epochs,
        "data": "template notes from random records (no patient data)",
        "loss": stats.get("loss"),
        "finding_accuracy": {k.split("/", 1)[1]: v for k, v in stats.items() if k.startswith("accuracy/")},
    }


def _gzip_csv(frame: Any) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0})
    return buffer.getvalue()


__all__ = ["FederateRun", "HospitalSummary", "PreparedFederation", "federate", "finish", "prepare"]
