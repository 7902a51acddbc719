"""The four real UCI Heart Disease sites as federated hospital nodes.

Each site of :func:`guardrail.datasets.load_heart_disease` (Cleveland, Hungary, VA Long
Beach, Switzerland) is a hospital. A layout may merge a site into another (``merge=
{"Switzerland": "VA Long Beach"}``: one node holding both sites' records) or split a site
into parts by a seeded split stratified by the label (``split={"Cleveland": 2}``), as long
as 3–5 nodes result.

Every node then keeps its own held-out split (seeded, stratified by ``heart_disease``) and
its own missing-value handling: medians (numbers) and modes (categories) fitted on that
node's training rows only. A column that no training row of the node records stays missing
(:attr:`Hospital.never_recorded`; Switzerland records no cholesterol at all). The raw rows
keep their gaps, so that notes can say "not recorded" in the site's own words
(:mod:`guardrail.federation.notes`); :meth:`Hospital.imputed` gives the filled table.

Everything is deterministic given ``seed`` (and independent of the input's row order).
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from guardrail.core.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd

SITES: tuple[str, ...] = ("Cleveland", "Hungary", "VA Long Beach", "Switzerland")
"""The source sites, in the order nodes are numbered."""
LABEL = "heart_disease"
MIN_NODES, MAX_NODES = 3, 5
NUMERIC: tuple[str, ...] = ("age", "resting_bp", "cholesterol", "max_heart_rate", "st_depression")
"""Imputed with the median of the node's training rows."""
DISCRETE: tuple[str, ...] = (
    "sex",
    "chest_pain_type",
    "fasting_blood_sugar_over_120",
    "resting_ecg",
    "exercise_angina",
    "st_slope",
    "major_vessels",
    "thalassemia",
)
"""Imputed with the mode of the node's training rows (ties: the smallest value as text)."""
FEATURES: tuple[str, ...] = NUMERIC + DISCRETE
Split = Literal["train", "test"]
ImputedValue = float | int | str | None

WHERE_MERGE = "hospitals.merge"
WHERE_SPLIT = "hospitals.split"
WHERE_TEST_SIZE = "hospitals.test_size"


@dataclass(frozen=True, eq=False)
class Hospital:
    """One federated node: its rows (raw, gaps kept), held-out split and imputation.

    ``name`` identifies the node in outputs (ledgers, reports); it is never written into a
    note. ``sites`` are the source sites of its rows (two after a merge).
    """

    name: str
    index: int
    sites: tuple[str, ...]
    train: pd.DataFrame
    test: pd.DataFrame
    imputation: Mapping[str, ImputedValue]
    seed: int

    @property
    def never_recorded(self) -> tuple[str, ...]:
        """Feature columns that none of this node's training rows records (left missing)."""
        return tuple(column for column in FEATURES if self.imputation[column] is None)

    def rows(self, split: Split) -> pd.DataFrame:
        """The raw rows of ``split`` (missing values kept)."""
        return self.train if split == "train" else self.test

    def missing(self, split: Split) -> pd.DataFrame:
        """Which feature values of ``split`` were not recorded (a boolean table)."""
        return self.rows(split)[list(FEATURES)].isna()

    def data_sha256(self, split: Split = "train") -> str:
        """SHA-256 of the rows of ``split`` as CSV: the ``data_sha256`` of this node's privacy ledger."""
        import hashlib

        return hashlib.sha256(self.rows(split).to_csv(index=False).encode()).hexdigest()

    def imputed(self, split: Split) -> pd.DataFrame:
        """The rows of ``split`` with gaps filled by this node's training medians/modes."""
        frame = self.rows(split).copy()
        for column, value in self.imputation.items():
            if value is not None and frame[column].hasnans:
                frame[column] = frame[column].fillna(value)
        return frame


