"""First feedback on your own scikit-learn model: the CPU time of ``guardrail validate`` and of a
fairness-only ``guardrail audit``, against the target of 3 s of CPU for both.

Run: ``.venv/bin/python benchmarks/first_feedback.py [--rows 2000] [--repeat 3]``

A logistic-regression pipeline (scaling, one-hot encoding) is trained on ``--rows`` rows of
the UCI Adult test file shipped with guardrail and saved with skops; a spec audits it for
fairness by sex under a one-rule policy, as a new user's first spec would. Each command runs
as a fresh subprocess (imports included, as a user pays them), and its CPU time (user +
system, ``resource.getrusage(RUSAGE_CHILDREN)``) is measured, not its wall time, so that other
work on the machine does not count. Printed: the smallest of ``--repeat`` runs of each, their
sum against the target, and the same for the plain import of the libraries such an audit
needs, ``python -c "import fairlearn, sklearn, skops.io"`` (which, unlike guardrail, imports
torch through scikit-learn's array-API wrappers when torch is installed), with the ratio.
Whether the audit imported torch is printed too; it must not have.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TARGET_CPU_S = 3.0
BASELINE = "import fairlearn, sklearn, skops.io"
NUMERIC = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]
CATEGORICAL = ["workclass", "occupation", "marital_status"]
SPEC = """\
schema_version: 1
kind: audit
name: credit-model
model: {adapter: sklearn, path: model.skops}
data: {path: data.csv, target: income_over_50k, sensitive: [sex]}
audits:
  - {id: fairness, use: fairness}
policies: [policy.yaml]
report: {out: reports}
"""
POLICY = """\
schema_version: 1
kind: policy
name: credit-team
rules:
  - id: FOUR-FIFTHS
    metric: fairness.demographic_parity_ratio
    op: ge
    threshold: 0.8
    on: ci_low
    rationale: Four-fifths rule on selection rates.
"""
TORCH_PROBE = (
    "import sys; from guardrail.cli import main; code = main({argv!r}); "
    "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)"
)


def build(folder: Path, rows: int) -> None:
    """The model, its data, the spec and the policy in ``folder``."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from guardrail.datasets import load_adult

    adult = load_adult("test").dropna().head(rows).reset_index(drop=True)
    features = adult[NUMERIC + CATEGORICAL].astype({c: str for c in CATEGORICAL})
    encode = ColumnTransformer([("n", StandardScaler(), NUMERIC), ("c", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(features, adult["income_over_50k"])
    sio.dump(model, folder / "model.skops")
    features.assign(sex=adult["sex"].astype(str), income_over_50k=adult["income_over_50k"]).to_csv(folder / "data.csv", index=False)
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "policy.yaml").write_text(POLICY)


def cpu_seconds(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """CPU time (user + system) of ``command`` run to its end, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def smallest(command: list[str], cwd: Path, repeat: int, expect: tuple[int, ...] = (0,)) -> float:
    """The smallest CPU time of ``repeat`` runs of ``command``, each of which must exit with a code in ``expect``."""
    times = []
    for _ in range(repeat):
        seconds, done = cpu_seconds(command, cwd)
        if done.returncode not in expect:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}, expected {expect}:\n{done.stderr}")
        times.append(seconds)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows the model is trained and audited on")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the smallest CPU time counts")
    args = parser.parse_args(argv)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="first-feedback-") as tmp:
        folder = Path(tmp)
        build(folder, args.rows)
        validate = smallest([python, "-m", "guardrail", "validate", "spec.yaml", "--quiet"], folder, args.repeat)
        # a pass or a policy violation (Adult's real disparities fail the four-fifths rule): both are verdicts
        audit = smallest([python, "-m", "guardrail", "audit", "spec.yaml", "--quiet"], folder, args.repeat, (0, 1))
        baseline = smallest([python, "-c", BASELINE], folder, args.repeat)
        startup = smallest([python, "-c", "pass"], folder, args.repeat)
        probe = subprocess.run(
            [python, "-c", TORCH_PROBE.format(argv=["audit", "spec.yaml", "--quiet", "--no-history", "--out", "probe"])],
            cwd=folder, capture_output=True, text=True, check=False,
        )
        record = json.loads((folder / "reports" / "run.json").read_text())
    both = validate + audit
    verdict = "met" if both <= TARGET_CPU_S else "missed"
    print(f"first feedback on a {args.rows:,}-row scikit-learn model (CPU seconds, smallest of {args.repeat} runs)")
    print(f"  guardrail validate spec.yaml            {validate:6.2f} s")
    print(f"  guardrail audit spec.yaml (fairness)    {audit:6.2f} s   ({len(record['results'][0]['metrics'])} metrics, {record['verdict']['outcomes'][0]['status']})")
    print(f"  validate + audit                        {both:6.2f} s   target {TARGET_CPU_S:.2f} s: {verdict} ({both / TARGET_CPU_S:.2f}× the target)")
    print(f'  python -c "{BASELINE}"   {baseline:6.2f} s')
    print(f"  validate + audit / that baseline        {both / baseline:6.2f}×")
    print(f"  python -c pass (interpreter start)      {startup:6.2f} s")
    print(f"  the audit: {probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else 'no output'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
