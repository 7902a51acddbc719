"""The report says how the rows were read (``RunRecord.scan``) and lists a bounded number of input files."""

from __future__ import annotations

import dataclasses

from guardrail.core.types import FileDigest
from guardrail.report import render
from guardrail.report.html import FILES_SHOWN
from guardrail.report.scan_view import scan_sentence
from tests.report.conftest import make_record

STREAMED = {
    "engine": "stream",
    "reason": "the data is a query or a set of partitions",
    "rows": 100_000_000,
    "partitions": 100,
    "seconds": 48.3,
    "pushdown": "count tables computed in DuckDB (GROUP BY group, label, decision: 32 combinations)",
    "sample": None,
}


def test_the_sentence_names_engine_rows_partitions_pushdown_and_sample() -> None:
    assert scan_sentence(None) is None
    text = scan_sentence(STREAMED)
    assert text is not None and text.startswith("Streaming engine (the data is a query or a set of partitions): 100,000,000 rows in 100 partitions")
    assert "The count tables computed in DuckDB" in text and "sample" not in text
    sampled = scan_sentence({**STREAMED, "pushdown": None, "sample": {"rows": 50_000, "of_rows": 100_000_000, "strata": ["sex", "race"]}})
    assert sampled is not None and "a sample of 50,000 of the 100,000,000 rows, stratified by sex × race" in sampled


def test_html_and_markdown_show_it_and_the_html_lists_at_most_twenty_files() -> None:
    base = make_record()
    files = tuple(FileDigest(role="data", path=f"log/part-{i:05d}.parquet", sha256="0" * 64, bytes=10) for i in range(FILES_SHOWN + 5))
    record = dataclasses.replace(base, scan=STREAMED, provenance=dataclasses.replace(base.provenance, files=files))
    html = render(record, "html")
    assert "Data read" in html and "100,000,000 rows in 100 partitions" in html
    assert html.count("<tr><td>data</td>") == FILES_SHOWN
    assert "… and 5 more files, each with its digest in run.json" in html
    assert "## Data read" in render(record, "markdown")
    assert "Data read" not in render(base, "html")  # a record written before the engines existed
