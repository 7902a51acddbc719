"""Policies given in Python (for :func:`guardrail.check`): rules as dicts, validated like a file.

A policy is a file path, a shipped pack's name (``"guardrail:baseline"``), a list of rules
as a policy file's ``rules:`` holds them, or a mapping with ``rules:`` (and any other key of
a policy file; ``schema_version``, ``kind`` and ``name`` may be left out). Rules given in
Python pass through the same pydantic models and the same messages as a policy file
(``rules[0]: unknown key 'treshold'; did you mean 'threshold'?``), located at
:data:`PYTHON_SOURCE` instead of a file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardrail.core.errors import UsageError
from guardrail.core.types import SourceLocation
from guardrail.policy.engine import Policy
from guardrail.spec.loader import load_policy, validate_document
from guardrail.spec.models import PolicySpec
from guardrail.spec.yamlsource import Location, YamlDocument

PYTHON_SOURCE = "(policy given in Python)"
"""Where a policy given in Python is said to come from: its ``PolicyInfo.path`` and the place
its errors name."""
DEFAULT_NAME = "in-memory"
"""The name of a policy given in Python without one."""
NOT_A_POLICY = "a policy is a file path, a pack name such as 'guardrail:baseline', a list of rules (dicts) or a mapping with rules:, got {what}"

PolicyArgument = str | Path | Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class _PythonDocument(YamlDocument):
    """The values of a policy given in Python, for the loader's validation: no lines to name."""

    def line_of(self, loc: Location) -> int:
        return 0

    def where(self, loc: Location) -> str:
        return PYTHON_SOURCE


def policies_of(policy: PolicyArgument | Sequence[str | Path]) -> list[Policy]:
    """The policies ``policy`` names (see the module docstring); a list of paths or pack names
    gives one policy each.

    >>> [p.spec.name for p in policies_of([{"id": "R1", "metric": "m.x", "op": "ge", "threshold": 0.8, "rationale": "why"}])]
    ['in-memory']
    """
    if isinstance(policy, str | Path):
        return [Policy.from_loaded(load_policy(policy))]
    if isinstance(policy, Mapping):
        return [python_policy(policy)]
    if isinstance(policy, Sequence) and policy and all(isinstance(p, str | Path) for p in policy):
        return [Policy.from_loaded(load_policy(p)) for p in policy]  # type: ignore[arg-type]
    if isinstance(policy, Sequence) and all(isinstance(rule, Mapping) for rule in policy):
        return [python_policy({"rules": list(policy)})]
    raise UsageError(NOT_A_POLICY.format(what=type(policy).__name__), where="guardrail.check")


def python_policy(given: Mapping[str, Any]) -> Policy:
    """A policy written as a mapping, validated as a policy file is, its ``extends:`` loaded
    (paths relative to the working folder, or pack names)."""
    from guardrail.spec.compose import compose

    data = {"schema_version": 1, "kind": "policy", "name": DEFAULT_NAME, **_plain(given)}
    document = _PythonDocument(path=Path(PYTHON_SOURCE), data=data, lines={})
    spec = validate_document(PolicySpec, document, kind="policy")
    parents = [load_policy(parent) for parent in spec.extends]
    flattened = compose(spec, parents, document)
    own = {rule.id for rule in spec.rules}
    inherited = {rule_id: at for parent in reversed(parents) for rule_id, at in parent.rule_lines.items() if rule_id not in own}

    return Policy(
        spec=flattened,
        path=PYTHON_SOURCE,
        sha256=hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest(),
        locations={rule_id: SourceLocation(str(path), line) for rule_id, (path, line) in inherited.items()},
    )


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences (but text) as lists, as a YAML file would give them."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(item) for item in value]
    return value
