"""Explanations of tabular and text models (Captum, LIME) and measures of their quality.

Modules, one job each. Shared by both kinds of model:

* :mod:`~guardrail.explain.methods` — the closed set of method names, the IG completeness floor;
* :mod:`~guardrail.explain.sampling` — the stratified choice of rows or documents to explain;
* :mod:`~guardrail.explain.budget` — the time budget and the progress line;
* :mod:`~guardrail.explain.proxy` — features (or words) associated with sensitive attributes;
* :mod:`~guardrail.explain.metrics` — the metric builders both results modules use.

Tabular models:

* :mod:`~guardrail.explain.tabular` — the data as a numeric view, the model as a function on it;
* :mod:`~guardrail.explain.attribution` — integrated gradients (with convergence), GradientShap (fixed draws),
  feature ablation, Shapley value sampling;
* :mod:`~guardrail.explain.lime_batch` — LIME with one model call for many instances;
* :mod:`~guardrail.explain.engine` — runs the methods chunk by chunk within a time budget;
* :mod:`~guardrail.explain.quality` — faithfulness curves, stability, agreement, infidelity and sensitivity;
* :mod:`~guardrail.explain.importance` — global importance with bootstrap intervals, per group;
* :mod:`~guardrail.explain.results` — the audit's metrics and artifacts from the explanations.

Text classifiers (the public names in :mod:`~guardrail.explain.text`):

* :mod:`~guardrail.explain.text_model` — the classifier unpacked, documents tokenised into words;
* :mod:`~guardrail.explain.text_attribution` — Layer Integrated Gradients and LIME over words;
* :mod:`~guardrail.explain.text_engine` — explains a list of documents within a time budget;
* :mod:`~guardrail.explain.text_summary` — global token importance, agreement, heatmap rows;
* :mod:`~guardrail.explain.text_quality` — faithfulness curves and LIME reruns;
* :mod:`~guardrail.explain.text_results` — the audit's metrics and artifacts from the explanations.

torch, captum, transformers and lime are imported inside the functions that use them. The
``explainability`` auditor (:mod:`guardrail.auditors.explainability`) runs them.
"""
