"""The hostile-input matrix (:mod:`tests.hostile.matrix`): each case through the CLI as a
subprocess, with its documented exit code, one clear error line, nothing written, the
history intact and no payload run. Torch and Hugging Face cases are ``slow`` (each imports torch)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.hostile.matrix import CASES, REPO, Case, Templates, run_case


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("hostile-templates"))


def _param(case: Case) -> object:
    marks = []
    if case.slow:
        marks.append(pytest.mark.slow)
    if case.needs:
        marks.append(pytest.mark.xfail(strict=True, reason=f"needs {case.needs}"))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path, templates: Templates) -> None:
    outcome = run_case(case, tmp_path / "case", templates)
    assert not outcome.problems, "\n".join(outcome.problems)


def test_the_matrix_covers_every_category_with_at_least_60_cases() -> None:
    counts = Counter(case.category for case in CASES)
    assert len(CASES) >= 60
    assert set(counts) == {"spec", "data", "model", "record"}
    assert len({case.id for case in CASES}) == len(CASES), "case ids are unique"
    assert all(case.needs is None or ":" in case.needs for case in CASES), "needs names '<file>: <what>'"
    for case in CASES:
        if case.needs:
            assert (REPO / case.needs.split()[0]).is_file(), f"{case.id}: {case.needs.split()[0]} is not a file"
