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
    assert len(shown) == 5, "AuditResult, MetricResult, RunRecord, PolicyVerdict and RuleOutcome"
    for page in shown:
        assert page.startswith('<iframe sandbox="" srcdoc="') and "<script" not in page
    assert "VIOLATION" in "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.mark.parametrize("needle", ["pip install", "http://", "https://", "urlopen", "download"])
def test_notebook_needs_no_network(needle: str) -> None:
    code = [cell.source for cell in __import__("nbformat").read(NOTEBOOK, as_version=4).cells if cell.cell_type == "code"]
    assert not any(needle in source for source in code)
