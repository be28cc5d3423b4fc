"""The bad-input corpus (tests/data/bad/, made by make_corpus.py): every file is refused by its
reader with the format's own error, naming the file and the line, field and value expected.json
gives. Nothing here needs the stack."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from finflows.formats import ach, card_statement, cashfile, chargeback, tenure
from finflows.formats.fixedwidth import FormatError

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
EXPECTED = json.loads((BAD / "expected.json").read_text())

READERS = {
    "cashfile": lambda data, name: list(cashfile.read_rows(io.BytesIO(data), name)),
    "card": lambda data, name: list(card_statement.read_statement(io.BytesIO(data), name)),
    "chargeback": chargeback.parse_file,
    "ach": ach.read_ach,
    "ach_csv": lambda data, name: ach.read_csv(data, name, "cp950"),
    "tenure": lambda data, name: tenure.parse_message(data.decode("utf-8", "replace")),
}


def test_every_file_in_the_corpus_has_an_expectation_and_every_reader_a_file():
    files = {str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file() and p.parent != BAD}
    assert files == set(EXPECTED)
    assert {e["reader"] for e in EXPECTED.values()} == set(READERS)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_each_bad_file_is_refused_naming_what_is_wrong(path):
    want = EXPECTED[path]
    name = Path(path).name
    error = tenure.PoisonMessage if want["reader"] == "tenure" else FormatError
    with pytest.raises(error) as e:
        READERS[want["reader"]]((BAD / path).read_bytes(), name)
    if error is tenure.PoisonMessage:
        assert want["reason"] in str(e.value)
        return
    assert str(e.value).startswith(f"{name}: ")  # the message names the file
    hits = [
        x
        for x in e.value.errors
        if ("line" not in want or x.line == want["line"])
        and ("field" not in want or x.field == want["field"])
        and ("value" not in want or x.value == want["value"])
    ]
    assert hits, f"{path}: wanted {want}, got {e.value}"
    if "reason" in want:
        assert any(want["reason"] in x.reason for x in hits) or want["reason"] in str(e.value)
