"""Mergeable count and score tables: what :func:`~guardrail.fairness.groups.tabulate` and
:func:`~guardrail.fairness.scores.score_table` give on the concatenation of all batches, built
one batch at a time and merged in any order.

Each accumulator keeps, per sensitive feature, a dictionary of the values seen (an internal id
per value, in the order met) and a few rows of each batch holding them, with the batch's data
type. Counts are kept per combination of internal ids. :meth:`GroupCounts.tables` then hands
that small column of distinct values to :mod:`guardrail.fairness.groups` itself, which orders
and labels them as it would the whole column (categories as declared, numbers numerically,
text alphabetically, 'missing' last), and the counts are re-indexed into that order. The
result equals the in-memory engine's array for array, whatever the batching or merge order.

Memory: a batch costs work in proportion to its rows; the state holds the distinct values, the
groups × cells counts and, for score tables, at most :data:`~guardrail.fairness.scores.SCORE_RESOLUTION`
distinct scores (or the histogram's sub-bins) per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from guardrail.core.errors import DataError
from guardrail.fairness.groups import (
    LONG_LABEL_HINT,
    MAX_GROUPS,
    MAX_LABEL_CHARS,
    TOO_MANY_GROUPS_HINT,
    Grouping,
    _grouping,
    _value_table,
)
from guardrail.fairness.scores import (
    SCORE_RESOLUTION,
    ScoreTable,
    histogram_cells,
    histogram_midpoints,
    histogram_spec,
)

SEEN_TOO_MANY = "{what} has more than {limit:,} groups (the limit in one grouping)"
SEEN_LONG_LABEL = "sensitive column {column!r} has a value of {length:,} characters; group labels are limited to {limit}"
SEEN_MISSING = "sensitive column {column!r} has {count:,} missing value(s) in a batch"
MISSING_HINT = (
    "fill or drop those rows, or set `data.missing_sensitive: group` to audit them as an explicit 'missing' group"
)


class _Values:
    """One sensitive feature's distinct values: an internal id per value (in the order met), and
    rows of the batches holding each value, with each batch's data type (so that
    :mod:`guardrail.fairness.groups` orders and labels them as it would the whole column)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lookup: dict[object, int] = {}
        self.missing_id: int | None = None
        self.pieces: list[pd.Series] = []
        self.piece_ids: list[np.ndarray] = []
        self.dtypes: list[object] = []

    @property
    def size(self) -> int:
        return len(self.lookup) + (self.missing_id is not None)

    def ids(self, column: pd.Series, *, missing: str, where: str) -> np.ndarray:
        """Internal id of each row's value; new values get new ids."""
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        values = uniques.tolist()
        first = np.full(len(values) + 1, -1, dtype=np.int64)  # first row of each code; the last slot for missing
        found, at = np.unique(codes, return_index=True)
        first[found] = at  # code -1 (missing) lands in the last slot
        if first[-1] >= 0 and missing != "group":
            raise DataError(
                SEEN_MISSING.format(column=self.name, count=int((codes < 0).sum())), where=where, hint=MISSING_HINT
            )
        mapped = np.empty(len(values) + 1, dtype=np.int64)
        new_rows: list[int] = []
        for code, value in enumerate(values):
            known = self.lookup.get(value)
            if known is None:
                text = str(value)
                if len(text) > MAX_LABEL_CHARS:
                    raise DataError(
                        SEEN_LONG_LABEL.format(column=self.name, length=len(text), limit=MAX_LABEL_CHARS),
                        where=where,
                        hint=LONG_LABEL_HINT,
                    )
                known = self.lookup[value] = self.size
                if len(self.lookup) > MAX_GROUPS:
                    raise DataError(
                        SEEN_TOO_MANY.format(what=f"sensitive column {self.name!r}", limit=MAX_GROUPS),
                        where=where,
                        hint=TOO_MANY_GROUPS_HINT,
                    )
                new_rows.append(int(first[code]))
            mapped[code] = known
        if first[-1] >= 0:
            if self.missing_id is None:
                self.missing_id = self.size
                new_rows.append(int(first[-1]))
            mapped[-1] = self.missing_id
        else:
            mapped[-1] = -1
        ids = mapped[codes]  # code -1 takes the last slot
        if len(column) and not any(column.dtype == seen for seen in self.dtypes):
            self.dtypes.append(column.dtype)
            new_rows.append(0)  # a row of this data type, so that the column's type is the concatenation's
        if new_rows:
            rows = np.array(sorted(set(new_rows)), dtype=np.int64)
            self.pieces.append(column.iloc[rows].reset_index(drop=True))
            self.piece_ids.append(ids[rows])
        return ids

    def merge(self, other: _Values, *, missing: str, where: str) -> np.ndarray:
        """Add ``other``'s values; returns the id here of each of ``other``'s ids."""
        mapping = np.full(other.size, -1, dtype=np.int64)
        for piece, piece_ids in zip(other.pieces, other.piece_ids, strict=True):
            mapping[piece_ids] = self.ids(piece, missing=missing, where=where)
        return mapping

    def order(self, *, missing: str, where: str) -> tuple[tuple[str, ...], np.ndarray]:
        """The labels in :mod:`guardrail.fairness.groups`' order, and each internal id's index in them."""
        if not self.pieces:
            return (), np.zeros(0, dtype=np.int64)
        column = pd.concat(self.pieces, ignore_index=True) if len(self.pieces) > 1 else self.pieces[0]
        table = _value_table(column, self.name, missing=missing, where=where)
        remap = np.zeros(self.size, dtype=np.int64)
        remap[np.concatenate(self.piece_ids)] = table.encode(slice(0, len(column)))
        return table.values, remap


