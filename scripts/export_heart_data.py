"""Export UCI Heart Disease (the four hospitals) for the data-only audit audits/heart-sites.yaml.

Writes (relative to the repository root, or to --root):
  data/heart-disease.csv.gz   the 920 patients of guardrail.datasets.load_heart_disease(),
                              sorted by id, with the federated demo's two derived columns:
                                hospital   the federated demo's node name of the patient's site
                                           (cleveland, hungary, va-long-beach, switzerland),
                                           from guardrail.federation.sites.build_hospitals
                                age_group  "under 55" / "55 and over", the federated demo's age
                                           groups, from guardrail.federation.fairness.groups_of

Missing values stay missing (empty cells): which site records what is one of the findings.
Idempotent: the file is rewritten atomically (gzip without a timestamp, so the same bytes
every time); with --if-missing nothing is redone when it exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from guardrail.datasets import load_heart_disease
from guardrail.federation.fairness import groups_of
from guardrail.federation.flower.data import AGE_GROUP_COLUMN, HOSPITAL_COLUMN
from guardrail.federation.sites import build_hospitals

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_adult_demo import write_csv  # noqa: E402  (the demo data files are written one way)


def heart_table() -> pd.DataFrame:
    """Every patient of the four sites, raw values (gaps kept), with ``hospital`` and
    ``age_group``; rows in ``id`` order."""
    data = load_heart_disease()
    nodes = build_hospitals(data=data)  # the federated demo's default layout: one node per site
    hospital_of = {
        int(patient): node.name for node in nodes for rows in (node.train, node.test) for patient in rows["id"]
    }
    if len(hospital_of) != len(data):
        raise RuntimeError(f"the hospital nodes hold {len(hospital_of)} patients, the data set {len(data)}")
    table = data.sort_values("id", kind="stable").reset_index(drop=True)
    table[HOSPITAL_COLUMN] = table["id"].map(hospital_of)
    table[AGE_GROUP_COLUMN] = groups_of(table)["age"]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--if-missing", action="store_true", help="do nothing when the file exists")
    args = parser.parse_args(argv)
    path = args.root / "data" / "heart-disease.csv.gz"
    if args.if_missing and path.exists():
        print(f"{path} already present", file=sys.stderr)
        return 0
    table = heart_table()
    write_csv(table, path)
    sites = ", ".join(f"{name} {count}" for name, count in table[HOSPITAL_COLUMN].value_counts(sort=False).items())
    print(f"wrote {path} ({len(table)} patients: {sites})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
