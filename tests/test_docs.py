"""The repository's docs stand alone: README.md and docs/ name no path outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"(?<![\w.])(/work/|/tmp/|/root/|/home/|\.\./)")


def test_readme_and_docs_name_no_path_outside_the_repository():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)
