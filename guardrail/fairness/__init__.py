"""Fairness computation engine: one count table per grouping, every metric derived from it.

``groups`` encodes sensitive features into integer group codes; ``counts`` builds the
per-(group, y_true, y_pred) confusion counts in one pass; ``metrics`` derives every rate and
disparity from those counts. fairlearn's ``MetricFrame`` is the oracle in the tests.
"""
