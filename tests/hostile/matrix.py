"""The hostile-input matrix: every way a spec, policy, data file, model or run record can be
malformed or malicious, run through the CLI as a subprocess, each with the outcome it must have.

A case is a row of :data:`CASES`: an id, a category (``spec`` for spec and policy files and the
paths they name, ``data``, ``model``, ``record`` for run.json and the audit history), a setup
that writes its files into a fresh folder and says which command to run there, the documented
exit code and a substring of what the CLI must say. :func:`run_case` runs it and returns every
way the run fell short (:func:`problems`); for an error exit (3 or 4) the run must

* end within its time limit (a FIFO or ``/dev/zero`` must never hang it);
* print exactly one ``error:`` line on stderr, no traceback, no raw control character (an
  escape sequence in a file name or a column header is shown, never obeyed);
* leave the folder as it was: the previous run's reports untouched, nothing half-written,
  the audit history's rows unchanged (an ``approve`` that fails commits nothing);
* never run a payload: pickles, YAML tags, Hugging Face remote code and module strings all
  try to create the file ``CANARY`` in the case's folder, which must never appear.

Cases whose fix belongs in a file this matrix's owner does not own carry ``needs`` ("<file>:
<what>") and run as strict xfails. ``benchmarks/hostile_matrix.py`` prints the counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CANARY = "CANARY"
TIMEOUT_S = float(os.environ.get("GUARDRAIL_HOSTILE_TIMEOUT_S", "60"))
"""A case that has not exited by then hangs (a FIFO opened for reading waits for ever)."""
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What stderr must never hold (newlines separate lines; everything else is shown escaped)."""

DATA = (
    "y,pred,group,x,s\n"
    "1,1,a,0.1,0.9\n0,1,a,0.4,0.8\n1,0,a,0.3,0.2\n0,0,a,0.9,0.1\n"
    "1,1,b,0.2,0.7\n0,0,b,0.5,0.3\n1,0,b,0.6,0.4\n0,0,b,0.7,0.2\n"
)
POLICY = """\
schema_version: 1
kind: policy
name: tiny
rules:
  - id: DP
    metric: fairness.demographic_parity_difference
    op: le
    threshold: 0.5
    rationale: Selection rates must be close.
"""
PREDICTIONS = "{adapter: predictions, column: pred}"
FAIRNESS = "  - {id: fairness, use: fairness, params: {min_group_size: 2}}\n"
AUDIT = ("audit", "spec.yaml", "--quiet")
VALIDATE = ("validate", "spec.yaml")


def spec_text(
    *,
    model: str = PREDICTIONS,
    data: str = "data.csv",
    data_extra: str = "",
    audits: str = FAIRNESS,
    policies: str = "[policy.yaml]",
    report: str = "{out: out}",
    top: str = "",
) -> str:
    return (
        f"schema_version: 1\nkind: audit\nname: hostile\n{top}model: {model}\n"
        f"data: {{path: {data}, target: y, sensitive: [group]{data_extra}}}\n"
        f"audits:\n{audits}policies: {policies}\nreport: {report}\n"
    )


# -- the case table --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Invocation:
    """The command a case runs in its folder, and what it may change there itself."""

    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    may_change: frozenset[str] = frozenset()
    """Paths (relative to the case's folder) that the case itself removes or alters mid-run."""


@dataclass
class Context:
    """A case's folder and the templates shared by all cases (built once, on first use)."""

    root: Path
    templates: Templates

    @property
    def canary(self) -> Path:
        return self.root / CANARY


Setup = Callable[[Context], Invocation]


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    setup: Setup
    code: int | tuple[int, ...]
    expect: str
    """A substring of the one error line (exit 3 or 4), or of stdout (exit 0, 1 or 2)."""
    needs: str | None = None
    """Where the fix belongs when it is outside this matrix's files ("<file>: <what>"): a strict xfail."""
    slow: bool = False
    timeout_s: float | None = None
    """A shorter limit for a case known to hang until its fix lands (a strict xfail)."""
    after: Callable[[Path], list[str]] | None = None
    """Further checks on the case's folder once the run is over (problems found)."""

    @property
    def codes(self) -> tuple[int, ...]:
        return self.code if isinstance(self.code, tuple) else (self.code,)


