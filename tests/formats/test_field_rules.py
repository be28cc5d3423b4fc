"""Every field held to its published rule: a record is accepted if and only if every field is valid.

The records are built field by field by the builders that share nothing with our readers
(tests/helpers/tch.py from the clearing house's public V10 tables, tests/helpers/statements.py's
``acquirer_line`` from docs/formats.md §2); the valid and invalid values of each field below are
written from those tables' rules (charset, length, padding, literal, filler), not from our codecs.
Hypothesis breaks any set of fields at once; the reader must refuse the record naming every broken
field by line and field, and accept it when none is.
"""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finflows.formats import ach
from finflows.formats.card_statement import read_statement
from finflows.formats.fixedwidth import FormatError
from tests.formats.test_tch_conformance import BATCH, RETURN_DAY, p01_details
from tests.helpers import tch as build
from tests.helpers.statements import acquirer_file, acquirer_line

# ---------------------------------------------------------------------------- TCH ACHP01 / ACHR01
IDS = ["12345678  ", "A123456789", "0000000000"]  # charset alnum, 8 (tax id) or 10 (national id), right-padded
BAD_IDS = [" 12345678 ", "1234567   ", "123456789 ", "12345678 9", "12-45678  ", "          "]
ROC_DATE = "01151120"
SIDS = ["      ", "2330  ", "006208"]  # listed company code: alnum, left-aligned, or blank
CNOS = ["GOLD00003".ljust(20), "gold00003".ljust(20), "12345678901234567890", " " * 20]  # alnum, left-aligned
BAD_CNOS = [" GOLD00003".ljust(20), "GOLD-00003".ljust(20), "GOLD 00003".ljust(20), "GOLD_3".ljust(20)]
NOTES = ["王小明".encode("cp950").ljust(40).decode("latin-1"), " " * 40]
BAD_DATES = ["0115112 ", "01151131", "20261120", "00000000", "0115-1-2"]

# public id → (our field name, valid in ACHR01, valid in ACHP01, invalid in both)
ACH_FIELDS: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "TYPE": ("record_type", ["R"], ["N"], [" ", "X", "r"]),
    "SEQ": (
        "seq",
        ["00000001", "99999999"],
        ["00000001", "99999999"],
        ["0000001 ", " 0000001", "0000O001", "        "],
    ),
    "SCHD": ("exchange_order", ["B"], ["B"], [" ", "A", "b"]),
    "CID": ("payer_id", IDS, IDS, BAD_IDS),
    "PID": ("payee_id", IDS, IDS, BAD_IDS),
    "SID": ("listed_company", SIDS, SIDS, [" 2330 ", "23 30 ", "2330-1"]),
    "PDATE": ("original_date", [ROC_DATE], [" " * 8], BAD_DATES),
    "PSEQ": ("original_seq", ["00000001"], [" " * 8], ["       1", "0000001 ", "0000-001"]),
    "PSCHD": ("original_exchange_order", ["B", " "], [" "], ["-", "*"]),
    "CNO": ("customer_number", CNOS, CNOS, BAD_CNOS),
    "NOTE": ("originator_note", NOTES, NOTES, []),
    "CFEE": ("customer_fee", ["00000"], ["00000"], ["00001", "0000 ", "     ", "0000O"]),
    "FILLER": ("filler", [" " * 39], [" " * 39], ["X".ljust(39), " " * 38 + "0"]),
}
BAD_BIG5 = "\xff\xff".ljust(40)  # not a Big5 lead byte pair: NOTE refuses it in both kinds


def _detail(code: str) -> dict:
    original = p01_details()[0]
    if code == "ACHP01":
        return original
    return build.return_of(original, seq=1, rcode="04", pdate=BATCH.processing_date)


def _file(code: str, detail: dict, ydate: str | None = None) -> bytes:
    day = BATCH.processing_date if code == "ACHP01" else RETURN_DAY
    sorg = BATCH.sorg if code == "ACHP01" else "0081005"
    trailer = {"YDATE": ydate.encode("latin-1")} if ydate is not None else None
    default_ydate = None if code == "ACHP01" else BATCH.processing_date
    return build.file(code, day, sorg, [detail], ydate=default_ydate, trailer=trailer)


