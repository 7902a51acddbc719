"""The explainability audit's metrics and artifacts for a tabular model, built from
:class:`~guardrail.explain.engine.Explanations`.

:func:`tabular_results` builds them all; the keys are documented in
:mod:`guardrail.auditors.explainability`. Each function reads the settings it needs from
``p`` (the auditor's params, or anything with those attributes, see
:class:`~guardrail.explain.metrics.Settings`). The text counterpart is
:mod:`~guardrail.explain.text_results`.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from guardrail.core.types import MetricResult
from guardrail.explain.methods import GRADIENT_METHODS, STOCHASTIC_METHODS, Method
from guardrail.explain.metrics import (
    BUDGET_SPENT,
    Settings,
    coverage_metric,
    faithfulness_by_group,
    mean_ci,
    proxy_findings,
    stability_seeds,
)

if TYPE_CHECKING:
    from guardrail.explain.budget import Budget
    from guardrail.explain.engine import Explainer, Explanations
    from guardrail.explain.tabular import ProbaFn, TabularView


BUDGET_NOTE = "the time budget (max_seconds = {budget:g} s) stopped the audit: {done} of {requested} instances explained"


def tabular_results(
    explainer: Explainer,
    found: Explanations,
    groups: dict[str, np.ndarray],
    sensitive: tuple[str, ...],
    outcomes: np.ndarray,
    p: Settings,
    seed: int,
    budget: Budget,
) -> tuple[list[MetricResult], dict[str, Any]]:
    """Metrics and artifacts of the rows ``found`` explained by ``explainer``.

    ``groups`` holds the group label of every row of the data per sensitive column (the
    explained rows are ``found.rows``), ``outcomes`` every row's TP/FP/FN/TN. The stability
    reruns and Captum's metrics are skipped once ``budget`` is spent.
    """
    view, methods = explainer.view, explainer.config.methods
    explained_groups = {c: g[found.rows] for c, g in groups.items()}
    metrics: list[MetricResult] = []
    artifacts: dict[str, Any] = {}
    importance: dict[str, np.ndarray] = {}
    for method in methods:
        ranked, values = importance_metrics(method, found, view, explained_groups, p, seed)
        metrics += ranked
        importance[method] = values
        metrics += faithfulness_metrics(method, found, explained_groups, p, seed)
        metrics.append(stability_metric(method, explainer, found, p, seed, budget))
        if method in GRADIENT_METHODS:
            metrics += captum_metrics(method, explainer, found, p, seed, budget)
    if "integrated_gradients" in methods:
        convergence, artifacts["integrated_gradients"] = ig_metrics(found, p)
        metrics += convergence
    metrics += agreement_metrics(found, importance, p)
    proxy, artifacts["proxy"] = proxy_metrics(view, importance, groups, sensitive, p)
    metrics += proxy
    done, requested = len(found.rows), found.requested
    coverage = coverage_metric(done, requested, found.stopped_by_budget)
    metrics.append(coverage)
    artifacts["ranking"] = {m: [view.features[j] for j in np.argsort(-v, kind="stable")] for m, v in importance.items()}
    artifacts["local"] = local_explanations(view, found, outcomes, groups, explainer.proba, p)
    artifacts["budget"] = {**coverage.details, "max_seconds": p.max_seconds}
    artifacts["seeds"] = {
        "seed": seed,
        "chunks": f"chunk i of the run uses seed {seed} + i",
        "stability": stability_seeds(seed, p),
    }
    if "lime" in methods:
        artifacts["seeds"]["lime"] = {
            "num_samples": p.lime_samples,
            "pool_rows": explainer.config.lime_pool_rows,
            "pools": int(found.lime_pools.max()) + 1 if found.lime_pools is not None and len(found.lime_pools) else 0,
        }
    if found.stopped_by_budget:
        artifacts["note"] = BUDGET_NOTE.format(budget=p.max_seconds, done=done, requested=requested)
    return metrics, artifacts


def importance_metrics(
    method: str,
    found: Explanations,
    view: TabularView,
    groups: dict[str, np.ndarray],
    p: Settings,
    seed: int,
) -> tuple[list[MetricResult], np.ndarray]:
    from guardrail.explain.importance import global_importance
    from guardrail.fairness.bootstrap import BootstrapSpec

    spec = BootstrapSpec(resamples=p.bootstrap, level=p.confidence, seed=seed)
    rows = global_importance(
        found.attributions[method], view.features, groups, spec, min_group_size=p.min_group_size, clusters=found.clusters(method)
    )
    n = len(found.rows)
    metrics = [
        MetricResult(f"explain.{method}.importance", r.value, scope=r.feature, ci=r.ci, by_group=r.by_group, n=n)
        for r in rows
    ]
    return metrics, np.asarray([r.value for r in rows])


def faithfulness_metrics(
    method: str, found: Explanations, groups: dict[str, np.ndarray], p: Settings, seed: int
) -> list[MetricResult]:
    deletion, insertion = found.deletion[method], found.insertion[method]
    score = insertion - deletion
    n = len(score)
    clusters = found.clusters(method)
    out = [
        MetricResult(f"explain.{method}.deletion_auc", float(deletion.mean()), ci=mean_ci(deletion, p, seed, clusters), n=n,
                     higher_is_better=False),
        MetricResult(f"explain.{method}.insertion_auc", float(insertion.mean()), ci=mean_ci(insertion, p, seed, clusters), n=n,
                     higher_is_better=True),
    ]
    by_group, gaps = faithfulness_by_group(method, score, groups, p, unit="instances")
    out.append(
        MetricResult(f"explain.{method}.faithfulness", float(score.mean()), ci=mean_ci(score, p, seed, clusters), n=n,
                     higher_is_better=True, by_group=by_group)
    )
    out += gaps
    return out


def stability_metric(
    method: Method, explainer: Explainer, found: Explanations, p: Settings, seed: int, budget: Budget
) -> MetricResult:
    from guardrail.explain.quality import stability

    key = f"explain.{method}.stability"
    if method not in STOCHASTIC_METHODS:
        return MetricResult(key, 1.0, n=len(found.rows), higher_is_better=True, details={"deterministic": True})
    if budget.expired():
        return MetricResult(key, None, reason=BUDGET_SPENT, higher_is_better=True)
    rows = found.rows[: p.stability_instances]
    seeds = stability_seeds(seed, p)
    runs = [explainer.attribute(method, explainer.view.codes[rows], s)[0] for s in seeds]
    value = stability(runs, p.top_k)
    details = {"seeds": seeds, "instances": len(rows), "top_k": p.top_k, "deterministic": False}
    return MetricResult(key, value, n=len(rows), higher_is_better=True, details=details)


def captum_metrics(
    method: Method, explainer: Explainer, found: Explanations, p: Settings, seed: int, budget: Budget
) -> list[MetricResult]:
    """``explain.<method>.infidelity`` and ``.sensitivity`` of a gradient method on the first
    ``quality_instances`` explained rows (see :func:`~guardrail.explain.quality.captum_quality`;
    GradientShap is re-explained with its draws fixed, so sensitivity sees only the input change)."""
    import torch

    from guardrail.explain.quality import INFIDELITY_NOISE, PERTURBATIONS, SENSITIVITY_RADIUS, captum_quality

    keys = (f"explain.{method}.infidelity", f"explain.{method}.sensitivity")
    if budget.expired():
        return [MetricResult(k, None, reason=BUDGET_SPENT, higher_is_better=False) for k in keys]
    assert explainer.gradient is not None
    rows = found.rows[: p.quality_instances]
    inputs = explainer.gradient.encode(explainer.view.codes[rows])
    attributions = torch.tensor(found.encoded[method][: len(rows)], dtype=inputs.dtype)
    steps = p.ig_steps if method == "integrated_gradients" else p.gradient_shap_samples
    inf, sens = captum_quality(
        method,
        explainer.gradient,
        inputs,
        explainer.baseline_encoded,
        explainer.background_encoded,
        attributions,
        n_steps=steps,
        seed=seed,
        radius=SENSITIVITY_RADIUS,
    )
    explained_by: dict[str, Any] = {"n_steps": steps}
    if method == "gradient_shap":  # one draw of (baseline, α, noise) shared by the original and perturbed inputs
        explained_by = {"n_samples": steps, "seed": seed, "fixed_samples": True}
    infidelity_details = {"instances": len(rows), "normalize": True, "noise_std": INFIDELITY_NOISE, "perturbations": PERTURBATIONS}
    sensitivity_details = {
        "instances": len(rows),
        "radius": SENSITIVITY_RADIUS,
        "perturbations": PERTURBATIONS // 2,
        "relative": True,
        "explanation": explained_by,
    }
    return [
        MetricResult(keys[0], inf, n=len(rows), higher_is_better=False, details=infidelity_details),
        MetricResult(keys[1], sens, n=len(rows), higher_is_better=False, details=sensitivity_details),
    ]


def ig_metrics(found: Explanations, p: Settings) -> tuple[list[MetricResult], dict[str, Any]]:
    assert found.ig_relative is not None and found.ig_delta is not None and found.ig_steps is not None
    relative, steps = found.ig_relative, found.ig_steps
    within = relative <= p.ig_tolerance
    reached = bool(within.all())
    details = {
        "tolerance": p.ig_tolerance,
        "reached": reached,
        "unconverged": int((~within).sum()),
        "max_abs_delta": float(np.abs(found.ig_delta).max()),
        "max_steps": int(steps.max()),
        "message": "every instance converged within the tolerance"
        if reached
        else f"{int((~within).sum())} instance(s) did not converge within ig_tolerance at ig_max_steps = {p.ig_max_steps}",
    }
    n = len(relative)
    metrics = [
        MetricResult("explain.integrated_gradients.max_relative_delta", float(relative.max()), n=n, higher_is_better=False, details=details),
        MetricResult("explain.integrated_gradients.converged", float(within.mean()), n=n, higher_is_better=True),
    ]
    values, counts = np.unique(steps, return_counts=True)
    artifact = {"steps": {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}, **details}
    return metrics, artifact


def agreement_metrics(found: Explanations, importance: dict[str, np.ndarray], p: Settings) -> list[MetricResult]:
    from guardrail.explain.quality import spearman, top_k_overlap

    out = []
    for a, b in combinations(importance, 2):
        scope = f"{a}~{b}"
        rho = spearman(importance[a], importance[b])
        if rho is None:
            out.append(MetricResult("explain.agreement.spearman", None, scope=scope, reason="a global importance is constant"))
        else:
            out.append(MetricResult("explain.agreement.spearman", rho, scope=scope, higher_is_better=True))
        overlap = top_k_overlap(found.attributions[a], found.attributions[b], p.top_k)
        out.append(
            MetricResult(
                "explain.agreement.top_k_overlap",
                float(overlap.mean()),
                scope=scope,
                n=len(overlap),
                higher_is_better=True,
                details={"top_k": p.top_k},
            )
        )
    return out


def proxy_metrics(
    view: TabularView,
    importance: dict[str, np.ndarray],
    groups: dict[str, np.ndarray],
    sensitive: tuple[str, ...],
    p: Settings,
) -> tuple[list[MetricResult], dict[str, Any]]:
    from guardrail.explain.proxy import associations, proxies

    found = associations(view, groups, p.proxy_bins)
    proxy_of = proxies(found, p.proxy_threshold)
    direct = [f for f in view.features if f in sensitive]
    flagged = [*direct, *(f for f in view.features if f in proxy_of and f not in direct)]
    rankings = {
        method: [(view.features[j], float(values[j])) for j in np.argsort(-values, kind="stable")]
        for method, values in importance.items()
    }
    metrics = proxy_findings(rankings, direct, flagged, proxy_of, p, sensitive_details=direct)
    artifact = {
        "threshold": p.proxy_threshold,
        "bins": p.proxy_bins,
        "proxies": {f: v for f, v in proxy_of.items()},
        "associations": [
            {"feature": a.feature, "sensitive": a.sensitive, "nmi": a.nmi, "mi": a.mi}
            for a in sorted(found, key=lambda a: -a.nmi)
            if a.nmi >= p.proxy_threshold / 2
        ],
    }
    return metrics, artifact


def local_explanations(
    view: TabularView,
    found: Explanations,
    outcomes: np.ndarray,
    groups: dict[str, np.ndarray],
    proba: ProbaFn,
    p: Settings,
) -> list[dict[str, Any]]:
    """Top-k attributions of up to ``local_per_stratum`` explained rows per outcome × group stratum."""
    from guardrail.explain.quality import top_k

    taken: dict[str, int] = {}
    picked: list[int] = []
    for i, row in enumerate(found.rows):
        stratum = "|".join([str(outcomes[row]), *(str(g[row]) for g in groups.values())])
        if taken.get(stratum, 0) < p.local_per_stratum:
            taken[stratum] = taken.get(stratum, 0) + 1
            picked.append(i)
    if not picked:
        return []
    rows = found.rows[picked]
    scores = proba(view.codes[rows])
    out = []
    for position, i in enumerate(picked):
        row = int(found.rows[i])
        values = view.describe(view.codes[row])
        explanation: dict[str, Any] = {
            "row": row,
            "outcome": str(outcomes[row]),
            "groups": {c: str(g[row]) for c, g in groups.items()},
            "score": float(scores[position]),
            "top": {},
        }
        for method, attributions in found.attributions.items():
            best = top_k(attributions[i : i + 1], p.top_k)[0]
            explanation["top"][method] = [
                {"feature": view.features[j], "value": values[view.features[j]], "attribution": float(attributions[i, j])}
                for j in best
            ]
        out.append(explanation)
    return out
