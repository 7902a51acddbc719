"""The command-line reference and the auditors' params tables are the code's own words."""

from __future__ import annotations

import pytest

from tests.docs import reference
from tests.docs.blocks import marked


@pytest.mark.parametrize("command", list(reference.commands()))
def test_cli_reference_shows_each_commands_help(command: str, request: pytest.FixtureRequest) -> None:
    expected = reference.help_text(command)
    if request.config.getoption("--update-golden"):
        reference.update(reference.CLI_PAGE, reference.help_region(command), expected)
    shown = marked("output", reference.help_block_name(command), reference.CLI_PAGE)
    assert shown.body == expected, f"{shown.where}: `guardrail {command} --help` changed; rerun with --update-golden"


def test_cli_reference_has_a_section_per_command() -> None:
    text = reference.CLI_PAGE.read_text(encoding="utf-8")
    for command in reference.commands():
        if command:
            assert f"\n## `guardrail {command}`" in text, f"docs/cli.md has no section for guardrail {command}"


@pytest.mark.parametrize("auditor", sorted(reference.PARAMS_PAGES))
def test_audit_pages_list_every_param(auditor: str, request: pytest.FixtureRequest) -> None:
    page = reference.PARAMS_PAGES[auditor]
    expected = reference.params_table(auditor)
    if request.config.getoption("--update-golden"):
        reference.update(page, reference.params_region(auditor), expected)
    found = reference.params_region(auditor).search(page.read_text(encoding="utf-8"))
    assert found, f"{page.name} needs a params table between <!-- params: {auditor} --> and <!-- /params -->"
    assert found[2] == expected, f"{page.name}: the {auditor} auditor's params changed; rerun with --update-golden"


def test_every_registered_auditor_has_a_page() -> None:
    from guardrail.auditors.registry import default_registry

    assert set(default_registry().names()) <= set(reference.PARAMS_PAGES)
