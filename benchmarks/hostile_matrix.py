"""Run the hostile-input matrix (``tests/hostile/matrix.py``) and print its counts.

Every case runs the CLI as a subprocess on files in a temporary folder (see the matrix's
docstring for what each case must show). Printed: per category, the cases, their exit codes
(``hung`` for a run that did not exit in time), how many ended as documented, and how many
are expected to fall short until a fix outside the matrix's files lands (``xfail``); then each
case that fell short, with the fix it needs.

Usage: ``python benchmarks/hostile_matrix.py [--fast] [-k SUBSTRING]``: ``--fast`` leaves out
the cases marked slow (torch, Hugging Face and skops imports, ≈ 3-10 s each); the fast set
takes about 1.5 minutes on 2 busy cores, the whole matrix about 3.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.matrix import CASES, Templates, run_case, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="leave out the cases marked slow")
    parser.add_argument("-k", dest="only", help="only the cases whose id contains this")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not (args.fast and c.slow) and (args.only is None or args.only in c.id)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="guardrail-hostile-") as scratch:
        templates = Templates(Path(scratch) / "templates")
        outcomes = []
        for i, case in enumerate(cases):
            outcome = run_case(case, Path(scratch) / f"case-{i:03d}", templates)
            mark = "ok" if not outcome.problems else ("xfail" if case.needs else "FAIL")
            code = "hung" if outcome.code is None else f"exit {outcome.code}"
            print(f"{mark:<5} {case.category:<6} {case.id:<44} {code:<7} {outcome.seconds:5.1f} s", flush=True)
            outcomes.append(outcome)
    print()
    print(summary(outcomes))
    print(f"\n{len(outcomes)} case(s) in {time.monotonic() - started:.0f} s")
    unexpected = [o for o in outcomes if bool(o.problems) != bool(o.case.needs)]
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
