"""guardrail: responsible-AI audits (fairness, explainability, privacy) with policy-checked reports.

::

    import guardrail
    record = guardrail.audit("audits/adult-income.yaml")   # runs the spec, writes the reports
    record.exit_code()                                     # what `guardrail audit` exits with

Heavy libraries are imported only by the functions that need them, so ``import guardrail``
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
_API = ("audit", "audit_fairness", "open_history", "load_run", "diff_runs")
__all__ = [*_API, "__version__"]

if TYPE_CHECKING:
    from guardrail.api import audit, audit_fairness, diff_runs, load_run, open_history


def __getattr__(name: str) -> Any:
    if name in _API:
        from guardrail import api

        return getattr(api, name)
    raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
