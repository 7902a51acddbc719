"""The Python API: the same audits as the CLI, as functions returning result objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.core.errors import UsageError
from guardrail.core.types import AuditResult, PolicyVerdict, RunRecord, Severity

if TYPE_CHECKING:
    from guardrail.history import HistoryStore, RunDiff
    from guardrail.run.federate import FederateRun
    from guardrail.run.train import TrainRun


def audit(
    spec: str | Path,
    *,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    write: bool = True,
    fail_on: Severity | str = Severity.DENY,
    history: str | Path | bool | None = None,
    gate: bool = True,
    engine: str | None = None,
) -> RunRecord:
    """Run the audit described by the spec file and write its reports.

    Parameters
    ----------
    spec:
        Path to an audit spec (``kind: audit``).
    out:
        Output folder; default: the spec's ``report.out``.
    formats:
        Report formats to write; default: the spec's ``report.formats``.
    write:
        Write the reports (``run.json`` and the others) and record the run in the audit
        history; ``False`` only returns the record.
    history:
        Audit history database (or ``False`` for none); default: the spec's
        ``report.history`` (``history.sqlite`` in the output folder).
    gate:
        Let the policies decide the run (default). A gated run in which no blocking rule
        was judged on evidence is incomplete (exit code 2), never a pass. ``False``
        measures without a gate (the CLI's ``--no-gate``): every output then says that no
        gate was applied.
    engine:
        How the rows are read (the CLI's ``--engine``): ``"memory"``, ``"stream"`` (record
        batches on this machine), ``"ray"`` (a Ray cluster) or ``"auto"``; default: the
        spec's ``engine.kind``. Every engine gives the same group metrics (audits that
        read rows read a stratified sample when streaming); ``record.scan`` says
        which one ran, on how many rows and partitions, and what was sampled.

    Returns
    -------
    RunRecord
        Shows as an HTML report in Jupyter; ``record.exit_code()`` is what the CLI exits with.

    Examples
    --------
    ::

        record = guardrail.audit("audits/adult-income.yaml")
        record.exit_code()          # ExitCode.VIOLATION: the demo model fails the baseline policy
    """
    from guardrail.run.audit import run

    if engine is not None and engine not in ("auto", "memory", "stream", "ray"):
        from guardrail.core.errors import UsageError

        raise UsageError(f"engine must be auto, memory, stream or ray, not {engine!r}", where="guardrail.audit(engine=...)")
    audited = run(spec, out=out, history=history, gated=gate, engine=engine)
    if not write:
        return audited.record
    return audited.publish(formats, fail_on=Severity(fail_on)).record


def audit_fairness(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    pos_label: Any = 1,
    metrics: Sequence[str] | None = None,
    groupings: str = "both",
    min_group_size: int = 30,
    missing_sensitive: str = "error",
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    y_pred_baseline: Any = None,
    y_score: Any = None,
    calibration_bins: int = 10,
    task: str = "binary",
    custom_metrics: dict[str, str] | None = None,
) -> AuditResult:
    """Fairness audit on arrays: rates per group and disparities, as in the ``fairness`` auditor.

    Parameters
    ----------
    y_true, y_pred:
        True and predicted labels (array-like of equal length).
    sensitive_features:
        A Series/array (one feature) or a DataFrame/dict of columns (several features;
        audited one by one and intersected, as ``groupings`` says).
    pos_label:
        The positive class.
    bootstrap, confidence, seed:
        Resamples, level and seed of the stratified bootstrap intervals (``bootstrap=0``: none).
    custom_metrics:
        Extra per-group metrics, ``{name: "module:function"}`` with ``function(y_true, y_pred)``,
        computed through fairlearn's ``MetricFrame``.
    task:
        ``"binary"`` (rates for ``pos_label``), ``"multiclass"`` (one-vs-rest per class; scopes
        ``feature/class=label``) or ``"regression"`` (per-group errors and mean predictions).
    y_score:
        Predicted probabilities of the positive class: adds ROC AUC and expected
        calibration error per group (``calibration_bins`` equal-width bins) and their gaps.
    y_pred_baseline:
        A baseline model's predictions on the same rows: adds ``fairness.delta.*`` metrics
        (candidate − baseline) with paired-bootstrap intervals.

    Examples
    --------
    >>> result = audit_fairness([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=["a", "a", "b", "b"])
    >>> {m.ref: m.value for m in result.metrics}["fairness.equal_opportunity_difference[sensitive_feature_0]"]
    1.0
    """
    import numpy as np
    import pandas as pd

    from guardrail.auditors.base import AuditContext
    from guardrail.auditors.fairness import FairnessAuditor, FairnessParams
    from guardrail.core.errors import DataError

    if isinstance(sensitive_features, pd.DataFrame):
        frame = sensitive_features.reset_index(drop=True)
    elif isinstance(sensitive_features, dict):
        frame = pd.DataFrame(sensitive_features)
    elif isinstance(sensitive_features, pd.Series) and sensitive_features.name is not None:
        frame = sensitive_features.reset_index(drop=True).to_frame()
    else:
        frame = pd.DataFrame({"sensitive_feature_0": np.asarray(sensitive_features)})
    frame.columns = [str(c) for c in frame.columns]
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if not (len(truth) == len(predicted) == len(frame)):
        raise DataError(
            f"y_true ({len(truth)}), y_pred ({len(predicted)}) and sensitive_features ({len(frame)}) differ in length"
        )
    from guardrail.adapters.base import Predictions
    from guardrail.run.outcomes import prepare_outcomes

    scores = None if y_score is None else np.asarray(y_score, dtype=float)
    if scores is not None and (len(scores) != len(truth) or not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any()):
        raise DataError("y_score must hold one probability in [0, 1] per row", where="y_score")
    baseline = None if y_pred_baseline is None else np.asarray(y_pred_baseline)
    if baseline is not None and len(baseline) != len(truth):
        raise DataError(f"y_pred_baseline ({len(baseline)}) and y_true ({len(truth)}) differ in length")
    outcomes = prepare_outcomes(
        task,
        pd.Series(truth, name="y_true"),
        lambda _positive: Predictions(labels=predicted, scores=scores),
        (lambda _positive: Predictions(labels=baseline, scores=None)) if baseline is not None else None,
        declared_positive=pos_label if task == "binary" else None,
        where="y_pred",
    )
    params: dict[str, Any] = {
        "groupings": groupings,
        "min_group_size": min_group_size,
        "bootstrap": bootstrap,
        "confidence": confidence,
        "calibration_bins": calibration_bins,
        "custom_metrics": dict(custom_metrics or {}),
    }
    if metrics is not None:
        params["metrics"] = tuple(metrics)
    ctx = AuditContext(
        audit_id="fairness",
        data=frame,
        y_true=outcomes.y_true,
        y_pred=outcomes.y_pred,
        y_score=outcomes.y_score,
        sensitive=tuple(frame.columns),
        missing_sensitive=missing_sensitive,
        positive_label=outcomes.positive_label,
        seed=seed,
        where="sensitive_features",
        y_pred_baseline=outcomes.y_pred_baseline,
        task=task,
        class_labels=outcomes.class_labels,
    )
    return FairnessAuditor(FairnessParams.model_validate(params)).run(ctx)


def audit_data(
    frame: Any,
    *,
    sensitive: str | Sequence[str],
    target: str | None = None,
    positive_label: Any = None,
    reference: Any = None,
    population: Mapping[str, Mapping[str, Any]] | None = None,
    missing_sensitive: str = "error",
    seed: int = 0,
    **params: Any,
) -> AuditResult:
    """Data audit of a DataFrame, as in the ``data`` auditor (``use: data``): no model needed.

    Parameters
    ----------
    frame:
        The audited rows (a pandas DataFrame).
    sensitive:
        The sensitive column(s) of ``frame``.
    target:
        The label column, when there is one: base rates by group and conflicting labels
        (binary labels; ``positive_label`` as in ``data.positive_label``).
    reference:
        The training data (a DataFrame with the same columns): shift between it and ``frame``,
        and rows of ``frame`` leaked from it.
    population:
        Declared population shares per sensitive column, each with its source:
        ``{"sex": {"shares": {"Female": 0.513, "Male": 0.487}, "source": "US Census 1990"}}``.
    params:
        Any other ``use: data`` params (``features``, ``ignore``, ``min_group_size``,
        ``bootstrap``, ``confidence``, ``bins``, ``proxy_threshold``, ``shift_threshold``,
        ``alpha``, ``groupings``), as documented in the user guide (docs/data.md).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"sex": ["F", "M"] * 50, "age": range(100), "y": [0, 1] * 50})
    >>> result = audit_data(frame, sensitive="sex", target="y", bootstrap=0)
    >>> {m.ref: m.value for m in result.metrics}["data.base_rate_difference[sex]"]
    1.0
    """
    import time

    import pandas as pd

    from guardrail.auditors.data import DataAuditor, DataParams
    from guardrail.core.errors import DataError
    from guardrail.run.outcomes import positive_label_of

    started = time.perf_counter()
    if not isinstance(frame, pd.DataFrame):
        raise UsageError("audit_data takes a pandas DataFrame", hint="wrap arrays in pd.DataFrame({...}) first")
    if reference is not None and not isinstance(reference, pd.DataFrame):
        raise UsageError("reference must be a pandas DataFrame (the training data)")
    if not all(isinstance(c, str) for c in frame.columns):  # column names as the spec names them: text
        frame = frame.rename(columns=str)
        reference = None if reference is None else reference.rename(columns=str)
    columns = _checked_sensitive(frame, sensitive, target, missing_sensitive)
    auditor = DataAuditor(DataParams.model_validate({**params, "population": dict(population or {})}))
    problems = auditor.check_spec(columns)
    if problems:
        raise DataError("; ".join(message for _, message in problems), where="audit_data")
    labels = None
    if target is not None:
        truth = frame[target]
        if truth.isna().any():
            raise DataError(f"target column {target!r} has {int(truth.isna().sum())} missing value(s)", where="frame")
        if positive_label is not None:  # one class versus the others, as declared
            if not (truth == positive_label).any():
                raise DataError(f"positive_label {positive_label!r} never occurs in target column {target!r}", where="frame")
            labels = (truth == positive_label).to_numpy(dtype=bool)
        elif truth.nunique() <= 2:
            labels = (truth == positive_label_of(truth, None, where="frame")).to_numpy(dtype=bool)
    found = auditor.examine(
        frame.reset_index(drop=True),
        sensitive=columns,
        target=target,
        labels=labels,
        reference=None if reference is None else reference.reset_index(drop=True),
        missing_sensitive=missing_sensitive,
        seed=seed,
        where="frame",
    )
    from guardrail.core.types import AuditStatus

    reference_info = None if reference is None else {"path": None, "sha256": None, "rows": len(reference)}
    return AuditResult(
        audit_id="data",
        auditor=DataAuditor.name,
        status=AuditStatus.OK,
        metrics=found.metrics,
        params=auditor.params.model_dump(mode="json"),
        artifacts={**found.artifacts, "reference": reference_info},
        duration_s=time.perf_counter() - started,
    )


def audit_robustness(
    model: Any,
    frame: Any,
    *,
    target: str,
    sensitive: str | Sequence[str],
    features: Sequence[str] | None = None,
    positive_label: Any = None,
    task: str | None = None,
    missing_sensitive: str = "error",
    seed: int = 0,
    **params: Any,
) -> AuditResult:
    """Robustness audit of a model on a DataFrame, as in the ``robustness`` auditor (``use: robustness``).

    Parameters
    ----------
    model:
        A fitted scikit-learn estimator or pipeline (it reads ``features``, default the columns
        it was fitted on, else every column but the target), or a guardrail model adapter
        (``guardrail.adapters``: a torch model folder, a Hugging Face text classifier).
    frame:
        The audited rows (a pandas DataFrame) with the target and sensitive columns.
    target, sensitive:
        The label column and the sensitive column(s).
    positive_label, task:
        As ``data.positive_label`` and ``data.task`` in a spec (``task`` default: binary for a
        target with two values, else multiclass).
    params:
        Any other ``use: robustness`` params (``probes``, ``strengths``, ``perturbations``,
        ``identity_terms``, ``text_column``, ``site_column``, ``training_column``, ``max_rows``,
        ``examples``, ``min_group_size``, ``bootstrap``, ``confidence``, ``groupings``,
        ``numeric_features``), as documented in the user guide (docs/robustness.md).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> frame = pd.DataFrame({"sex": [0, 1] * 50, "x": [float(i % 7) for i in range(100)]})
    >>> frame["y"] = (frame["x"] > 3).astype(int)
    >>> fitted = LogisticRegression().fit(frame[["x"]], frame["y"])
    >>> result = audit_robustness(fitted, frame, target="y", sensitive="sex", probes=["perturbation"], bootstrap=0)
    >>> sorted({m.key for m in result.metrics})[:2]
    ['robustness.accuracy_drop', 'robustness.perturbation_flip_rate']
    """
    import pandas as pd

    from guardrail.auditors.base import AuditContext
    from guardrail.auditors.robustness import RobustnessAuditor, RobustnessParams
    from guardrail.core.errors import DataError
    from guardrail.run.outcomes import prepare_outcomes

    if not isinstance(frame, pd.DataFrame):
        raise UsageError("audit_robustness takes a pandas DataFrame", hint="wrap arrays in pd.DataFrame({...}) first")
    if missing_sensitive not in ("error", "group"):
        raise UsageError(f"missing_sensitive must be 'error' or 'group', not {missing_sensitive!r}")
    columns = _checked_sensitive(frame, sensitive, target, missing_sensitive)
    adapter = _adapter(model, frame, target, features)
    data = frame.reset_index(drop=True)
    if task is None:
        task = "binary" if data[target].nunique() <= 2 else "multiclass"
    if task not in ("binary", "multiclass"):
        raise UsageError(f"task must be 'binary' or 'multiclass', not {task!r}", hint="the robustness audit compares decisions")
    auditor = RobustnessAuditor(RobustnessParams.model_validate(params))
    problems = auditor.check_spec(columns)
    if problems:
        raise DataError("; ".join(message for _, message in problems), where="audit_robustness")
    outcomes = prepare_outcomes(
        task, data[target], lambda positive: adapter.predict(data, positive), None, declared_positive=positive_label, where="frame"
    )
    ctx = AuditContext(
        audit_id="robustness",
        data=data,
        y_true=outcomes.y_true,
        y_pred=outcomes.y_pred,
        y_score=outcomes.y_score,
        sensitive=columns,
        missing_sensitive=missing_sensitive,
        positive_label=outcomes.positive_label,
        seed=seed,
        where="frame",
        model=adapter,
        features=tuple(adapter.features),
        task=task,
        class_labels=outcomes.class_labels,
        target=target,
    )
    return auditor.run(ctx)


def _checked_sensitive(frame: Any, sensitive: str | Sequence[str], target: str | None, missing_sensitive: str) -> tuple[str, ...]:
    """The sensitive column names of a DataFrame audit, after checking that they and the target
    are columns of ``frame`` and that each sensitive column is usable as groups."""
    from guardrail.core.errors import DataError
    from guardrail.fairness.groups import check_sensitive

    columns = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    absent = [c for c in (*columns, *([target] if target is not None else [])) if c not in frame.columns]
    if absent:
        raise DataError(f"frame has no column(s) {', '.join(map(repr, absent))}", where="frame")
    for column in columns:
        check_sensitive(frame[column], column, missing=missing_sensitive, where="frame")
    return columns


def _adapter(model: Any, frame: Any, target: str, features: Sequence[str] | None) -> Any:
    """``model`` as a guardrail adapter: adapters as they are, a scikit-learn estimator wrapped."""
    if hasattr(model, "features") and hasattr(model, "kind"):
        if features is not None and tuple(features) != tuple(model.features):
            raise UsageError(
                "features is for a scikit-learn estimator: a guardrail adapter reads its own columns "
                f"({', '.join(model.features)})",
                hint="leave features out, or pass the fitted estimator instead of the adapter",
            )
        return model
    if not hasattr(model, "predict"):
        raise UsageError(
            f"model must be a fitted scikit-learn estimator or a guardrail adapter, not {type(model).__name__}",
            hint="pass the fitted estimator (or pipeline), or load a model with guardrail.adapters",
        )
    from guardrail.adapters.sklearn import SklearnAdapter

    if features is None:
        fitted = getattr(model, "feature_names_in_", None)
        features = [str(c) for c in fitted] if fitted is not None else [str(c) for c in frame.columns if c != target]
    return SklearnAdapter(model, features)


def check(
    result: AuditResult | Sequence[AuditResult] | RunRecord,
    policy: str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]] | Sequence[str | Path],
) -> PolicyVerdict:
    """Judge results already in memory against a policy, as ``guardrail audit`` judges a run.

    Parameters
    ----------
    result:
        An :class:`AuditResult` (e.g. from :func:`audit_fairness`), a list of them, or a
        :class:`RunRecord` (its results are judged again).
    policy:
        A policy file, a shipped pack's name (``"guardrail:baseline"``), a list of them, a
        list of rules as a policy file's ``rules:`` holds them, or a mapping with ``rules:``
        (and any other key of a policy file). Rules given in Python are validated with the
        policy file's models and messages (see :mod:`guardrail.policy.inline`).

    Returns
    -------
    PolicyVerdict
        The rule outcomes: shows as the verdict in Jupyter, ``.to_frame()`` gives one row
        per outcome. A rule whose metric is not among the results is an error outcome
        (missing evidence never passes).

    Examples
    --------
    >>> result = audit_fairness([1, 0, 1, 0] * 10, [1, 0, 1, 0] * 10, sensitive_features=["a", "a", "b", "b"] * 10, bootstrap=0)
    >>> verdict = check(result, [{"id": "EO", "metric": "fairness.equal_opportunity_ratio", "op": "ge",
    ...                           "threshold": 0.8, "rationale": "Equal opportunity."}])
    >>> verdict.outcomes[0].message
    'EO passed: fairness.equal_opportunity_ratio[sensitive_feature_0] = 1, required ≥ 0.8.'
    """
    from guardrail.policy.engine import evaluate
    from guardrail.policy.inline import policies_of

    if isinstance(result, RunRecord):
        results: Sequence[AuditResult] = result.results
    elif isinstance(result, AuditResult):
        results = (result,)
    elif isinstance(result, Sequence) and all(isinstance(r, AuditResult) for r in result):
        results = tuple(result)
    else:
        raise UsageError(
            f"guardrail.check judges an AuditResult, a list of them or a RunRecord, got {type(result).__name__}",
            where="guardrail.check",
        )
    return evaluate(policies_of(policy), results)


def history_database(where: str | Path) -> Path:
    """The audit history database that ``where`` names: the file, a report folder holding
    ``history.sqlite``, or an audit spec (its ``report.history``)."""
    from guardrail.history import history_path

    path = Path(where)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        from guardrail.spec.loader import load_spec

        loaded = load_spec(path)
        if loaded.history_path is None:
            raise UsageError("this spec records no history (report.history: false)", where=str(path))
        return loaded.history_path
    return history_path(path)


def open_history(where: str | Path) -> HistoryStore:
    """Open an existing audit history (see :func:`history_database` for ``where``).

    Examples
    --------
    ::

        with guardrail.open_history("reports/adult-income") as history:
            history.runs()[:3]                      # newest first
            history.approve("latest", by="Dr. A. Reviewer", note="REV-112")
    """
    from guardrail.history import HistoryStore

    return HistoryStore(history_database(where), create=False)


def load_run(ref: str | Path, *, history: str | Path | None = None) -> RunRecord:
    """A run given as a ``run.json`` path, or as a reference (run id or unique prefix,
    ``latest``, ``approved``) into the audit history at ``history``."""
    candidate = Path(ref)
    if candidate.suffix == ".json" or candidate.is_file():
        from guardrail.report import load_record

        return load_record(candidate)
    if history is None:
        raise UsageError(
            f"{str(ref)!r} is not a run.json file, and no history was given to look it up in",
            where="guardrail diff",
            hint="pass --history (a history.sqlite, its report folder, or the audit spec), or paths to run.json files",
        )
    with open_history(history) as store:
        return store.get(str(ref))


def diff_runs(before: str | Path | RunRecord, after: str | Path | RunRecord, *, history: str | Path | None = None) -> RunDiff:
    """Compare two runs (records, ``run.json`` paths, or references into ``history``):
    rule outcomes that changed and every metric's change with an interval.

    Examples
    --------
    ::

        diff = guardrail.diff_runs("approved", "latest", history="reports/adult-income")
        diff.worse()        # directed metrics that got worse beyond their interval
    """
    from guardrail.history import compare_runs

    first, second = (run if isinstance(run, RunRecord) else load_run(run, history=history) for run in (before, after))
    return compare_runs(first, second)


def train(spec: str | Path, *, resume: bool = False) -> TrainRun:
    """Train the model an audit spec's ``train:`` section describes (``guardrail train SPEC``).

    Writes the model folder (safetensors, description, privacy ledger when DP-SGD is on,
    training history) and the audit table with its membership column; audit it next with
    :func:`audit`.

    Examples
    --------
    ::

        run = guardrail.train("audits/heart-dp.yaml")
        run.result.epsilon, run.result.ledger     # the privacy spent, from Opacus' accountant
        guardrail.audit("audits/heart-dp.yaml")
    """
    from guardrail.run.train import train as run_training

    return run_training(spec, resume=resume)


def federate(spec: str | Path, *, resume: bool = False) -> FederateRun:
    """Federated training of the spec's ``federate:`` section on Flower (``guardrail federate SPEC``).

    The UCI Heart Disease sites become hospital nodes whose records are written as clinical
    notes in each site's style; a Transformer is trained across them with FedAvg or FedProx
    on Flower's simulation engine, each hospital running DP-SGD with its own privacy ledger.
    Writes the global model, the per-hospital ledgers, the per-round history
    (``federated.json``) and the audit table; audit the global model next with :func:`audit`.

    Examples
    --------
    ::

        run = guardrail.federate("audits/heart-federated.yaml")
        run.epsilon_max, [(h.name, h.epsilon, h.accuracy) for h in run.hospitals]
        guardrail.audit("audits/heart-federated.yaml")
    """
    from guardrail.run.federate import federate as run_federation

    return run_federation(spec, resume=resume)
