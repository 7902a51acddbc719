"""The data audit (EU AI Act Art. 10): representation, labels, completeness, proxies, shift and
duplicates of the data itself, every figure from count tables, with an interval."""
