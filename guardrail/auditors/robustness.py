"""The robustness audit (EU AI Act Art. 15): does the decision change when only the group, the
spelling or the hospital's writing style changes?

Probes (``params.probes``), for tabular models and for text classifiers alike (a model with a
tokenizer reads its text column; every other model is tabular):

* ``counterfactual`` — tabular: each sensitive attribute the model takes as input set to each
  other value, everything else held; text: identity terms swapped (he↔she, his↔her, Mr↔Ms, …;
  the shipped lexicon, or ``params.identity_terms``) in the documents that contain one.
  ``robustness.counterfactual_flip_rate`` (the share of decisions that change, per original
  group), its gap between groups, and ``robustness.counterfactual_score_change`` (mean
  |Δ positive-class score|), each with an interval.
* ``perturbation`` — tabular: numeric inputs moved by a small share of their spread
  (interquartile range / 1.349) at each of ``params.strengths`` (a flip-rate curve); text: typos, case,
  whitespace, number formatting and unit conversions that keep the value.
  ``robustness.perturbation_flip_rate``, its gap between groups (the robustness gap) and
  ``robustness.accuracy_drop``, per group with intervals.
* ``site_style`` — clinical notes of the federated heart demo: each held-out patient's note
  rewritten in every other hospital's style from the same record (checked to change nothing
  else); ``robustness.site_style_flip_rate`` per hospital and per hospital pair.

Every changed input of every probe is scored through the model in one batched pass
(:mod:`guardrail.robustness.scoring`); the original rows' decisions are the ones the run
already made. A probe with nothing to change (no identity term in any
document, a sensitive column the model does not read) reports why and has no value: a policy
rule on it is not evaluated, never passed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from guardrail.auditors.base import (
    AuditContext,
    AuditorParams,
    ParamProblem,
    audit_result,
    audited_sensitive,
    coerce_params,
    no_repeats,
    undeclared_sensitive,
)
from guardrail.auditors.fairness import groupings_of
from guardrail.core.errors import DataError, Problem
from guardrail.core.types import AuditResult

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from guardrail.auditors.catalog import MetricCatalog
    from guardrail.robustness.engine import KnownDecisions, ProbeData, RobustnessOptions
    from guardrail.spec.models import AuditSpec

Probe = Literal["counterfactual", "perturbation", "site_style"]
TextPerturbationName = Literal["typos", "case", "whitespace", "numbers", "units"]


class RobustnessParams(AuditorParams):
    probes: tuple[Probe, ...] = Field(
        default=("counterfactual", "perturbation"), min_length=1,
        description="Which probes to run: counterfactual, perturbation, site_style.",
    )  # fmt: skip
    sensitive: tuple[str, ...] | None = Field(
        default=None,
        description="Subset of data.sensitive: the groups results are reported by and, for a tabular model, "
        "the attributes the counterfactual probe sets; default all of them.",
    )
    groupings: Literal["each", "intersection", "both"] = Field(
        default="each", description="With several sensitive columns: results by each alone, by their intersection, or both."
    )
    strengths: tuple[float, ...] = Field(
        default=(0.02, 0.05, 0.1, 0.2), min_length=1,
        description="Tabular perturbation: how far numeric inputs move, as shares of their spread (interquartile range / 1.349; the curve's points).",
    )  # fmt: skip
    numeric_features: tuple[str, ...] | None = Field(
        default=None,
        description="Tabular perturbation: the numeric inputs moved; default every numeric model input that varies, "
        "the sensitive columns excepted.",
    )
    perturbations: tuple[TextPerturbationName, ...] = Field(
        default=("typos", "case", "whitespace", "numbers", "units"), min_length=1,
        description="Text perturbation: typos, case, whitespace, numbers (formatting), units (conversions that keep the value).",
    )  # fmt: skip
    identity_terms: tuple[tuple[str, str], ...] | None = Field(
        default=None,
        description="Text counterfactual: term pairs swapped both ways, e.g. [[he, she], [his, her]]; "
        "replaces the shipped gender lexicon.",
    )
    text_column: str | None = Field(
        default=None, description="The column a text model reads; default the model's own (its model folder says which)."
    )
    site_column: str = Field(default="site", description="Site style: the column naming each record's source hospital.")
    training_column: str | None = Field(
        default=None,
        description="A true/false column marking the model's training rows (the `member` column `guardrail federate` "
        "writes): those rows are left out and only held-out rows are probed.",
    )
    max_rows: int = Field(default=20_000, ge=1, description="Rows probed at most (a seeded random sample beyond).")
    examples: int = Field(
        default=3, ge=0, le=20,
        description="Flipped examples kept for the report per probe and setting (each attribute and text perturbation; "
        "the largest strength of the tabular perturbation; site style keeps one per style).",
    )  # fmt: skip
    min_group_size: int = Field(default=30, ge=1, description="Groups below this are flagged as small.")
    bootstrap: int = Field(default=1000, ge=0, le=100_000, description="Resamples for the intervals; 0 for none.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")

    _no_repeats = field_validator("probes", "sensitive", "numeric_features", "perturbations")(no_repeats)

    @field_validator("strengths")
    @classmethod
    def _positive_strengths(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < s <= 1 for s in value):
            raise ValueError("each strength is a share of a feature's spread, in (0, 1]")
        if len(set(value)) != len(value):
            raise ValueError("list each strength once")
        return tuple(sorted(value))

    @field_validator("identity_terms")
    @classmethod
    def _valid_terms(cls, value: tuple[tuple[str, str], ...] | None) -> tuple[tuple[str, str], ...] | None:
        if value is not None:
            from guardrail.robustness.lexicon import Lexicon

            try:
                Lexicon.of(value, name="params.identity_terms", source="the spec")
            except DataError as exc:
                raise ValueError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from None
        return value


METRIC_KEYS = tuple(
    f"robustness.{key}"
    for key in (
        "counterfactual_flip_rate",
        "counterfactual_flip_rate_difference",
        "counterfactual_score_change",
        "coverage",
        "perturbation_flip_rate",
        "perturbation_flip_rate_difference",
        "accuracy_drop",
        "site_style_flip_rate",
        "site_style_flip_rate_difference",
    )
)


class RobustnessAuditor:
    """Counterfactual, perturbation and site-style probes of a model: flip rates, score changes
    and accuracy drops per group, each with an interval, all inputs scored in batches."""

    name: ClassVar[str] = "robustness"
    Params: ClassVar[type[AuditorParams]] = RobustnessParams
    METRIC_KEYS: ClassVar[tuple[str, ...]] = METRIC_KEYS

    def __init__(self, params: AuditorParams | None = None) -> None:
        self.params = coerce_params(RobustnessParams, params)

    def check_spec(self, data_sensitive: tuple[str, ...]) -> list[ParamProblem]:
        return undeclared_sensitive(self.params.sensitive, data_sensitive)

    def metric_catalog(self, spec: AuditSpec) -> MetricCatalog:
        """The keys this audit may produce for ``spec``: scopes are groupings qualified by the
        probe (``sex/strength=0.05``, ``rating/perturbation=typos``, ``site=Hungary/style=VA Long Beach``)."""
        from guardrail.auditors.catalog import MetricCatalog
        from guardrail.core.scopes import scope_name, scope_part

        p = self.params
        sensitive = p.sensitive or spec.data.sensitive
        scopes = [scope_name(s) for s in groupings_of(sensitive, p.groupings)]
        singles = [scope_part(s) for s in sensitive]
        qualified = [f"{s}/*" for s in scopes]
        rows: list[tuple[str, list[str]]] = []
        if "counterfactual" in p.probes:
            for key in ("counterfactual_flip_rate", "counterfactual_flip_rate_difference", "counterfactual_score_change"):
                rows.append((f"robustness.{key}", [*singles, *(f"{s}/swap=*" for s in scopes)]))
            rows.append(("robustness.coverage", [f"{s}/swap=*" for s in scopes]))
        if "perturbation" in p.probes:
            for key in ("perturbation_flip_rate", "perturbation_flip_rate_difference", "accuracy_drop"):
                rows.append((f"robustness.{key}", qualified))
            rows.append(("robustness.coverage", [f"{s}/perturbation=*" for s in scopes]))
        if "site_style" in p.probes:
            site = scope_part(p.site_column)
            rows.append(("robustness.site_style_flip_rate", [site, f"{site}=*/style=*"]))
            rows.append(("robustness.site_style_flip_rate_difference", [site]))
        return MetricCatalog.of(rows, possible=self.METRIC_KEYS)

    def check_inputs(self, spec: AuditSpec, spec_folder: Path, header: tuple[str, ...], *, where: str) -> list[Problem]:
        """What ``guardrail validate`` can check before any data is read: a model that can be run
        on changed inputs, a classification task, and the columns the probes read."""
        p = self.params
        problems: list[Problem] = []
        if spec.data.task == "regression":
            problems.append(
                Problem("the robustness audit compares decisions: a regression model has none", where,
                        "audit a classifier (data.task: binary or multiclass), or remove the robustness audit")  # fmt: skip
            )
        if spec.model is not None and getattr(spec.model, "adapter", None) == "predictions":
            problems.append(
                Problem(
                    "the robustness audit runs the model on changed inputs: a table of predictions cannot be re-run",
                    where,
                    "give the model itself (adapter: sklearn or torch), or remove the robustness audit",
                )
            )
        named = [("numeric_features", f) for f in p.numeric_features or ()]
        named += [("training_column", p.training_column)] if p.training_column is not None else []
        named += [("text_column", p.text_column)] if p.text_column is not None else []
        if "site_style" in p.probes:
            from guardrail.robustness.site_style import REQUIRED_COLUMNS

            named += [("site_column", p.site_column)]
            named += [("site_style", c) for c in REQUIRED_COLUMNS if c != "site"]
        problems += [
            Problem(f"params.{role} needs column {column!r}, which the data file does not have", where,
                    "see the data file's header" if role != "site_style" else
                    "the site-style probe rewrites each note from its record: audit the table `guardrail federate` writes")  # fmt: skip
            for role, column in dict.fromkeys(named)
            if column not in header
        ]
        return problems

    def check_model(self, model: Any, data: pd.DataFrame, *, where: str) -> list[Problem]:
        """What the runner checks of the loaded model before any prediction (exit 3): the text
        column named in params is the one the model reads, and the numeric features to move
        are numeric inputs of the model. Without these checks a probe would change a column the
        model never reads and report that nothing flips."""
        p = self.params
        inputs = tuple(getattr(model, "features", ()))
        own = _own_text_column(model)
        problems: list[Problem] = []
        if p.text_column is not None:
            if own is not None and p.text_column != own:
                problems.append(
                    Problem(f"params.text_column is {p.text_column!r}, but the model reads column {own!r}", where,
                            f"leave text_column out (the model's own column is used) or set it to {own!r}")  # fmt: skip
                )
            elif own is None and p.text_column not in inputs:
                problems.append(
                    Problem(
                        f"params.text_column is {p.text_column!r}, which the model does not read (its inputs: {', '.join(inputs)})",
                        where,
                        "name the column the model reads its text from, or leave text_column out for a tabular model",
                    )
                )
        text = p.text_column or own
        if "site_style" in p.probes and text is None:
            problems.append(
                Problem("the site-style probe rewrites clinical notes, but the model reads no text column", where,
                        "run the site-style probe on a text model of the notes (audits/heart-federated.yaml), or set params.text_column")  # fmt: skip
            )
        for name in p.numeric_features or ():
            if name not in inputs:
                problems.append(
                    Problem(f"params.numeric_features names {name!r}, which is not an input of the model", where,
                            f"the model's inputs are {', '.join(inputs)}")  # fmt: skip
                )
            elif name in data.columns and not _numeric(data[name]):
                problems.append(
                    Problem(f"params.numeric_features names {name!r}, which does not hold numbers ({data[name].dtype})", where,
                            "list numeric inputs only: the perturbation moves each by a share of its spread")  # fmt: skip
                )
        return problems

    def run(self, ctx: AuditContext) -> AuditResult:
        from guardrail.robustness.engine import audit

        started = time.perf_counter()
        if ctx.model is None:
            raise DataError("the robustness audit needs a model", where=ctx.where, hint="add a model section to the spec")
        if ctx.task == "regression":
            raise DataError("the robustness audit compares decisions: a regression model has none", where=ctx.where)
        problems = self.check_model(ctx.model, ctx.data, where=ctx.where)
        if problems:
            raise DataError.of(problems)
        probe_data, sample = self.probe_data(ctx)
        options = self.options(ctx)
        found = audit(ctx.model, ctx.positive_label, probe_data, options, seed=ctx.seed)
        artifacts = {**found.artifacts, "sample": sample}
        return audit_result(ctx, self.name, self.params, found.metrics, started, artifacts)

    def text_column(self, ctx: AuditContext) -> str | None:
        """The column a text model reads (None for a tabular model)."""
        return self.params.text_column or _own_text_column(ctx.model)

    def options(self, ctx: AuditContext) -> RobustnessOptions:
        from guardrail.robustness.engine import RobustnessOptions
        from guardrail.robustness.lexicon import Lexicon

        p = self.params
        lexicon = Lexicon.of(p.identity_terms, name="params.identity_terms", source="the spec") if p.identity_terms else None
        return RobustnessOptions(
            probes=p.probes, strengths=p.strengths, perturbations=p.perturbations, lexicon=lexicon,
            attributes=audited_sensitive(p.sensitive, ctx), numeric=p.numeric_features, text_column=self.text_column(ctx),
            site_column=p.site_column, min_group_size=p.min_group_size, bootstrap=p.bootstrap, confidence=p.confidence,
            examples=p.examples,
        )  # fmt: skip

    def probe_data(self, ctx: AuditContext) -> tuple[ProbeData, dict[str, Any]]:
        """The rows probed (held-out rows only with ``training_column``; at most ``max_rows``, a
        seeded sample) and how to tell right decisions from wrong ones."""
        import numpy as np

        from guardrail.robustness.engine import ProbeData

        p = self.params
        keep = np.ones(len(ctx.data), dtype=bool)
        if p.training_column is not None:
            from guardrail.auditors.data import training_rows

            keep &= ~training_rows(ctx.data, p.training_column, where=ctx.where)
        rows = np.flatnonzero(keep)
        held_out = len(rows)
        if len(rows) > p.max_rows:
            rng = np.random.default_rng([ctx.seed, 0x726F62])  # "rob"
            rows = np.sort(rng.choice(rows, size=p.max_rows, replace=False))
        if len(rows) == 0:
            raise DataError(
                "no row to probe: every row is marked as a training row",
                where=ctx.where,
                hint=f"the robustness audit probes held-out rows; check params.training_column ({p.training_column!r})",
            )
        sensitive = audited_sensitive(p.sensitive, ctx)
        inputs = tuple(ctx.features) or tuple(getattr(ctx.model, "features", ()))
        text = self.text_column(ctx)
        data = ctx.data.iloc[rows].reset_index(drop=True)
        return (
            ProbeData(
                data=data,
                rows=rows,
                correct=self._correct(ctx, rows),
                sensitive=sensitive,
                feature_sets=tuple(groupings_of(sensitive, p.groupings)),
                inputs=inputs if text is None or text in inputs else (*inputs, text),
                missing_sensitive=ctx.missing_sensitive,
                where=ctx.where,
                known=self._known(ctx, rows),
            ),
            {"rows": int(len(rows)), "of": int(len(ctx.data)), "held_out": int(held_out), "seed": ctx.seed,
             "training_column": p.training_column},  # fmt: skip
        )

    @staticmethod
    def _known(ctx: AuditContext, rows: np.ndarray) -> KnownDecisions | None:
        """The run's predictions on the probed rows (so the originals are not scored twice)."""
        from guardrail.robustness.engine import KnownDecisions

        if len(ctx.y_pred) != len(ctx.data):
            return None
        scores = None if ctx.y_score is None or len(ctx.y_score) != len(ctx.data) else ctx.y_score[rows]
        return KnownDecisions(ctx.y_pred[rows], scores, ctx.task, ctx.positive_label, tuple(ctx.class_labels))

    @staticmethod
    def _correct(ctx: AuditContext, rows: np.ndarray) -> Any:
        """Decisions (the model's labels) → right or wrong for the probed rows, from the audit's labels."""
        import numpy as np

        truth = np.asarray(ctx.y_true)[rows]
        if ctx.task == "binary":
            positive = ctx.positive_label

            def binary(decisions: np.ndarray) -> np.ndarray:
                return np.asarray((np.asarray(decisions, dtype=object) == positive) == truth, dtype=bool)

            return binary
        labels = np.asarray(ctx.class_labels, dtype=object)[truth]

        def multiclass(decisions: np.ndarray) -> np.ndarray:
            return np.asarray(np.asarray(decisions, dtype=object) == labels, dtype=bool)

        return multiclass


def _own_text_column(model: Any) -> str | None:
    """The text column of a model that tokenizes its input (a Transformer), else None."""
    if getattr(model, "tokenizer", None) is None:
        return None
    column = (getattr(model, "description", None) or {}).get("text_column")
    return str(column) if column else None


def _numeric(column: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))
