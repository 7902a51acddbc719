"""Membership inference attacks on any model, and how well they succeed, by group.

Everything here works on arrays: per-example outputs that the caller computed with its own
model (scikit-learn, torch, anything), so the attacks are model-agnostic. This module is the
public face of four modules, one job each:

* :mod:`guardrail.privacy.outputs` — a model's outputs as the attacks read them:
  :class:`Logits` (float64, precise however confident the model) or probabilities, and
  from either the loss (:func:`cross_entropy_loss`) and LiRA's confidence
  (:func:`logit_confidence`);
* :mod:`guardrail.privacy.attacks` — the attacks' scores: :func:`loss_threshold_attack`
  (Yeom et al. 2018) and offline LiRA, :func:`lira_offline_attack` (Carlini et al. 2022),
  with the reference models of :func:`train_reference_models`;
* :mod:`guardrail.privacy.mia_metrics` — :func:`attack_metrics` judges any score: ROC AUC,
  TPR at 0.1% and 1% FPR and attack advantage, each with its interval, overall and by
  group; the one place these figures and their intervals are computed;
* :mod:`guardrail.privacy.attack_report` — what that gives: :class:`AttackReport` (the
  metrics) and :class:`RocCurve` (for a chart).
"""

from __future__ import annotations

from guardrail.privacy.attack_report import AttackReport, RocCurve
from guardrail.privacy.attacks import ReferenceModels, Variance, lira_offline_attack, loss_threshold_attack, train_reference_models
from guardrail.privacy.mia_metrics import FPR_LEVELS, METRIC_NAMES, attack_metrics
from guardrail.privacy.outputs import PROBABILITY_FLOOR, Logits, ModelOutput, cross_entropy_loss, logit_confidence

__all__ = [
    "FPR_LEVELS",
    "METRIC_NAMES",
    "PROBABILITY_FLOOR",
    "AttackReport",
    "Logits",
    "ModelOutput",
    "ReferenceModels",
    "RocCurve",
    "Variance",
    "attack_metrics",
    "cross_entropy_loss",
    "lira_offline_attack",
    "logit_confidence",
    "loss_threshold_attack",
    "train_reference_models",
]
