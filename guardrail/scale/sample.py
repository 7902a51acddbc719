"""A stratified row sample that every engine draws the same: bottom-k by a seeded hash.

Each row gets a 64-bit hash of its values (seeded), and each stratum (an intersection of the
sensitive features' values) keeps the ``capacity`` rows of smallest hash. The rows kept depend
only on the rows' values and the seed, never on how the rows were cut into batches or
partitions or in which order partial samples were merged, so the streaming and Ray engines
draw the very same rows. Numbers (booleans included) are hashed as float64, so a column read
as integers in one batch and, with gaps, as floats or objects in another hashes alike. A
second hash of the values (another key)
orders rows whose first hashes are equal; rows equal in both are equal rows (or a 2^-128
accident), which are interchangeable.

Memory: at most ``capacity`` rows per stratum are held, plus one batch's candidates, and at
most :data:`~guardrail.fairness.groups.MAX_GROUPS` strata (more are refused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guardrail.core.errors import DataError
from guardrail.fairness.groups import INTERSECTION_SEPARATOR, MAX_GROUPS, MISSING_GROUP, group_label

ALL_ROWS = "all rows"
"""The one stratum's label when the sample is not stratified."""
MISSING_HINT = (
    "fill or drop those rows, or set `data.missing_sensitive: group` to audit them as an explicit 'missing' group"
)


@dataclass(frozen=True)
class SampleInfo:
    """What a drawn sample is: ``rows`` of ``of_rows``, and per stratum ``(taken, seen)``."""

    rows: int
    of_rows: int
    strata: tuple[str, ...]
    per_stratum: dict[str, tuple[int, int]] = field(default_factory=dict)
    method: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "of_rows": self.of_rows,
            "strata": list(self.strata),
            "per_stratum": {label: {"taken": taken, "seen": seen} for label, (taken, seen) in self.per_stratum.items()},
            "method": self.method,
        }


@dataclass
class _Rows:
    """Rows with their hashes and stratum labels, sorted by (label, hash, second hash) when compact."""

    frame: pd.DataFrame
    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray


