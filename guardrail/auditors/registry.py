"""Explicit registry of auditors: built-ins by import string, third parties by entry point.

Nothing registers itself by import side effect; resolving a name imports its module on
demand, so listing auditors imports no heavy library.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from guardrail.core.errors import SpecError

if TYPE_CHECKING:
    from guardrail.auditors.base import Auditor

ENTRY_POINT_GROUP = "guardrail.auditors"

@dataclass(frozen=True)
class Registered:
    """One auditor: its ``module:Class`` import string and the pip extra (``guardrail[...]``)
    its dependencies come from, named in the hint when its module cannot be imported (an
    auditor from a third party's package gets that package's name)."""

    target: str
    extra: str | None = None


BUILTIN: dict[str, Registered] = {
    "fairness": Registered("guardrail.auditors.fairness:FairnessAuditor", "fairness"),
    "mitigation": Registered("guardrail.auditors.mitigation:MitigationAuditor", "fairness"),
    "explainability": Registered("guardrail.auditors.explainability:ExplainabilityAuditor", "explain"),
    "privacy": Registered("guardrail.auditors.privacy:PrivacyAuditor", "privacy"),
    "federated": Registered("guardrail.auditors.federated:FederatedAuditor", "privacy"),
    "data": Registered("guardrail.auditors.data:DataAuditor", "fairness"),
    "robustness": Registered("guardrail.auditors.robustness:RobustnessAuditor", "fairness"),
}
"""The built-in auditors: adding one is writing its module, adding one row here (its extra
declared in ``pyproject.toml``) and one row of :data:`guardrail.report.html.SECTIONS` for its
part of the report (see docs/architecture.md)."""


class AuditorRegistry:
    """Maps auditor names to their rows (``module:Class`` import string and pip extra)."""

    def __init__(self, rows: dict[str, Registered] | None = None) -> None:
        self._rows: dict[str, Registered] = {}
        for name, row in (rows or {}).items():
            self.register(name, row.target, extra=row.extra)

    def register(self, name: str, target: str, *, extra: str | None = None) -> None:
        """Add ``name`` (``extra``: what to install when its module is missing); registering a
        name twice raises ``ValueError``."""
        if name in self._rows:
            raise ValueError(f"auditor {name!r} is already registered (as {self._rows[name].target})")
        if ":" not in target:
            raise ValueError(f"auditor target must be 'module:Class', got {target!r}")
        self._rows[name] = Registered(target, extra)

    def extra(self, name: str) -> str:
        """The pip extra (or package) to install for auditor ``name``'s dependencies."""
        return self._rows[name].extra or name

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._rows))

    def target(self, name: str) -> str:
        if name not in self._rows:
            close = difflib.get_close_matches(name, self._rows, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"unknown auditor {name!r}{suggestion}",
                hint=f"registered auditors: {', '.join(self.names())} (see `guardrail list`)",
            )
        return self._rows[name].target

    def resolve(self, name: str) -> type[Auditor]:
        """Import and return the auditor class registered as ``name``."""
        module_name, _, attr = self.target(name).partition(":")
        module = importlib.import_module(module_name)
        cls: type[Auditor] = getattr(module, attr)
        return cls


    def metric_keys(self) -> tuple[str, ...] | None:
        """Every registered auditor's ``METRIC_KEYS`` (glob patterns) and their ``regression.``
        forms; None when an auditor declares none or cannot be imported here."""
        from guardrail.auditors.catalog import REGRESSION_PREFIX

        keys: list[str] = []
        for name in self.names():
            try:
                declared = getattr(self.resolve(name), "METRIC_KEYS", None)
            except ImportError:
                return None
            if declared is None:
                return None
            keys += declared
        return (*keys, *(REGRESSION_PREFIX + key for key in keys))


def default_registry() -> AuditorRegistry:
    """Built-in auditors plus those installed under the ``guardrail.auditors`` entry points."""
    registry = AuditorRegistry(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        registry.register(point.name, point.value, extra=point.dist.name if point.dist is not None else None)
    return registry
