"""Policy evaluation: a pure function from audit results to a verdict."""

from guardrail.policy.engine import evaluate

__all__ = ["evaluate"]