class _Groups:
    """The groups (combinations of internal value ids) of one feature set, each with an internal id."""

    def __init__(self, features: tuple[str, ...]) -> None:
        self.features = features
        self.lookup: dict[tuple[int, ...], int] = {}
        self.combos: list[tuple[int, ...]] = []

    @property
    def size(self) -> int:
        return len(self.combos)

    def gid(self, combo: tuple[int, ...], *, where: str) -> int:
        found = self.lookup.get(combo)
        if found is None:
            found = self.lookup[combo] = len(self.combos)
            self.combos.append(combo)
            if len(self.combos) > MAX_GROUPS:
                several = len(self.features) > 1
                what = f"the intersection of {', '.join(map(repr, self.features))}" if several else f"sensitive column {self.features[0]!r}"
                raise DataError(
                    SEEN_TOO_MANY.format(what=what, limit=MAX_GROUPS),
                    where=where,
                    hint=TOO_MANY_GROUPS_HINT + (" (or audit the features one by one: `groupings: each`)" if several else ""),
                )
        return found


class _Keys:
    """Per feature the values seen, per feature set its groups: the part the count and score
    accumulators share."""

    def __init__(self, feature_sets: Sequence[tuple[str, ...]], *, missing: str, where: str) -> None:
        self.feature_sets = tuple(tuple(fs) for fs in feature_sets)
        self.missing = missing
        self.where = where
        self.values = {f: _Values(f) for fs in self.feature_sets for f in fs}
        self.groups = {fs: _Groups(fs) for fs in self.feature_sets}

    def encode(self, frame: pd.DataFrame) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
        """Per feature set: each row's index into the batch's groups, and those groups' internal ids."""
        absent = [f for f in self.values if f not in frame.columns]
        if absent:
            raise DataError(
                f"sensitive column(s) {', '.join(map(repr, absent))} not found",
                where=self.where,
                hint=f"available columns: {', '.join(map(str, frame.columns))}",
            )
        ids = {f: values.ids(frame[f], missing=self.missing, where=self.where) for f, values in self.values.items()}
        out = {}
        for fs in self.feature_sets:
            combos, local = _combos([ids[f] for f in fs], [self.values[f].size for f in fs])
            gids = np.array([self.groups[fs].gid(tuple(c), where=self.where) for c in combos.tolist()], dtype=np.int64)
            out[fs] = local, gids
        return out

    def merge(self, other: _Keys) -> dict[tuple[str, ...], np.ndarray]:
        """Add ``other``'s values and groups; per feature set, the id here of each of ``other``'s groups."""
        if other.feature_sets != self.feature_sets:
            raise ValueError("cannot merge tables of different feature sets")
        mapped = {f: values.merge(other.values[f], missing=self.missing, where=self.where) for f, values in self.values.items()}
        out = {}
        for fs in self.feature_sets:
            groups = self.groups[fs]
            out[fs] = np.array(
                [groups.gid(tuple(int(mapped[f][i]) for f, i in zip(fs, combo, strict=True)), where=self.where) for combo in other.groups[fs].combos],
                dtype=np.int64,
            )
        return out

    def grouping(self, fs: tuple[str, ...]) -> tuple[Grouping, np.ndarray]:
        """The grouping as :mod:`guardrail.fairness.groups` makes it, and each internal group's index in it."""
        orders = [self.values[f].order(missing=self.missing, where=self.where) for f in fs]
        labels = tuple(labels for labels, _ in orders)
        combos = np.array(self.groups[fs].combos, dtype=np.int64).reshape(-1, len(fs))
        final = np.stack([remap[combos[:, i]] for i, (_, remap) in enumerate(orders)], axis=1) if len(combos) else combos
        observed, position = np.unique(final, axis=0, return_inverse=True)
        observed = observed.astype(np.int64).reshape(-1, len(fs))
        return _grouping(fs, labels, observed, where=self.where), position.reshape(-1).astype(np.int64)


