"""Columns as integer codes, count tables of two codings, and the mutual information in them.

This module is the one implementation of the (normalised) mutual information in guardrail: the
data audit's proxies (:mod:`guardrail.data_audit.proxies`) and the explainability audit's proxy
check (:mod:`guardrail.explain.proxy`) both call it.

* :func:`code_column` turns a column into codes ``0 .. k-1``: a numeric column into quantile
  bins (:func:`bin_edges`: by value when it has few values, a heavy tied value in a bin of its
  own; or edges given, e.g. a reference column's), any other column
  (text, categories, booleans) into one code per value, and missing values into a code of
  their own labelled ``"missing"``. :func:`code_pair` codes two columns on common codes (the
  reference's bins, or the union of both columns' values), for comparing their histograms.
* :func:`contingency` counts two codings against each other with ``np.bincount`` over chunks
  of rows (no row-sized 64-bit array is formed); :func:`combine` and :func:`group_tables` count
  a column against several codings (every sensitive column) in one pass, as margins of one
  joint count.
* :func:`mutual_information` and :func:`nmi` work on count tables of shape ``(..., R, C)``, so
  that a thousand bootstrap resamples of one table are one call.

The definitions are scikit-learn's ``mutual_info_score`` (natural logarithm) and
``normalized_mutual_info_score`` with ``average_method="arithmetic"``, edge cases included:
when one side has a single non-empty class the mutual information is 0, and so is the NMI —
unless *both* sides have a single class (or the table is empty), where scikit-learn returns
1.0 ("a perfect match"). ``nmi(..., constant=0.0)`` returns 0 there instead: a sensitive column
with one group has nothing a feature could be a proxy of (the proxy checks use that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from guardrail.fairness.groups import group_label

MISSING = "missing"
"""Label of the code of missing values."""
OTHER = "other"
"""Label prefix of the code that gathers the rarest values of a column with too many."""
MAX_VALUES = 1000
"""Most codes one non-numeric column gets: beyond it (an ID-like or free-text column) the
:data:`MAX_VALUES` − 1 most frequent values keep a code each and the rest share one, so that a
count table (and its bootstrap resamples) stays small whatever the column."""
CHUNK_ROWS = 1 << 16
_COMPARE_EDGES = 32
"""Up to this many bin edges a row's bin is the number of edges at or below it (one vectorised
comparison per edge, faster than a binary search); beyond, ``np.searchsorted``."""


@dataclass(frozen=True)
class Coded:
    """A column as codes: ``codes[i]`` in ``0 .. k-1`` is row ``i``'s bin or value, ``labels[c]``
    names code ``c``. ``edges`` are a numeric column's inner bin edges (``None`` when coded by value):
    code ``c`` holds the values ``edges[c-1] <= x < edges[c]`` (``np.digitize``), code
    ``len(edges) + 1`` the missing values."""

    codes: np.ndarray
    labels: tuple[str, ...]
    edges: np.ndarray | None = None

    @property
    def k(self) -> int:
        return len(self.labels)


def is_numeric(series: pd.Series) -> bool:
    """Whether ``series`` is binned (numbers, dates, durations) rather than coded by value
    (text, categories, booleans)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    return bool(
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
    )


def _sorted_valid(values: np.ndarray, scratch: np.ndarray | None) -> np.ndarray:
    """The values that are not NaN, sorted (in ``scratch`` when it is long enough)."""
    values = np.asarray(values, dtype=np.float64)
    if scratch is not None and scratch.size >= values.size:
        ordered = scratch[: values.size]
        np.copyto(ordered, values)
        ordered.sort()
    else:
        ordered = np.sort(values)
    n = ordered.size
    if n and np.isnan(ordered[-1]):
        n = int(np.searchsorted(ordered, np.nan))  # NaN sort last, and searchsorted orders them alike
    return ordered[:n]