@st.composite
def ach_records(draw, code: str):
    """(file bytes, the fields broken): each field valid for ``code`` or, now and then, invalid."""
    detail, broken = _detail(code), set()
    for public, (name, valid_r, valid_n, bad) in ACH_FIELDS.items():
        valid = valid_r if code == "ACHR01" else valid_n
        invalid = bad + [v for v in (valid_n if code == "ACHR01" else valid_r) if v not in valid]
        invalid += [BAD_BIG5] if public == "NOTE" else []
        breaks = bool(invalid) and draw(st.integers(0, 5)) == 0
        detail[public] = draw(st.sampled_from(invalid if breaks else valid)).encode("latin-1")
        if breaks:
            broken.add(name)
    ydates = {"ACHR01": ([ROC_DATE], [" " * 8, *BAD_DATES]), "ACHP01": ([" " * 8], [ROC_DATE, *BAD_DATES])}
    good, bad = ydates[code]
    if draw(st.integers(0, 5)) == 0:
        ydate = draw(st.sampled_from(bad))
        broken.add("previous_business_day")
    else:
        ydate = draw(st.sampled_from(good))
    return _file(code, detail, ydate), broken


def _refusal(read) -> FormatError | None:
    try:
        read()
    except FormatError as e:
        return e
    return None


def _named(error: FormatError) -> set[str]:
    return {e.field for e in error.errors}


