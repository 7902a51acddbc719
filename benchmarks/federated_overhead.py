"""Flower's orchestration overhead: the federated demo on the simulation engine vs the same
training in a plain sequential loop, 4 hospitals × 5 rounds, on this machine's cores.

Run: ``.venv/bin/python benchmarks/federated_overhead.py [--rounds 5] [--scales 1 8]``

For each scale (local epochs per round = scale; ``8`` gives every client 8× the work), the
demo spec ``audits/heart-federated.yaml`` is prepared once (initial model, job) and then run

* **federated**: ``guardrail.federation.flower.simulate.run_simulation`` — a fresh subprocess that
  imports Flower, starts Ray, runs the ServerApp and one ClientApp per hospital (one CPU
  each, so two clients train at once on two cores) — wall time from start to exit;
* **plain**: ``guardrail.federation.flower.local.plain_loop`` in a fresh subprocess — the same
  local training (same seeds, same DP-SGD) and the same evaluation, one hospital after the
  other, FedAvg between rounds — wall time from start to exit (imports included in both).

Reported: both wall times and their ratio (target ≤ 1.25×), Σ client compute (the train and
evaluate time the clients report) and the orchestration overhead
``(federated wall − Σ client compute) / Σ client compute``. The pretraining of the initial
reader is common to both and not timed; no round policy is judged (the plain loop has none).
Whether per-hospital ε after the last round is equal in both runs is printed; it must be.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")


def _plain_worker(job_file: str) -> None:
    sys.path.insert(0, str(REPO))
    from guardrail.federation.flower.local import load_weights, plain_loop
    from guardrail.federation.job import INITIAL_MODEL, Job
    from guardrail.federation.ledgers import epsilon_report

    job = Job.from_json(Path(job_file).read_text())
    run = plain_loop(job, load_weights(job.work / INITIAL_MODEL / "model.safetensors"))
    epsilon = epsilon_report(run.records, job.dp.delta).current if job.dp else {}
    print(json.dumps({"compute": run.compute_seconds, "epsilon": epsilon}))


def _spec(folder: Path, rounds: int, scale: int) -> Path:
    spec = yaml.safe_load((REPO / "audits" / "heart-federated.yaml").read_text())
    section = spec["federate"]
    section.update(rounds=rounds, local_epochs=scale, out=str(folder / "model"))
    section["pretrain"] = {"notes": 1000, "epochs": 2}  # not timed; keeps the benchmark short
    section["round_policies"] = []  # the plain loop judges no policy: nothing may stop one run early
    section["privacy"].pop("max_epsilon", None)  # every hospital trains every round in both runs
    spec["model"]["path"] = str(folder / "model")
    spec["data"]["path"] = str(folder / "model" / "audit-data.csv.gz")
    spec["policies"] = []
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _measure(rounds: int, scale: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from guardrail.federation.flower.simulate import run_simulation
    from guardrail.federation.job import JOB_FILE
    from guardrail.federation.ledgers import epsilon_report
    from guardrail.run.federate import prepare

    with tempfile.TemporaryDirectory(prefix="fedbench") as tmp:
        prepared = prepare(_spec(Path(tmp), rounds, scale))
        job = prepared.job
        started = time.perf_counter()
        result = json.loads(run_simulation(job, timeout=1800).read_text())
        federated = time.perf_counter() - started
        compute = sum(
            h.get("compute_seconds", 0.0) + h.get("eval_seconds", 0.0)
            for entry in result["rounds"]
            for h in entry["hospitals"].values()
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--plain-worker", str(job.work / JOB_FILE)],
            capture_output=True, text=True, check=True,
        )
        plain = time.perf_counter() - started
        plain_out = json.loads(done.stdout.strip().splitlines()[-1])
        assert job.dp is not None
        flower_epsilon = epsilon_report(result["records"], job.dp.delta).current
    return {
        "scale": scale,
        "rounds": rounds,
        "hospitals": len(job.hospital_names),
        "federated_s": federated,
        "plain_s": plain,
        "ratio": federated / plain,
        "client_compute_s": compute,
        "plain_compute_s": plain_out["compute"],
        "overhead": (federated - compute) / compute,
        "epsilon_equal": flower_epsilon == plain_out["epsilon"],
        "epsilon": flower_epsilon,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--plain-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_worker:
        _plain_worker(args.plain_worker)
        return
    print(f"cores: {os.cpu_count()}; 4 hospitals × {args.rounds} rounds; target: federated ≤ 1.25 × plain")
    print(
        f"{'local epochs':>12} {'federated s':>12} {'plain s':>8} {'ratio':>6} {'Σ client s':>10} "
        f"{'plain compute s':>15} {'overhead':>9}  ε equal"
    )
    for scale in args.scales:
        row = _measure(args.rounds, scale)
        print(
            f"{row['scale']:>12} {row['federated_s']:>12.1f} {row['plain_s']:>8.1f} {row['ratio']:>5.2f}× "
            f"{row['client_compute_s']:>10.1f} {row['plain_compute_s']:>15.1f} {row['overhead']:>8.2f}×  {row['epsilon_equal']}"
        )


if __name__ == "__main__":
    main()