def _quantiles(ordered: np.ndarray, bins: int) -> np.ndarray:
    """The inner quantiles ``1/bins .. (bins-1)/bins`` of the sorted ``ordered``, with numpy's
    ``"linear"`` formula (repeated values kept)."""
    n = ordered.size
    if n == 0 or bins < 2:
        return np.empty(0, dtype=np.float64)
    virtual = (n - 1) * np.linspace(0, 1, bins + 1)[1:-1]
    below = np.floor(virtual)
    gamma = virtual - below
    low = np.minimum(below.astype(np.intp), n - 1)
    high = np.minimum(low + 1, n - 1)
    a, b = ordered[low], ordered[high]
    diff = b - a
    with np.errstate(invalid="ignore"):
        found: np.ndarray = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return found


def quantile_edges(values: np.ndarray, bins: int, *, scratch: np.ndarray | None = None) -> np.ndarray:
    """The distinct inner quantiles ``1/bins .. (bins-1)/bins`` of ``values`` (NaN ignored), as
    ``np.quantile`` computes them (its default ``"linear"`` method, Hyndman & Fan's 7th).

    The values are sorted once and each quantile read from its two neighbouring order
    statistics with numpy's own interpolation formula: on millions of rows one sort is faster
    than ``np.quantile``'s repeated selection, and the result is the same number (a test
    compares the two bit for bit). ``scratch``, a float64 array at least as long as ``values``,
    is sorted in place of a new copy (a caller binning many columns saves the allocation).

    These are not yet bin edges: where values are tied, quantiles coincide and bins vanish
    (see :func:`bin_edges`, which the binning uses).
    """
    edges: np.ndarray = np.unique(_quantiles(_sorted_valid(values, scratch), bins))
    return edges


def bin_edges(values: np.ndarray, bins: int, *, scratch: np.ndarray | None = None) -> np.ndarray:
    """Inner edges of at most about ``bins`` bins of ``values`` (NaN ignored) that never lose a
    tied value; a row's bin is the number of edges at or below it (``np.digitize``).

    * A column with at most ``bins`` distinct values is binned by value: the edges are its
      values but the smallest, so each value is a bin of its own (a 0/1 flag is two bins,
      however rare its ones). Values in between — another column's, binned at these edges —
      fall in the bin of the value below them, values below the smallest in the first bin.
    * Otherwise the edges are the quantiles (:func:`quantile_edges`), and a value that holds
      a bin's worth of rows or more — ``count × bins ≥ rows``, where quantiles coincide —
      becomes a bin of its own: ``nextafter(v, +inf)`` closes the bin ``[v, nextafter(v))``.
      At the smallest value the edge ``v`` itself is dropped (the bin below it would always be
      empty), at the largest ``nextafter(v)`` is (so is the bin above it).

    Plain quantile edges would merge a heavy value with its neighbours or leave bins empty: a
    column that is 92 % zeros had one bin, ``≥ 0``, and told nothing.
    """
    ordered = _sorted_valid(values, scratch)
    n = ordered.size
    if n == 0 or bins < 2:
        return np.empty(0, dtype=np.float64)
    changes = ordered[1:] != ordered[:-1]
    if int(np.count_nonzero(changes)) < bins:  # at most `bins` distinct values
        starts = np.flatnonzero(changes) + 1
        by_value: np.ndarray = ordered[starts]
        return by_value
    del changes
    found = _quantiles(ordered, bins)
    unique, repeats = np.unique(found, return_counts=True)
    counts = np.searchsorted(ordered, unique, side="right") - np.searchsorted(ordered, unique, side="left")
    heavy = (counts > 0) & ((repeats > 1) | (counts * bins >= n) | (unique == ordered[0]))
    edges: list[float] = []
    smallest, largest = float(ordered[0]), float(ordered[-1])
    for value, alone in zip(unique.tolist(), heavy.tolist(), strict=True):
        if not alone or value != smallest:
            edges.append(value)
        if alone and value != largest:
            edges.append(float(np.nextafter(value, np.inf)))
    out: np.ndarray = np.unique(np.asarray(edges, dtype=np.float64))
    return out


