"""Federated training on Flower (layer 2: orchestrates training and the federated groundwork).

- :mod:`~guardrail.federation.job` — the job file the apps read;
- :mod:`~guardrail.federation.data` — a node's notes and tensors, the template corpus;
- :mod:`~guardrail.federation.local` — one hospital's round without Flower, and the plain loop;
- :mod:`~guardrail.federation.client_app` / :mod:`~guardrail.federation.server_app` — the Flower apps;
- :mod:`~guardrail.federation.pretrain` — public pretraining of the tiny BERT reader on template notes;
- :mod:`~guardrail.federation.simulate` — the simulation engine in a subprocess with a hard timeout;
- :mod:`~guardrail.federation.deployment` — the deployment engine (SuperLink + SuperNodes): a plan
  for real machines, and the same on localhost.

Flower is imported only by the app modules and the simulation entry point.
"""