@pytest.mark.parametrize("code", ["ACHR01", "ACHP01"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_ach_record_is_accepted_if_and_only_if_every_field_keeps_its_public_rule(code, data):
    raw, broken = data.draw(ach_records(code))
    refused = _refusal(lambda: ach.read_ach(raw, "f.txt", code, success_codes=()))
    if not broken:
        assert refused is None, f"refused a record whose every field is valid: {refused}"
        return
    assert refused is not None, f"accepted a record with {broken} broken"
    # a rule across fields (the transaction code's class) is judged once the fields themselves are
    # valid; every field's own rule, what the file's kind fills and leaves blank included, is named
    assert broken <= _named(refused), f"broken {broken}, named {_named(refused)}: {refused}"
    assert all(err.line in (2, 3) for err in refused.errors), refused  # the detail (2) or the trailer (3)


@pytest.mark.parametrize(
    ("public", "value", "reason"),
    [
        ("SID", "23 30 ", "up to 6 digits or capitals, left-aligned"),
        ("CID", "1234567   ", "8 (company tax id) or 10 (national id)"),
        ("PID", " 12345678 ", "8 (company tax id) or 10 (national id)"),
        ("CNO", " GOLD00003".ljust(20), "up to 20 letters or digits, left-aligned"),
        ("CNO", "GOLD-00003".ljust(20), "up to 20 letters or digits, left-aligned"),
        ("CFEE", "00001", "00000"),
        ("PSCHD", "*", "a digit, a capital or blank"),
        ("PSEQ", "0000001 ", "the original entry's 8-digit sequence"),
        ("PDATE", "0115112 ", "is not a date"),
        ("FILLER", "X".ljust(39), "blank (spaces only)"),
    ],
)
def test_each_malformed_return_field_of_the_issue_is_refused_by_line_field_and_rule(public, value, reason):
    detail = _detail("ACHR01") | {public: value.encode("latin-1")}
    name = ACH_FIELDS[public][0]
    with pytest.raises(FormatError, match=rf"line 2, field {name}, value .*{re.escape(reason)}"):
        ach.read_ach(_file("ACHR01", detail), "r.txt", "ACHR01")


def test_a_return_trailer_without_ydate_and_a_line_broken_by_crlf_are_refused():
    with pytest.raises(FormatError, match="line 3, field previous_business_day"):
        ach.read_ach(_file("ACHR01", _detail("ACHR01"), " " * 8), "r.txt", "ACHR01")
    detail = _detail("ACHR01") | {"TYPE": b"\r"}  # a detail cut by an extra CR LF
    raw = _file("ACHR01", detail).replace(b"\r", b"\r\n", 2)[0:]
    with pytest.raises(FormatError, match="line 2"):
        ach.read_ach(raw, "r.txt", "ACHR01")


def test_a_file_without_its_final_crlf_is_refused():
    """The policy (docs/formats.md §3): every record ends with CR LF, the last one too."""
    raw = _file("ACHR01", _detail("ACHR01"))
    with pytest.raises(FormatError, match=r"line 3, field record, .*does not end with CRLF"):
        ach.read_ach(raw.removesuffix(b"\r\n"), "r.txt", "ACHR01")


def test_a_card_number_in_a_note_of_a_return_or_payment_file_is_read_masked():
    """NOTE (40 bytes) and NOTEB (20) can hold a card number; MEMO (10 bytes) cannot hold one."""
    names = {"NOTE": "originator_note", "NOTEB": "originating_bank_note"}
    for public, name in names.items():
        width = dict(build.DETAIL)[public]
        for code in ("ACHR01", "ACHP01"):
            for pan, masked in (
                ("4111 1111 1111 1111", "4111 11** **** 1111"),
                ("4111111111111111", "411111******1111"),
            ):
                detail = _detail(code) | {public: pan.ljust(width).encode("latin-1")}
                [d] = ach.read_ach(_file(code, detail), "f.txt", code).details
                assert d[name] == masked, (public, code, d[name])


# ---------------------------------------------------------------------------- card statement CV
# (0-based slice, valid raw values, invalid raw values), from docs/formats.md §2
CARD_FIELDS: dict[str, tuple[slice, list[str], list[str]]] = {
    "store_id": (
        slice(2, 17),
        ["000012345678901", "A00012345678901"],
        [" 00012345678901", "00001234567890 ", "a00012345678901"],
    ),
    "host_nsu": (slice(17, 29), ["700000000002"], ["11111       ", "111 11111111", " 11111111111"]),
    "txn_date": (slice(29, 37), ["20261120", "20240229"], ["202511 5", " 2026112", "20261131", "2026-11-"]),
    "txn_time": (slice(37, 43), ["103000", "235959"], ["10300 ", " 03000", "246000", "10:300"]),
    "instalment_no": (slice(106, 108), ["01"], [" 1", "1 ", "  "]),
    "bank": (slice(155, 158), ["341"], [" 41", "34 "]),
    "origin_nsu": (slice(347, 353), ["      ", "123456", "123   "], ["   123", "1 1 1 ", "12-456"]),
    "receivable_seq": (slice(376, 378), ["  ", "01"], [" 1", "1 "]),
    "payment_cnpj": (slice(323, 337), ["12345678000199"], ["1234567800019 ", " 2345678000199"]),
}


@st.composite
def card_lines(draw):
    line, broken = list(acquirer_line(2)), set()
    for name, (at, valid, invalid) in CARD_FIELDS.items():
        breaks = draw(st.integers(0, 5)) == 0
        value = draw(st.sampled_from(invalid if breaks else valid))
        if breaks:
            broken.add(name)
        assert len(value) == at.stop - at.start
        line[at] = value
    return "".join(line), broken


@settings(max_examples=300, deadline=None)
@given(case=card_lines())
def test_a_card_statement_record_is_accepted_if_and_only_if_every_field_keeps_its_rule(case):
    line, broken = case
    refused = _refusal(lambda: list(read_statement(io.BytesIO(acquirer_file(line)), "EXTRATO_UNICA_1_20261120_1")))
    if not broken:
        assert refused is None, f"refused a record whose every field is valid: {refused}"
        return
    assert refused is not None, f"accepted a record with {broken} broken"
    assert broken <= _named(refused), f"broken {broken}, named {_named(refused)}: {refused}"


@pytest.mark.parametrize(
    ("name", "at", "value"),
    [
        ("txn_date", slice(29, 37), "202511 5"),  # day ' 5'
        ("host_nsu", slice(17, 29), "11111".ljust(12)),
        ("host_nsu", slice(17, 29), "111 11".rjust(12, "0")),
        ("host_nsu", slice(17, 29), " 11111".rjust(12, "0")),
        ("store_id", slice(2, 17), " 11111111111111"),
        ("record_seq", slice(390, 396), "     2"),  # sequence ' 2' (the record's own number)
    ],
)
def test_each_lenient_card_field_of_the_issue_is_refused_by_line_and_field(name, at, value):
    line = list(acquirer_line(2))
    line[at] = value
    with pytest.raises(FormatError, match=rf"line 2, field {name}, value '{re.escape(value)}'"):
        list(read_statement(io.BytesIO(acquirer_file("".join(line))), "EXTRATO_UNICA_1_20261120_1"))


# ---------------------------------------------------------------------------- CivicaPay cash file
# (1-based columns from docs/formats.md §1, valid raw values, invalid raw values)
CASH_FIELDS: dict[str, tuple[list[str], list[str]]] = {
    "rent_account": (["0001234567", "9999999999"], [" 001234567", "000123456 ", "00012345A7", "0001-34567"]),
    "payment_source": (["CIVICAPAY".ljust(20), "POST OFFICE 12".ljust(20)], [" " * 20, "PAY\x00POINT".ljust(20)]),
    "method": (["DD1", "CSH"], ["dd1", "D 1", "  1", "DD-"]),
    "amount": (["+000123.45", "-000001.00"], [" 000123.45", "+00012345 ", "+000123,45", "+0001 3.45", "000123.45+"]),
    "paid_on": (["01/02/2026", "29/02/2024"], [" 1/02/2026", "01/2/2026 ", "30/02/2026", "2026/02/01", "01-02-2026"]),
    "civica_code": (["07", "99"], [" 7", "7 ", "0A"]),
}


@st.composite
def cash_lines(draw):
    parts, broken = [], set()
    for name, (valid, invalid) in CASH_FIELDS.items():
        breaks = draw(st.integers(0, 5)) == 0
        parts.append(draw(st.sampled_from(invalid if breaks else valid)))
        if breaks:
            broken.add(name)
    line = "".join(parts)
    assert len(line) == 55
    return line, broken


@settings(max_examples=300, deadline=None)
@given(case=cash_lines())
def test_a_cash_record_is_accepted_if_and_only_if_every_field_keeps_its_rule(case):
    from finflows.formats.cashfile import read_rows

    line, broken = case
    data = (line + "\r\n").encode("ascii")
    refused = _refusal(lambda: list(read_rows(io.BytesIO(data), "CashFile20260201.dat")))
    if not broken:
        assert refused is None, f"refused a record whose every field is valid: {refused}"
        return
    assert refused is not None, f"accepted a record with {broken} broken"
    assert broken <= _named(refused), f"broken {broken}, named {_named(refused)}: {refused}"


# ---------------------------------------------------------------------------- chargebacks (JSON records)
# each field of a record: valid JSON values, invalid JSON values (as acquirers' reports and
# docs/formats.md §4 describe them: an ARN is 23 digits as text, an amount whole minor units)
CHARGEBACK_FIELDS: dict[str, tuple[list, list]] = {
    "arn": (
        ["74000000000000000000001"],
        ["7400000000000000000001", "2.47E+22", 74000000000000000000001, "7400000000000000000000A"],
    ),
    "amount_minor": ([12345, 0], ["12345", 123.45, -1, True]),
    "transaction_date": (["2026-10-01"], ["2026-10-1", "20261001", 1730000000, "2026-02-30"]),
    "currency": (["BRL", "USD"], ["brl", "XXX1", "R$"]),
    "stage": (["chargeback", "arbitration"], ["Chargeback", "second chargeback"]),
    "reason_text": (["Merchandise/services not received", ""], ["line\nbreak", "bell\x07", "nul\x00"]),
    "merchant": (["Loja Exemplo"], ["", "esc\x1b[0m"]),
}


@st.composite
def chargeback_records(draw):
    from tests.helpers.chargebacks import record

    rec, broken = record(1), set()
    for name, (valid, invalid) in CHARGEBACK_FIELDS.items():
        breaks = draw(st.integers(0, 5)) == 0
        rec[name] = draw(st.sampled_from(invalid if breaks else valid))
        if breaks:
            broken.add(name)
    return rec, broken


@settings(max_examples=300, deadline=None)
@given(case=chargeback_records())
def test_a_chargeback_record_is_accepted_if_and_only_if_every_field_keeps_its_rule(case):
    import json

    from finflows.formats.chargeback import parse_file

    rec, broken = case
    data = json.dumps({"records": [rec]}).encode()
    refused = _refusal(lambda: parse_file(data, "cb.json"))
    if not broken:
        assert refused is None, f"refused a record whose every field is valid: {refused}"
        return
    assert refused is not None, f"accepted a record with {broken} broken"
    assert broken <= _named(refused), f"broken {broken}, named {_named(refused)}: {refused}"


# ---------------------------------------------------------------------------- tenure events (JSON)
TENURE_FIELDS: dict[str, tuple[list, list]] = {
    "startDate": (["2026-04-01"], ["2026-4-1", "01/04/2026", 1775000000, "2026-02-30"]),
    "numBedrooms": ([2, None], ["2", 2.5, -1, 21]),
    "propertyRef": (["PR00012345"], ["PR-0001", "", "P" * 13]),
    "postCode": (["ZZ1 1ZZ"], ["ZZ1\n1ZZ", "", "Z" * 11]),
    "forename": (["Testy"], ["Tes\tty", ""]),
    "address": (["1 Example Street, Nowhere"], ["1 Example Street\r\nNowhere"]),
}
TENURE_PLACES = {"startDate": "tenure", "numBedrooms": "property", "propertyRef": "property", "postCode": "property"}


@st.composite
def tenure_events(draw):
    from tests.helpers.tenure import event

    ev, broken = event("0b7e4a0e-1111-4222-8333-944445555666", 1), set()
    for name, (valid, invalid) in TENURE_FIELDS.items():
        breaks = draw(st.integers(0, 5)) == 0
        value = draw(st.sampled_from(invalid if breaks else valid))
        place = TENURE_PLACES.get(name, "property" if name == "address" else "tenant")
        (ev["tenure"] if place == "tenure" else ev["tenure"][place])[name] = value
        if breaks:
            broken.add(name)
    return ev, broken


@settings(max_examples=300, deadline=None)
@given(case=tenure_events())
def test_a_tenure_event_is_accepted_if_and_only_if_every_field_keeps_its_rule(case):
    import json

    from finflows.formats.tenure import PoisonMessage, parse_message

    ev, broken = case
    try:
        parse_message(json.dumps(ev))
        refused = None
    except PoisonMessage as e:
        refused = str(e)
    if not broken:
        assert refused is None, f"refused an event whose every field is valid: {refused}"
        return
    assert refused is not None, f"accepted an event with {broken} broken"
    assert all(name in refused for name in broken), f"broken {broken}: {refused}"


# ---------------------------------------------------------------------------- what we write to a bank
@pytest.mark.parametrize("file_format", ["achp01", "csv"])
@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("originator_note", {"name": "王小明 4111 1111 1111 1111"}),
        ("originator_note", {"name": "4111-1111-1111-1111"}),
        ("originator_note", {"name": "4573902238106"}),  # 13 digits, Luhn: what test_round_trip once drew
    ],
)
def test_a_card_number_in_a_text_we_send_refuses_the_payment_naming_the_field_never_the_number(
    file_format, field, change
):
    from tests.formats.test_ach import payment

    p = payment(1, **change)
    write = (lambda: ach.csv_row(BATCH, p, "cp950")) if file_format == "csv" else (lambda: ach.write_achp01(BATCH, [p]))
    with pytest.raises(ach.PaymentError) as e:
        write()
    assert f"field {field}" in str(e.value) and "carries a card number" in str(e.value)
    assert "4111 1111 1111 1111" not in str(e.value) and "4111111111111111" not in str(e.value)
    ach.write_achp01(BATCH, [payment(1, name="王小明 1234567890123")])  # 13 digits, no card (Luhn): written
    # our reference is an identifier, not free text: one that happens to pass the Luhn check is sent
    # (CI refused P37792681-00001 once: 13 digits joined by a dash, Luhn-valid); its CNO leaves the dash out
    assert b"P3779268100001 " in ach.write_achp01(BATCH, [payment(1, reference="P37792681-00001")])
