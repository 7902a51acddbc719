"""The user guide builds as a static site with MkDocs in strict mode: a broken link, a missing
anchor, or a page left out of the navigation fails the build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.docs.blocks import DOCS, README


def _nav_pages(entries: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_the_guide_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert config["strict"] is True and config["docs_dir"] == "docs"
    pages = _nav_pages(config["nav"])
    assert sorted(pages) == sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")), "nav lists every page once"
    for page in pages:
        assert (site / page.replace(".md", ".html")).is_file(), page
    for page in site.rglob("*.html"):
        loaded = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="([^"]*)"', page.read_text(encoding="utf-8"))
        assert loaded and not [url for url in loaded if "//" in url], f"{page.name} loads a remote resource"


def test_the_readme_links_point_at_files_that_exist() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the guide"
    for link in local:
        assert (REPO / link).exists(), f"README links to {link}, which does not exist"