def code_column(
    series: pd.Series, *, bins: int | None, edges: np.ndarray | Sequence[float] | None = None, scratch: np.ndarray | None = None
) -> Coded:
    """``series`` as codes: numeric columns binned at ``edges`` (by default ``bins`` quantile bins of
    the column itself), others — or every column when ``bins`` is ``None`` — one code per value,
    values in sorted order; missing values get the last code, labelled ``"missing"``. ``scratch``:
    see :func:`quantile_edges`."""
    if bins is not None and is_numeric(series):
        values = as_float(series)
        found = bin_edges(values, bins, scratch=scratch) if edges is None else np.asarray(edges, dtype=np.float64)
        return _binned(values, found, missing=None)
    (coded,) = _by_value([series])
    return coded


def code_pair(audit: pd.Series, reference: pd.Series, *, bins: int | None, scratch: np.ndarray | None = None) -> tuple[Coded, Coded]:
    """Two columns on common codes: numeric ones binned at the reference's quantiles, others by the
    union of both columns' values (equal labels are one value); a missing code in both when
    either has missing values. Returns ``(audit, reference)``."""
    if bins is not None and is_numeric(audit) and is_numeric(reference):
        ref_values, audit_values = as_float(reference), as_float(audit)
        missing = bool(np.isnan(ref_values).any() or np.isnan(audit_values).any())
        edges = bin_edges(ref_values, bins, scratch=scratch)
        return _binned(audit_values, edges, missing=missing), _binned(ref_values, edges, missing=missing)
    coded_audit, coded_reference = _by_value([audit, reference])
    return coded_audit, coded_reference


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric, date or duration column as float64, missing values as NaN."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return _nanoseconds(series)
    array: np.ndarray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return array


def _nanoseconds(series: pd.Series) -> np.ndarray:
    """A date (time-zone aware or not) or duration column as float64 nanoseconds since the epoch
    (UTC for aware dates), whatever its unit, missing values as NaN: two columns of other
    units or zones that hold the same instants give the same numbers."""
    array = series.array  # DatetimeArray / TimedeltaArray: .asi8 is its int64 count of its unit
    unit = getattr(array, "unit", "ns")
    if unit != "ns":
        array = array.as_unit("ns")
    ticks = np.asarray(array.asi8)
    values = ticks.astype(np.float64)
    values[np.asarray(series.isna())] = np.nan
    return values


def _small_int(k: int) -> type[np.signedinteger[Any]]:
    for kind in (np.int8, np.int16, np.int32):
        if k <= np.iinfo(kind).max:
            return kind
    return np.int64


def _binned(values: np.ndarray, edges: np.ndarray, *, missing: bool | None) -> Coded:
    """Codes of ``values`` in the bins of ``edges`` (``np.digitize``), NaN in a code of its own."""
    n_bins = len(edges) + 1
    codes = np.empty(values.size, dtype=_small_int(n_bins + 1))
    seen_missing = False
    for start in range(0, values.size, CHUNK_ROWS):
        chunk = values[start : start + CHUNK_ROWS]
        out = codes[start : start + CHUNK_ROWS]
        if len(edges) <= _COMPARE_EDGES:
            out[:] = 0
            for edge in edges:
                out += chunk >= edge
        else:
            out[:] = np.searchsorted(edges, chunk, side="right")
        nan = np.isnan(chunk)
        if nan.any():
            out[nan] = n_bins
            seen_missing = True
    labels = _bin_labels(edges)
    if seen_missing if missing is None else missing:
        labels = (*labels, MISSING)
    return Coded(codes, labels, edges)


def _bin_labels(edges: np.ndarray) -> tuple[str, ...]:
    """Readable names of the bins of ``edges``: ``"< a"``, ``"[a, b)"``, ``"≥ b"``; a bin that holds
    one value (``[v, nextafter(v))``) is named by the value, and a bound just above a value
    (:func:`bin_edges`'s ``nextafter``) is shown as ``"> v"`` / ``"≤ v"``."""
    if len(edges) == 0:
        return ("all",)
    bounds = [-np.inf, *edges.tolist(), np.inf]
    labels = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        if np.isfinite(low) and np.isfinite(high) and high == np.nextafter(low, np.inf):
            labels.append(_shown(low))
            continue
        below, above = _just_above(low), _just_above(high)
        lower = None if not np.isfinite(low) else (f"> {_shown(below)}" if below is not None else f"≥ {_shown(low)}")
        upper = None if not np.isfinite(high) else (f"≤ {_shown(above)}" if above is not None else f"< {_shown(high)}")
        if lower is None or upper is None:
            labels.append(lower or upper or "all")
        else:
            left = "(" if below is not None else "["
            right = "]" if above is not None else ")"
            labels.append(f"{left}{_shown(below if below is not None else low)}, {_shown(above if above is not None else high)}{right}")
    return tuple(labels)


