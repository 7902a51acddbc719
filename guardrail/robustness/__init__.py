"""Robustness and counterfactual probes (EU AI Act Art. 15)."""
