"""What ``guardrail validate`` checks of a spec's model and data before any audit runs.

:func:`preflight` opens the data file far enough to read its header (never its rows) and a
scikit-learn model file far enough to know its types and input columns, and raises what the
audit would raise for them, with the same exit code: a type skops does not trust (and how to
trust it), a column the spec or the model needs that the data file lacks. Torch models are
left to the audit (checking them would import torch).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.core.errors import DataError, Problem
from guardrail.spec.models import PredictionsModelSpec, SklearnModelSpec
from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.run.audit import PlannedAudit
    from guardrail.spec.loader import LoadedSpec


def audit_input_problems(loaded: LoadedSpec, planned: Sequence[PlannedAudit], header: tuple[str, ...]) -> list[Problem]:
    """Problems with the files and columns the audits' own params name (a data audit's reference
    data), found by each auditor's optional ``check_inputs`` hook from the data header."""
    where = display_path(loaded.data_path)
    problems: list[Problem] = []
    for plan in planned:
        check = getattr(plan.auditor, "check_inputs", None)
        if check is not None:
            found = check(loaded.spec, loaded.path.parent, header, where=where)
            problems += [Problem(f"audit {plan.audit_id!r}: {p.message}", p.where, p.hint) for p in found]
    return problems


def audit_data_problems(loaded: LoadedSpec, planned: Sequence[PlannedAudit], data: pd.DataFrame) -> list[Problem]:
    """Problems with the loaded data that the audits' params reveal (a declared population whose
    groups the data lacks), found by each auditor's optional ``check_data`` hook."""
    where = display_path(loaded.data_path)
    problems: list[Problem] = []
    for plan in planned:
        check = getattr(plan.auditor, "check_data", None)
        if check is not None:
            found = check(data, loaded.spec.data.sensitive, where=where)
            problems += [Problem(f"audit {plan.audit_id!r}: {p.message}", p.where, p.hint) for p in found]
    return problems


def audit_model_problems(loaded: LoadedSpec, planned: Sequence[PlannedAudit], model: object, data: pd.DataFrame) -> list[Problem]:
    """Problems with the loaded model that the audits' params reveal (a robustness audit's text
    column the model does not read), found by each auditor's optional ``check_model`` hook
    before any prediction is made."""
    where = display_path(loaded.data_path)
    problems: list[Problem] = []
    for plan in planned:
        check = getattr(plan.auditor, "check_model", None)
        if check is not None:
            found = check(model, data, where=where)
            problems += [Problem(f"audit {plan.audit_id!r}: {p.message}", p.where, p.hint) for p in found]
    return problems


def audit_input_files(loaded: LoadedSpec, planned: Sequence[PlannedAudit]) -> list[Path]:
    """Files the audits' own params name (a data audit's reference data): inputs of the run."""
    files: list[Path] = []
    for plan in planned:
        named = getattr(plan.auditor, "input_files", None)
        files += [path for path in (named(loaded.path.parent) if named is not None else ()) if path not in files]
    return files


def preflight(loaded: LoadedSpec, planned: Sequence[PlannedAudit] = ()) -> None:
    """Check ``loaded``'s data header against the columns the spec names, and each
    scikit-learn model (and baseline) against trust and the data header.

    Raises
    ------
    DataError
        For an unreadable data file, or columns the spec names that it lacks (every one).
    UnsafeModelError, ModelError, MissingExtraError
        As loading the model in the audit would: an untrusted type, a file that is not a
        model, a model whose input columns the data file lacks.
    """
    from guardrail.adapters.sklearn import SklearnAdapter, missing_columns
    from guardrail.adapters.tables import read_header

    spec = loaded.spec
    where = display_path(loaded.data_path)
    if loaded.data_is_one_file:
        header = read_header(loaded.data_path, where=where)
    else:  # a folder, glob or query: its schema (every partition's is checked against the first)
        from guardrail.run.scan import source_of
        from guardrail.scale.sources import schema

        source = source_of(loaded)
        where = source.where
        header = tuple(schema(source))
    named = [("data.target", spec.data.target), *(("data.sensitive", c) for c in spec.data.sensitive)]
    named += [("data.features", column) for column in spec.data.features or ()]
    for role, section in (("model", spec.model), ("baseline", spec.baseline)):
        if isinstance(section, PredictionsModelSpec):
            named += [(f"{role}.column", section.column)]
            named += [(f"{role}.score_column", section.score_column)] if section.score_column else []
    absent = [absent_column(role, column, header, where) for role, column in named if column not in header]
    absent += audit_input_problems(loaded, planned, header)
    if absent:
        raise DataError.of(absent)
    for section, path in ((spec.model, loaded.model_path), (spec.baseline, loaded.baseline_path)):
        if isinstance(section, SklearnModelSpec) and path is not None:
            model = SklearnAdapter.load(path, trusted_types=section.trusted_types, features=spec.data.features)
            lacking = [column for column in model.features if column not in header]
            if lacking:
                raise missing_columns(lacking, where=where)


def absent_column(role: str, column: str, header: tuple[str, ...], where: str) -> Problem:
    """A column the spec names (``role``: the key naming it) that the data file does not have."""
    close = difflib.get_close_matches(column, header, n=1)
    return Problem(
        f"{role} names column {column!r}, which the data file does not have" + (f"; did you mean {close[0]!r}?" if close else ""),
        where,
        f"available columns: {', '.join(header)}",
    )
