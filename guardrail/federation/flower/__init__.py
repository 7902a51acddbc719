"""Federated training on Flower: every module that imports Flower, Ray or the training stack.

- :mod:`~guardrail.federation.flower.data` — a node's notes and tensors, the template corpus;
- :mod:`~guardrail.federation.flower.local` — one hospital's round without Flower, and the plain loop;
- :mod:`~guardrail.federation.flower.client_app` / :mod:`~guardrail.federation.flower.server_app` — the Flower apps;
- :mod:`~guardrail.federation.flower.pretrain` — public pretraining of the tiny BERT reader on template notes;
- :mod:`~guardrail.federation.flower.simulate` — the simulation engine in a subprocess with a hard timeout;
- :mod:`~guardrail.federation.flower.deployment` — the deployment engine (SuperLink + SuperNodes): a plan
  for real machines, and the same on localhost.

Ray's loopback settings live in :mod:`guardrail.scale.loopback` (shared with the Ray audit engine).

Flower is imported only by the app modules and the simulation entry point.
"""
