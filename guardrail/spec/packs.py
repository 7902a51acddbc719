"""The policy packs shipped inside guardrail, addressed by name as ``guardrail:<name>``.

The packs are the YAML files in ``guardrail/packs/`` (package data: a built wheel holds them;
the repository's top-level ``policies/`` is a symlink to that folder). A pack name is accepted
wherever a policy file's path is: a spec's ``policies:``, a policy's ``extends:``,
``federate.round_policies``, ``guardrail validate`` and :func:`guardrail.spec.loader.load_policy`.
It resolves, through :mod:`importlib.resources`, to the file of the guardrail that runs, so
it works from any folder.

Examples
--------
>>> "baseline" in pack_names()
True
>>> pack_path("guardrail:baseline").name
'baseline.yaml'
>>> pack_reference(pack_path("guardrail:baseline"))
'guardrail:baseline'
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import functools
import os
from importlib import resources
from pathlib import Path

from guardrail.core.errors import SpecError
from guardrail.core.files import resolve

PACK_PREFIX = "guardrail:"
"""A policy reference that starts with this names a shipped pack, not a file."""

PACKS_FOLDER = "packs"
"""The folder of the ``guardrail`` package that holds the packs."""

_SUFFIX = ".yaml"


def is_pack_reference(reference: str | os.PathLike[str]) -> bool:
    """Whether ``reference`` names a shipped pack (``guardrail:<name>``) rather than a file."""
    return os.fspath(reference).startswith(PACK_PREFIX)


@functools.cache
def packs_folder() -> Path:
    """The folder of the installed packs, as a real folder (extracted once when guardrail is
    imported from a zip archive)."""
    folder = resources.files("guardrail").joinpath(PACKS_FOLDER)
    if isinstance(folder, Path):
        return resolve(folder)
    stack = contextlib.ExitStack()  # a zip import: a temporary copy that lives as long as the process
    atexit.register(stack.close)
    return resolve(stack.enter_context(resources.as_file(folder)))


def pack_names() -> tuple[str, ...]:
    """The names of the shipped packs (without the ``guardrail:`` prefix), sorted."""
    folder = packs_folder()
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name[: -len(_SUFFIX)] for p in folder.iterdir() if p.name.endswith(_SUFFIX) and p.is_file()))


def pack_path(reference: str, *, where: str | None = None, key: str | None = None) -> Path:
    """The installed file of the pack ``reference`` (``guardrail:<name>``, or a bare name).

    Raises
    ------
    SpecError
        If no pack has that name; ``where`` (file and line) and ``key`` say where it was named.
        The message suggests the closest name and the hint lists them all.
    """
    name = reference[len(PACK_PREFIX) :] if is_pack_reference(reference) else reference
    names = pack_names()
    if name not in names:
        message = f"unknown policy pack {PACK_PREFIX + name!r}"
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            message += f"; did you mean {PACK_PREFIX + close[0]!r}?"
        listed = ", ".join(PACK_PREFIX + n for n in names) or "none are installed"
        raise SpecError(
            f"{key}: {message}" if key else message,
            where=where or reference,
            hint=f"packs shipped with guardrail: {listed} (`guardrail list` describes them); "
            "a policy file of your own is named by its path",
        )
    return packs_folder() / f"{name}{_SUFFIX}"


def pack_reference(path: str | os.PathLike[str]) -> str | None:
    """``guardrail:<name>`` when ``path`` is the file of a shipped pack (after following
    symlinks, so ``policies/baseline.yaml`` in the repository is the pack), else ``None``."""
    try:
        resolved = resolve(path)
    except OSError:
        return None
    if resolved.parent != packs_folder() or not resolved.name.endswith(_SUFFIX):
        return None
    name = resolved.name[: -len(_SUFFIX)]
    return PACK_PREFIX + name if name in pack_names() else None


def resolve_policy_reference(reference: str, base_dir: Path, *, where: str | None = None, key: str | None = None) -> Path:
    """The file a policy reference names: a pack's installed file for ``guardrail:<name>``,
    else ``reference`` as a path relative to ``base_dir`` (the folder of the file that names
    it), resolved. Existence of a plain path is left to the caller.

    Raises
    ------
    SpecError
        For an unknown pack name (see :func:`pack_path`).
    OSError
        If a plain path cannot be resolved (a symlink loop).
    """
    if is_pack_reference(reference):
        return pack_path(reference, where=where, key=key)
    return resolve(base_dir / reference)


def pack_summary(name: str) -> str:
    """A one-line description of the pack ``name``: the first clause of its ``description``
    (or of its first comment line), at most about 100 characters."""
    import yaml

    path = pack_path(name)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    description = data.get("description") if isinstance(data, dict) else None
    if not isinstance(description, str) or not description.strip():
        comments = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
        description = comments[0] if comments else ""
    return _first_clause(" ".join(description.split()))


def _first_clause(text: str, limit: int = 100) -> str:
    ends = [i for i in (text.find(stop) for stop in (". ", ": ", "; ")) if i > 0]
    text = text[: min(ends)] if ends else text.removesuffix(".")
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
