"""A seeded mutation fuzzer of our own, over every layout a counterparty sends us.

Each layout starts from a valid file the test helpers build from the public reference (not by our
writers), then is mutated a few bytes at a time: bytes flipped, a NUL, CR or LF or Ctrl-Z put in,
bytes cut out, a line doubled or dropped, a card number written in groups laid over any field.
Every mutant must either be accepted with totals that agree with what was read, or be refused
with the format's own error naming line and field; no error may carry a card number. An accepted
mutant is also held to the fields' published rules, written here apart from our codecs (``RULES``):
a field accepted that its rule refuses is a finding (leniency). Bounded (``MUTANTS`` per layout)
and seeded: a failure names the seed and the mutant to replay.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
from decimal import Decimal

import pytest

from finflows.formats import ach, chargeback, tenure
from finflows.formats.card_statement import COPY_COLUMNS, StatementStats, read_statement
from finflows.formats.cashfile import CashFileStats, read_rows
from finflows.formats.fixedwidth import FormatError
from finflows.pci import mask_pans
from tests.formats.test_tch_conformance import returns_file
from tests.helpers.cash import cash_file
from tests.helpers.chargebacks import record
from tests.helpers.statements import statement
from tests.helpers.tenure import event

SEED = 20261205
MUTANTS = 400
CARDS = (b"4111 1111 1111 1111", b"4111-1111-1111-1111", b"5555555555554444")


def mutate(rnd: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(7)
        at = rnd.randrange(len(out)) if out else 0
        if op == 0:
            out[at : at + 1] = bytes([rnd.randrange(256)])
        elif op == 1:
            out[at:at] = rnd.choice([b"\x00", b"\r", b"\n", b"\x1a", b" ", b"9"])
        elif op == 2:
            del out[at : at + rnd.randint(1, 8)]
        elif op == 3:
            card = rnd.choice(CARDS)
            out[at : at + len(card)] = card  # over whatever field is there, same length
        elif op == 4:
            lines = bytes(out).split(b"\n")
            i = rnd.randrange(len(lines))
            lines.insert(i, lines[i])
            out = bytearray(b"\n".join(lines))
        elif op == 5:
            lines = bytes(out).split(b"\n")
            if len(lines) > 1:
                del lines[rnd.randrange(len(lines))]
            out = bytearray(b"\n".join(lines))
        else:
            out[at:at] = bytes(rnd.randrange(48, 58) for _ in range(rnd.randint(1, 20)))  # digits
    return bytes(out)


def mutants(name: str, data: bytes):
    rnd = random.Random(f"{SEED}/{name}")
    for n in range(MUTANTS):
        yield n, mutate(rnd, data)


def refused_well(e: FormatError, case: str) -> None:
    assert e.errors, case
    for x in e.errors:
        assert isinstance(x.line, int) and x.line >= 0 and x.field, (case, x)
    text = str(e) + json.dumps(e.report(), default=str)
    assert mask_pans(text) == text, f"{case}: a card number in the error: {text[:300]}"


# the published rule of each fixed-width field: (name, 0-based slice, the whole slice's pattern);
# docs/formats.md §1 and §2, and the clearing house's public V10 tables (tests/helpers/tch.py)
DAY = r"(?:0[1-9]|[12][0-9]|3[01])"
MONTH = r"(?:0[1-9]|1[0-2])"
RULES = {
    "cash": [
        ("rent_account", slice(0, 10), r"[0-9]{10}"),
        ("payment_source", slice(10, 30), r"(?=.*[^ ])[^\x00]{20}"),
        ("method", slice(30, 33), r"[A-Z0-9]{3}"),
        ("amount", slice(33, 43), r"[+-][0-9]{6}\.[0-9]{2}"),
        ("paid_on", slice(43, 53), rf"{DAY}/{MONTH}/[0-9]{{4}}"),
        ("civica_code", slice(53, 55), r"[0-9]{2}"),
    ],
    "CV": [
        ("store_id", slice(2, 17), r"[0-9A-Z][0-9]{14}"),
        ("host_nsu", slice(17, 29), r"[0-9]{12}"),
        ("txn_date", slice(29, 37), rf"[0-9]{{4}}{MONTH}{DAY}"),
        ("txn_time", slice(37, 43), r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"),
        ("gross", slice(54, 65), r"[0-9]{11}"),
        ("instalment_nsu", slice(110, 122), r"[0-9]{12}"),
        ("origin_nsu", slice(347, 353), r"[0-9]*(?: *)"),
        ("receivable_seq", slice(376, 378), r"[0-9]{2}| {2}"),
        ("record_seq", slice(390, 396), r"[0-9]{6}"),
    ],
    "R": [
        ("TYPE", slice(0, 1), r"R"),
        ("SEQ", slice(6, 14), r"[0-9]{8}"),
        ("AMT", slice(60, 70), r"[0-9]{10}"),
        ("CID", slice(73, 83), r"[0-9A-Z]{8}  |[0-9A-Z]{10}"),
        ("PID", slice(83, 93), r"[0-9A-Z]{8}  |[0-9A-Z]{10}"),
        ("SID", slice(93, 99), r"[0-9A-Z]*(?: *)"),
        ("PDATE", slice(99, 107), rf"0[0-9]{{3}}{MONTH}{DAY}"),
        ("PSEQ", slice(107, 115), r"[0-9]{8}"),
        ("CFEE", slice(186, 191), r"00000"),
        ("FILLER", slice(211, 250), r" {39}"),
    ],
    "EOF": [
        ("TCOUNT", slice(31, 39), r"[0-9]{8}"),
        ("YDATE", slice(55, 63), rf"0[0-9]{{3}}{MONTH}{DAY}"),
        ("FILLER", slice(63, 250), r" {187}"),
    ],
}


def lenient(case: str, layout: str, line: str) -> None:
    """An accepted record whose field breaks its published rule is a finding."""
    for name, at, rule in RULES[layout]:
        value = line[at]
        assert re.fullmatch(rule, value, re.DOTALL), f"{case}: {layout} field {name} {value!r} accepted against {rule}"


def test_cash_files():
    for n, data in mutants("cash", cash_file(6, dt.date(2026, 11, 23))):
        stats = CashFileStats()
        try:
            rows = list(read_rows(io.BytesIO(data), "CashFile20261123.dat", stats))
        except FormatError as e:
            refused_well(e, f"cash mutant {n}")
            continue
        # a row: line number, then the COPY columns (account, source, method, amount, …)
        amounts = [Decimal(r.split("\t")[4]) for r in rows]
        assert stats.records == len(rows) and stats.total == sum(amounts, Decimal(0)), n
        for line in data.decode("ascii").splitlines():
            if line.strip():
                lenient(f"cash mutant {n}", "cash", line)


def test_card_statements():
    for n, data in mutants("card", statement(4)):
        stats = StatementStats()
        try:
            rows = list(read_statement(io.BytesIO(data), "EXTRATO_UNICA_1_20261120_1", stats))
        except FormatError as e:
            refused_well(e, f"card mutant {n}")
            continue
        gross = sum((Decimal(dict(zip(COPY_COLUMNS, r.split("\t"), strict=True))["gross"]) for r in rows), Decimal(0))
        assert stats.details == len(rows) and stats.gross == gross, n
        assert all(mask_pans(r) == r for r in rows), f"card mutant {n}: a card number in a loaded row"
        for line in data.decode("latin-1").splitlines():
            if line.startswith("CV"):
                lenient(f"card mutant {n}", "CV", line)


def test_achr01_returns():
    for n, data in mutants("achr01", returns_file({1: "04", 2: "22", 3: "04"})):
        try:
            f = ach.read_ach(data, "r.txt", "ACHR01")
        except FormatError as e:
            refused_well(e, f"ACHR01 mutant {n}")
            continue
        assert int(f.trailer["total_count"]) == len(f.details), n
        assert Decimal(f.trailer["total_amount"]) == sum(Decimal(d["amount"]) for d in f.details), n
        assert data.endswith(b"\r\n") or data.endswith(b"\x1a"), f"ACHR01 mutant {n}: no final CRLF, accepted"
        records = data.decode("latin-1").removesuffix("\x1a").split("\r\n")
        for line in records:
            if line[:1] == "R" or line[:3] == "EOF":
                lenient(f"ACHR01 mutant {n}", "EOF" if line[:3] == "EOF" else "R", line)


def test_chargeback_files():
    good = json.dumps([record(0), record(1)]).encode()
    for n, data in mutants("chargeback", good):
        try:
            records = chargeback.parse_file(data, "cb.json")
        except FormatError as e:
            refused_well(e, f"chargeback mutant {n}")
            continue
        assert records, n
        out = chargeback.to_csv(records).decode()
        assert mask_pans(out) == out, f"chargeback mutant {n}: a card number in the CSV"


@pytest.mark.parametrize("shape", ["compact", "indented"])
def test_tenure_events(shape):
    body = json.dumps(event("5b8f6a8e-6f5e-4c8a-9a3e-0d2a7c1b9e10", 3), indent=2 if shape == "indented" else None)
    for n, data in mutants(f"tenure-{shape}", body.encode()):
        try:
            ev = tenure.parse_message(data.decode("utf-8", errors="replace"))
        except tenure.PoisonMessage as e:
            reason = str(e)
        else:
            reason = ""
        if reason:
            assert mask_pans(reason) == reason, f"tenure mutant {n}: a card number in the reason"
            continue
        assert 1 <= ev.version <= tenure.MAX_VERSION, n
        row = " ".join(ev.sheet_row("123456"))
        assert mask_pans(row) == row and "\x00" not in row, f"tenure mutant {n}"
