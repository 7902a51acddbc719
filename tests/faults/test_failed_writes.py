"""Failed writes leave nothing (issue 20, defect 5): a full disk or text that cannot be
encoded exits 3 with one clear line and leaves no output folder, no history folder, no
staging folder and no ``.tmp`` file; an existing report folder keeps its old reports."""

from __future__ import annotations

import dataclasses
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import guardrail.core.atomic as atomic
from guardrail.core.errors import SpecError, UsageError
from guardrail.run.audit import run
from tests.cli.test_exit_codes import _assert_one_clear_line, _folder
from tests.conftest import run_cli


def _everything(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_lone_surrogate_in_the_spec_is_exit_3_naming_the_field_and_writes_nothing(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    spec.write_text(spec.read_text().replace("name: t\n", 'name: t\ndescription: "half a character: \\udc80"\n'))
    before = _everything(tmp_path)
    done = run_cli("audit", spec, "--history", tmp_path / "hist" / "h.sqlite")
    assert done.returncode == 3, done.stderr
    _assert_one_clear_line(done.stderr)
    assert "spec.yaml:4: spec.description holds text that cannot be written as UTF-8" in done.stderr
    assert "'\\udc80'" in done.stderr
    assert _everything(tmp_path) == before, "no output folder, no history, no temporary file"


def test_a_lone_surrogate_in_a_nested_spec_field_is_named_by_its_path(tmp_path: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3, audits='  - {id: fairness, use: fairness, params: {min_group_size: 2}}\n')
    spec.write_text(spec.read_text().replace("name: t\n", 'name: t\ndescription: ok\n'))
    audited = run(spec)
    loaded = audited.spec
    raw = {**loaded.raw, "data": {**loaded.raw["data"], "sensitive": ["group", "\ud800x"]}}
    bad = dataclasses.replace(audited, record=dataclasses.replace(audited.record, spec=raw))
    with pytest.raises(SpecError, match=r"spec\.data\.sensitive\.1 holds text") as caught:
        bad.publish(("json", "html"))
    assert caught.value.where == f"{loaded.document.where(('data', 'sensitive', 1))}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fail_at", [1, 2, 4])
def test_a_full_disk_while_writing_reports_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    audited = run(spec, out=tmp_path / "new" / "out", history=tmp_path / "hist" / "deep" / "h.sqlite")
    real = atomic._write_file
    calls = []

    def write(path: Path, payload: bytes, mode: int, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == fail_at:
            path.write_bytes(payload[: len(payload) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "_write_file", write)
    before = _everything(tmp_path)
    with pytest.raises(UsageError, match="No space left on device"):
        audited.publish(("html", "json", "junit", "markdown"))
    assert _everything(tmp_path) == before


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only): too small for the reports of an audit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_really_full_disk_leaves_nothing_and_an_old_report_intact(tmp_path: Path, tiny_disk: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    out, history = tiny_disk / "reports" / "t", tiny_disk / "history" / "h.sqlite"
    done = run_cli("audit", spec, "--out", out, "--history", history)
    assert done.returncode == 3, done.stderr
    _assert_one_clear_line(done.stderr)
    assert "No space left on device" in done.stderr
    assert _everything(tiny_disk) == [], "neither the output nor the history folder stays"
    # a report that fits stays whole when the next one does not
    small = run_cli("audit", spec, "--out", out, "--no-history", "--format", "markdown")
    assert small.returncode == 0, small.stderr
    old = (out / "summary.md").read_bytes()
    formats = ("--format", "markdown", "--format", "html", "--format", "json")
    failed = run_cli("audit", spec, "--out", out, "--history", history, *formats)
    assert failed.returncode == 3 and "No space left on device" in failed.stderr
    assert _everything(tiny_disk) == ["reports", "reports/t", "reports/t/summary.md"]
    assert (out / "summary.md").read_bytes() == old


def test_a_history_on_a_full_disk_leaves_no_history_folder_and_no_reports(tmp_path: Path, tiny_disk: Path) -> None:
    spec = _folder(tmp_path, threshold=0.3)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"x" * 40_000)  # what is left is too small for a history database
    done = run_cli("audit", spec, "--out", tmp_path / "reports" / "t", "--history", tiny_disk / "history" / "deep" / "h.sqlite")
    assert done.returncode == 3, done.stderr
    _assert_one_clear_line(done.stderr)
    assert "cannot create the audit history" in done.stderr
    assert _everything(tiny_disk) == ["filler"]
    assert not (tmp_path / "reports").exists(), "the reports of a run that could not be recorded are not kept"
