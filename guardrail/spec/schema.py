"""JSON Schemas of the spec and policy files, for editors and CI linting."""

from __future__ import annotations

from typing import Any, Literal

from guardrail.spec.models import AuditSpec, PolicySpec


def json_schema(kind: Literal["audit", "policy"] | str) -> dict[str, Any]:
    model = AuditSpec if kind == "audit" else PolicySpec
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"guardrail {kind} file (schema_version 1)"
    return schema
