"""Lossless conversion between the frozen core types and JSON-able dictionaries."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (a bool is not), else ``None``: the form
    in which a possibly missing or non-finite number is written to JSON.

    >>> finite_or_none(0.5), finite_or_none(float("nan")), finite_or_none("1"), finite_or_none(True)
    (0.5, None, None, None)
    """
    import math
    from numbers import Real

    if isinstance(value, bool) or not isinstance(value, Real):  # numpy's numbers are Real too
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def to_jsonable(obj: Any) -> Any:
    """Turn a core value (dataclass, enum, tuple, mapping) into plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def from_jsonable(cls: type[T], data: Any) -> T:
    """Rebuild a core value of type ``cls`` from what :func:`to_jsonable` produced."""
    return typing.cast(T, _convert(cls, data))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, data: Any, path: str = "$") -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], data, path)
        for candidate in inner:  # e.g. float | tuple[float, float]
            try:
                return _convert(candidate, data, path)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{path}: {data!r} matches none of {tp}")
    if origin is tuple:
        _expect(data, list, path, "a list")
        (inner, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(inner, item, f"{path}[{i}]") for i, item in enumerate(data))
    if origin in (Mapping, dict):
        _expect(data, dict, path, "an object")
        return data
    if tp is Any:
        return data
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
            raise ValueError(f"{path}: expected one of {typing.get_args(tp)}, got {data!r}")
        return data
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _expect(data, dict, path, "an object")
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{path}: {tp.__name__} has no field(s) {sorted(unknown)}")
        return tp(**{k: _convert(hints[k], v, f"{path}.{k}") for k, v in data.items()})
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError(f"{path}: expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise TypeError(f"{path}: expected an integer, got {data!r}")
        return data
    if tp in (str, bool):
        _expect(data, tp, path, "a string" if tp is str else "true or false")
        return data
    return data


def _expect(data: Any, kind: type, path: str, words: str) -> None:
    if not isinstance(data, kind):
        raise TypeError(f"{path}: expected {words}, got {type(data).__name__}")
