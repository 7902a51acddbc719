"""The ``guardrail`` command line: the only place that prints verdicts and exits.

Exit codes (see :class:`guardrail.core.exitcodes.ExitCode`): 0 pass, 1 policy violation or
blocking inconclusive, 2 evaluation incomplete, 3 usage or input error, 4 internal error.
Heavy libraries are imported inside the commands, so ``guardrail --help`` stays fast.

One module (about 500 lines: the argument parser and a short handler for each of the 11
commands) so that every command's options sit beside what it does; the work is in
:mod:`guardrail.run`, the views in :mod:`guardrail.report` and :mod:`guardrail.history`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from guardrail.core.errors import GuardrailError, UsageError
from guardrail.core.exitcodes import ExitCode
from guardrail.core.version import VERSION as __version__
from guardrail.core.vocab import FORMAT_NAMES

if TYPE_CHECKING:
    from guardrail.auditors.registry import AuditorRegistry
    from guardrail.core.types import RunRecord, Severity
    from guardrail.scale.progress import TerminalProgress

WHERE_HELP = "the history database, a report folder holding history.sqlite, or an audit spec (its report.history)"
INTERRUPTED = 130  # the shell's convention for SIGINT; not a guardrail verdict
INTERNAL_ERROR = "internal error ({kind}: {message}); this is a bug in guardrail, please report it with the command you ran"


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; guardrail reserves 2 for incomplete evaluations."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, where=self.prog, hint=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="guardrail",
        description="Responsible-AI audits with policy-checked reports.",
        epilog="exit codes: 0 pass, 1 policy violation, 2 evaluation incomplete (an audit failed, evidence is missing, "
        "or no blocking rule was checked), 3 usage or input error, 4 internal error",
    )
    parser.add_argument("--version", action="version", version=f"guardrail {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    audit = commands.add_parser("audit", help="run the audits of a spec, check its policies, write the reports")
    audit.add_argument("spec", type=Path, help="audit spec (YAML, kind: audit)")
    audit.add_argument("--out", type=Path, help="output folder (default: the spec's report.out)")
    audit.add_argument(
        "--format", dest="formats", action="append", choices=FORMAT_NAMES,
        help="report format to write; repeat for several (default: the spec's report.formats)",
    )
    audit.add_argument("--fail-on", choices=("deny", "warn"), default="deny", help="lowest severity that fails the run")
    audit.add_argument(
        "--no-gate", action="store_true",
        help="measure without a gate: no policy decides the run and every output says so (exit 0 unless an audit "
        "fails); without it, a run in which no blocking rule was checked exits 2",
    )
    audit.add_argument(
        "--engine", choices=("auto", "memory", "stream", "ray"),
        help="how the rows are read: in memory, streamed in batches on this machine, or scored on a Ray cluster "
        "(default: the spec's engine.kind, auto); every engine gives the same group metrics, and audits that "
        "read rows read a stratified sample when streaming",
    )
    audit.add_argument("--quiet", action="store_true", help="print nothing but errors")
    recording = audit.add_mutually_exclusive_group()
    recording.add_argument(
        "--history", type=Path, metavar="PATH",
        help="audit history database to record the run in (default: the spec's report.history, "
        "history.sqlite in the output folder)",
    )
    recording.add_argument("--no-history", action="store_true", help="record nothing in the audit history")

    train = commands.add_parser(
        "train", help="train the model of a spec's train: section (DP-SGD with a privacy ledger when configured)"
    )
    train.add_argument("spec", type=Path, help="audit spec with a train: section")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in train.out")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")

    federate = commands.add_parser(
        "federate",
        help="train the spec's federate: section across simulated hospital nodes on Flower (DP-SGD per hospital)",
    )
    federate.add_argument("spec", type=Path, help="audit spec with a federate: section")
    federate.add_argument("--resume", action="store_true", help="continue from the checkpoint in federate.out")
    federate.add_argument(
        "--engine", choices=("simulation", "deployment"), default="simulation",
        help="Flower engine: simulation (Ray, one machine) or deployment (SuperLink + SuperNodes, here on localhost)",
    )
    federate.add_argument(
        "--plan", type=Path, metavar="DIR",
        help="deployment across machines: write the Flower app and connection into DIR and print the commands "
        "for the server and each hospital (runs nothing)",
    )
    federate.add_argument("--host", help="with --plan: the name the hospitals use for the server")
    federate.add_argument("--port", type=int, default=8000, help="with --plan: the SuperLink's port (default 8000)")
    federate.add_argument("--insecure", action="store_true", help="with --plan: no TLS (trials on one machine only)")
    federate.add_argument(
        "--collect", action="store_true",
        help="after a deployment across machines finished: write the output folder from the server's result",
    )
    federate.add_argument("--quiet", action="store_true", help="print nothing but errors")

    validate = commands.add_parser("validate", help="check specs and policy files without running anything")
    validate.add_argument("files", type=Path, nargs="+", help="audit specs or policy files")
    validate.add_argument("--quiet", action="store_true")

    report = commands.add_parser("report", help="re-render reports from a run.json (imports no ML library)")
    report.add_argument("record", type=Path, help="run.json written by `guardrail audit`")
    report.add_argument("--format", dest="formats", action="append", choices=FORMAT_NAMES, help="default: html")
    report.add_argument("--out", type=Path, help="output folder (default: the folder of run.json)")
    report.add_argument("--fail-on", choices=("deny", "warn"), default="deny")
    report.add_argument("--quiet", action="store_true")

    verify = commands.add_parser(
        "verify", help="recompute the SHA-256 of every file a run.json records; exit 1 if any changed"
    )
    verify.add_argument("record", type=Path, help="run.json written by `guardrail audit`")
    verify.add_argument("--quiet", action="store_true")

    history = commands.add_parser("history", help="list the runs recorded in an audit history, newest first")
    history.add_argument("where", type=Path, help=WHERE_HELP)
    history.add_argument("--name", help="only runs of this spec name")
    history.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20; 0 for all)")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")

    diff = commands.add_parser("diff", help="compare two runs: metrics with intervals on each change, and rule outcomes")
    diff.add_argument("before", help="run.json path, or a run id (prefix), 'latest' or 'approved' in --history")
    diff.add_argument("after", help="the run to compare with BEFORE, given the same way")
    diff.add_argument("--history", type=Path, metavar="WHERE", help=WHERE_HELP)
    diff.add_argument("--all", action="store_true", help="show unchanged metrics too")
    diff.add_argument("--json", action="store_true", help="print JSON instead of a table")
    diff.add_argument(
        "--fail-on-worse", action="store_true",
        help="exit 1 when a directed metric got worse beyond its interval (a regression gate for CI)",
    )

    approve = commands.add_parser(
        "approve", help="mark a recorded run as the approved baseline that later runs must not regress from"
    )
    approve.add_argument("run", help="run id (or a unique prefix, or 'latest')")
    approve.add_argument("--history", type=Path, metavar="WHERE", required=True, help=WHERE_HELP)
    approve.add_argument("--by", required=True, help="who approves (recorded with the approval)")
    approve.add_argument("--note", help="why, e.g. a ticket or review reference")

    commands.add_parser("list", help="list auditors, report formats and the policy packs shipped with guardrail")

    schema = commands.add_parser("schema", help="print the JSON Schema of a spec or policy file")
    schema.add_argument("kind", choices=("audit", "policy"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``guardrail`` console script; returns (and exits with) the exit code.

    Ctrl-C (SIGINT) and SIGTERM (what CI sends on cancel or timeout) interrupt the command
    cleanly: staged files are removed, nothing half-written stays, one line goes to stderr
    and the exit code is 128 + the signal's number (130, 143).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    code: int
    restore = _terminate_like_interrupt()
    try:
        try:
            args = build_parser().parse_args(args_list)
            code = _dispatch(args, args_list)
        except GuardrailError as exc:
            for problem in exc.problems:  # every problem found in the input, one line each
                _err(f"error: {problem}")
            code = exc.exit_code
        except Exception as exc:  # the last line of defence: one readable line, no traceback
            _err("error: " + INTERNAL_ERROR.format(kind=type(exc).__name__, message=exc))
            code = ExitCode.INTERNAL
    except KeyboardInterrupt as exc:  # also one that lands while an error is being reported
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
        _err(f"interrupted ({signal.Signals(signum).name})")
        code = 128 + signum
    finally:
        restore()
    if argv is None:
        sys.exit(int(code))
    return int(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt: every
    ``finally`` and cleanup runs, and no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate_like_interrupt() -> Callable[[], None]:
    """Turn SIGTERM into :class:`Terminated` for the command; returns what restores the handler.

    Only the first SIGTERM raises: a second one while the first is being cleaned up is
    ignored, so the cleanup finishes. Only the main thread can install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    fired = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return restore


