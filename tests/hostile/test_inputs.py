"""The defences under the hostile-input matrix, one at a time and in-process: printable error
text, files opened only when regular (never blocking), compressed data checked by its magic
bytes, model descriptions checked key by key, verification that never opens a FIFO."""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from guardrail.adapters.predictions import PredictionsAdapter
from guardrail.adapters.tables import read_table
from guardrail.core.errors import DataError, GuardrailError, SpecError, printable
from guardrail.core.files import (
    FileTooLargeError,
    NotRegularFileError,
    describe,
    file_kind,
    open_regular,
    read_limited,
    resolve,
    sha256_and_size,
)

ESCAPES = "col\nnext\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u2028line\ttab\r"


# -- printable text ------------------------------------------------------------------------------------------------
def test_printable_spells_out_every_control_and_bidi_character() -> None:
    text = printable(ESCAPES)
    assert text == "col\\nnext\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\u2028line\\ttab\\r"
    assert len(text.splitlines()) == 1
    assert printable(text) == text, "idempotent"
    assert printable("Ünïcode ≥ 0.8 → “quoted” — ok") == "Ünïcode ≥ 0.8 → “quoted” — ok"


def test_every_error_prints_as_one_printable_line() -> None:
    error = DataError(f"column {ESCAPES!s} missing", where=f"data{ESCAPES}.csv", hint=f"available columns: {ESCAPES}")
    text = str(error)
    assert len(text.splitlines()) == 1 and "\x1b" not in text and "\u202e" not in text
    assert error.message.startswith("column col\n"), "the message itself is kept as raised"


@pytest.mark.parametrize("cls", [GuardrailError, SpecError, DataError])
def test_the_printable_rule_holds_for_every_error_class(cls: type[GuardrailError]) -> None:
    assert "\n" not in str(cls("a\nb", where="w\x1b", hint="h\u2029"))


# -- files ---------------------------------------------------------------------------------------------------------
def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _in_thread(function: object, *args: object) -> object:
    """Run ``function`` with a deadline: a blocking open would hang the test run otherwise."""
    result: list[object] = []

    def target() -> None:
        try:
            result.append(function(*args))  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 — handed to the test
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"{function} blocked"
    return result[0]


def test_file_kind_names_what_a_path_is_without_opening_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    assert file_kind(tmp_path / "file") is None
    assert file_kind(tmp_path / "absent") == "missing"
    assert file_kind(tmp_path / "file" / "below") == "missing"
    assert file_kind(tmp_path) == "a folder"
    assert file_kind(_fifo(tmp_path)) == "a named pipe (FIFO)"
    assert file_kind("/dev/zero") == "a device"
    assert file_kind(tmp_path / "loop1") == "a symlink loop"


@pytest.mark.parametrize("reader", [read_limited, sha256_and_size], ids=["read_limited", "sha256_and_size"])
def test_readers_refuse_a_fifo_or_a_device_without_blocking(tmp_path: Path, reader: object) -> None:
    fifo = _fifo(tmp_path)
    for path in (fifo, Path("/dev/zero")):
        args = (path, 100) if reader is read_limited else (path,)
        outcome = _in_thread(reader, *args)
        assert isinstance(outcome, NotRegularFileError), outcome
        assert describe(outcome).endswith("not a regular file")


def test_read_limited_stops_past_its_limit(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 101)
    assert read_limited(tmp_path / "big", 101) == b"x" * 101
    with pytest.raises(FileTooLargeError) as info:
        read_limited(tmp_path / "big", 100)
    assert describe(info.value) == "is larger than 100 bytes"


def test_resolve_reports_a_symlink_loop_as_an_oserror(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError) as info:
        resolve(tmp_path / "a")
    assert describe(info.value).startswith("is a symlink loop")
    with pytest.raises(OSError):
        with open_regular(tmp_path / "a"):
            pass


def test_sha256_and_size_read_once(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_and_size(tmp_path / "f") == (hashlib.sha256(b"abc").hexdigest(), 3)


# -- data tables ---------------------------------------------------------------------------------------------------
DATA = "y,pred,group\n1,1,a\n0,0,b\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.csv.gz", DATA.encode(), "the data file is not a gzip file, although its name ends in .gz"),
        ("d.csv.xz", DATA.encode(), "the data file is not an xz file"),
        ("d.csv.zip", DATA.encode(), "the data file is not a zip file"),
        ("d.csv.zst", DATA.encode(), "the data file is not a zstandard file"),
        ("d.csv.bz2", DATA.encode(), "the data file is not a bzip2 file"),
        ("d.csv.gz", gzip.compress(DATA.encode())[:25], "cannot read the data file: Compressed file ended"),
        ("d.csv.xz", b"\xfd7zXZ\x00" + b"\x00" * 40, "cannot read the data file"),
        ("d.csv.zip", b"PK\x03\x04" + b"\x00" * 40, "cannot read the data file"),
        ("d.csv.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 40, "cannot read the data file|needs the zstandard package"),
        ("d.csv", b"y,pred\n\xff,1\n", "cannot read the data file"),
    ],
    ids=["gz", "xz", "zip", "zst", "bz2", "truncated-gz", "corrupt-xz", "corrupt-zip", "corrupt-zst", "not-utf8"],
)
def test_data_that_is_not_what_its_name_says_is_a_data_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(tmp_path / name)


