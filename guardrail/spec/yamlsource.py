"""Read YAML into plain Python values while remembering the line of every key and item.

Spec errors must name the file and the line; PyYAML's node tree has the marks, so we
compose nodes and build the values ourselves (safe types only, duplicate keys refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardrail.errors import SpecError

Location = tuple[str | int, ...]


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


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else as is."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> YamlDocument:
    """Parse ``path``; any YAML problem becomes a :class:`SpecError` with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file not found", where=str(path), hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file: {exc}", where=str(path)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            f"malformed YAML: {problem}",
            where=f"{display_path(path)}:{line}",
            hint="check indentation, colons and quotes on that line",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", where=str(path)) from None
    if node is None:
        raise SpecError("the file is empty", where=f"{display_path(path)}:1", hint="see `guardrail schema audit`")
    lines: dict[Location, int] = {}
    builder = _Builder(path, lines)
    return YamlDocument(path=path, data=builder.build(node, ()), lines=lines)


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
                key = (
                    key_node.value
                    if isinstance(key_node, yaml.ScalarNode)
                    else self._constructor.construct_object(key_node, deep=True)
                )
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
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SpecError(
                f"unsupported YAML value: {exc.problem}",
                where=f"{display_path(self._path)}:{node.start_mark.line + 1}",
            ) from None