def _dispatch(args: argparse.Namespace, argv: list[str]) -> ExitCode:
    if args.command == "audit":
        return _audit(args, argv)
    if args.command == "validate":
        return _validate(args)
    if args.command == "train":
        return _train(args)
    if args.command == "federate":
        return _federate(args)
    if args.command == "report":
        return _report(args)
    if args.command == "list":
        return _list()
    if args.command == "verify":
        return _verify(args)
    if args.command == "history":
        return _history(args)
    if args.command == "diff":
        return _diff(args)
    if args.command == "approve":
        return _approve(args)
    return _schema(args.kind)


def _scan_progress() -> TerminalProgress | None:
    """The progress line of a streaming pass, on a terminal only (never in CI logs or pipes)."""
    if os.environ.get("CI") or not sys.stderr.isatty():
        return None
    from guardrail.scale.progress import terminal_progress

    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return terminal_progress(write)


def _audit(args: argparse.Namespace, argv: list[str]) -> ExitCode:
    from guardrail.core.types import Severity
    from guardrail.run.audit import run

    progress = None if args.quiet else (lambda message: _err(f"guardrail: {message}"))
    command = "guardrail " + " ".join(_quote(a) for a in argv)
    history = False if args.no_history else args.history
    line = None if args.quiet else _scan_progress()
    try:
        audited = run(
            args.spec, out=args.out, history=history, command=command, progress=progress, gated=not args.no_gate,
            engine=args.engine, scan_progress=line,
        )
    finally:
        if line is not None:
            line.close()  # a pass stopped by an error leaves its line open
    fail_on = Severity(args.fail_on)
    published = audited.publish(args.formats, fail_on=fail_on)
    code = published.record.exit_code(fail_on)
    if not args.quiet:
        _out(verdict_table(published.record, code, fail_on))
        _out(f"reports: {', '.join(_display(p) for p in published.reports.values())}")
        if published.history_path is not None:
            _out(f"history: run recorded in {_display(published.history_path)}")
    return code


