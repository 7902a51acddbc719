"""Explanations of tabular models (Captum, LIME) and measures of their quality.

Modules, one job each:

* :mod:`~guardrail.explain.methods` — the closed set of method names;
* :mod:`~guardrail.explain.tabular` — the data as a numeric view, the model as a function on it;
* :mod:`~guardrail.explain.attribution` — integrated gradients (with convergence), GradientShap (fixed draws),
  feature ablation, Shapley value sampling;
* :mod:`~guardrail.explain.lime_batch` — LIME with one model call for many instances;
* :mod:`~guardrail.explain.engine` — runs the methods chunk by chunk within a time budget;
* :mod:`~guardrail.explain.quality` — faithfulness curves, stability, agreement, infidelity and sensitivity;
* :mod:`~guardrail.explain.importance` — global importance with bootstrap intervals, per group;
* :mod:`~guardrail.explain.proxy` — features associated with sensitive attributes;
* :mod:`~guardrail.explain.results` — the audit's metrics and artifacts from the explanations;
* :mod:`~guardrail.explain.sampling` — the stratified choice of rows to explain;
* :mod:`~guardrail.explain.budget` — the time budget and the progress line;
* :mod:`~guardrail.explain.text` — explanations of text classifiers.

torch, captum and lime are imported inside the functions that use them. The ``explainability``
auditor (:mod:`guardrail.auditors.explainability`) runs them.
"""