def _combos(ids: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the per-feature ids (``(k, n_features)``) and each row's index in them."""
    rows = len(ids[0])
    if float(np.prod([max(s, 1) for s in sizes], dtype=np.float64)) < 2.0**62:
        combined = np.zeros(rows, dtype=np.int64)
        for values, size in zip(ids, sizes, strict=True):
            combined *= max(size, 1)
            combined += values
        uniques, local = np.unique(combined, return_inverse=True)
        digits = []
        for size in reversed(sizes):
            uniques, digit = np.divmod(uniques, max(size, 1))
            digits.append(digit)
        return np.stack(digits[::-1], axis=1), local.reshape(-1)
    stacked, local = np.unique(np.stack(ids, axis=1), axis=0, return_inverse=True)
    return stacked, local.reshape(-1)


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with at least ``rows`` rows (capacity doubles, so growth is amortised)."""
    if array.shape[0] >= rows:
        return array
    grown = np.zeros((max(rows, 2 * array.shape[0]), *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _add_rows(target: np.ndarray, flat: np.ndarray) -> None:
    """Add one to ``target``'s flat cells ``flat`` (each index as many times as it occurs)."""
    view = target.reshape(-1)  # a view: targets are C-contiguous
    if view.size <= max(1 << 16, 4 * flat.size):
        view += np.bincount(flat, minlength=view.size)
    else:
        cells, times = np.unique(flat, return_counts=True)
        view[cells] += times


class GroupCounts:
    """Per feature set, the ``(groups, n_cells)`` count table of all rows added or merged.

    :meth:`tables` equals :func:`~guardrail.fairness.groups.tabulate` on the concatenation of
    the batches (same grouping, same array), whatever the batching and merge order.
    """

    def __init__(self, feature_sets: Sequence[tuple[str, ...]], n_cells: int, *, missing: str = "error", where: str = "data") -> None:
        self.keys = _Keys(feature_sets, missing=missing, where=where)
        self.n_cells = n_cells
        self.rows = 0
        self.counts = {fs: np.zeros((0, n_cells), dtype=np.int64) for fs in self.keys.feature_sets}

    def add(self, frame: pd.DataFrame, cells: np.ndarray, *, weights: np.ndarray | None = None) -> None:
        """Count a batch; ``cells`` holds each row's cell in ``[0, n_cells)``. With ``weights``
        each row stands for that many rows (a ``GROUP BY``'s combinations and their counts)."""
        cells = np.asarray(cells, dtype=np.int64).reshape(-1)
        if cells.size != len(frame):
            raise ValueError(f"{cells.size} cells for a batch of {len(frame)} rows")
        if cells.size and (cells.min() < 0 or cells.max() >= self.n_cells):
            raise ValueError(f"cells must lie in [0, {self.n_cells})")
        times = None if weights is None else np.asarray(weights, dtype=np.int64).reshape(-1)
        if times is not None and (times.size != cells.size or (times.size and times.min() < 0)):
            raise ValueError("weights must be one non-negative count per row")
        for fs, (local, gids) in self.keys.encode(frame).items():
            counts = self.counts[fs] = _grow(self.counts[fs], self.keys.groups[fs].size)
            flat = gids[local] * self.n_cells + cells
            if times is None:
                _add_rows(counts, flat)
            else:
                np.add.at(counts.reshape(-1), flat, times)
        self.rows += len(frame) if times is None else int(times.sum())

    def merge(self, other: GroupCounts) -> None:
        """Add ``other``'s rows."""
        if other.n_cells != self.n_cells:
            raise ValueError(f"cannot merge tables of {other.n_cells} and {self.n_cells} cells")
        for fs, gids in self.keys.merge(other.keys).items():
            counts = self.counts[fs] = _grow(self.counts[fs], self.keys.groups[fs].size)
            counts[gids] += other.counts[fs][: gids.size]
        self.rows += other.rows

    def tables(self) -> dict[tuple[str, ...], tuple[Grouping, np.ndarray]]:
        """Per feature set, the grouping and its ``(G, n_cells)`` counts, as ``tabulate`` gives them."""
        out = {}
        for fs in self.keys.feature_sets:
            grouping, position = self.keys.grouping(fs)
            counts = np.zeros((grouping.n_groups, self.n_cells), dtype=np.int64)
            np.add.at(counts, position, self.counts[fs][: position.size])
            out[fs] = grouping, counts
        return out


class ScoreCounts:
    """Per feature set and number of calibration bins, the score table of all rows added or merged.

    :meth:`tables` equals :func:`~guardrail.fairness.scores.score_table` on the concatenation
    (exact while the union of distinct scores is at most
    :data:`~guardrail.fairness.scores.SCORE_RESOLUTION`, the same histogram beyond), whatever
    the batching and merge order.
    """

    def __init__(
        self,
        feature_sets: Sequence[tuple[str, ...]],
        calibration_bins: Sequence[int],
        *,
        missing: str = "error",
        where: str = "data",
    ) -> None:
        self.keys = _Keys(feature_sets, missing=missing, where=where)
        self.calibration_bins = tuple(dict.fromkeys(int(b) for b in calibration_bins))
        self.rows = 0
        self.scores: np.ndarray | None = np.zeros(0, dtype=np.float64)
        """Distinct scores seen, ascending; ``None`` once the tables are histograms."""
        self.exact = {fs: np.zeros((0, 0, 2), dtype=np.int64) for fs in self.keys.feature_sets}
        self.histograms: dict[tuple[tuple[str, ...], int], np.ndarray] = {}

    def add(self, frame: pd.DataFrame, y_score: np.ndarray, y_true: np.ndarray) -> None:
        """Count a batch: each row's score and label (0/1)."""
        scores = np.asarray(y_score, dtype=np.float64).reshape(-1)
        labels = np.asarray(y_true, dtype=np.int64).reshape(-1)
        if scores.size != len(frame) or labels.size != len(frame):
            raise ValueError(f"{scores.size} scores and {labels.size} labels for a batch of {len(frame)} rows")
        encoded = self.keys.encode(frame)
        if self.scores is not None:  # exact so far: a histogram never needs the distinct scores again
            uniques, position = np.unique(scores, return_inverse=True)
            self._widen(np.union1d(self.scores, uniques))
        if self.scores is not None:
            column = np.searchsorted(self.scores, uniques)[position.reshape(-1)]
            width = self.scores.size
            for fs, (local, gids) in encoded.items():
                counts = self.exact[fs] = _grow(self.exact[fs], self.keys.groups[fs].size)
                _add_rows(counts, (gids[local] * width + column) * 2 + labels)
        else:
            for bins in self.calibration_bins:
                cells = histogram_cells(scores, bins)
                width = histogram_spec(bins).bins_total
                for fs, (local, gids) in encoded.items():
                    key = (fs, bins)
                    counts = self.histograms[key] = _grow(self.histograms[key], self.keys.groups[fs].size)
                    _add_rows(counts, (gids[local] * width + cells) * 2 + labels)
        self.rows += len(frame)

    def merge(self, other: ScoreCounts) -> None:
        """Add ``other``'s rows."""
        if other.calibration_bins != self.calibration_bins:
            raise ValueError("cannot merge score tables of different calibration bins")
        gids = self.keys.merge(other.keys)
        if self.scores is not None and other.scores is not None:
            self._widen(np.union1d(self.scores, other.scores))
        elif self.scores is not None:
            self._widen(None)
        if self.scores is None:
            other_hist = other.histograms if other.scores is None else other._histograms_of_exact()
            for (fs, bins), counts in other_hist.items():
                mine = self.histograms[(fs, bins)] = _grow(self.histograms[(fs, bins)], self.keys.groups[fs].size)
                mine[gids[fs]] += counts[: gids[fs].size]
        else:
            assert other.scores is not None
            columns = np.searchsorted(self.scores, other.scores)
            for fs, counts in other.exact.items():
                mine = self.exact[fs] = _grow(self.exact[fs], self.keys.groups[fs].size)
                rows = gids[fs]
                mine[rows[:, None], columns[None, :]] += counts[: rows.size, : columns.size]
        self.rows += other.rows

    def tables(self) -> dict[tuple[tuple[str, ...], int], ScoreTable]:
        """Per (feature set, calibration bins), the score table, as ``score_table`` gives it on
        the concatenation with the groups of :func:`~guardrail.fairness.groups.encode`."""
        out = {}
        for fs in self.keys.feature_sets:
            grouping, position = self.keys.grouping(fs)
            if self.scores is not None:
                counts = np.zeros((grouping.n_groups, self.scores.size, 2), dtype=np.int64)
                np.add.at(counts, position, self.exact[fs][: position.size, : self.scores.size])
                for bins in self.calibration_bins:
                    out[(fs, bins)] = ScoreTable(self.scores.copy(), counts)
                continue
            for bins in self.calibration_bins:
                full = np.zeros((grouping.n_groups, histogram_spec(bins).bins_total, 2), dtype=np.int64)
                np.add.at(full, position, self.histograms[(fs, bins)][: position.size])
                occupied = np.flatnonzero(full.sum(axis=(0, 2)) > 0)
                out[(fs, bins)] = ScoreTable(histogram_midpoints(bins)[occupied], full[:, occupied], histogram_spec(bins))
        return out

    def _widen(self, union: np.ndarray | None) -> None:
        """Hold the distinct scores ``union`` (a superset of those held): re-index the exact
        counts, or turn them into histograms when there are more than SCORE_RESOLUTION (or
        ``union`` is ``None``: merging a histogram)."""
        assert self.scores is not None
        if union is None or union.size > SCORE_RESOLUTION:
            self.histograms = self._histograms_of_exact()
            self.scores = None
            self.exact = {}
            return
        if union.size == self.scores.size:
            return
        columns = np.searchsorted(union, self.scores)
        for fs, counts in self.exact.items():
            wide = np.zeros((counts.shape[0], union.size, 2), dtype=np.int64)
            wide[:, columns] = counts[:, : self.scores.size]
            self.exact[fs] = wide
        self.scores = union

    def _histograms_of_exact(self) -> dict[tuple[tuple[str, ...], int], np.ndarray]:
        """The exact counts as full histograms ``(groups, bins_total, 2)`` (lossless: they hold every score)."""
        assert self.scores is not None
        out = {}
        for bins in self.calibration_bins:
            occupied, starts = np.unique(histogram_cells(self.scores, bins), return_index=True)  # cells ascend with the scores
            total = histogram_spec(bins).bins_total
            for fs, counts in self.exact.items():
                full = np.zeros((counts.shape[0], total, 2), dtype=np.int64)
                if self.scores.size:
                    full[:, occupied] = np.add.reduceat(counts[:, : self.scores.size], starts, axis=1)
                out[(fs, bins)] = full
        return out