def _train(args: argparse.Namespace) -> ExitCode:
    from guardrail.run.train import train

    progress = None if args.quiet else (lambda message: _err(f"guardrail: {message}"))
    run = train(args.spec, resume=args.resume, progress=progress)
    if not args.quiet:
        _out(run.summary())
    return ExitCode.OK


def _federate(args: argparse.Namespace) -> ExitCode:
    from guardrail.run.federate import federate

    progress = None if args.quiet else (lambda message: _err(f"guardrail: {message}"))
    if (args.plan is None) and (args.host or args.insecure):
        raise UsageError("--host and --insecure apply to --plan", hint="add --plan DIR, or drop them")
    if args.plan is not None:
        from guardrail.run.deploy import deployment_plan

        plan = deployment_plan(
            args.spec, args.plan, host=args.host, port=args.port, insecure=args.insecure, resume=args.resume,
            progress=progress,
        )
        if not args.quiet:
            _out(plan.text())
        return ExitCode.OK
    if args.collect:
        from guardrail.run.deploy import collect_deployment

        run = collect_deployment(args.spec, progress=progress)
    elif args.engine == "deployment":
        from guardrail.run.deploy import federate_deployment

        run = federate_deployment(args.spec, resume=args.resume, progress=progress)
    else:
        run = federate(args.spec, resume=args.resume, progress=progress)
    if not args.quiet:
        _out(run.summary())
    return ExitCode.OK


def verdict_table(record: RunRecord, code: ExitCode, fail_on: Severity) -> str:
    """The short verdict table printed after an audit: the verdict and why, then one row per outcome."""
    from guardrail.core.verdict import display_status
    from guardrail.policy.sentences import fmt

    verdict = record.judged(fail_on)
    lines = [f"{record.name}: {verdict.word} (exit {int(code)}): {verdict.sentence}"]
    for result in record.results:
        if result.error is not None:
            lines.append(f"  audit {result.audit_id!r} failed: {result.error.type}: {result.error.message}")
    rows = [("rule", "severity", "status", "metric", "observed", "interval")]
    for o in record.verdict.outcomes:
        observed = "—" if o.observed is None else fmt(o.observed)
        interval = "" if o.ci is None else f"[{fmt(o.ci.low)}, {fmt(o.ci.high)}] {fmt(o.ci.level * 100)}%"
        rows.append((o.rule_id, o.severity.value, display_status(o, fail_on), o.metric, observed, interval))
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    else:
        lines.append("  no policy rules were evaluated")
    if verdict.counts:
        lines.append("  " + ", ".join(f"{n} {status}" for status, n in verdict.counts))
    return "\n".join(lines)