class Templates:
    """Artefacts several cases start from, built once in ``where``."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self._prior: Path | None = None
        self._hf: Path | None = None

    def prior_out(self) -> Path:
        """The output folder of one passing audit (reports and a history with one run)."""
        if self._prior is None:
            root = self.where / "prior"
            root.mkdir(parents=True, exist_ok=True)
            write_base(root)
            done = cli(root, AUDIT, {}, TIMEOUT_S)
            assert done.returncode == 0, done.stderr
            self._prior = root / "out"
        return self._prior

    def hf_folder(self) -> Path:
        """A tiny Hugging Face BERT sequence classifier with a fast tokenizer (safetensors)."""
        if self._hf is None:
            import torch

            from guardrail.training.models import TinyBertConfig, build_tiny_bert

            torch.manual_seed(0)
            texts = [f"review {i} {'great' if i % 2 else 'poor'}" for i in range(16)]
            config = TinyBertConfig(
                vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_length=16
            )
            model, tokenizer = build_tiny_bert(texts, 2, config)
            folder = self.where / "hf"
            model.save_pretrained(folder, safe_serialization=True)
            tokenizer.save_pretrained(folder)
            self._hf = folder
        return self._hf


def write_base(root: Path, *, spec: str | None = None, data: str = DATA, prior: Templates | None = None) -> None:
    """The tiny predictions-adapter audit of ``tests/cli/test_exit_codes.py``; with ``prior``,
    its output folder already holds a passing run (reports and history) that must survive."""
    (root / "data.csv").write_text(data)
    (root / "policy.yaml").write_text(POLICY)
    (root / "spec.yaml").write_text(spec if spec is not None else spec_text())
    if prior is not None:
        shutil.copytree(prior.prior_out(), root / "out")


def base(ctx: Context, **spec: str) -> None:
    write_base(ctx.root, spec=spec_text(**spec), prior=ctx.templates)


# -- spec and policy files -------------------------------------------------------------------------------------------
def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: a few hundred bytes that expand to 9**levels values."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def bomb_in_spec(command: tuple[str, ...]) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, spec=spec_text() + alias_bomb(), prior=ctx.templates)
        return Invocation(command)

    return setup


def bomb_in_policy(ctx: Context) -> Invocation:
    write_base(ctx.root)
    (ctx.root / "policy.yaml").write_text(POLICY + "description: " + "\n" + alias_bomb())
    return Invocation(VALIDATE)


def bomb_in_extends(ctx: Context) -> Invocation:
    base(ctx)
    (ctx.root / "parent.yaml").write_text("schema_version: 1\nkind: policy\nname: parent\nrules: []\n" + alias_bomb())
    (ctx.root / "policy.yaml").write_text(POLICY.replace("name: tiny\n", "name: tiny\nextends: [parent.yaml]\n"))
    return Invocation(AUDIT)


def spec_appended(text: str, command: tuple[str, ...] = VALIDATE) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, spec=spec_text() + text, prior=ctx.templates if command is AUDIT else None)
        return Invocation(command)

    return setup


def spec_replaced(old: str, new: str) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, spec=spec_text().replace(old, new))
        return Invocation(VALIDATE)

    return setup


def spec_bytes(content: bytes, command: tuple[str, ...] = VALIDATE) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, prior=ctx.templates if command is AUDIT else None)
        (ctx.root / "spec.yaml").write_bytes(content)
        return Invocation(command)

    return setup


def policy_text(text: str) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root)
        (ctx.root / "policy.yaml").write_text(text)
        return Invocation(VALIDATE)

    return setup


def deep_block_mapping(levels: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + f"{'  ' * levels}leaf\n"


def special_spec(kind: str, command: str) -> Setup:
    """The spec path itself is a FIFO, ``/dev/zero``, a folder or a symlink loop."""

    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, prior=ctx.templates if command == "audit" else None)
        target = special(ctx.root, "special.yaml", kind)
        return Invocation((command, target))

    return setup


def special(root: Path, name: str, kind: str) -> str:
    """A path named ``name`` in ``root`` that is a FIFO, a folder or a symlink loop, or a device."""
    path = root / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        os.symlink(f"{name}.other", path)
        os.symlink(name, root / f"{name}.other")
    elif kind == "zero":
        return "/dev/zero"
    elif kind == "urandom":
        return "/dev/urandom"
    else:
        raise ValueError(kind)
    return name


def special_named(field_name: str, kind: str, name: str, command: tuple[str, ...] = VALIDATE) -> Setup:
    """A path the spec names (data, policy, model, report.out, report.history) is special."""

    def setup(ctx: Context) -> Invocation:
        target = special(ctx.root, name, kind)
        prior = ctx.templates if command is AUDIT else None
        if field_name == "policy":
            write_base(ctx.root, spec=spec_text(policies=f"[{target}]"), prior=prior)
        elif field_name == "extends":
            write_base(ctx.root, prior=prior)
            (ctx.root / "policy.yaml").write_text(POLICY.replace("name: tiny\n", f"name: tiny\nextends: [{target}]\n"))
        elif field_name == "data":
            write_base(ctx.root, spec=spec_text(data=target), prior=prior)
        elif field_name == "sklearn":
            write_base(ctx.root, spec=spec_text(model=f"{{adapter: sklearn, path: {target}}}"), prior=prior)
        elif field_name == "out":
            write_base(ctx.root, spec=spec_text(report=f"{{out: {target}}}"), prior=prior)
        elif field_name == "history":
            write_base(ctx.root, spec=spec_text(report=f"{{out: out, history: {target}}}"), prior=prior)
        else:
            raise ValueError(field_name)
        return Invocation(command)

    return setup


def report_setting(report: str, *extra: str) -> Setup:
    def setup(ctx: Context) -> Invocation:
        write_base(ctx.root, spec=spec_text(report=report), prior=ctx.templates)
        return Invocation((*AUDIT, *extra))

    return setup


def spec_as_report_name(ctx: Context) -> Invocation:
    """The spec is called summary.md and writes its reports beside itself: they would replace it."""
    write_base(ctx.root, spec=spec_text(report="{out: .}"))
    (ctx.root / "summary.md").write_text((ctx.root / "spec.yaml").read_text())
    return Invocation(("audit", "summary.md", "--quiet"))


# -- data ------------------------------------------------------------------------------------------------------------
def data_file(name: str, content: bytes | str, **spec: str) -> Setup:
    def setup(ctx: Context) -> Invocation:
        base(ctx, data=name, **spec)
        path = ctx.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return Invocation(AUDIT)

    return setup


def data_run(name: str, content: str, **spec: str) -> Setup:
    """A valid run (exit 0, 1 or 2): no --quiet, its verdict is on stdout."""

    def setup(ctx: Context) -> Invocation:
        base(ctx, data=name, **spec)
        (ctx.root / name).write_text(content)
        return Invocation(("audit", "spec.yaml"))

    return setup


def gzip_bytes(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode(), mtime=0)


def zip_bytes(members: dict[str, str]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


HOSTILE_CELL = "inc\nome\x1b]0;pwned\x07\x1b[2J\u202eevil"
"""A header cell with a newline, an OSC sequence that sets the terminal title, a screen clear and
a bidi override (quoted in the CSV, so the newline stays inside the cell)."""


def hostile_header(missing: str) -> Setup:
    """The header holds :data:`HOSTILE_CELL`; the spec names a column the data lacks, so the
    error lists the header."""

    def setup(ctx: Context) -> Invocation:
        if missing == "target":
            base(ctx)
            (ctx.root / "spec.yaml").write_text(spec_text().replace("target: y", "target: income"))
        else:
            base(ctx, model="{adapter: predictions, column: prediction}")
        header, rows = DATA.split("\n", 1)
        (ctx.root / "data.csv").write_text(f'{header},"{HOSTILE_CELL}"\n' + rows.replace("\n", ",1\n"))
        return Invocation(AUDIT)

    return setup


def hostile_file_name(ctx: Context) -> Invocation:
    """The data file's name holds an escape sequence; progress lines print it (no --quiet)."""
    name = "data\x1b]0;pwned\x07.csv"
    base(ctx, data=json.dumps(name))
    (ctx.root / name).write_text(DATA.replace("y,", "label,", 1))
    return Invocation(("audit", "spec.yaml"))


