"""Explicit registry of auditors: built-ins by import string, third parties by entry point.

Nothing registers itself by import side effect; resolving a name imports its module on
demand, so listing auditors imports no heavy library.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from guardrail.core.errors import SpecError

if TYPE_CHECKING:
    from guardrail.auditors.base import Auditor

ENTRY_POINT_GROUP = "guardrail.auditors"

BUILTIN: dict[str, str] = {
    "fairness": "guardrail.auditors.fairness:FairnessAuditor",
    "mitigation": "guardrail.auditors.mitigation:MitigationAuditor",
    "explainability": "guardrail.auditors.explainability:ExplainabilityAuditor",
    "privacy": "guardrail.auditors.privacy:PrivacyAuditor",
    "federated": "guardrail.auditors.federated:FederatedAuditor",
}

BUILTIN_EXTRAS: dict[str, str] = {
    "fairness": "fairness",
    "mitigation": "fairness",
    "explainability": "explain",
    "privacy": "privacy",
    "federated": "privacy",
}
"""The pip extra (``guardrail[...]``) each built-in auditor's dependencies come from, for the
hint when its module cannot be imported."""


class AuditorRegistry:
    """Maps auditor names to ``module:Class`` import strings."""

    def __init__(self, targets: dict[str, str] | None = None) -> None:
        self._targets: dict[str, str] = {}
        for name, target in (targets or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str) -> None:
        """Add ``name``; registering a name twice raises ``ValueError``."""
        if name in self._targets:
            raise ValueError(f"auditor {name!r} is already registered (as {self._targets[name]})")
        if ":" not in target:
            raise ValueError(f"auditor target must be 'module:Class', got {target!r}")
        self._targets[name] = target

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._targets))

    def target(self, name: str) -> str:
        if name not in self._targets:
            close = difflib.get_close_matches(name, self._targets, n=1)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"unknown auditor {name!r}{suggestion}",
                hint=f"registered auditors: {', '.join(self.names())} (see `guardrail list`)",
            )
        return self._targets[name]

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
        registry.register(point.name, point.value)
    return registry
