"""The example notebook runs end to end, in a fresh kernel of this virtualenv, and every
result it displays renders as HTML."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_quickstart_notebook_runs(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Prove the kernel is this virtualenv's interpreter, not whatever `python` is on PATH.
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)", id="interpreter"))
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
        allow_errors=False,
    )
    with warnings.catch_warnings():
        # jupyter_client warns about unencrypted local TCP and its own deprecations;
        # nothing from guardrail is silenced here.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"jupyter_client\..*|zmq\..*|nbclient\..*")
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"jupyter_client\..*|zmq\..*")
        client.execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    interpreter = outputs[0]["text"].strip()
    assert Path(interpreter).resolve() == Path(sys.executable).resolve(), interpreter
    shown = [o["data"]["text/html"] for o in outputs if o.output_type in ("execute_result", "display_data")]
    views = [page for page in shown if page.startswith('<div class="guardrail-nb"><style>')]
    frames = [page for page in shown if 'class="dataframe' in page]
    assert len(views) == 6, "AuditResult, MetricResult, RunRecord, PolicyVerdict, RuleOutcome, and check's PolicyVerdict"
    assert len(frames) == 3 and len(shown) == 9, "tidy rows, the by-group view and the verdict's rows"
    assert all("<script" not in page and "<iframe" not in page for page in views), "inline, sized to its content"
    assert all(name in frames[1] for name in ("sex", "race", "fairness.tpr")), "by group: a MultiIndex sex × race"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "VIOLATION" in printed and "<AuditResult fairness: " in printed


@pytest.mark.parametrize("needle", ["pip install", "http://", "https://", "urlopen", "download"])
def test_notebook_needs_no_network(needle: str) -> None:
    code = [cell.source for cell in __import__("nbformat").read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert not any(needle in source for source in code)
