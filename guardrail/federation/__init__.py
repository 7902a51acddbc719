"""Federated training: the pure parts here, everything that imports Flower in :mod:`.flower`.

Pure Python/numpy modules, none of which imports Flower; records travel between nodes only in
the flat forms Flower's records hold (``ConfigRecord``/``MetricRecord``: numbers and lists of
numbers):

- :mod:`~guardrail.federation.job` — the job file the apps read;
- :mod:`~guardrail.federation.sites` — the four UCI Heart Disease sites as 3–5 hospital nodes,
  each with its own seeded stratified held-out split and its own imputation;
- :mod:`~guardrail.federation.notes` — each record as a clinical note in its site's style;
- :mod:`~guardrail.federation.ledgers` — a hospital's DP-SGD accountant history in node state;
- :mod:`~guardrail.federation.fairness` — per-(hospital, group) confusion counts as metrics,
  aggregated at the server with the fairness audit's count-table engine;
- :mod:`~guardrail.federation.history` — ``federated.json``, the run's round-by-round record:
  its name, kind and version, the typed round record, its writer and its reader.

:mod:`guardrail.federation.flower` holds the Flower apps, the local loop, the simulation and
the deployment engine. ``guardrail.federation.server_app`` and ``guardrail.federation.client_app``
re-export the apps under the import strings that deployments written by guardrail 0.1 name.
"""
