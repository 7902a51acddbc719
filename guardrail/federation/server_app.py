"""Deprecated import path, kept for one release: deployments written by guardrail 0.1 name
``guardrail.federation.server_app:app`` in their ``pyproject.toml``. The app lives in
:mod:`guardrail.federation.flower.server_app`."""

from guardrail.federation.flower.server_app import app as app

__all__ = ["app"]
