"""PAN masking: what may be echoed from an input into logs, reports, the database, notifications."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finflows.formats.chargeback import parse_file
from finflows.formats.fixedwidth import FormatError
from finflows.pci import luhn_ok, mask_pans
from tests.helpers.chargebacks import record


def test_a_pan_is_masked_to_bin_and_last_four_and_other_numbers_are_not():
    assert mask_pans("card 4000000000000002 used") == "card 400000******0002 used"
    assert mask_pans("arn 74000000000000000000001, amount 12345, 20261001") == (
        "arn 74000000000000000000001, amount 12345, 20261001"
    )
    assert mask_pans("4000000000000003") == "4000000000000003"  # fails Luhn: not a card number


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("4111 1111 1111 1111", "4111 11** **** 1111"),
        ("4111-1111-1111-1111", "4111-11**-****-1111"),
        ("3782 822463 10005", "3782 82**** *0005"),  # an Amex grouped 4-6-5
        ("5555 5555 5555 4444.", "5555 55** **** 4444."),
    ],
)
def test_a_card_number_written_in_groups_is_masked_too(written, masked):
    assert mask_pans(f"customer said card {written} was charged twice") == (
        f"customer said card {masked} was charged twice"
    )


@pytest.mark.parametrize(
    "text",
    ["on 2026-11-23 12:00", "phone 0912-345-678", "amount 1 000 000", "4111 1111 1111 1112 (fails Luhn)"],
)
def test_dates_phones_amounts_and_non_cards_in_groups_are_left_alone(text):
    assert mask_pans(text) == text


@given(st.from_regex(r"\A[0-9]{13,19}\Z"), st.sampled_from([" ", "-"]), st.integers(2, 6))
def test_no_luhn_valid_number_survives_in_groups(digits, sep, size):
    grouped = sep.join(digits[i : i + size] for i in range(0, len(digits), size))
    if any(len(g) < 2 for g in grouped.split(sep)):
        return  # a lone digit is not how card numbers are grouped
    masked = mask_pans(f"x {grouped} y")
    assert (grouped in masked) is not luhn_ok(digits)


@given(st.from_regex(r"\A[0-9]{13,19}\Z"))
def test_no_luhn_valid_number_survives(digits):
    masked = mask_pans(f"x{digits}y")
    assert (digits in masked) is not luhn_ok(digits)


def test_a_refused_record_never_echoes_the_full_card_number():
    rows = [record(0, masked_card="4000000000000002", merchant="paid with 5555555555554444")]
    with pytest.raises(FormatError) as err:
        parse_file(json.dumps(rows).encode(), "cb.json")
    text = str(err.value) + json.dumps(err.value.report())
    assert "4000000000000002" not in text and "400000******0002" in text


# ---------------------------------------------------------------------------- every fixed-width reader
PAN = "4111111111111111"  # Luhn-valid (a well-known test number)


def _planted(line: str, at: int, longer: bool) -> str:
    """``line`` with the PAN written over it at ``at``; ``longer`` also breaks its length so the
    reader echoes the whole record."""
    out = line[:at] + PAN + line[at + len(PAN) :]
    return out + "X" if longer else out


def _readers():
    import datetime as dt
    import io

    from finflows.formats import ach, card_statement, cashfile
    from tests.formats.test_ach import REFERENCE
    from tests.helpers.cash import cash_lines
    from tests.helpers.statements import statement_lines

    def cash(lines: list[str]):
        data = "".join(x + "\r\n" for x in lines).encode("latin-1")
        return list(cashfile.read_rows(io.BytesIO(data), "CashFile20261120.dat"))

    def card(lines: list[str]):
        data = "".join(x + "\r\n" for x in lines).encode("latin-1")
        return list(card_statement.read_statement(io.BytesIO(data), "EXTRATO_UNICA_1_20261120_1"))

    def bank(lines: list[str]):
        return ach.read_ach("".join(x + "\r\n" for x in lines).encode("latin-1"), "ACHP01.txt")

    yield "cashfile", cash, cash_lines(3, dt.date(2026, 11, 20)), 1
    yield "card statement", card, statement_lines([]), 7
    yield "ACHP01", bank, REFERENCE.decode("latin-1").split("\r\n")[:-1], 9


@pytest.mark.parametrize(
    ("name", "read", "lines", "step"), list(_readers()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_card_number_planted_anywhere_in_a_bad_line_is_never_echoed(name, read, lines, step):
    """Every position of every line, as a field value and inside a whole record the reader refuses:
    the error message and the JSON report (what reaches the control table, logs, emails and the
    quarantine report) hold at most BIN + last four."""
    refused = 0
    for n in range(len(lines)):
        for at in range(0, len(lines[n]) - len(PAN) + 1, step):
            for longer in (False, True):
                bad = [*lines[:n], _planted(lines[n], at, longer), *lines[n + 1 :]]
                try:
                    read(bad)
                except FormatError as e:
                    refused += 1
                    echoed = str(e) + json.dumps(e.report(), default=str)
                else:
                    continue
                assert PAN not in echoed, (name, n, at)
    assert refused > 0


@given(st.text(alphabet="0123456789 -/aZ", max_size=40))
def test_the_quick_prefilter_agrees_with_quick_on_any_text(text):
    """Issue #43: ``may_hold_pan`` asks a cheaper pattern first; it never says no where QUICK says yes."""
    from finflows.pci import QUICK, may_hold_pan

    assert may_hold_pan(text) == (QUICK.search(text) is not None)


def test_the_quick_prefilter_on_examples():
    from finflows.pci import may_hold_pan

    assert may_hold_pan("REF 4111 1111 1111 1111 X") and may_hold_pan("x4111-1111-1111-1")
    assert not may_hold_pan("PED-638107954381/6") and not may_hold_pan("NF 2026/000123 LOJA 7")
