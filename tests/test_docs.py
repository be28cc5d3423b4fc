"""The README and docs point only at what a clone of the repository has."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP = ("dags", "plugins", "include", "tests", "bench", "deploy", "docker", "docs", "examples", "devstack")


def test_every_path_the_readme_and_docs_name_is_in_the_repository():
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "examples/inbox_flow/__init__.py"):
        text = doc.read_text(encoding="utf-8")
        assert "../shared" not in text, f"{doc.name} points outside the repository"
        named = set(re.findall(rf"`((?:{'|'.join(TOP)})/[\w./-]+?)/?`", text))
        missing = sorted(p for p in named if not re.search(r"[*<]|NNNN", p) and not (REPO / p).exists())
        assert not missing, f"{doc.name} names {missing}"
