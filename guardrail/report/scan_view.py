"""How the run read its rows, in one sentence for the report (from ``RunRecord.scan``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENGINE_NAMES = {"memory": "in-memory engine", "stream": "streaming engine", "ray": "Ray engine"}


def scan_sentence(scan: Mapping[str, Any] | None) -> str | None:
    """The engine, why it ran, the rows and partitions read and what was sampled; None for a
    record written before the engines existed.

    >>> scan_sentence({"engine": "stream", "reason": "the data is a query or a set of partitions", "rows": 1200,
    ...                "partitions": 3, "seconds": 0.5, "sample": {"rows": 300, "of_rows": 1200, "strata": ["sex"]}})
    'Streaming engine (the data is a query or a set of partitions): 1,200 rows in 3 partitions, read in 0.5 s. Audits that read rows used a sample of 300 of the 1,200 rows, stratified by sex and keyed by a hash of each row; group metrics count every row.'
    """
    if not scan:
        return None
    engine = ENGINE_NAMES.get(str(scan.get("engine")), str(scan.get("engine")))
    rows, partitions = int(scan.get("rows") or 0), int(scan.get("partitions") or 1)
    where = f"{rows:,} rows" + (f" in {partitions:,} partitions" if partitions > 1 else "")
    text = f"{engine[0].upper()}{engine[1:]} ({scan.get('reason', 'as asked')}): {where}, read in {float(scan.get('seconds') or 0):,.1f} s."
    if scan.get("engine") == "ray":
        text += f" Cluster: {scan.get('cluster', 'unknown')}" + (f", {scan['workers']} workers." if scan.get("workers") else ".")
    if scan.get("pushdown"):
        text += f" The {scan['pushdown']}."
    sample = scan.get("sample")
    if isinstance(sample, Mapping):
        strata = " × ".join(str(s) for s in sample.get("strata", ()))
        text += (
            f" Audits that read rows used a sample of {int(sample.get('rows', 0)):,} of the {int(sample.get('of_rows', 0)):,} rows, "
            f"stratified by {strata} and keyed by a hash of each row; group metrics count every row."
        )
    return text
