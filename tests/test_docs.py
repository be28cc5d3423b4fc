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


def test_the_readmes_table_of_flows_is_the_one_the_specs_make():
    """Issue #42: the table of flows is derived from each flow's spec (finflows.flowspec); after a
    spec changes, `python -m finflows.flowspec write` writes it."""
    from finflows import flowspec

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert flowspec.with_table(readme) == readme, "run: PYTHONPATH=plugins python -m finflows.flowspec write"