def _shown(value: float) -> str:
    return f"{value:.6g}"


def _just_above(bound: float) -> float | None:
    """The value ``v`` when ``bound`` is ``nextafter(v, +inf)`` of a value ``v`` written with fewer
    digits (an edge :func:`bin_edges` put just above a tied value), else ``None``; labels only."""
    if not np.isfinite(bound):
        return None
    below = float(np.nextafter(bound, -np.inf))
    return below if len(repr(below)) + 1 < len(repr(float(bound))) else None


def _factorized(series: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Each row's index into the column's distinct values (−1 where missing), and those values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), list(series.cat.categories)
    raw, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
    return np.asarray(raw), list(uniques)


def _sorted_order(values: Sequence[Any]) -> list[int]:
    """Indices of ``values`` in sorted order: natural order where the values compare, else as text."""
    try:
        return sorted(range(len(values)), key=values.__getitem__)
    except TypeError:
        return sorted(range(len(values)), key=lambda i: str(values[i]))


def _by_value(columns: Sequence[pd.Series]) -> list[Coded]:
    """Columns coded on their common values (values with the same label are one), sorted; the
    rarest beyond :data:`MAX_VALUES` share one code; missing values last."""
    parts = [_factorized(column) for column in columns]
    index: dict[str, int] = {}
    representative: list[Any] = []
    counts_by_label: list[int] = []
    to_label: list[np.ndarray] = []
    for raw, uniques in parts:
        counts = np.bincount(raw[raw >= 0], minlength=len(uniques)) if len(uniques) else np.zeros(0, dtype=np.int64)
        mapping = np.empty(len(uniques), dtype=np.int64)
        for i, value in enumerate(uniques):
            label = group_label(value)
            j = index.setdefault(label, len(index))
            if j == len(representative):
                representative.append(value)
                counts_by_label.append(0)
            counts_by_label[j] += int(counts[i])
            mapping[i] = j
        to_label.append(mapping)
    present = [j for j in _sorted_order(representative) if counts_by_label[j] > 0]
    labels = [group_label(representative[j]) for j in present]
    position = np.full(len(representative), -1, dtype=np.int64)
    position[present] = np.arange(len(present))
    if len(present) > MAX_VALUES:
        frequent = sorted(range(len(present)), key=lambda p: -counts_by_label[present[p]])[: MAX_VALUES - 1]
        kept = sorted(frequent)
        remap = np.full(len(present), len(kept), dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        labels = [labels[p] for p in kept] + [f"{OTHER} ({len(present) - len(kept)} values)"]
        position = np.where(position >= 0, remap[np.maximum(position, 0)], -1)
    has_missing = any(bool((raw < 0).any()) for raw, _ in parts)
    missing_code = len(labels)
    if has_missing:
        labels.append(MISSING)
    dtype = _small_int(len(labels))
    coded = []
    for (raw, _), mapping in zip(parts, to_label, strict=True):
        lookup = np.append(position[mapping], missing_code).astype(dtype)  # raw −1 (missing) takes the last entry
        coded.append(Coded(np.take(lookup, raw), tuple(labels)))
    return coded


def contingency(a_codes: np.ndarray, a_k: int, b_codes: np.ndarray, b_k: int) -> np.ndarray:
    """``(a_k, b_k)`` counts of rows by (code in ``a``, code in ``b``), counted chunk by chunk."""
    counts = np.zeros(a_k * b_k, dtype=np.int64)
    for start in range(0, len(a_codes), CHUNK_ROWS):
        flat = a_codes[start : start + CHUNK_ROWS].astype(np.int64) * b_k
        flat += b_codes[start : start + CHUNK_ROWS]
        counts += np.bincount(flat, minlength=a_k * b_k)
    return counts.reshape(a_k, b_k)


JOINT_LIMIT = 1 << 12
"""Most combinations of groups (of all sensitive columns together) counted against a column in one pass."""


def combine(groups: Sequence[Coded]) -> np.ndarray | None:
    """Each row's combination of its codes in ``groups`` (row-major), when they are at most
    :data:`JOINT_LIMIT` combinations, so that one count against a column gives every coding's
    table as a margin (:func:`group_tables`); else ``None``. One coding: its own codes."""
    sizes = [g.k for g in groups]
    if not groups or int(np.prod(sizes)) > JOINT_LIMIT:
        return None
    if len(groups) == 1:
        return groups[0].codes
    combined = np.zeros(len(groups[0].codes), dtype=np.int16)
    for g in groups:
        combined *= g.k
        combined += g.codes
    return combined


def group_tables(coded: Coded, groups: Sequence[Coded], combined: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The histogram ``(K,)`` of ``coded`` and its ``(G, K)`` count table against each coding of
    ``groups``: margins of one joint count when ``combined`` (:func:`combine` of ``groups``) is
    given, else one count per coding."""
    if combined is None:
        per = [contingency(g.codes, g.k, coded.codes, coded.k) for g in groups]
        overall = per[0].sum(axis=0) if per else np.bincount(coded.codes.astype(np.int64), minlength=coded.k)
        return overall, per
    sizes = [g.k for g in groups]
    joint = contingency(combined, int(np.prod(sizes)), coded.codes, coded.k).reshape(*sizes, coded.k)
    axes = tuple(range(len(groups)))
    return joint.sum(axis=axes), [joint.sum(axis=tuple(a for a in axes if a != i)) for i in range(len(groups))]


def _terms(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mutual information, both marginal entropies and the numbers of non-empty rows and columns
    of each ``(R, C)`` table in ``table`` (natural log, as scikit-learn)."""
    t = np.asarray(table, dtype=np.float64)
    rows, cols = t.sum(axis=-1), t.sum(axis=-2)
    n = rows.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_n = np.log(np.where(n > 0, n, 1.0))
        log_rows = np.log(np.where(rows > 0, rows, 1.0))
        log_cols = np.log(np.where(cols > 0, cols, 1.0))
        log_t = np.log(np.where(t > 0, t, 1.0))
        cells = t * (log_t + log_n[..., None, None] - log_rows[..., :, None] - log_cols[..., None, :])
        safe_n = np.where(n > 0, n, 1.0)
        mi = cells.sum(axis=(-2, -1)) / safe_n
        h_rows = log_n - (rows * log_rows).sum(axis=-1) / safe_n
        h_cols = log_n - (cols * log_cols).sum(axis=-1) / safe_n
    r, c = (rows > 0).sum(axis=-1), (cols > 0).sum(axis=-1)
    mi = np.where((r <= 1) | (c <= 1), 0.0, np.maximum(mi, 0.0))
    return mi, h_rows, h_cols, r, c


def mutual_information(table: np.ndarray) -> np.ndarray:
    """Mutual information (nats) of each ``(R, C)`` count table in ``table`` (shape ``(..., R, C)``):
    scikit-learn's ``mutual_info_score`` of the labellings the table counts."""
    mi: np.ndarray = _terms(table)[0]
    return mi


def nmi(table: np.ndarray, *, constant: float = 1.0) -> np.ndarray:
    """Normalised mutual information of each ``(R, C)`` count table in ``table``: scikit-learn's
    ``normalized_mutual_info_score(average_method="arithmetic")``, ``MI / ((H_rows + H_cols) / 2)``.

    ``constant`` is the value when both sides have a single class (or the table is empty):
    scikit-learn's 1.0 by default (see the module docstring).
    """
    mi, h_rows, h_cols, r, c = _terms(table)
    normaliser = (h_rows + h_cols) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(mi == 0, 0.0, mi / np.where(normaliser > 0, normaliser, 1.0))
    result: np.ndarray = np.where((r <= 1) & (c <= 1), constant, out)
    return result
