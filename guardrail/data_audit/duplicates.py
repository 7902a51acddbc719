"""Duplicate rows in the audited data, and audited rows leaked from the reference (training) data.

Rows are compared on the given columns through one 64-bit hash per row
(:func:`guardrail.data_audit.rows.row_hashes`): equal rows, in either frame, always have equal
hashes; among ``n`` distinct rows the chance that any two collide is about ``n² / 2⁶⁵``
(3 × 10⁻⁶ at ten million rows): a collision can only overstate the counts, and almost never does.

Duplicates are counted on the sorted hashes; leaked rows by binary search of each audit hash in
the sorted reference hashes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from guardrail.core.types import MetricResult
from guardrail.data_audit.proxies import check_columns
from guardrail.data_audit.rows import row_hashes
from guardrail.fairness.intervals import rate_interval

NO_ROWS = "the audit data has no rows"


def _share(key: str, count: int, rows: int, level: float, what: str) -> MetricResult:
    if rows == 0:
        return MetricResult(key, None, reason=NO_ROWS, n=0, higher_is_better=False, details={what: 0, "rows": 0})
    return MetricResult(
        key, count / rows, ci=rate_interval(count, rows, level), n=rows, higher_is_better=False,
        details={what: count, "rows": rows},
    )  # fmt: skip


def duplicate_metrics(
    audit: pd.DataFrame,
    columns: Sequence[str],
    reference: pd.DataFrame | None = None,
    *,
    level: float = 0.95,
    where: str = "data",
) -> list[MetricResult]:
    """``data.duplicate_rows`` (share of audit rows equal to an earlier audit row) and, with
    ``reference``, ``data.leaked_rows`` (share of audit rows that also occur in it), each with a
    Clopper–Pearson interval."""
    columns = list(dict.fromkeys(columns))
    check_columns(audit, columns, what="the audit data", where=where)
    hashes = np.sort(row_hashes(audit, columns))
    rows = len(hashes)
    distinct = int(np.count_nonzero(hashes[1:] != hashes[:-1])) + 1 if rows else 0
    metrics = [_share("data.duplicate_rows", rows - distinct, rows, level, "duplicates")]
    if reference is not None:
        check_columns(reference, columns, what="the reference (training) data", where=where)
        known = np.sort(row_hashes(reference, columns))
        leaked = 0
        if known.size and rows:
            at = np.minimum(np.searchsorted(known, hashes), known.size - 1)
            leaked = int(np.count_nonzero(known[at] == hashes))
        metrics.append(_share("data.leaked_rows", leaked, rows, level, "leaked"))
    return metrics
