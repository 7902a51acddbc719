"""Reports of a run: HTML for people, run.json as the canonical record, JUnit and Markdown for CI.

Every renderer reads only a :class:`~guardrail.core.types.RunRecord`, so any report can be
re-rendered from ``run.json`` without ML libraries installed. This package imports only the
standard library, Jinja2/MarkupSafe, :mod:`guardrail.core` and the pure record modules of the
layer below (``federated.json``'s :mod:`guardrail.federation.history`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from guardrail.core.atomic import check_output_dir, write_all_atomic
from guardrail.core.errors import UsageError
from guardrail.core.files import file_kind
from guardrail.core.types import FileDigest, RunRecord, Severity
from guardrail.core.vocab import FORMAT_NAMES, REPORT_FORMATS
from guardrail.report.html import render_html
from guardrail.report.json import parse_json, render_json
from guardrail.report.junit import render_junit
from guardrail.report.markdown import render_markdown
from guardrail.report.sarif import render_sarif

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "load_record",
    "parse_json",
    "prepare_reports",
    "publish",
    "render",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_sarif",
    "write_reports",
]

Renderer = Callable[[RunRecord, Severity], str]

FORMATS: tuple[str, ...] = FORMAT_NAMES
"""The report formats, in the order they are listed to users (:data:`guardrail.core.vocab.REPORT_FORMATS`)."""

FILE_NAMES: dict[str, str] = {f.name: f.file_name for f in REPORT_FORMATS}
"""The file each format writes in the output folder."""


def renderer_of(fmt: str) -> Renderer | None:
    """The function that renders format ``fmt`` (imported now), or ``None`` for an unknown format."""
    import importlib

    row = next((f for f in REPORT_FORMATS if f.name == fmt), None)
    if row is None:
        return None
    module, _, name = row.renderer.partition(":")
    renderer: Renderer = getattr(importlib.import_module(module), name)
    return renderer


def render(record: RunRecord, fmt: str, *, fail_on: Severity | str = Severity.DENY) -> str:
    """Render ``record`` in format ``fmt`` (one of :data:`FORMATS`).

    Parameters
    ----------
    record:
        The run to report.
    fmt:
        ``html``, ``json``, ``junit`` or ``markdown``.
    fail_on:
        The lowest severity that blocks: decides the verdict shown and which outcomes fail.

    Raises
    ------
    UsageError
        If ``fmt`` or ``fail_on`` is not known.
    """
    renderer = renderer_of(fmt)
    if renderer is None:
        raise UsageError(
            f"unknown report format {fmt!r}",
            where="--format",
            hint=f"use one of: {', '.join(FORMATS)}",
        )
    return renderer(record, _severity(fail_on))


def load_record(path: str | os.PathLike[str]) -> RunRecord:
    """Read a ``run.json`` written by :func:`write_reports`.

    Raises
    ------
    UsageError
        If the file cannot be read, is not JSON, has another ``schema_version`` or does not
        describe a run.
    """
    where = os.fspath(path)
    kind = file_kind(path)
    if kind not in (None, "missing", "a folder"):  # never open a FIFO or a device: it could hang or never end
        raise UsageError(f"is {kind}, not a run.json file", where=where, hint="pass the run.json that `guardrail audit` wrote")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "no such file", where=where, hint="pass the run.json in the output folder of `guardrail audit`"
        ) from None
    except IsADirectoryError:
        raise UsageError(
            "is a folder, not a run.json file", where=where, hint=f"pass {os.path.join(where, 'run.json')}"
        ) from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            where=where,
            hint="pass the run.json that `guardrail audit` wrote, unmodified",
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot read the file ({exc.strerror})", where=where, hint="check the path and its permissions"
        ) from None
    return parse_json(text, where=where)


def write_reports(
    record: RunRecord,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str],
    *,
    fail_on: Severity | str = Severity.DENY,
) -> dict[str, Path]:
    """Render ``record`` in every format of ``formats`` and write the files into ``out_dir``.

    See :func:`publish`, which also returns the record as written (with its output digests).

    Returns
    -------
    dict[str, Path]
        The path written for each format, in the order of :data:`FORMATS`.
    """
    return publish(record, out_dir, formats, fail_on=fail_on)[1]


def publish(
    record: RunRecord,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str],
    *,
    fail_on: Severity | str = Severity.DENY,
) -> tuple[RunRecord, dict[str, Path]]:
    """Render and write the reports; ``run.json`` records the SHA-256 of the others.

    All formats are rendered in memory before anything is written, so a rendering failure
    leaves no report behind; the files are then replaced all together or not at all.

    Raises
    ------
    UsageError
        If a format or ``fail_on`` is not known, or the folder cannot be written.
    """
    record, files = prepare_reports(record, out_dir, formats, fail_on=fail_on)
    write_all_atomic(files)
    return record, {fmt: Path(out_dir) / FILE_NAMES[fmt] for fmt in FORMATS if Path(out_dir) / FILE_NAMES[fmt] in files}


def prepare_reports(
    record: RunRecord,
    out_dir: str | os.PathLike[str],
    formats: Iterable[str],
    *,
    fail_on: Severity | str = Severity.DENY,
) -> tuple[RunRecord, dict[Path, str]]:
    """Render every format in memory and check the folder: the files :func:`publish` writes.

    Returns the record as it will be written (with the digests of the other reports) and
    the text of each file by its path, ready for :func:`~guardrail.core.atomic.write_all_atomic`.
    """
    wanted = {formats} if isinstance(formats, str) else set(formats)
    unknown = sorted(wanted - set(FORMATS))
    if unknown:
        raise UsageError(
            f"unknown report format{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            where="--format",
            hint=f"use one of: {', '.join(FORMATS)}",
        )
    severity = _severity(fail_on)
    rendered = {fmt: render(record, fmt, fail_on=severity) for fmt in FORMATS if fmt in wanted and fmt != "json"}
    if "json" in wanted:
        record = dataclasses.replace(record, outputs=tuple(_digest(fmt, text) for fmt, text in rendered.items()))
        rendered["json"] = render(record, "json", fail_on=severity)
    target = Path(out_dir)
    check_output_dir(target)
    return record, {target / FILE_NAMES[fmt]: rendered[fmt] for fmt in FORMATS if fmt in rendered}


def _digest(fmt: str, text: str) -> FileDigest:
    data = text.encode("utf-8")
    return FileDigest(role=fmt, path=FILE_NAMES[fmt], sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))


def _severity(value: Severity | str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise UsageError(
            f"unknown severity {value!r}",
            where="--fail-on",
            hint=f"use one of: {', '.join(s.value for s in Severity)}",
        ) from None
