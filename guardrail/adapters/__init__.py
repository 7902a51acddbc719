"""Model adapters: load a model safely and produce predictions for the audit data.

:func:`guardrail.adapters.loading.load_model` turns a spec's model section into an adapter
(:class:`~guardrail.adapters.base.ModelAdapter`): scikit-learn from skops
(:mod:`~guardrail.adapters.sklearn`), torch (:mod:`~guardrail.adapters.torch`: a model folder
described by :mod:`~guardrail.adapters.model_folder`, a Hugging Face folder, a user's
module), or predictions stored in the data (:mod:`~guardrail.adapters.predictions`).
Pickle-based files are refused before a byte is read (:mod:`~guardrail.adapters.safety`).
"""