VANISH_PLUGIN = '''
import os
from pathlib import Path

from guardrail.auditors.base import AuditorParams


class VanishAuditor:
    """Removes the files named in GUARDRAIL_TEST_VANISH while the audit runs."""

    name = "vanish"
    extra = "none"
    Params = AuditorParams

    def __init__(self, params):
        self.params = params

    def run(self, ctx):
        for name in os.environ["GUARDRAIL_TEST_VANISH"].split(os.pathsep):
            Path(name).unlink()
        raise RuntimeError("removed the inputs mid-run")
'''


def vanishing(*names: str) -> Setup:
    """A third-party auditor removes ``names`` after the run read them (it then fails, exit 2)."""

    def setup(ctx: Context) -> Invocation:
        plugins = ctx.root / "plugins"
        info = plugins / "vanish_plugin-1.0.dist-info"
        info.mkdir(parents=True)
        (plugins / "vanish_plugin.py").write_text(VANISH_PLUGIN)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vanish-plugin\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[guardrail.auditors]\nvanish = vanish_plugin:VanishAuditor\n")
        base(ctx, audits=FAIRNESS + "  - {id: vanish, use: vanish}\n")
        env = {
            "PYTHONPATH": f"{plugins}{os.pathsep}{REPO}",
            "GUARDRAIL_TEST_VANISH": os.pathsep.join(str(ctx.root / name) for name in names),
        }
        return Invocation(("audit", "spec.yaml"), env=env, may_change=frozenset(names))

    return setup


def recorded_as_read(role: str, text: str) -> Callable[[Path], list[str]]:
    """The run's record holds the digest of the bytes it read, though the file is gone now."""

    def check(root: Path) -> list[str]:
        record = json.loads((root / "out" / "run.json").read_text())
        expected = hashlib.sha256(text.encode()).hexdigest()
        found = [f["sha256"] for f in record["provenance"]["files"] if f["role"] == role]
        return [] if expected in found else [f"run.json records {role} digests {found}, not {expected} (the bytes read)"]

    return check


# -- models ----------------------------------------------------------------------------------------------------------
class _OpenCanary:
    """Unpickling this calls ``open(target, "w")``: the file appears if a pickle is ever loaded."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


def evil_pickle(canary: Path, protocol: int) -> bytes:
    return pickle.dumps(_OpenCanary(str(canary)), protocol=protocol)


SKLEARN = "{{adapter: sklearn, path: {path}}}"


def sklearn_pickle(name: str, protocol: int) -> Setup:
    def setup(ctx: Context) -> Invocation:
        base(ctx, model=SKLEARN.format(path=name), data_extra=", features: [x]")
        (ctx.root / name).write_bytes(evil_pickle(ctx.canary, protocol))
        return Invocation(AUDIT)

    return setup


def torch_zip_archive(ctx: Context) -> Invocation:
    """torch's legacy format: a zip holding data.pkl, under the name of a skops file."""
    base(ctx, model=SKLEARN.format(path="model.skops"), data_extra=", features: [x]")
    with zipfile.ZipFile(ctx.root / "model.skops", "w") as archive:
        archive.writestr("archive/data.pkl", evil_pickle(ctx.canary, 2))
        archive.writestr("archive/version", "3\n")
    return Invocation(AUDIT)


def skops_untrusted(module: str, name: str) -> Setup:
    """A skops file (a zip holding schema.json, written here without skops) whose tree names
    ``module.name``: loading it would import and hand back that object."""

    def setup(ctx: Context) -> Invocation:
        base(ctx, model=SKLEARN.format(path="model.skops"), data_extra=", features: [x]")
        node = {"__class__": name, "__module__": module, "__loader__": "TypeNode", "__id__": 2}
        schema = {
            "__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {"hook": node},
            "key_types": {
                "__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "__id__": 3,
                "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 4}],
            },
            "__id__": 1, "protocol": 2, "_skops_version": "0.16.0",
        }
        with zipfile.ZipFile(ctx.root / "model.skops", "w") as archive:
            archive.writestr("schema.json", json.dumps(schema))
        return Invocation(AUDIT)

    return setup


