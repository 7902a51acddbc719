"""Fairness computation engine: one count table per grouping, every metric derived from it.

``groups`` builds the per-(group, y_true, y_pred) count table in one chunked pass;
``metrics`` derives every rate and disparity from it; ``bootstrap`` resamples it. fairlearn's
``MetricFrame`` is the oracle in the tests.
"""