class RowSample:
    """Bottom-k by a seeded hash of each row's values, per stratum (the intersection of the sensitive features)."""

    def __init__(self, strata: tuple[str, ...], capacity: int, *, seed: int, missing: str = "error") -> None:
        if capacity < 0:
            raise ValueError(f"a sample's capacity must be at least 0, not {capacity}")
        self.strata = tuple(strata)
        self.capacity = capacity
        self.seed = seed
        self.missing = missing
        digest = hashlib.sha256(f"guardrail.scale.sample:{seed}".encode()).hexdigest()
        self._keys = (digest[:16], digest[16:32])
        self.columns: list[str] | None = None
        self.seen: dict[str, int] = {}
        self._held: _Rows | None = None
        self._pending: list[_Rows] = []
        self._pending_rows = 0
        self._limits: dict[str, np.uint64] = {}
        """Per full stratum, the largest first hash it holds (see :meth:`add`)."""

    @property
    def rows(self) -> int:
        """Rows seen (added or merged)."""
        return sum(self.seen.values())

    def add(self, frame: pd.DataFrame) -> None:
        """Offer a batch's rows to the sample."""
        columns = list(frame.columns)
        if self.columns is None:
            self.columns = columns
        elif set(columns) != set(self.columns):
            raise ValueError(f"a batch with columns {columns} for a sample of {self.columns}")
        absent = [f for f in self.strata if f not in frame.columns]
        if absent:
            raise DataError(
                f"sensitive column(s) {', '.join(map(repr, absent))} not found",
                where="sample",
                hint=f"available columns: {', '.join(columns)}",
            )
        if not len(frame):
            return
        frame = frame[self.columns].reset_index(drop=True)
        names, codes = self._labels(frame)
        for label, count in zip(names, np.bincount(codes, minlength=len(names)).tolist(), strict=True):
            if count:
                self.seen[label] = self.seen.get(label, 0) + int(count)
        self._check_strata()
        hashed = _normalised(frame)
        first = pd.util.hash_pandas_object(hashed, index=False, hash_key=self._keys[0]).to_numpy(dtype=np.uint64)
        # a full stratum takes only rows whose hash is at most the largest it holds: the rest
        # can never be among its smallest (ties on the first hash are kept for the second)
        limits = np.array([self._limits.get(label, _NO_LIMIT) for label in names], dtype=np.uint64)
        candidates = np.flatnonzero(first <= limits[codes])
        if not candidates.size:
            return
        second = pd.util.hash_pandas_object(
            hashed.iloc[candidates], index=False, hash_key=self._keys[1]
        ).to_numpy(dtype=np.uint64)
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        keep = _bottom_rows(rank[codes[candidates]], first[candidates], second, self.capacity)
        rows = candidates[keep]
        labels = np.array(names, dtype=object)[codes[rows]]
        self._offer(_Rows(frame.iloc[rows].reset_index(drop=True), first[rows], second[keep], labels))

    def merge(self, other: RowSample) -> None:
        """Add ``other``'s rows (the sample is the same in any merge order)."""
        if (other.strata, other.capacity, other.seed) != (self.strata, self.capacity, self.seed):
            raise ValueError("cannot merge samples of different strata, capacity or seed")
        if other.columns is None:
            return
        if self.columns is None:
            self.columns = list(other.columns)
        elif set(other.columns) != set(self.columns):
            raise ValueError(f"cannot merge a sample of columns {other.columns} into one of {self.columns}")
        for label, count in other.seen.items():
            self.seen[label] = self.seen.get(label, 0) + count
        self._check_strata()
        for part in [*([other._held] if other._held is not None else []), *other._pending]:
            self._offer(_Rows(part.frame[self.columns], part.first, part.second, part.labels))

    def draw(self, rows: int, *, min_per_stratum: int) -> tuple[pd.DataFrame, SampleInfo]:
        """About ``rows`` rows: per stratum ``g`` of ``n_g`` rows seen (``N`` in all), its
        ``min(n_g, max(min_per_stratum, round(rows · n_g / N)))`` rows of smallest hash (at most
        the capacity), ordered by (stratum label, hash); the index is reset."""
        self._compact()
        total = self.rows
        held = self._held
        per_stratum: dict[str, tuple[int, int]] = {}
        keep: list[np.ndarray] = []
        # held rows are sorted by (label, hash): each label's rows are one run
        runs: dict[str, tuple[int, int]] = {}
        if held is not None and len(held.labels):
            found, starts, counts = np.unique(held.labels, return_index=True, return_counts=True)
            runs = {str(label): (int(a), int(c)) for label, a, c in zip(found.tolist(), starts.tolist(), counts.tolist(), strict=True)}
        for label in sorted(self.seen):
            n = self.seen[label]
            quota = min(n, max(min_per_stratum, round(rows * n / total)))
            start, count = runs.get(label, (0, 0))
            taken = np.arange(start, start + min(count, quota), dtype=np.int64)
            keep.append(taken)
            per_stratum[label] = (int(taken.size), n)
        if held is None:
            sample = pd.DataFrame({c: [] for c in self.columns or []})
        else:
            sample = held.frame.iloc[np.concatenate(keep)].reset_index(drop=True)
        info = SampleInfo(
            rows=len(sample),
            of_rows=total,
            strata=self.strata,
            per_stratum=per_stratum,
            method=self._method(rows, min_per_stratum),
        )
        return sample, info

    def _check_strata(self) -> None:
        """Refuse more strata than a grouping may have groups: the sample holds up to
        ``capacity`` rows of each, so an ID-like intersection would hold every row."""
        if len(self.seen) > MAX_GROUPS:
            what = " × ".join(self.strata)
            raise DataError(
                f"the intersection of the sensitive columns ({what}) has more than {MAX_GROUPS:,} groups, "
                "too many to stratify the sample of the audits that read rows",
                where="the streaming pass's sample",
                hint="audit fewer sensitive columns (bin ID-like ones), or run with --engine memory",
            )

    def _method(self, rows: int, min_per_stratum: int) -> str:
        within = f"within each group of {' × '.join(self.strata)}, " if self.strata else ""
        return (
            f"about {rows:,} rows, {within}in proportion to its size and at least {min_per_stratum:,} rows "
            f"(or all of a smaller group), chosen as the rows of smallest seeded hash of their values "
            f"(seed {self.seed}), so every engine and batching draws the same rows"
        )

    def _labels(self, frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """The batch's stratum labels (the groups' labels, joined as intersections are) and each row's index in them."""
        if not self.strata:
            return [ALL_ROWS], np.zeros(len(frame), dtype=np.int64)
        combined = np.zeros(len(frame), dtype=np.int64)
        texts: list[list[str]] = []
        for name in self.strata:
            codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
            codes = np.asarray(codes, dtype=np.int64)
            if (codes < 0).any() and self.missing != "group":
                raise DataError(
                    f"sensitive column {name!r} has {int((codes < 0).sum()):,} missing value(s) in a batch",
                    where="sample",
                    hint=MISSING_HINT,
                )
            names = [group_label(v) for v in uniques.tolist()] + [MISSING_GROUP]
            texts.append(names)
            combined = combined * len(names) + np.where(codes < 0, len(names) - 1, codes)
        found, codes = np.unique(combined, return_inverse=True)
        labels = []
        for value in found.tolist():
            parts = []
            for names in reversed(texts):
                value, digit = divmod(value, len(names))
                parts.append(names[digit])
            labels.append(INTERSECTION_SEPARATOR.join(reversed(parts)))
        return labels, codes.reshape(-1).astype(np.int64)

    def _offer(self, rows: _Rows) -> None:
        if not len(rows.frame):
            return
        self._pending.append(rows)
        self._pending_rows += len(rows.frame)
        held = len(self._held.frame) if self._held is not None else 0
        if self._pending_rows >= max(held, self.capacity, 1 << 14):
            self._compact()

    def _compact(self) -> None:
        parts = [*([self._held] if self._held is not None else []), *self._pending]
        self._pending, self._pending_rows = [], 0
        if not parts:
            return
        joined = _Rows(
            pd.concat([p.frame for p in parts], ignore_index=True) if len(parts) > 1 else parts[0].frame,
            np.concatenate([p.first for p in parts]),
            np.concatenate([p.second for p in parts]),
            np.concatenate([p.labels for p in parts]),
        )
        self._held = held = _bottom(joined, self.capacity)
        labels, starts, counts = np.unique(held.labels, return_index=True, return_counts=True)
        self._limits = {
            str(label): held.first[start + count - 1]  # held rows are sorted by (label, hash)
            for label, start, count in zip(labels.tolist(), starts.tolist(), counts.tolist(), strict=True)
            if count >= self.capacity
        }


_NO_LIMIT = np.uint64(np.iinfo(np.uint64).max)


def _bottom(rows: _Rows, capacity: int) -> _Rows:
    """Per label, the ``capacity`` rows of smallest (hash, second hash), sorted by (label, hash, second hash)."""
    _, codes = np.unique(rows.labels, return_inverse=True)
    keep = _bottom_rows(codes.reshape(-1), rows.first, rows.second, capacity)
    return _Rows(rows.frame.iloc[keep].reset_index(drop=True), rows.first[keep], rows.second[keep], rows.labels[keep])


def _bottom_rows(codes: np.ndarray, first: np.ndarray, second: np.ndarray, capacity: int) -> np.ndarray:
    """Positions of the ``capacity`` rows of smallest (first, second) per code, ordered by (code, first, second)."""
    order = np.lexsort((second, first, codes))
    if not order.size:
        return order
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, order.size]))
    return order[np.arange(order.size) - run_start < capacity]


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns in name order, numbers as float64 (so a value hashes alike whether a batch read
    its column as integers or, with gaps, as floats)."""
    out = {}
    for name in sorted(frame.columns, key=str):
        column = frame[name]
        numeric = pd.api.types.is_numeric_dtype(column.dtype)  # booleans too: True hashes as 1.0 with or without gaps
        if not numeric and column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "boolean":
            numeric = True  # a boolean column with gaps is read as objects: True, False, None
        out[name] = column.astype("float64") if numeric else column
    return pd.DataFrame(out)

