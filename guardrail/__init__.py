"""guardrail: responsible-AI audits (fairness, explainability, privacy) with policy-checked reports.

::

    import guardrail
    record = guardrail.audit("audits/adult-income.yaml")   # runs the spec, writes the reports
    record.exit_code()                                     # what `guardrail audit` exits with
    record.to_frame()                                      # every metric as a tidy DataFrame
    guardrail.check(record, "guardrail:baseline")          # judge results again, against another policy

Heavy libraries are imported only by the functions that need them, so ``import guardrail``
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guardrail.core.version import VERSION as __version__

_API = ("audit", "audit_data", "audit_fairness", "audit_robustness", "check", "train", "federate", "open_history", "load_run", "diff_runs")
__all__ = [*_API, "__version__"]

if TYPE_CHECKING:
    from guardrail.api import audit as audit
    from guardrail.api import audit_data as audit_data
    from guardrail.api import audit_fairness as audit_fairness
    from guardrail.api import audit_robustness as audit_robustness
    from guardrail.api import check as check
    from guardrail.api import diff_runs as diff_runs
    from guardrail.api import federate as federate
    from guardrail.api import load_run as load_run
    from guardrail.api import open_history as open_history
    from guardrail.api import train as train


def __getattr__(name: str) -> Any:
    if name in _API:
        from guardrail import api

        return getattr(api, name)
    raise AttributeError(f"module 'guardrail' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (``__all__``), the dunder names and the subpackages already imported,
    so that tab completion finds ``audit``, ``audit_fairness``, ``check``… before any of
    them is imported (they load lazily, through :func:`__getattr__`)."""
    import types

    shown = {name for name, value in globals().items() if name.startswith("__") or isinstance(value, types.ModuleType)}
    return sorted({*__all__, *shown})
