"""Federated training groundwork: hospitals, their notes, privacy ledgers and fairness counts.

Pure Python/numpy modules that the Flower ServerApp and ClientApp build on; none of them
imports Flower. Records travel between nodes only in the flat forms Flower's records hold
(``ConfigRecord``/``MetricRecord``: numbers and lists of numbers).

- :mod:`~guardrail.federated.hospitals` — the four UCI Heart Disease sites as 3–5 nodes,
  each with its own seeded stratified held-out split and its own imputation;
- :mod:`~guardrail.federated.notes` — each record as a clinical note in its site's style;
- :mod:`~guardrail.federated.ledgers` — a hospital's DP-SGD accountant history in node state;
- :mod:`~guardrail.federated.fairness` — per-(hospital, group) confusion counts as metrics,
  aggregated at the server with the fairness audit's count-table engine.
"""
