"""Fenced blocks of the README and the user guide, found by the HTML comment before them.

``<!-- quickstart: NAME -->`` marks a file of the README's quickstart (written as shown and
run); ``<!-- output: NAME -->`` marks what guardrail prints (an optional first line
``$ command`` says what was run). A test checks each marked output against guardrail.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*(?P<kind>output|quickstart|example):\s*(?P<name>[^\s>]+)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    info: str
    body: str
    before: str
    """The text between the previous fenced block (or the top of the file) and this one."""

    @property
    def mark(self) -> tuple[str, str] | None:
        found = MARK.search(self.before.rstrip("\n").rsplit("\n", 1)[-1])
        return (found["kind"], found["name"]) if found else None

    def command(self) -> list[str]:
        """The ``$ command`` line of an output block, as arguments."""
        first = self.body.split("\n", 1)[0]
        assert first.startswith("$ "), f"{self.where}: an output block that is run starts with '$ command'"
        return shlex.split(first[2:], comments=True)

    def printed(self) -> str:
        """What the command prints: the block without its ``$ command`` line."""
        return self.body.split("\n", 1)[1] if self.body.startswith("$ ") else self.body

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def pages() -> list[Path]:
    """The README and every page of the guide."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found, previous_end = [], 0
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match["info"].strip(), match["body"], text[previous_end : match.start()]))
        previous_end = match.end()
    return found


def marked(kind: str, name: str, path: Path = README) -> Block:
    """The one block of ``path`` marked ``<!-- kind: name -->``."""
    hits = [b for b in blocks(path) if b.mark == (kind, name)]
    assert len(hits) == 1, f"{path.relative_to(REPO)} must hold exactly one block marked <!-- {kind}: {name} --> (found {len(hits)})"
    return hits[0]


def all_marked() -> list[Block]:
    return [b for page in pages() for b in blocks(page) if b.mark is not None]