def test_a_data_path_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    outcome = _in_thread(read_table, _fifo(tmp_path).rename(tmp_path / "d.csv"))
    assert isinstance(outcome, DataError) and "is a named pipe (FIFO), not a regular file" in str(outcome)


def test_real_compressed_data_still_reads(tmp_path: Path) -> None:
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(DATA.encode()))
    assert read_table(tmp_path / "d.csv.gz").shape == (2, 3)


def test_a_score_column_with_text_is_a_data_error_naming_the_value() -> None:
    frame = pd.DataFrame({"pred": [1, 0, 1], "s": ["0.2", "high", "0.9"]})
    with pytest.raises(DataError, match=r"score column 's' holds 1 value\(s\) that are not numbers, e.g. 'high' in data row 2"):
        PredictionsAdapter("pred", "s").predict(frame, 1)
    assert PredictionsAdapter("pred", "s").predict(frame.assign(s=[0.2, 0.5, 0.9]), 1).scores is not None
    assert PredictionsAdapter("pred", "s").predict(frame.assign(s=[True, False, True]), 1).scores is not None


# -- model descriptions ----------------------------------------------------------------------------------------------
GOOD = {
    "kind": "guardrail-torch-model",
    "architecture": "mlp",
    "classes": [0, 1],
    "features": ["x", "c"],
    "weights": "model.safetensors",
    "mlp": {"in_features": 3, "hidden": [4], "n_classes": 2},
    "encoder": {"numeric": ["x"], "means": [0.0], "stds": [1.0], "categorical": [["c", ["u", "v"]]]},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({}, None),
        ({"architecture": "rnn"}, "unknown architecture 'rnn'"),
        ({"classes": None}, "classes must be a list of at least two labels"),
        ({"classes": [0, 0]}, "classes must not repeat a label"),
        ({"features": "x"}, "features must be a list of column names"),
        ({"weights": "../../etc/passwd"}, "weights must name a .safetensors file inside the model folder"),
        ({"weights": "/dev/zero.safetensors"}, "weights must name a .safetensors file inside the model folder"),
        ({"mlp": None}, "mlp must hold in_features, hidden and n_classes"),
        ({"mlp": {"in_features": 3, "hidden": [-4], "n_classes": 2}}, "mlp.hidden[0] must be a positive integer, got -4"),
        ({"mlp": {"in_features": 3, "hidden": [True], "n_classes": 2}}, "mlp.hidden[0] must be a positive integer, got True"),
        ({"mlp": {"in_features": "3", "hidden": [4], "n_classes": 2}}, "mlp.in_features must be a positive integer, got '3'"),
        ({"mlp": {"in_features": 3, "hidden": [4], "n_classes": 3}}, "mlp.n_classes is 3, but 2 classes are named"),
        ({"mlp": {"in_features": 9, "hidden": [4], "n_classes": 2}}, "mlp.in_features is 9, but the encoder makes 3 input(s)"),
        ({"encoder": None}, "encoder must hold numeric, means, stds and categorical"),
        ({"encoder": {"numeric": ["x"], "means": [], "stds": [1.0], "categorical": []}}, "encoder.means must hold one finite number per numeric column"),
        ({"encoder": {"numeric": ["x"], "means": [0.0], "stds": [0.0], "categorical": []}}, "encoder.stds must not hold a zero"),
        ({"encoder": {"numeric": ["x"], "means": [0.0], "stds": [1.0], "categorical": [["c"]]}}, "encoder.categorical must be a list of [column, [levels]] pairs"),
    ],
)
def test_a_model_description_is_checked_key_by_key(change: dict[str, object], message: str | None) -> None:
    from guardrail.adapters.model_folder import description_problem

    description = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    problem = description_problem(description)
    if message is None:
        assert problem is None
    else:
        assert problem is not None and message in problem


def test_an_hf_description_needs_its_text_column_and_length() -> None:
    from guardrail.adapters.model_folder import HF_ARCHITECTURE, description_problem

    base = {"kind": "guardrail-torch-model", "architecture": HF_ARCHITECTURE, "classes": ["a", "b"], "features": ["t"]}
    assert description_problem({**base, "text_column": "t", "max_length": 64}) is None
    assert "text_column" in str(description_problem({**base, "max_length": 64}))
    assert "max_length must be a positive integer, got -1" in str(description_problem({**base, "text_column": "t", "max_length": -1}))


def test_a_model_description_nested_past_the_parser_is_a_model_error(tmp_path: Path) -> None:
    from guardrail.adapters.model_folder import read_model_description
    from guardrail.core.errors import ModelError

    (tmp_path / "guardrail-model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match=r"cannot read guardrail-model.json \(RecursionError"):
        read_model_description(tmp_path)
    (tmp_path / "guardrail-model.json").write_text(json.dumps({**GOOD, "mlp": {"in_features": 3, "hidden": [-1], "n_classes": 2}}))
    with pytest.raises(ModelError, match=r"guardrail-model.json: mlp.hidden\[0\] must be a positive integer"):
        read_model_description(tmp_path)


# -- verification --------------------------------------------------------------------------------------------------
def test_verify_never_opens_a_fifo_or_a_device(tmp_path: Path) -> None:
    from guardrail.core.types import FileDigest
    from guardrail.report.verify import _check

    for path in (_fifo(tmp_path), Path("/dev/zero")):
        check = _in_thread(_check, FileDigest(role="data", path=str(path), sha256="0" * 64, bytes=0), path)
        assert getattr(check, "status", None) == "missing", check