def _validate(args: argparse.Namespace) -> ExitCode:
    """Check every file given; each file's problems are printed, and the other files still checked."""
    from guardrail.auditors.registry import default_registry

    registry = default_registry()
    failed: ExitCode | None = None
    for path in args.files:
        try:
            summary = _validate_one(path, registry)
        except GuardrailError as exc:  # report it, and go on with the other files
            for problem in exc.problems:
                _err(f"error: {problem}")
            failed = failed or exc.exit_code
            continue
        if not args.quiet:
            _out(f"{_display(path)}: ok ({summary})")
    return failed or ExitCode.OK


def _validate_one(path: Path, registry: AuditorRegistry) -> str:
    """Check one spec or policy file as far as possible without running an audit: a spec's
    policies, audits, rules, and (:func:`guardrail.run.preflight.preflight`) its model and data
    header; the summary of what it holds."""
    from guardrail.auditors.catalog import check_rules, check_vocabulary
    from guardrail.run.audit import plan_audits, spec_catalog
    from guardrail.run.preflight import preflight
    from guardrail.spec.loader import load_policy, load_spec
    from guardrail.spec.packs import is_pack_reference
    from guardrail.spec.yamlsource import read_yaml

    kind = "policy" if is_pack_reference(path) else _kind_of(read_yaml(path).data)
    if kind == "policy":
        policy = load_policy(path)
        check_vocabulary(policy, registry.metric_keys())
        summary = f"policy {policy.policy.name!r}, {len(policy.policy.rules)} rule(s)"
    else:
        data = read_yaml(path).data
        trains = isinstance(data, dict) and bool(data.get("train") or data.get("federate"))
        # a spec that trains its own model may be validated before the model exists
        loaded = load_spec(path, inputs_must_exist=not trains)
        policies = [load_policy(policy_path) for policy_path in loaded.policy_paths]
        planned = plan_audits(loaded, registry)
        check_rules(policies, spec_catalog(loaded, planned, registry))
        if not trains:
            preflight(loaded, planned)
        unavailable = [f"{p.audit_id} ({p.unavailable.hint})" for p in planned if p.unavailable is not None]
        summary = f"audit spec {loaded.spec.name!r}, {len(planned)} audit(s), {len(loaded.policy_paths)} policy file(s)"
        if unavailable:
            summary += "; not runnable here: " + ", ".join(unavailable)
        if trains and (loaded.model_path is None or not loaded.model_path.exists()):
            command = "federate" if isinstance(data, dict) and data.get("federate") else "train"
            summary += f"; model not trained yet (`guardrail {command} {_display(path)}` writes it)"
    return summary


def _kind_of(data: object) -> str:
    """Which loader checks a file given to ``validate``: its ``kind:``, or, when that is missing or
    misspelt, what its keys say it is (the loader then names the ``kind:`` problem)."""
    from guardrail.spec.messages import KINDS, shape_kind

    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) and kind in KINDS else shape_kind(data) or "audit"


def _report(args: argparse.Namespace) -> ExitCode:
    from guardrail.core.types import Severity
    from guardrail.report import load_record, write_reports

    record = load_record(args.record)
    out = args.out or args.record.parent
    formats = tuple(args.formats or ("html",))
    if "json" in formats and out.resolve() == args.record.parent.resolve():
        raise UsageError(
            "refusing to rewrite the canonical record in place",
            where=str(args.record),
            hint="run.json is already there; pass --out DIR to copy it elsewhere, or another --format",
        )
    written = write_reports(record, out, formats, fail_on=Severity(args.fail_on))
    if not args.quiet:
        _out(f"reports: {', '.join(_display(p) for p in written.values())}")
    return ExitCode.OK


