"""Every guardrail output that the README or the guide shows is checked against what
guardrail prints, or the text just before it says that it is illustrative."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.conftest import REPO, run_cli
from tests.docs.blocks import DOCS, Block, all_marked, blocks, marked, pages

CHECKED_BY = {
    "demo": "tests/cli/test_exit_codes.py",
    "spec-typo": "tests/cli/test_exit_codes.py",
    "quickstart-validate": "tests/docs/test_readme_quickstart.py",
    "quickstart-audit": "tests/docs/test_readme_quickstart.py",
    "list": "tests/docs/test_shown_outputs.py",
}
"""Which test compares each named output with guardrail's (``help*``: tests/docs/test_reference.py)."""


def _last_paragraph(block: Block) -> str:
    return block.before.strip().rsplit("\n\n", 1)[-1]


def test_every_shown_output_is_checked_or_said_to_be_illustrative() -> None:
    unchecked = [
        block.where
        for page in pages()
        for block in blocks(page)
        if block.info == "text" and block.mark is None and "illustrative" not in _last_paragraph(block)
    ]
    assert not unchecked, f"mark these outputs <!-- output: NAME --> and check them, or say they are illustrative: {unchecked}"


def test_every_marked_output_names_the_test_that_checks_it() -> None:
    for block in all_marked():
        kind, name = block.mark or ("", "")
        if kind != "output":
            continue
        if name == "help" or name.startswith("help-"):
            checker = "tests/docs/test_reference.py"
        else:
            assert name in CHECKED_BY, f"{block.where}: no test checks the output {name!r}; add it to CHECKED_BY"
            checker = CHECKED_BY[name]
            assert f'"{name}"' in (REPO / checker).read_text(encoding="utf-8"), f"{checker} does not check {name!r}"


def test_a_block_shown_on_several_pages_is_the_same_everywhere() -> None:
    shown: dict[tuple[str, str], set[str]] = defaultdict(set)
    for block in all_marked():
        assert block.mark is not None
        shown[block.mark].add(block.body)
    differing = sorted(name for name, bodies in shown.items() if len(bodies) > 1)
    assert not differing, f"these blocks differ between the README and the guide: {differing}"


def test_the_guide_repeats_the_readme_quickstart() -> None:
    guide = DOCS / "getting-started.md"
    for kind, name in [("quickstart", "save_model.py"), ("quickstart", "spec.yaml"), ("quickstart", "policy.yaml"),
                       ("quickstart", "predictions"), ("output", "quickstart-validate"), ("output", "quickstart-audit")]:
        assert marked(kind, name, guide).body == marked(kind, name).body


def test_guardrail_list_prints_what_the_policies_page_shows() -> None:
    shown = marked("output", "list", DOCS / "policies.md")
    assert shown.command() == ["guardrail", "list"]
    done = run_cli("list")
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown.printed()


def test_the_policies_page_names_every_shipped_pack() -> None:
    from guardrail.spec.packs import pack_names

    text = (DOCS / "policies.md").read_text(encoding="utf-8")
    missing = [name for name in pack_names() if f"| `guardrail:{name}` |" not in text]
    assert not missing, f"docs/policies.md has no row for the packs {missing}"


def test_the_python_page_example_runs() -> None:
    from guardrail.core.frames import METRIC_COLUMNS

    namespace: dict[str, object] = {}
    exec(compile(marked("example", "python-arrays", DOCS / "python.md").body, "docs/python.md", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    frame = result.to_frame()  # type: ignore[attr-defined]
    assert tuple(frame.columns) == METRIC_COLUMNS
    assert f"`{', '.join(METRIC_COLUMNS)}`" in " ".join((DOCS / "python.md").read_text(encoding="utf-8").split())
    by_group = result.by_group_frame("sex")  # type: ignore[attr-defined]
    assert sorted(by_group.index) == ["Female", "Male"]
    assert {o.rule_id for o in namespace["verdict"].outcomes} >= {"FAIR-001", "FAIR-002", "FAIR-003"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_guide_pages_link_no_file_outside_the_guide(page: str) -> None:
    """MkDocs cannot serve files outside docs/: name them as code, not as links."""
    assert "](../" not in (DOCS / page).read_text(encoding="utf-8")


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md", "docs/cli.md"])
def test_exit_code_tables_list_every_exit_code(page: str) -> None:
    from guardrail.core.exitcodes import ExitCode

    text = (REPO / page).read_text(encoding="utf-8")
    table = next(part for part in text.split("## Exit codes", 1)[1].split("\n\n") if part.startswith("| code |"))
    codes = [int(line.split("|")[1]) for line in table.splitlines()[2:]]
    assert codes == [code.value for code in ExitCode], f"{page}: the exit-code table and guardrail.core.exitcodes differ"