def build_hospitals(
    *,
    merge: Mapping[str, str] | None = None,
    split: Mapping[str, int] | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    data: pd.DataFrame | None = None,
) -> tuple[Hospital, ...]:
    """The hospital nodes of a layout, numbered in :data:`SITES` order.

    Parameters
    ----------
    merge:
        Source site → site it joins (its rows move to that node).
    split:
        Site → number of parts (≥ 2), made by a seeded split stratified by the label.
    test_size:
        Fraction of each node's rows held out (stratified by the label, seeded).
    seed:
        Seed of every split; the same seed gives the same nodes, rows and imputations.
    data:
        The Heart Disease table (default: :func:`guardrail.datasets.load_heart_disease`).

    Raises
    ------
    SpecError
        Unknown site names, contradictory merges/splits, a node count outside 3–5, or a
        node whose held-out or training rows would lack a class.

    Examples
    --------
    >>> nodes = build_hospitals(merge={"Switzerland": "VA Long Beach"})
    >>> [(h.name, len(h.train), len(h.test)) for h in nodes]
    [('cleveland', 228, 76), ('hungary', 220, 73), ('va-long-beach+switzerland', 242, 81)]
    """
    merge = dict(merge or {})
    split = dict(split or {})
    _check_layout(merge, split, test_size)
    if data is None:
        from guardrail.datasets import load_heart_disease

        data = load_heart_disease()
    if "id" in data.columns:
        data = data.sort_values("id", kind="stable")  # the same nodes whatever the input's row order
    site_of = data["site"].astype(str).to_numpy()
    labels = data[LABEL].to_numpy()

    groups: list[tuple[str, tuple[str, ...], np.ndarray, bool]] = []
    for site in SITES:
        if site in merge:
            continue
        members = (site, *(s for s in SITES if merge.get(s) == site))
        rows = np.flatnonzero(np.isin(site_of, members))
        node = "+".join(_slug(s) for s in members)
        parts = split.get(site, 1)
        if parts == 1:
            groups.append((node, members, rows, False))
            continue
        rng = np.random.default_rng(_seed_for(seed, f"split:{site}"))
        for number, part in enumerate(_stratified(labels[rows], [1 / parts] * parts, rng), start=1):
            groups.append((f"{node}-{number}", members, rows[part], True))

    hospitals = []
    for index, (name, members, rows, was_split) in enumerate(groups):
        rng = np.random.default_rng(_seed_for(seed, f"holdout:{name}"))
        train_at, test_at = _stratified(labels[rows], [1 - test_size, test_size], rng)
        train, test = data.iloc[rows[train_at]], data.iloc[rows[test_at]]
        for side, rows_of in (("training", train), ("held-out", test)):
            classes = set(rows_of[LABEL].tolist())
            if classes != {0, 1}:
                raise SpecError(
                    f"node {name!r} would have {len(rows_of)} {side} row(s) with only class(es) {sorted(classes)}",
                    where=WHERE_SPLIT if was_split else WHERE_TEST_SIZE,
                    hint="split the site into fewer parts, or change test_size so both classes fall on each side",
                )
        hospitals.append(
            Hospital(name, index, members, train, test, _fit_imputation(train), seed)
        )
    return tuple(hospitals)


def _check_layout(merge: dict[str, str], split: dict[str, int], test_size: float) -> None:
    for where, names in ((WHERE_MERGE, [*merge, *merge.values()]), (WHERE_SPLIT, list(split))):
        for name in names:
            if name not in SITES:
                close = difflib.get_close_matches(str(name), SITES, n=1, cutoff=0.5)
                raise SpecError(
                    f"unknown site {name!r}",
                    where=where,
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"the sites are {', '.join(map(repr, SITES))}",
                )
    for source, target in merge.items():
        if source == target:
            raise SpecError(f"site {source!r} is merged into itself", where=WHERE_MERGE, hint="remove that entry")
        if target in merge:
            raise SpecError(
                f"site {source!r} is merged into {target!r}, which is itself merged into {merge[target]!r}",
                where=WHERE_MERGE,
                hint=f"merge {source!r} straight into {merge[target]!r}",
            )
        if source in split or target in split:
            raise SpecError(
                f"site {source if source in split else target!r} is both merged and split",
                where=WHERE_MERGE,
                hint="merge or split a site, not both",
            )
    for site, parts in split.items():
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 2:
            raise SpecError(
                f"site {site!r} split into {parts!r} parts",
                where=WHERE_SPLIT,
                hint="give a whole number ≥ 2, or leave the site out of split",
            )
    nodes = len(SITES) - len(merge) + sum(parts - 1 for parts in split.values())
    if not MIN_NODES <= nodes <= MAX_NODES:
        raise SpecError(
            f"the layout gives {nodes} hospital nodes; {MIN_NODES}–{MAX_NODES} are supported",
            where=WHERE_SPLIT if nodes > MAX_NODES else WHERE_MERGE,
            hint="split fewer sites (or into fewer parts)" if nodes > MAX_NODES else "merge fewer sites",
        )
    if not (isinstance(test_size, float) and 0.05 <= test_size <= 0.5):
        raise SpecError(
            f"test_size must be a fraction between 0.05 and 0.5, got {test_size!r}",
            where=WHERE_TEST_SIZE,
            hint="for example 0.25 (a quarter of each node's rows held out)",
        )


def _stratified(labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Positions of ``labels`` cut into parts of the given fractions within each class (sorted)."""
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.round(bounds * len(members)).astype(np.int64)
        cuts[-1] = len(members)
        start = 0
        for number, stop in enumerate(cuts.tolist()):
            parts[number].append(members[start:stop])
            start = stop
    return [np.sort(np.concatenate(chunks)) for chunks in parts]


def _fit_imputation(train: pd.DataFrame) -> dict[str, ImputedValue]:
    """Medians of numbers and modes of categories over the node's training rows only."""
    fitted: dict[str, ImputedValue] = {}
    for column in FEATURES:
        values = train[column].dropna()
        if values.empty:
            fitted[column] = None
        elif column in NUMERIC:
            fitted[column] = float(values.median())
        else:
            counts = values.value_counts(sort=False)
            counts = counts[counts > 0]
            best = int(counts.max())
            tied = sorted((v for v, c in counts.items() if int(c) == best), key=str)
            mode = tied[0]
            fitted[column] = mode.item() if isinstance(mode, np.generic) else mode  # type: ignore[assignment]
    return fitted


def _slug(site: str) -> str:
    return site.lower().replace(" ", "-")


def _seed_for(seed: int, purpose: str) -> list[int]:
    """A stable seed per (seed, purpose): independent streams that do not shift when nodes change."""
    return [int(seed), zlib.crc32(purpose.encode())]
