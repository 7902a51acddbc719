"""DP-SGD step cost vs a non-private step on the tiny BERT, and the cost of ε for 100,000 steps.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/dp_step.py [--steps 15]``

Setup: guardrail's tiny BERT (2 layers, hidden 128, 2 heads, WordPiece vocabulary trained on
the synthetic texts), batch 32, sequence length 64, ``torch.set_num_threads(2)``, CPU, SGD,
the same contiguous ``position_ids`` guardrail's trainer passes (Opacus fails on BERT's
broadcast buffer otherwise).

* Step time: each grad-sample mode runs in its own subprocess; after 3 warm-up steps the
  DP step and a non-private step of an identically initialised model are timed alternately
  (so both see the same machine load). ``time ratio`` is the ratio of the fastest wall
  times (robust to other processes), ``cpu ratio`` the ratio of median process CPU times.
* Memory: peak RSS growth (``resource.getrusage`` max RSS, kB) from just before the first
  step to after the warm-up, in a fresh process per mode, divided by the same for the
  non-private step.
* ε: wall time of Opacus' RDP and PRV accountants (as guardrail's ledger calls them) for a
  history of 100,000 steps at σ = 1, q = 1/128, δ = 1e-5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
MODES = ("none", "hooks", "ghost", "ew", "functorch")
BATCH, LENGTH = 32, 64


def _worker(mode: str, steps: int) -> dict[str, float]:
    import resource
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    sys.path.insert(0, str(REPO))
    from guardrail.training.models import TinyBertConfig, build_tiny_bert, text_forward

    words = [
        "chest",
        "pain",
        "angina",
        "fever",
        "cough",
        "ache",
        "tired",
        "dizzy",
        "nausea",
        "rash",
        "sleep",
        "heart",
        "breath",
        "pressure",
    ]
    rng = torch.Generator().manual_seed(0)
    texts = [
        " ".join(
            words[int(i)] for i in torch.randint(len(words), (LENGTH,), generator=rng)
        )
        for _ in range(BATCH * 4)
    ]
    torch.manual_seed(0)
    model, tokenizer = build_tiny_bert(texts, 2, TinyBertConfig(max_length=LENGTH))
    torch.manual_seed(0)
    plain, _ = build_tiny_bert(texts, 2, TinyBertConfig(max_length=LENGTH))
    plain.load_state_dict(model.state_dict())
    enc = tokenizer(
        texts[:BATCH],
        padding="max_length",
        truncation=True,
        max_length=LENGTH,
        return_tensors="pt",
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    labels = torch.randint(2, (BATCH,), generator=rng)
    params = sum(p.numel() for p in model.parameters())

    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.01)
    plain_loss = torch.nn.CrossEntropyLoss()

    def plain_step() -> None:
        plain_opt.zero_grad()
        plain_loss(text_forward(plain, ids, mask), labels).backward()
        plain_opt.step()

    if mode == "none":
        dp_step = plain_step
    else:
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(ids, mask, labels), batch_size=BATCH)
        made = PrivacyEngine().make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
            criterion=torch.nn.CrossEntropyLoss(),
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            poisson_sampling=False,
            grad_sample_mode=mode,
        )
        gsm, opt, crit = (
            made[0],
            made[1],
            made[2] if mode == "ghost" else torch.nn.CrossEntropyLoss(),
        )

        def dp_step() -> None:
            opt.zero_grad()
            crit(text_forward(gsm, ids, mask), labels).backward()
            opt.step()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        dp_step()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        plain_step()
    dp_times, plain_times, dp_cpu, plain_cpu = [], [], [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        dp_step()
        dp_times.append(time.perf_counter() - t)
        dp_cpu.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        plain_step()
        plain_times.append(time.perf_counter() - t)
        plain_cpu.append(time.process_time() - c)
    return {
        "step_s": min(dp_times),
        "plain_step_s": min(plain_times),
        "cpu_ratio": statistics.median(dp_cpu) / statistics.median(plain_cpu),
        "rss_growth_kb": float(rss1 - rss0),
        "params": float(params),
    }


def _epsilon_timing() -> list[tuple[str, float, float]]:
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(REPO))
    from guardrail.privacy.ledger import Ledger

    ledger = Ledger(delta=1e-5, max_grad_norm=1.0, data_sha256="").record(
        1.0, 1 / 128, 100_000
    )
    from guardrail.privacy import accounting

    Ledger(delta=1e-5, max_grad_norm=1.0, data_sha256="").record(
        0.5, 0.5, 3
    ).epsilon()  # import opacus first
    accounting._epsilon.cache_clear()
    accounting._unit_rdp.cache_clear()
    rows = []
    for accountant, eps_error in (("rdp", 0.01), ("prv", 0.1), ("prv", 0.01)):
        started = time.perf_counter()
        value = ledger.epsilon(accountant=accountant, eps_error=eps_error)  # type: ignore[arg-type]
        label = accountant if accountant == "rdp" else f"prv (eps_error={eps_error})"
        rows.append((label, value, time.perf_counter() - started))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.steps)))
        return 0
    results = {}
    for mode in ["none", *[m for m in args.modes if m != "none"]]:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", mode, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"{mode}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results.get("none")
    print(
        f"tiny BERT ({int(base['params']) if base else '?'} parameters), batch {BATCH}, sequence {LENGTH}, 2 threads, CPU"
    )
    print(
        f"{'mode':<10} {'step ms':>8} {'plain ms':>9} {'time ratio':>10} {'cpu ratio':>9} {'mem MB':>8} {'mem ratio':>9}"
    )
    for mode, row in results.items():
        mem_ratio = (
            row["rss_growth_kb"] / base["rss_growth_kb"]
            if base and base["rss_growth_kb"] > 0
            else float("nan")
        )
        print(
            f"{mode:<10} {row['step_s'] * 1000:8.1f} {row['plain_step_s'] * 1000:9.1f} "
            f"{row['step_s'] / row['plain_step_s']:10.2f} {row['cpu_ratio']:9.2f} "
            f"{row['rss_growth_kb'] / 1024:8.1f} {mem_ratio:9.2f}"
        )
    from guardrail.training.loop import DEFAULT_GRAD_SAMPLE_MODE

    print(
        f"guardrail's default grad_sample_mode: {DEFAULT_GRAD_SAMPLE_MODE} (target: time ratio <= 2.0)"
    )
    print("\nepsilon for 100,000 steps (sigma=1, q=1/128, delta=1e-5):")
    for label, value, seconds in _epsilon_timing():
        print(f"  {label:<24} eps={value:8.3f}  {seconds:6.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