def _verify(args: argparse.Namespace) -> ExitCode:
    from guardrail.report import load_record
    from guardrail.report.verify import verify

    record = load_record(args.record)
    checks = verify(record, args.record)
    bad = [c for c in checks if c.status != "ok"]
    if not args.quiet:
        for check in checks:
            _out(f"  {check.status:<8} {check.role:<9} {_display(Path(check.path))}")
    if bad:
        _err(
            f"error: {len(bad)} of {len(checks)} file(s) recorded by {_display(args.record)} changed or are missing: "
            + ", ".join(f"{c.role} {_display(Path(c.path))} ({c.status})" for c in bad)
        )
        return ExitCode.VIOLATION
    if not args.quiet:
        _out(f"{_display(args.record)}: all {len(checks)} recorded file(s) match")
    return ExitCode.OK


def _history_at(where: Path) -> Path:
    from guardrail.api import history_database

    return history_database(where)


def _history(args: argparse.Namespace) -> ExitCode:
    from guardrail.history import HistoryStore
    from guardrail.history.views import history_table

    with HistoryStore(_history_at(args.where), create=False) as store:
        runs = store.runs(name=args.name, limit=args.limit or None)
    if args.json:
        _out(json.dumps([dataclasses.asdict(run) for run in runs], indent=2))
    else:
        _out(history_table(runs))
    return ExitCode.OK


def _diff(args: argparse.Namespace) -> ExitCode:
    from guardrail.history import compare_runs
    from guardrail.history.views import diff_json, diff_table

    before, after = (_run_record(ref, args.history) for ref in (args.before, args.after))
    difference = compare_runs(before, after)
    _out(json.dumps(diff_json(difference), indent=2) if args.json else diff_table(difference, show_all=args.all))
    return ExitCode.VIOLATION if args.fail_on_worse and difference.worse() else ExitCode.OK


def _run_record(ref: str, where: Path | None) -> RunRecord:
    from guardrail.api import load_run

    return load_run(ref, history=where)


def _approve(args: argparse.Namespace) -> ExitCode:
    from guardrail.core.types import Severity
    from guardrail.core.vocab import PASS
    from guardrail.history import HistoryStore

    with HistoryStore(_history_at(args.history), create=False) as store:
        approved = store.approve(args.run, by=args.by, note=args.note)
    record = approved.record
    verdict = record.judged(Severity.DENY).word
    _out(f"approved run {record.run_id} ({record.name}, {verdict}) by {approved.approved_by} at {approved.approved_at}")
    if verdict != PASS:
        _out(f"note: this run did not pass its blocking rules ({verdict}); later runs are held to it as approved")
    return ExitCode.OK


def _list() -> ExitCode:
    from guardrail.auditors.registry import default_registry
    from guardrail.spec.packs import PACK_PREFIX, pack_names, pack_summary

    registry = default_registry()
    _out("auditors:")
    for name in registry.names():
        _out(f"  {name:<16} {registry.target(name)}")
    _out("report formats:")
    _out("  " + ", ".join(FORMAT_NAMES))
    names = pack_names()
    if names:
        _out(f"policy packs (name them in a spec's policies: or a policy's extends:, e.g. {PACK_PREFIX}{names[0]}):")
        width = max(len(PACK_PREFIX + name) for name in names)
        for name in names:
            _out(f"  {PACK_PREFIX + name:<{width}}  {pack_summary(name)}")
    return ExitCode.OK


def _schema(kind: str) -> ExitCode:
    from guardrail.spec.schema import json_schema

    _out(json.dumps(json_schema(kind), indent=2))
    return ExitCode.OK


def _display(path: Path) -> str:
    from guardrail.spec.yamlsource import display_path

    return display_path(path)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _out(text: str) -> None:
    """Print ``text`` to stdout. A reader that stops early (``guardrail list | head``) ends the
    output, not the command: the rest goes to the null device and the exit code is unchanged.
    Each line's control characters are spelt out (names and messages come from data)."""
    from guardrail.core.errors import printable

    _write("\n".join(printable(line) for line in text.split("\n")), sys.stdout)


def _err(message: str) -> None:
    """Print ``message`` to stderr, as :func:`_out` does to stdout (a closed reader changes no exit
    code), with control characters spelled out so that it stays one line that sets nothing in a terminal."""
    from guardrail.core.errors import printable

    _write(printable(message), sys.stderr)


def _write(text: str, stream: TextIO) -> None:
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
