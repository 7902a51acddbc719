"""Parts of the user guide generated from the code, so that they cannot drift from it.

* ``docs/cli.md``: one ``<!-- output: help-COMMAND -->`` block per command (and ``help`` for
  ``guardrail --help``), the command's ``--help`` text as argparse prints it 90 columns wide.
* each audit family's page: the table between ``<!-- params: AUDITOR -->`` and
  ``<!-- /params -->``, every field of the auditor's ``params`` model.

``pytest tests/docs/test_reference.py --update-golden`` rewrites both from the code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from tests.docs.blocks import DOCS

CLI_PAGE = DOCS / "cli.md"
WIDTH = 90
PARAMS_PAGES = {
    "fairness": DOCS / "fairness.md",
    "explainability": DOCS / "explainability.md",
    "privacy": DOCS / "privacy.md",
    "mitigation": DOCS / "mitigation.md",
    "federated": DOCS / "federated.md",
    "data": DOCS / "data.md",
    "robustness": DOCS / "robustness.md",
}


@contextmanager
def _columns(width: int) -> Iterator[None]:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width + 2)  # argparse wraps at the terminal width less 2
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def commands() -> dict[str, argparse.ArgumentParser]:
    from guardrail.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **sub.choices}


def help_text(command: str) -> str:
    """``guardrail [COMMAND] --help`` as printed ``WIDTH`` columns wide, with its ``$`` line."""
    with _columns(WIDTH):
        text = commands()[command].format_help()
    return f"$ guardrail {command + ' ' if command else ''}--help\n{text}"


def help_block_name(command: str) -> str:
    return f"help-{command}" if command else "help"


def _default(field: object) -> str:
    default = getattr(field, "default", PydanticUndefined)
    factory = getattr(field, "default_factory", None)
    if default is PydanticUndefined and factory is not None:
        default = factory()
    if default is PydanticUndefined:
        return "required"
    if isinstance(default, tuple):
        default = list(default)
    return "`" + json.dumps(default, default=str) + "`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def params_table(auditor: str) -> str:
    """The markdown table of an auditor's ``params``: name, default, description."""
    from guardrail.auditors.registry import default_registry

    model: type[BaseModel] = default_registry().resolve(auditor).Params
    rows = ["| param | default | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(f"| `{name}` | {_cell(_default(field))} | {_cell(field.description or '')} |")
    return "\n".join(rows) + "\n"


def params_region(auditor: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- params: {re.escape(auditor)} -->\n)(.*?)(<!-- /params -->)", re.S)


def update(path: Path, pattern: re.Pattern[str], new_body: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert pattern.search(text), f"{path}: no region {pattern.pattern}"
    path.write_text(pattern.sub(lambda m: m[1] + new_body + m[3], text, count=1), encoding="utf-8")


def help_region(command: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- output: {re.escape(help_block_name(command))} -->\n```text\n)(.*?)(^```)", re.S | re.M)
