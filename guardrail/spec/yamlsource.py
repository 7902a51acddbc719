"""Read YAML into plain Python values while remembering the line of every key and item.

Spec errors must name the file and the line; PyYAML's node tree has the marks, so we
compose nodes and build the values ourselves (safe types only, duplicate keys refused).

A guardrail file is a short, plain document, and anything else is refused before a node is
built, with its file and line: a path that is not a regular file (a FIFO, ``/dev/zero``, a
folder), more than :data:`MAX_BYTES`, text that is not UTF-8, YAML anchors and aliases (an
alias bomb of a few hundred bytes expands to billions of values), nesting deeper than
:data:`MAX_DEPTH`, more than :data:`MAX_NODES` values, and tags other than YAML's plain ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardrail.core.errors import SpecError
from guardrail.core.files import FileTooLargeError, describe, read_limited, resolve

Location = tuple[str | int, ...]

MAX_BYTES = 1 << 20
"""The largest spec or policy file read (1 MiB); the shipped ones are a few KiB."""
MAX_DEPTH = 32
"""The deepest nesting of mappings and lists (a spec needs about 6)."""
MAX_NODES = 50_000
"""The most values (scalars, mappings and lists) in one file."""
ALIASES_REFUSED = "YAML anchors and aliases are not allowed in guardrail files"
ALIASES_HINT = "write the value out where it is used (a policy reuses another's rules with `extends:`)"
class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type stubs
    """PyYAML's safe loader, reading ``1e-5`` and ``1.0e5`` as numbers (YAML 1.2, and what
    every other YAML reader does), not as the text YAML 1.1 makes of an exponent without a
    dot or a sign: a privacy limit written ``threshold: 1e-5`` is a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)

_PLAIN_TAGS = frozenset(
    {"!", *(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))}
)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its values and the 1-based line of each location."""

    path: Path
    data: Any
    lines: dict[Location, int]

    def line_of(self, loc: Location) -> int:
        """Line of the deepest known location along ``loc`` (the document start if none)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1

    def where(self, loc: Location) -> str:
        return f"{display_path(self.path)}:{self.line_of(loc)}"


def dotted(loc: Location) -> str:
    """A location as the key it names: ``("rules", 0, "op")`` → ``rules[0].op``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else as is."""
    try:
        return str(resolve(path).relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def read_yaml(path: Path) -> YamlDocument:
    """Parse ``path``; any YAML problem becomes a :class:`SpecError` with file and line."""
    try:
        path = resolve(path)
        raw = read_limited(path, MAX_BYTES)
    except FileNotFoundError:
        raise SpecError("file not found", where=str(path), hint="check the path") from None
    except FileTooLargeError as exc:
        raise SpecError(
            f"the file {describe(exc)}: a spec or policy file is a short text file",
            where=str(path),
            hint="check that the path names the spec or policy file",
        ) from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: it {describe(exc)}", where=str(path), hint="pass a spec or policy file (YAML)") from None
    shown = display_path(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            where=f"{shown}:{line}",
            hint="a spec or policy file is YAML text saved as UTF-8",
        ) from None
    try:
        _check_events(text, shown)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise SpecError(
            f"malformed YAML: character {char!r} (U+{ord(char[:1] or ' '):04X}) is not allowed in YAML text",
            where=f"{shown}:{line}",
            hint="remove control characters from the file",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            f"malformed YAML: {problem}",
            where=f"{shown}:{line}",
            hint="check indentation, colons and quotes on that line",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {' '.join(str(exc).split())}", where=shown) from None
    if node is None:
        raise SpecError("the file is empty", where=f"{shown}:1", hint="see `guardrail schema audit`")
    lines: dict[Location, int] = {}
    builder = _Builder(path, lines)
    return YamlDocument(path=path, data=builder.build(node, ()), lines=lines)


def _check_events(text: str, shown: str) -> None:
    """Refuse anchors, aliases, non-plain tags, deep nesting and too many values, reading the
    event stream (which holds no value and never recurses) before any node is composed."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise SpecError(ALIASES_REFUSED, where=f"{shown}:{event.start_mark.line + 1}", hint=ALIASES_HINT)
        if not isinstance(event, yaml.NodeEvent):
            if isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            continue
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _PLAIN_TAGS:
            raise SpecError(
                f"unsupported YAML tag {tag!r}",
                where=f"{shown}:{event.start_mark.line + 1}",
                hint="guardrail files hold plain values (text, numbers, true/false, lists, mappings); remove the tag",
            )
        nodes += 1
        if nodes > MAX_NODES:
            raise SpecError(
                f"the file holds more than {MAX_NODES:,} values",
                where=f"{shown}:{event.start_mark.line + 1}",
                hint="a spec or policy file is short; check that the path names the right file",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(
                    f"values are nested more than {MAX_DEPTH} levels deep",
                    where=f"{shown}:{event.start_mark.line + 1}",
                    hint="a spec or policy file nests a few levels; check the brackets and indentation",
                )


class _Builder:
    def __init__(self, path: Path, lines: dict[Location, int]) -> None:
        self._path = path
        self._lines = lines
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self._lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                # Keys are names: take a scalar key's text as written, so YAML 1.1 does not
                # turn `on:` (a rule field) or `yes:` into booleans.
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self._scalar(key_node, loc)
                if not isinstance(key, str):
                    raise SpecError(
                        f"keys must be strings, got {key!r}",
                        where=f"{display_path(self._path)}:{key_node.start_mark.line + 1}",
                    )
                if key in result:
                    raise SpecError(
                        f"duplicate key {key!r}",
                        where=f"{display_path(self._path)}:{key_node.start_mark.line + 1}",
                        hint="each key may appear once in a mapping",
                    )
                child = (*loc, key)
                self._lines[child] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, loc)

    def _scalar(self, node: yaml.Node, loc: Location) -> Any:
        where = f"{display_path(self._path)}:{node.start_mark.line + 1}"
        key = f"{dotted(loc)}: " if loc else ""
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SpecError(f"{key}unsupported YAML value: {exc.problem}", where=where) from None
        except (ValueError, OverflowError) as exc:  # an integer of over 4300 digits, a date like 2024-13-45
            written = str(getattr(node, "value", ""))
            shown = written if len(written) <= 24 else f"{written[:20]}… ({len(written):,} characters)"
            reason = " ".join(str(exc).split(";")[0].split())
            date = node.tag == "tag:yaml.org,2002:timestamp"
            raise SpecError(
                f"{key}cannot read the {'date' if date else 'value'} {shown!r}: {reason}",
                where=where,
                hint="write a date that exists, as YYYY-MM-DD" if date else "quote it to keep it as text, or write it as a plain number",
            ) from None
