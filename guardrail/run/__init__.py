"""Orchestration: one module per command that runs work, and what they share.

- :mod:`~guardrail.run.audit` — ``guardrail audit``: load the spec, plan the audits, run them,
  check the policies, publish the reports and the history (an :class:`~guardrail.run.audit.AuditRun`);
- :mod:`~guardrail.run.context` — the context every audit reads (outcomes, reference-model retraining);
- :mod:`~guardrail.run.outcomes` — the labels, predictions and scores every audit reads;
- :mod:`~guardrail.run.preflight` — what ``guardrail validate`` checks of the model and the data header;
- :mod:`~guardrail.run.provenance` — what the run read (hashed as read), the environment, the rerun command;
- :mod:`~guardrail.run.train` — ``guardrail train``: DP-SGD training into a model folder;
- :mod:`~guardrail.run.federate` — ``guardrail federate``: federated training on Flower's simulation engine
  (:mod:`~guardrail.run.federation_job`: the spec's ``federate:`` section as a job);
- :mod:`~guardrail.run.deploy` — the same on Flower's deployment engine (SuperLink + SuperNodes).

Only :mod:`guardrail.cli`, :mod:`guardrail.api` and the package's ``__init__`` sit above this layer.
"""
