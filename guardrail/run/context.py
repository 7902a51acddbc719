"""The context every audit of a run reads (:class:`~guardrail.auditors.base.AuditContext`):
the data, the model's outcomes on it, and, for attacks that need reference models, retraining
by the audited model's own recipe."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.spec.yamlsource import display_path

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.adapters.base import ModelAdapter
    from guardrail.auditors.base import AuditContext
    from guardrail.scale.stream import ScanTables
    from guardrail.spec.loader import LoadedSpec
    from guardrail.spec.training import TrainSpec


def context_factory(
    loaded: LoadedSpec,
    data: pd.DataFrame,
    model: ModelAdapter | None,
    baseline: ModelAdapter | None = None,
    *,
    tables: ScanTables | None = None,
    labels: Sequence[Any] | None = None,
) -> Callable[[str], AuditContext]:
    """What every audit of the run reads, computed once (the model's predictions on the data,
    the baseline's, the outcomes): a function of the audit's id that gives its context.

    Without a model (a spec of data audits only) the context holds the labels and no
    predictions (``y_pred`` is empty). After a streaming engine's pass, ``data`` is its sample,
    ``tables`` hold every row's counts and ``labels`` the target's values over every row (so
    the sample's outcomes are coded as the pass coded them)."""
    from guardrail.auditors.base import AuditContext
    from guardrail.run.outcomes import label_outcomes, prepare_outcomes

    spec = loaded.spec
    where = display_path(loaded.data_path)
    target = data[spec.data.target]
    if model is None:
        outcomes = label_outcomes(spec.data.task, target, declared_positive=spec.data.positive_label, where=where, labels=labels)
    else:
        outcomes = prepare_outcomes(
            spec.data.task,
            target,
            lambda positive: model.predict(data, positive),
            (lambda positive: baseline.predict(data, positive)) if baseline is not None else None,
            declared_positive=spec.data.positive_label,
            where=where,
            labels=labels,
        )
    features = (model.features if model is not None else ()) or tuple(spec.data.features or ())

    def make(audit_id: str) -> AuditContext:
        return AuditContext(
            audit_id=audit_id,
            data=data,
            y_true=outcomes.y_true,
            y_pred=outcomes.y_pred,
            y_score=outcomes.y_score,
            sensitive=spec.data.sensitive,
            missing_sensitive=spec.data.missing_sensitive,
            positive_label=outcomes.positive_label,
            seed=spec.seed,
            where=where,
            model=model,
            features=features,
            y_pred_baseline=outcomes.y_pred_baseline,
            task=spec.data.task,
            class_labels=outcomes.class_labels,
            retrain=retrain,
            model_path=loaded.model_path,
            target=spec.data.target,
            spec_folder=loaded.path.parent,
            tables=tables,
        )

    retrain = retrainer(loaded, model, outcomes.positive_label) if model is not None else None
    return make


def reference_recipe(section: TrainSpec, out: str) -> TrainSpec:
    """The audited model's ``train:`` recipe for a reference model in ``out``. Its DP noise is
    seeded from the spec: a reference model is the auditor's own and never released, and
    seeded noise keeps the audit's numbers repeatable."""
    dp = section.privacy.dp
    privacy = section.privacy
    if dp is not None:
        privacy = privacy.model_copy(update={"dp": dp.model_copy(update={"reproducible_noise": True})})
    return section.model_copy(update={"out": out, "resume": False, "privacy": privacy})


def retrainer(
    loaded: LoadedSpec, model: ModelAdapter, positive_label: object
) -> Callable[[pd.DataFrame], Callable[[pd.DataFrame], Any]] | None:
    """Retraining by the audited model's recipe (for attacks that need reference models).

    A reference model's ``predict`` returns what :func:`guardrail.privacy.model_logits.reference_output`
    reads: float64 logits where the model has them, as for the audited model, so LiRA's
    reference confidences are as precise as the target's."""
    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.privacy.model_logits import reference_output

    target = loaded.spec.data.target
    if isinstance(model, SklearnAdapter):

        def retrain_sklearn(rows: pd.DataFrame) -> Callable[[pd.DataFrame], Any]:
            from sklearn.base import clone

            estimator = clone(model.estimator).fit(rows.loc[:, list(model.features)], rows[target])
            fresh = SklearnAdapter(estimator, model.features)
            return lambda frame: reference_output(fresh, frame, positive_label)

        return retrain_sklearn
    from guardrail.adapters.torch import TorchAdapter

    section = loaded.spec.train
    trained_here = section is not None and loaded.model_path == (loaded.path.parent / section.out).resolve()
    if isinstance(model, TorchAdapter) and section is not None and trained_here:

        def retrain_torch(rows: pd.DataFrame) -> Callable[[pd.DataFrame], Any]:
            """The spec's own train: recipe (DP included) on ``rows``, in a scratch folder."""
            import tempfile

            from guardrail.training import train_from_spec

            with tempfile.TemporaryDirectory(prefix="guardrail-reference-") as scratch:
                recipe = reference_recipe(section, scratch)
                train_from_spec(recipe, rows.reset_index(drop=True), Path(scratch))
                fresh = TorchAdapter.load(scratch, device=model.device)
            return lambda frame: reference_output(fresh, frame, positive_label)

        return retrain_torch
    return None