def safetensors_bytes(header: dict[str, object], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def mlp_weights(sizes: tuple[int, ...] = (1, 2, 2)) -> bytes:
    """An MLP state dict (``0.weight``, ``0.bias``, ``2.weight``…) of zeros, written without torch."""
    header: dict[str, object] = {}
    offset = 0
    for i, (width, out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        for key, shape in ((f"{2 * i}.weight", [out, width]), (f"{2 * i}.bias", [out])):
            size = 4 * (shape[0] * (shape[1] if len(shape) > 1 else 1))
            header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
    return safetensors_bytes(header, b"\x00" * offset)


def mlp_description(**changes: object) -> dict[str, object]:
    description: dict[str, object] = {
        "kind": "guardrail-torch-model",
        "schema_version": 1,
        "architecture": "mlp",
        "classes": [0, 1],
        "features": ["x"],
        "target": "y",
        "weights": "model.safetensors",
        "mlp": {"in_features": 1, "hidden": [2], "n_classes": 2},
        "encoder": {"numeric": ["x"], "means": [0.0], "stds": [1.0], "categorical": []},
    }
    for key, value in changes.items():
        if value is None:
            description.pop(key, None)
        else:
            description[key] = value
    return description


def mlp_folder(
    *,
    description: dict[str, object] | str | None = None,
    weights: bytes | None = None,
    extra: Callable[[Path, Path], None] | None = None,
    quiet: bool = True,
) -> Setup:
    """A ``guardrail train`` MLP folder (``model/``), with its description or weights replaced."""

    def setup(ctx: Context) -> Invocation:
        base(ctx, model="{adapter: torch, path: model}")
        folder = ctx.root / "model"
        folder.mkdir()
        text = description if isinstance(description, str) else json.dumps(description or mlp_description())
        (folder / "guardrail-model.json").write_text(text)
        (folder / "model.safetensors").write_bytes(mlp_weights() if weights is None else weights)
        if extra is not None:
            extra(folder, ctx.canary)
        return Invocation(AUDIT if quiet else ("audit", "spec.yaml"))

    return setup


def _fifo_weights(folder: Path, canary: Path) -> None:
    (folder / "model.safetensors").unlink()
    os.mkfifo(folder / "model.safetensors")


def _pickle_beside(folder: Path, canary: Path) -> None:
    (folder / "pytorch_model.bin").write_bytes(evil_pickle(canary, 2))


def _pickle_as_weights(folder: Path, canary: Path) -> None:
    (folder / "model.safetensors").write_bytes(evil_pickle(canary, 4))


MODULE = "{{adapter: torch, module: '{module}', weights: net.safetensors{extra}}}"


def torch_module(module: str, extra: str = "", weights: bytes | None = None) -> Setup:
    def setup(ctx: Context) -> Invocation:
        base(ctx, model=MODULE.format(module=module, extra=extra.replace("CANARY", str(ctx.canary))), data_extra=", features: [x]")
        payload = mlp_weights() if weights is None else weights
        (ctx.root / "net.safetensors").write_bytes(payload if weights != b"pickle" else evil_pickle(ctx.canary, 4))
        return Invocation(AUDIT)

    return setup


def module_weights_pt(ctx: Context) -> Invocation:
    write_base(ctx.root, spec=spec_text(model=MODULE.format(module="net:Net", extra="").replace("net.safetensors", "net.pt"), data_extra=", features: [x]"))
    (ctx.root / "net.pt").write_bytes(evil_pickle(ctx.canary, 2))
    return Invocation(VALIDATE)


HF_DATA = "y,group,text\n" + "".join(f"{i % 2},{'ab'[i // 4]},review {i} {'great' if i % 2 else 'poor'}\n" for i in range(8))
REMOTE_CODE = f'open({CANARY!r}, "w").close()  # remote code ran\n'


def hf_folder(change: Callable[[Path, Path], None]) -> Setup:
    """A Hugging Face classifier folder (``hf/``) with ``change`` applied to it."""

    def setup(ctx: Context) -> Invocation:
        base(ctx, model="{adapter: torch, path: hf, text_column: text}")
        (ctx.root / "data.csv").write_text(HF_DATA)
        shutil.copytree(ctx.templates.hf_folder(), ctx.root / "hf")
        change(ctx.root / "hf", ctx.canary)
        return Invocation(AUDIT)

    return setup


def _auto_map(folder: Path, canary: Path) -> None:
    """Custom code, as a hub repository would ship it: config and tokenizer point at it."""
    (folder / "modeling_evil.py").write_text(REMOTE_CODE.replace(CANARY, str(canary)))
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="evil-bert",
        architectures=["EvilModel"],
        auto_map={"AutoConfig": "modeling_evil.EvilConfig", "AutoModelForSequenceClassification": "modeling_evil.EvilModel"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer["auto_map"] = {"AutoTokenizer": ["modeling_evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer))


def _pickle_weights_only(folder: Path, canary: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(evil_pickle(canary, 2))


def _hf_lying_header(folder: Path, canary: Path) -> None:
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": [4096, 4096], "data_offsets": [0, 16]}}, b"\0" * 16))


def _hf_fifo_tokenizer(folder: Path, canary: Path) -> None:
    (folder / "tokenizer.json").unlink()
    os.mkfifo(folder / "tokenizer.json")


def _hf_config_garbage(folder: Path, canary: Path) -> None:
    (folder / "config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")


# -- records: run.json and the audit history -------------------------------------------------------------------------
def record_file(command: str, content: Callable[[Path], str | bytes], *extra: str) -> Setup:
    """``guardrail <command> run.json`` on a run.json whose content is ``content(prior run.json)``."""

    def setup(ctx: Context) -> Invocation:
        base(ctx)
        record = ctx.root / "record" / "run.json"
        record.parent.mkdir()
        text = content(ctx.root / "out" / "run.json")
        record.write_bytes(text if isinstance(text, bytes) else text.encode())
        return Invocation((command, "record/run.json", *extra))

    return setup


def special_record(kind: str) -> Setup:
    def setup(ctx: Context) -> Invocation:
        base(ctx)
        return Invocation(("verify", special(ctx.root, "record.json", kind)))

    return setup


def deep_json(_prior: Path) -> str:
    return '{"schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"


def huge_number(_prior: Path) -> str:
    record = json.loads(_prior.read_text())
    record["results"][0]["duration_s"] = int("9" * 400)
    return json.dumps(record)


def long_digits(_prior: Path) -> str:
    return '{"schema_version": 1' + "0" * 5000 + "}"


def provenance_fifo(prior: Path) -> str:
    record = json.loads(prior.read_text())
    record["provenance"]["files"][0]["path"] = str(prior.parent.parent / "record" / "fifo")
    return json.dumps(record, ensure_ascii=False)


def verify_fifo_input(ctx: Context) -> Invocation:
    invocation = record_file("verify", provenance_fifo)(ctx)
    os.mkfifo(ctx.root / "record" / "fifo")
    return invocation


def history_edit(command: tuple[str, ...], *, keep_digest: bool = True, approve_first: bool = False) -> Setup:
    """The history's only run has its record replaced by other JSON (with a matching digest, or not)."""

    def setup(ctx: Context) -> Invocation:
        base(ctx)
        db = sqlite3.connect(ctx.root / "out" / "history.sqlite")
        try:
            (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
            if approve_first:
                db.execute(
                    "INSERT INTO approvals (run_id, approved_by, approved_at, note) VALUES (?, 'me', '2026-01-01T00:00:00+00:00', NULL)",
                    (run_id,),
                )
            text = json.dumps({"replaced": True})
            digest = hashlib.sha256(text.encode()).hexdigest() if keep_digest else "0" * 64
            db.execute("UPDATE runs SET record = ?, record_sha256 = ? WHERE run_id = ?", (text, digest, run_id))
            db.commit()
        finally:
            db.close()
        return Invocation(command)

    return setup


def history_garbage(ctx: Context) -> Invocation:
    base(ctx)
    (ctx.root / "out" / "history.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    return Invocation(("history", "out"))


# -- the table -------------------------------------------------------------------------------------------------------
ALIASES = "YAML anchors and aliases are not allowed in guardrail files"
REFUSED_PICKLE = "refusing to load"

CASES: tuple[Case, ...] = (
    # spec and policy files
    Case("alias-bomb-spec-validate", "spec", bomb_in_spec(VALIDATE), 3, f"spec.yaml:10: {ALIASES}"),
    Case("alias-bomb-spec-audit", "spec", bomb_in_spec(AUDIT), 3, ALIASES),
    Case("alias-bomb-policy", "spec", bomb_in_policy, 3, f"policy.yaml:11: {ALIASES}"),
    Case("alias-bomb-extended-policy", "spec", bomb_in_extends, 3, f"parent.yaml:5: {ALIASES}"),
    Case("one-anchor-and-alias", "spec", spec_appended("seed: &s 3\ndescription: *s\n"), 3, ALIASES),
    Case("merge-key-alias", "spec", spec_replaced("report: {out: out}", "x: &r {out: out}\nreport: {<<: *r}"), 3, ALIASES),
    Case("deep-flow-nesting-spec", "spec", spec_appended("description: " + "[" * 100_000 + "]" * 100_000 + "\n"), 3, "nested more than 32 levels"),
    Case("deep-block-nesting-policy", "spec", policy_text(POLICY + deep_block_mapping(300)), 3, "nested more than 32 levels"),
    Case("deep-nesting-spec-audit", "spec", spec_appended("description: " + "{a: " * 5000 + "}" * 5000 + "\n", AUDIT), 3, "nested more than 32 levels"),
    Case("huge-spec", "spec", spec_appended("# " + "x" * (2 << 20) + "\n"), 3, "is larger than 1 MiB"),
    Case("huge-policy", "spec", policy_text(POLICY + ("# " + "y" * 1000 + "\n") * 1100), 3, "is larger than 1 MiB"),
    Case("too-many-values", "spec", spec_appended("description: [" + "0," * 60_000 + "0]\n"), 3, "more than 50,000 values"),
    Case("binary-spec", "spec", spec_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))), 3, "not UTF-8 text"),
    Case("nul-in-spec", "spec", spec_bytes(spec_text().encode() + b"description: a\x00b\n"), 3, "is not allowed in YAML text"),
    Case("raw-escape-in-spec", "spec", spec_bytes(spec_text().encode() + b"description: \x1b]0;pwned\x07\n"), 3, "spec.yaml:10: malformed YAML: character '\\x1b' (U+001B) is not allowed"),
    Case("duplicate-top-level-key", "spec", spec_appended("name: twice\n"), 3, "duplicate key 'name'"),
    Case("duplicate-key-in-rule", "spec", policy_text(POLICY + "    threshold: 0.9\n"), 3, "policy.yaml:10: duplicate key 'threshold'"),
    Case("python-object-tag", "spec", spec_appended(f"description: !!python/object/apply:builtins.open [{CANARY}, w]\n"), 3, "unsupported YAML tag"),
    Case("python-name-tag", "spec", spec_appended("description: !!python/name:os.system\n"), 3, "unsupported YAML tag"),
    Case("integer-of-5000-digits", "spec", spec_appended("seed: " + "9" * 5000 + "\n"), 3, "cannot read the value"),
    Case("complex-key", "spec", spec_appended("? [a, b]\n: 1\n"), 3, "keys must be strings"),
    Case("empty-spec", "spec", spec_bytes(b"# nothing\n"), 3, "the file is empty"),
    Case("top-level-list", "spec", spec_bytes(b"- 1\n- 2\n"), 3, "expected a mapping at the top level"),
    Case("spec-is-fifo-validate", "spec", special_spec("fifo", "validate"), 3, "is a named pipe (FIFO)"),
    Case("spec-is-fifo-audit", "spec", special_spec("fifo", "audit"), 3, "is a named pipe (FIFO)"),
    Case("spec-is-dev-zero", "spec", special_spec("zero", "audit"), 3, "/dev/zero: cannot read the file: it is a device"),
    Case("spec-is-folder", "spec", special_spec("folder", "validate"), 3, "is a folder"),
    Case("spec-symlink-loop-audit", "spec", special_spec("loop", "audit"), 3, "symlink loop"),
    Case(
        "spec-symlink-loop-validate", "spec", special_spec("loop", "validate"), 3, "symlink loop",
    ),
    Case("policy-is-fifo", "spec", special_named("policy", "fifo", "p.yaml"), 3, "policies[0]: policy file is a named pipe (FIFO)"),
    Case("policy-is-dev-zero", "spec", special_named("policy", "zero", ""), 3, "policy file is a device"),
    Case("policy-symlink-loop", "spec", special_named("policy", "loop", "p.yaml"), 3, "policies[0]: 'p.yaml' is a symlink loop"),
    Case("extends-a-fifo", "spec", special_named("extends", "fifo", "p.yaml"), 3, "extends[0]: policy file is a named pipe"),
    Case("data-path-escapes-to-dev-zero", "spec", special_named("data", "zero", ""), 3, "data file is a device"),
    Case("extends-cycle", "spec", policy_text(POLICY.replace("name: tiny\n", "name: tiny\nextends: [policy.yaml]\n")), 3, "cycle"),
    Case("out-is-the-data-file", "spec", report_setting("{out: data.csv}"), 3, "the output path exists and is not a folder"),
    Case("out-is-dev-null", "spec", report_setting("{out: /dev/null}"), 3, "the output path exists and is not a folder"),
    Case("out-symlink-loop", "spec", special_named("out", "loop", "o", AUDIT), 3, "report.out: 'o' is a symlink loop"),
    Case("out-flag-is-the-data-file", "spec", report_setting("{out: out}", "--out", "data.csv"), 3, "the output path exists and is not a folder"),
    Case("reports-would-overwrite-the-spec", "spec", spec_as_report_name, 3, "would overwrite an input of this run"),
    Case("history-is-the-data-file", "spec", report_setting("{out: out, history: data.csv}"), 3, "is an input of this run"),
    Case("history-is-the-spec", "spec", report_setting("{out: out, history: spec.yaml}"), 3, "is an input of this run"),
    Case("history-is-a-report", "spec", report_setting("{out: out, history: out/run.json}"), 3, "is the run.json report this run writes"),
    Case("history-flag-is-the-policy", "spec", report_setting("{out: out}", "--history", "policy.yaml"), 3, "--history: report.history policy.yaml is an input"),
    Case("history-is-a-fifo", "spec", special_named("history", "fifo", "h.db", AUDIT), 3, "is a named pipe (FIFO), not a database file"),
    # data
    Case("data-empty", "data", data_file("d.csv", ""), 3, "No columns to parse"),
    Case("data-header-only", "data", data_file("d.csv", "y,pred,group\n"), 3, "the data file has no rows"),
    Case("data-one-group", "data", data_run("d.csv", DATA.replace(",b,", ",a,")), 2, "INCOMPLETE"),
    Case("data-nan-target", "data", data_file("d.csv", DATA.replace("\n1,1,a", "\n,1,a", 1)), 3, "target column 'y' has 1 missing value"),
    Case("data-nan-prediction", "data", data_file("d.csv", DATA.replace("\n1,1,a", "\n1,,a", 1)), 3, "prediction column 'pred' has 1 missing"),
    Case("data-nan-sensitive", "data", data_file("d.csv", DATA.replace("\n1,1,a", "\n1,1,", 1)), 3, "missing value"),
    Case("data-text-in-score-column", "data", data_file("d.csv", DATA.replace("0.9\n", "high\n", 1), model="{adapter: predictions, column: pred, score_column: s}"), 3, "score column 's' holds 1 value(s) that are not numbers"),
    Case("data-score-out-of-range", "data", data_file("d.csv", DATA.replace("0.9\n", "inf\n", 1), model="{adapter: predictions, column: pred, score_column: s}"), 3, "must hold probabilities in [0, 1]"),
    Case("data-truncated-gz", "data", data_file("d.csv.gz", gzip_bytes(DATA)[:30]), 3, "cannot read the data file"),
    Case("data-gz-that-is-not", "data", data_file("d.csv.gz", DATA), 3, "not a gzip file"),
    Case("data-xz-that-is-not", "data", data_file("d.csv.xz", DATA), 3, "not an xz file"),
    Case("data-zip-that-is-not", "data", data_file("d.csv.zip", DATA), 3, "not a zip file"),
    Case("data-zst-that-is-not", "data", data_file("d.csv.zst", DATA), 3, "not a zstandard file"),
    Case("data-bz2-that-is-not", "data", data_file("d.csv.bz2", DATA), 3, "not a bzip2 file"),
    Case("data-corrupt-xz", "data", data_file("d.csv.xz", b"\xfd7zXZ\x00" + b"\x00" * 64), 3, "cannot read the data file"),
    Case("data-corrupt-zip", "data", data_file("d.csv.zip", b"PK\x03\x04" + b"\x00" * 64), 3, "cannot read the data file"),
    Case("data-zip-of-two-files", "data", data_file("d.csv.zip", zip_bytes({"a.csv": DATA, "b.csv": DATA})), 3, "cannot read the data file"),
    Case("data-fifo", "data", special_named("data", "fifo", "d.csv", AUDIT), 3, "data.path: data file is a named pipe (FIFO)"),
    Case("data-symlink-loop", "data", special_named("data", "loop", "d.csv", AUDIT), 3, "data.path: 'd.csv' is a symlink loop"),
    Case("data-folder", "data", special_named("data", "folder", "d.csv", AUDIT), 3, "the data folder holds no data file"),
    Case("data-not-utf8", "data", data_file("d.csv", b"y,pred,group\n\xff\xfe,1,a\n"), 3, "cannot read the data file"),
    Case("data-ragged-rows", "data", data_file("d.csv", DATA + "1,1,a,0.1,0.2,extra,more\n"), 3, "cannot read the data file"),
    Case("data-unsupported-type", "data", data_file("d.xlsx", DATA), 3, "unsupported data file type .xlsx"),
    Case("data-header-escapes-target", "data", hostile_header("target"), 3, "available columns: y, pred, group, x, s, inc\\nome\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil"),
    Case("data-header-escapes-prediction", "data", hostile_header("prediction"), 3, "model.column 'prediction' is not a column"),
    Case(
        "data-file-name-escapes-progress", "data", hostile_file_name, 3, "data.target names column 'y'",
    ),
    Case("data-vanishes-mid-run", "data", vanishing("data.csv"), 2, "audit 'vanish' failed", after=recorded_as_read("data", DATA)),
    Case("policy-vanishes-mid-run", "data", vanishing("policy.yaml"), 2, "audit 'vanish' failed", after=recorded_as_read("policy", POLICY)),
    # models: pickles under every name, unsafe skops, lying safetensors, torch .bin, HF folders, module strings
    *(
        Case(f"pickle-as-{suffix.lstrip('.') or 'no-suffix'}", "model", sklearn_pickle(f"model{suffix}", protocol), 3, REFUSED_PICKLE)
        for suffix, protocol in (
            (".pkl", 0), (".pickle", 1), (".joblib", 2), (".jbl", 3), (".cloudpickle", 4), (".dill", 5),
            (".pt", 2), (".pth", 4), (".bin", 5), (".skops", 4), (".safetensors", 5), ("", 3),
        )
    ),
    Case("pickle-text-protocol-as-skops", "model", sklearn_pickle("model.skops", 0), 3, "is not a readable skops file", slow=True),
    Case("torch-pickle-archive-as-skops", "model", torch_zip_archive, 3, "torch pickle archive"),
    Case("skops-with-os-system", "model", skops_untrusted("posix", "system"), 3, "not trusted by default: posix.system", slow=True),
    Case("skops-with-popen", "model", skops_untrusted("subprocess", "Popen"), 3, "not trusted by default: subprocess.Popen", slow=True),
    Case("skops-with-builtins-eval", "model", skops_untrusted("builtins", "eval"), 3, "not trusted by default: builtins.eval", slow=True),
    Case("sklearn-model-is-fifo", "model", special_named("sklearn", "fifo", "m.skops", AUDIT), 3, "model file is a named pipe (FIFO)"),
    Case("sklearn-model-symlink-loop", "model", special_named("sklearn", "loop", "m.skops", AUDIT), 3, "model.path: 'm.skops' is a symlink loop"),
    Case("sklearn-model-is-dev-urandom", "model", special_named("sklearn", "urandom", "", AUDIT), 3, "model file is a device"),
    Case("module-weights-pt", "model", module_weights_pt, 3, "weights must be a .safetensors file"),
    Case("module-os-system", "model", torch_module("os:system", f", kwargs: {{command: 'touch {CANARY}'}}"), 3, "os:system is not a torch.nn.Module class", slow=True),
    Case("module-builtins-open", "model", torch_module("builtins:open", ", kwargs: {file: CANARY, mode: w}"), 3, "builtins:open is not a torch.nn.Module class", slow=True),
    Case("module-subprocess-popen", "model", torch_module("subprocess:Popen", f", kwargs: {{args: [touch, {CANARY}]}}"), 3, "subprocess:Popen is not a torch.nn.Module class", slow=True),
    Case("module-pickle-as-safetensors", "model", torch_module("torch.nn:Linear", weights=b"pickle"), 3, REFUSED_PICKLE, slow=True),
    Case("module-safetensors-header-too-large", "model", torch_module("torch.nn:Linear", ", kwargs: {in_features: 1, out_features: 2}", weights=struct.pack("<Q", 1 << 62) + b"{}"), 3, "cannot read the weights", slow=True),
    Case("mlp-control", "model", mlp_folder(quiet=False), (0, 1), "hostile: ", slow=True),
    Case("mlp-pickle-bin-beside", "model", mlp_folder(extra=_pickle_beside), 3, REFUSED_PICKLE, slow=True),
    Case("mlp-weights-are-a-pickle", "model", mlp_folder(extra=_pickle_as_weights), 3, "cannot load the MLP weights", slow=True),
    Case("mlp-weights-fifo", "model", mlp_folder(extra=_fifo_weights), 3, "'model.safetensors' in the model folder is a named pipe (FIFO)", slow=True),
    Case("mlp-header-length-lies", "model", mlp_folder(weights=struct.pack("<Q", 1 << 62) + b"{}"), 3, "cannot load the MLP weights", slow=True),
    Case("mlp-header-offsets-past-end", "model", mlp_folder(weights=mlp_weights()[:-12]), 3, "cannot load the MLP weights", slow=True),
    Case("mlp-header-shape-lies", "model", mlp_folder(weights=safetensors_bytes({"0.weight": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 8]}}, b"\0" * 8)), 3, "cannot load the MLP weights", slow=True),
    Case("mlp-description-without-mlp", "model", mlp_folder(description=mlp_description(mlp=None)), 3, "guardrail-model.json: mlp must hold", slow=True),
    Case("mlp-description-negative-size", "model", mlp_folder(description=mlp_description(mlp={"in_features": 1, "hidden": [-3], "n_classes": 2})), 3, "mlp.hidden[0] must be a positive integer, got -3", slow=True),
    Case("mlp-description-huge-size", "model", mlp_folder(description=mlp_description(mlp={"in_features": 1, "hidden": [10**9], "n_classes": 2})), 3, "do not match the sizes in guardrail-model.json", slow=True),
    Case("mlp-description-without-classes", "model", mlp_folder(description=mlp_description(classes=None)), 3, "classes must be a list", slow=True),
    Case("mlp-weights-outside-folder", "model", mlp_folder(description=mlp_description(weights="../data.csv")), 3, "weights must name a .safetensors file inside the model folder", slow=True),
    Case("mlp-description-deep-json", "model", mlp_folder(description="[" * 100_000 + "]" * 100_000), 3, "cannot read guardrail-model.json (RecursionError", slow=True),
    Case("mlp-description-not-json", "model", mlp_folder(description="\x1b]0;pwned\x07 not json"), 3, "cannot read guardrail-model.json", slow=True),
    Case("hf-auto-map-remote-code", "model", hf_folder(_auto_map), 3, "cannot load the Hugging Face model", slow=True),
    Case("hf-pickle-weights-only", "model", hf_folder(_pickle_weights_only), 3, REFUSED_PICKLE, slow=True),
    Case("hf-safetensors-lying-header", "model", hf_folder(_hf_lying_header), 3, "cannot load the Hugging Face model", slow=True),
    Case("hf-tokenizer-fifo", "model", hf_folder(_hf_fifo_tokenizer), 3, "'tokenizer.json' in the model folder is a named pipe", slow=True),
    Case("hf-config-deeply-nested", "model", hf_folder(_hf_config_garbage), 3, "cannot load the Hugging Face model", slow=True),
    # records: run.json and the audit history
    Case("report-deep-run-json", "record", record_file("report", deep_json, "--out", "rendered"), 3, "record/run.json"),
    Case("verify-deep-run-json", "record", record_file("verify", deep_json), 3, "record/run.json"),
    Case("verify-400-digit-number", "record", record_file("verify", huge_number), 3, "record/run.json"),
    Case(
        "verify-run-json-is-fifo", "record", special_record("fifo"), 3, "record.json", timeout_s=6,
    ),
    Case("report-5000-digit-number", "record", record_file("report", long_digits, "--out", "rendered"), 3, "not valid JSON"),
    Case("report-binary-run-json", "record", record_file("report", lambda _p: b"\xff\xfe\x00garbage", "--out", "rendered"), 3, "not UTF-8"),
    Case("verify-input-became-fifo", "record", verify_fifo_input, 1, "missing "),
    Case("history-record-replaced-diff", "record", history_edit(("diff", "latest", "latest", "--history", "out")), 3, "out/history.sqlite"),
    Case("history-record-replaced-approve", "record", history_edit(("approve", "latest", "--history", "out", "--by", "me")), 3, "out/history.sqlite"),
    Case("history-record-tampered-approve", "record", history_edit(("approve", "latest", "--history", "out", "--by", "me"), keep_digest=False), 3, "does not match its SHA-256"),
    Case("history-approved-record-replaced-audit", "record", history_edit(AUDIT, approve_first=True), 3, "out/history.sqlite"),
    Case("history-not-a-database", "record", history_garbage, 3, "not a readable SQLite database"),
)


# -- running a case --------------------------------------------------------------------------------------------------
def cli(root: Path, args: tuple[str, ...], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardrail", *args],
        cwd=root,
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),  # this tree's guardrail
            **env,
        },
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int | None
    """The exit code, or None if the run hung past its time limit."""
    seconds: float
    problems: tuple[str, ...]
    stderr: str = ""


def run_case(case: Case, root: Path, templates: Templates) -> Outcome:
    """Set the case up in ``root`` (an empty folder), run it, and list what fell short."""
    root.mkdir(parents=True, exist_ok=True)
    invocation = case.setup(Context(root, templates))
    before = snapshot(root, invocation.may_change)
    history_before = histories(root)
    timeout = min(case.timeout_s or TIMEOUT_S, TIMEOUT_S)
    started = time.monotonic()
    try:
        done = cli(root, invocation.args, invocation.env, timeout)
    except subprocess.TimeoutExpired:
        seconds = time.monotonic() - started
        return Outcome(case, None, seconds, (f"hung: no exit within {timeout:.0f} s",) + canary_problems(root))
    seconds = time.monotonic() - started
    found = list(problems(case, done))
    if case.codes[0] >= 3:
        if snapshot(root, invocation.may_change) != before:
            found.append(f"files changed: {describe_change(before, snapshot(root, invocation.may_change))}")
        if histories(root) != history_before:
            found.append("the audit history changed")
    if case.after is not None:
        found += case.after(root)
    found += canary_problems(root)
    return Outcome(case, done.returncode, seconds, tuple(found), done.stderr)


def problems(case: Case, done: subprocess.CompletedProcess[str]) -> list[str]:
    found = []
    if done.returncode not in case.codes:
        found.append(f"exit {done.returncode}, expected {' or '.join(map(str, case.codes))}")
    if "Traceback" in done.stderr:
        found.append("a traceback on stderr")
    raw = RAW_CONTROL.search(done.stderr)
    if raw:
        found.append(f"a raw control character {raw.group()!r} on stderr")
    if case.codes[0] >= 3:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("guardrail: ")]
        if len(lines) != 1 or not lines[0].startswith("error: "):
            found.append(f"{len(lines)} lines besides progress on stderr, expected one 'error:' line: {done.stderr[-600:]!r}")
        elif case.expect not in lines[0]:
            found.append(f"the error line lacks {case.expect!r}: {lines[0][:600]!r}")
    elif case.expect not in done.stdout:
        found.append(f"stdout lacks {case.expect!r}: {done.stdout[-400:]!r} {done.stderr[-400:]!r}")
    return found


def canary_problems(root: Path) -> tuple[str, ...]:
    for folder, dirs, files in os.walk(root):
        if CANARY in dirs or CANARY in files:
            return (f"a payload ran: {Path(folder, CANARY)} exists",)
    return ()


Snapshot = dict[str, str]


def snapshot(root: Path, ignore: frozenset[str] = frozenset()) -> Snapshot:
    """Every path under ``root`` with what it is (a regular file by its SHA-256); histories
    (compared by their rows instead) and the paths in ``ignore`` are left out. Links are
    recorded, never followed, and FIFOs never opened."""
    found: Snapshot = {}
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if relative in ignore or ".sqlite" in name:
                continue
            info = path.lstat()
            if path.is_symlink():
                found[relative] = f"link to {os.readlink(path)}"
            elif path.is_dir():
                found[relative] = "folder"
            elif path.is_file() and info.st_size < (64 << 20):
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[relative] = f"special {info.st_mode:o} {info.st_size}"
    return found


def describe_change(before: Snapshot, after: Snapshot) -> str:
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    return f"added {added}, removed {removed}, changed {changed}"


def histories(root: Path) -> dict[str, list[str]]:
    """The rows of every audit history under ``root`` (or its bytes, if it is no database)."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.sqlite")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            db = sqlite3.connect(path)
            try:
                found[str(path)] = list(db.iterdump())
            finally:
                db.close()
        except sqlite3.DatabaseError:
            found[str(path)] = [hashlib.sha256(path.read_bytes()).hexdigest()]
    return found


def summary(outcomes: list[Outcome]) -> str:
    """Counts by category and outcome, then every case that fell short (or is expected to)."""
    categories = sorted({o.case.category for o in outcomes}, key=["spec", "data", "model", "record"].index)
    lines = [f"{'category':<9} {'cases':>5} {'exit 0-1':>8} {'exit 2':>6} {'exit 3':>6} {'exit 4':>6} {'hung':>4}  {'as documented':>13} {'xfail':>5}"]

    def row(name: str, group: list[Outcome]) -> str:
        codes = [o.code for o in group]
        ok = sum(1 for o in group if not o.problems)
        xfail = sum(1 for o in group if o.case.needs)
        return (
            f"{name:<9} {len(group):>5} {sum(c in (0, 1) for c in codes):>8} {codes.count(2):>6} {codes.count(3):>6} "
            f"{codes.count(4):>6} {codes.count(None):>4}  {ok:>13} {xfail:>5}"
        )

    for category in categories:
        lines.append(row(category, [o for o in outcomes if o.case.category == category]))
    lines.append(row("all", outcomes))
    for o in outcomes:
        if o.problems or o.case.needs:
            status = "xfail" if o.case.needs and o.problems else ("XPASS" if o.case.needs else "FAIL")
            lines.append(f"  {status:<5} {o.case.id}: {'; '.join(o.problems) or 'as documented'}")
            if o.case.needs:
                lines.append(f"        needs {o.case.needs}")
    return "\n".join(lines)
