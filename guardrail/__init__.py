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
__all__ = ["audit", "audit_fairness", "__version__"]

if TYPE_CHECKING:
    from guardrail.api import audit, audit_fairness


def __getattr__(name: str) -> Any:
    if name in ("audit", "audit_fairness"):
        from guardrail import api

        return getattr(api, name)
    raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
