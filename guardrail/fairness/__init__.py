"""Fairness computation engine: one count table per grouping, every metric derived from it.

``groups`` builds the per-(group, y_true, y_pred) count table in one chunked pass;
``metrics`` derives every rate and disparity from it; ``bootstrap`` resamples it;
``intervals`` gives exact bounds for rates and gaps; ``results`` is the one result builder
every audit reports rates and disparities through; ``paired`` gives candidate − baseline;
``coverage`` simulates the intervals' coverage. fairlearn's ``MetricFrame`` is the oracle in
the tests.
"""
