"""Model adapters: load a model safely and produce predictions for the audit data."""
