"""Issue #43: the card-number finder runs where a card number can be, and docs/formats.md says
where: the list between its ``scanned`` markers is the fields the layouts mark as masked free text
(``MaskedText``) wide enough to hold one (13 characters), and their masked card fields."""

from __future__ import annotations

import re
from pathlib import Path

from finflows.formats import card_statement, cashfile
from finflows.formats.fixedwidth import MaskedCard, MaskedText

DOCS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
LAYOUTS = {
    "cash file": cashfile.LAYOUT,
    "card statement header": card_statement.HEADER,
    "card statement detail": card_statement.DETAIL,
}


def scanned(layout) -> set[str]:
    return {f.name for f in layout.fields if isinstance(f.codec, MaskedText) and f.slice.stop - f.slice.start >= 13}


def test_the_docs_name_every_field_scanned_for_card_numbers_and_no_other():
    text = DOCS.read_text(encoding="utf-8")
    listed = text.split("<!-- scanned -->", 1)[1].split("<!-- /scanned -->", 1)[0]
    for what, layout in LAYOUTS.items():
        line = re.search(rf"^- {what}: (.*(?:\n  .*)*)", listed, re.M)
        assert line, f"docs/formats.md lists no scanned fields for the {what}"
        named = set(re.findall(r"`([a-z_]+)`", line.group(1)))
        cards = {f.name for f in layout.fields if isinstance(f.codec, MaskedCard)}
        assert named == scanned(layout) | cards, what


def test_the_receivable_operation_number_is_not_scanned_and_order_code_is():
    assert "receivable_op" not in scanned(card_statement.DETAIL)
    assert "order_code" in scanned(card_statement.DETAIL)
