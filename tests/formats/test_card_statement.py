"""Card statement reader: layout, header/trailer/sequence checks, every bad case, properties."""

from __future__ import annotations

import contextlib
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finflows.formats.card_statement import COPY_COLUMNS, DETAIL, StatementStats, read_statement
from finflows.formats.fixedwidth import FormatError, RecordError
from tests.helpers.statements import acquirer_file, acquirer_line, detail, statement, statement_lines


def read(data: bytes) -> tuple[list[str], StatementStats]:
    stats = StatementStats()
    return list(read_statement(io.BytesIO(data), "EXTRATO_UNICA_1_20261120_1", stats)), stats


def errors_of(data: bytes) -> FormatError:
    with pytest.raises(FormatError) as e:
        read(data)
    return e.value


def test_reads_details_as_copy_rows_with_totals():
    rows, stats = read(statement(3))
    assert len(rows) == 3 and stats.details == 3 and stats.lines == 5
    assert stats.gross == Decimal("300.00") and stats.net == Decimal("294.00")
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert cols["gross"] == "000000100.00" and cols["txn_date"] == "2026-11-20"
    assert cols["txn_time"] == "103002"  # HHMMSS as the file has it: PostgreSQL's own input form (ISO 8601 basic)
    assert (cols["card_bin"], cols["card_last4"]) == ("411111", "1111")
    assert cols["original_due_date"] == cols["debit_balance"] == "\\N"
    assert cols["record_seq"] == "000002" and cols["order_code"] == "ORDER-2"
    assert (cols["store_id"], cols["product_type"], cols["product_code"]) == ("000012345678901", "C", "001")


def test_the_reader_holds_the_dimension_members_its_rows_name_until_there_are_too_many(monkeypatch):
    """The stores, sale and entry dates and products of the rows, held for the loader's dimension
    upserts; past MEMBERS_HELD none are (the loader then reads them from the facts)."""
    import datetime as dt

    from finflows.formats import card_statement

    day = dt.date(2026, 11, 2)
    rows, stats = read(
        statement(
            [
                detail(
                    i + 2,
                    store_id=f"0000000000{i % 3:05d}",
                    txn_date=day + dt.timedelta(days=i % 2),
                    entry_date=day + dt.timedelta(days=30 + i),
                    product_type="CDV"[i % 3],
                    product_code=f"{1 + i % 2:03d}",
                )
                for i in range(4)
            ]
        )
    )
    cols = [dict(zip(COPY_COLUMNS, r.split("\t"), strict=True)) for r in rows]
    assert stats.members is not None
    assert stats.members.stores == {c["store_id"] for c in cols} == {f"0000000000{i:05d}" for i in range(3)}
    days = {c[k].replace("-", "") for c in cols for k in ("txn_date", "entry_date")}
    assert stats.members.days == days and len(days) == 6
    assert (
        stats.members.products
        == {c["product_type"] + c["product_code"] for c in cols}
        == {"C001", "D002", "V001", "C002"}
    )
    monkeypatch.setattr(card_statement, "MEMBERS_HELD", 12)
    assert read(statement(4))[1].members is not None  # 1 store, 2 days, 1 product
    monkeypatch.setattr(card_statement, "MEMBERS_HELD", 3)
    assert read(statement(4))[1].members is None


def test_lf_line_ends_and_latin1_text_are_read():
    lines = statement_lines([detail(2, order_code="PEDIDO AÇÃO")])
    rows, _ = read("\n".join(lines).encode("latin-1") + b"\n")
    assert "PEDIDO AÇÃO" in rows[0]


def _bad(lines: list[str]) -> str:
    return str(errors_of("".join(line + "\r\n" for line in lines).encode("latin-1")))


def test_no_trailer():
    assert "no A9 trailer" in _bad(statement_lines([detail(2)])[:-1])


def test_trailer_count_mismatch():
    lines = statement_lines([detail(2), detail(3)])
    lines[-1] = "A9000009000004".ljust(400)
    msg = _bad(lines)
    assert "line 4, field total_records, value '000009': says 9 records but the file has 4" in msg


def test_sequence_gap():
    msg = _bad(statement_lines([detail(2), detail(4)]))
    assert "line 3, field record_seq, value '000004': breaks the sequence: expected 000003" in msg


def test_short_record():
    lines = statement_lines([detail(2)])
    lines[1] = lines[1][:350]
    assert "line 2, field record" in _bad(lines) and "is 350 characters long, expected 400" in _bad(lines)


def test_bad_amount():
    lines = statement_lines([detail(2)])
    lines[1] = lines[1][:54] + "0000001O0.5" + lines[1][65:]
    assert "line 2, field gross, value '0000001O0.5': must be 11 digits with 2 implied decimals" in _bad(lines)


def test_impossible_date():
    lines = statement_lines([detail(2)])
    lines[1] = lines[1][:29] + "20260231" + lines[1][37:]
    assert "line 2, field txn_date, value '20260231': is not a date (expected YYYYMMDD)" in _bad(lines)


def test_unknown_brand():
    lines = statement_lines([detail(2)])
    lines[1] = lines[1][:187] + "003" + lines[1][190:]
    assert "line 2, field brand, value '003': is not one of 001 (Mastercard), 002 (Visa), 007 (Elo)" in _bad(lines)


def test_unmasked_card_is_refused_and_never_echoed():
    lines = statement_lines([detail(2)])
    lines[1] = lines[1][:87] + "4111111111111111   " + lines[1][106:]
    msg = _bad(lines)
    assert "line 2, field card" in msg and "more than BIN + last four" in msg
    assert "4111111111111111" not in msg and "411111******1111" in msg


def test_header_must_come_first_and_nothing_after_the_trailer():
    lines = statement_lines([detail(2)])
    assert "the file has no A0 header" in _bad(lines[1:])
    assert "comes after the A9 trailer" in _bad([*lines, lines[1]])


def test_empty_file():
    assert "is empty" in str(errors_of(b""))


def test_every_bad_line_is_reported_in_one_error():
    lines = statement_lines([detail(2), detail(3), detail(4)])
    for i in (1, 3):
        lines[i] = lines[i][:187] + "009" + lines[i][190:]
    err = errors_of("".join(x + "\r\n" for x in lines).encode("latin-1"))
    assert [(e.line, e.field) for e in err.errors] == [(2, "brand"), (4, "brand")]


money = st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gross=money,
    discount=money,
    nsu=st.integers(0, 10**12 - 1),
    order=st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=30
    ),
)
def test_round_trip_format_then_read(gross, discount, nsu, order):
    d = detail(2, gross=gross, discount=discount, host_nsu=f"{nsu:012d}", order_code=order)
    rows, stats = read(statement([d]))
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert Decimal(cols["gross"]) == gross and Decimal(cols["discount"]) == discount
    assert cols["host_nsu"] == f"{nsu:012d}" and stats.gross == gross
    expected = order.rstrip(" ").replace("\\", "\\\\")
    assert cols["order_code"] == (expected or "\\N")


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, 399), ch=st.characters(min_codepoint=32, max_codepoint=126))
def test_fast_path_accepts_exactly_what_the_full_parse_accepts(pos, ch):
    line = statement_lines([detail(2)])[1]
    mutated = line[:pos] + ch + line[pos + 1 :]
    try:
        DETAIL.parse(mutated)
        parsed = True
    except RecordError:
        parsed = False
    try:
        DETAIL.copy_row(mutated)
        copied = True
    except RecordError:
        copied = False
    assert parsed == copied


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_only_format_errors(data):
    with contextlib.suppress(FormatError):  # anything else fails the test
        read(data)


# ---------------------------------------------------------------------------- as acquirers send it
@pytest.mark.parametrize(
    "card", ["000411111******1111", "   411111******1111", "411111******1111   ", "0000522222*****4444"]
)
def test_a_card_field_right_aligned_and_left_filled_loads_bin_and_last_four(card):
    rows, _ = read(acquirer_file(acquirer_line(2, card)))
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert (cols["card_bin"], cols["card_last4"]) == (card.strip(" ").lstrip("0")[:6], card.strip()[-4:])


@pytest.mark.parametrize(
    ("card", "shown"),
    [
        ("0004111111111**1111", "411111******1111"),  # 14 digits visible
        ("0004111111111111111", "411111******1111"),  # unmasked
        ("4111111111111111   ", "411111******1111"),
    ],
)
def test_a_card_field_showing_more_than_bin_and_last_four_is_refused_and_echoed_masked(card, shown):
    e = errors_of(acquirer_file(acquirer_line(2, card)))
    [err] = [x for x in e.errors if x.field == "card"]
    assert err.value == shown and "more than BIN + last four" in err.reason
    assert "4111111111" not in str(e)


def test_a_card_number_in_free_text_is_masked_before_it_is_stored_or_echoed():
    pan = "4111111111111111"  # Luhn-valid test number
    line = acquirer_line(2, "000411111******1111", auth=pan[:12], order=f"REF {pan} X".ljust(30))
    rows, _ = read(acquirer_file(line))
    assert pan not in rows[0]
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert cols["order_code"] == "REF 411111******1111 X"
    bad = acquirer_line(2, "000411111******1111", order=f"REF {pan} X".ljust(30))
    bad = bad[:29] + "20261131" + bad[37:]  # and an error on the same line
    e = errors_of(acquirer_file(bad))
    assert pan not in str(e) and pan not in json_dumps(e.report())


def json_dumps(value) -> str:
    import json

    return json.dumps(value, default=str)


def test_the_receivable_amount_is_a_number_with_two_implied_decimals():
    line = acquirer_line(
        2, "000411111******1111", op="00000000000000012345", op_seq="01", op_type="C", op_amount="00000012345"
    )
    rows, _ = read(acquirer_file(line, acquirer_line(3, "000411111******1111")))
    first, second = (dict(zip(COPY_COLUMNS, r.split("\t"), strict=True)) for r in rows)
    assert first["receivable_amount"] == "000000123.45" and second["receivable_amount"] == "\\N"


def test_trailing_blank_lines_are_tolerated_but_a_blank_line_between_records_is_not():
    data = acquirer_file(acquirer_line(2, "000411111******1111"))
    rows, stats = read(data + b"\r\n\r\n   \r\n")
    assert len(rows) == 1 and stats.lines == 3
    lines = data.split(b"\r\n")
    e = errors_of(b"\r\n".join([lines[0], b"", *lines[1:]]))
    assert any(x.line == 2 and "empty line" in x.reason for x in e.errors)


def test_a_missing_header_is_one_error_not_one_per_line():
    details = [acquirer_line(n, "000411111******1111") for n in (2, 3, 4)]
    lines = [*details, "A9000005000005".ljust(400)]
    e = errors_of("".join(line + "\r\n" for line in lines).encode("latin-1"))
    assert [(x.line, x.field) for x in e.errors] == [(1, "record_type")] and "no A0 header" in e.errors[0].reason


card_fields = st.builds(
    lambda fill, bin6, stars, last4, right, pad: (
        (bin6 + "*" * stars + last4).rjust(19, fill) if right else (bin6 + "*" * stars + last4).ljust(19, pad)
    ),
    st.sampled_from("0 "),
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.integers(1, 10),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.booleans(),
    st.sampled_from(" 0*"),
) | st.text(alphabet="0123456789* ", min_size=19, max_size=19)


@settings(max_examples=300, deadline=None)
@given(card_fields)
def test_the_card_field_is_read_alike_by_the_record_regex_and_by_its_codec(card):
    """The record regex takes the common form (zero-filled BIN, six '*', last four) itself and
    hands any other to MaskedCard.decode: both ways give the same BIN and last four, or refuse."""
    from finflows.formats.fixedwidth import MaskedCard

    line = statement_lines([detail(2)])[1]
    start = DETAIL.fields[DETAIL.names.index("card")].slice.start
    line = line[:start] + card[:19] + line[start + 19 :]
    try:
        expected = MaskedCard().decode(card[:19])
    except ValueError:
        expected = None
    try:
        cols = dict(zip(COPY_COLUMNS, DETAIL.copy_row(line).split("\t"), strict=True))
        got = (cols["card_bin"], cols["card_last4"])
    except RecordError:
        got = None
    assert got == expected


def test_a_nul_in_free_text_is_refused_by_the_reader_not_the_database():
    lines = statement_lines([detail(2), detail(3, order_code="ORDER\x003")])
    err = errors_of("".join(line + "\r\n" for line in lines).encode("latin-1"))
    assert {(x.line, x.field) for x in err.errors} == {(3, "order_code")} and "NUL" in str(err)


def test_a_card_number_written_in_groups_in_free_text_is_masked():
    rows, _ = read(statement([detail(2, order_code="4111 1111 1111 1111")]))
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert cols["order_code"] == "4111 11** **** 1111"


def test_the_receivable_operation_number_is_an_identifier_read_as_digits_not_scanned():
    """Issue #43: receivable_op [356:376] is an operation number: 20 characters or blank (docs/formats.md
    §2; syncrocardpay's validator checks the same), digits. Kept as it is (masking would corrupt an
    identifier, and 20 digits in a row are no card number); anything else is refused by name."""
    op = "00004111111111111111"  # ends in a Luhn-valid 16-digit run: still one 20-digit identifier
    rows, _ = read(acquirer_file(acquirer_line(2, "000411111******1111", op=op)))
    cols = dict(zip(COPY_COLUMNS, rows[0].split("\t"), strict=True))
    assert cols["receivable_op"] == op
    blank = dict(zip(COPY_COLUMNS, read(acquirer_file(acquirer_line(2)))[0][0].split("\t"), strict=True))
    assert blank["receivable_op"] == "\\N"  # blank: NULL
    for bad in ("OP1".ljust(20), "4111111111111111".ljust(20), " " + "1" * 19, "1234567890123456789X"):
        e = errors_of(acquirer_file(acquirer_line(2, "000411111******1111", op=bad)))
        [err] = [x for x in e.errors if x.field == "receivable_op"]
        assert err.reason == "must be 20 digits, or blank", err.reason
        assert "4111111111111111" not in str(e)  # a refused value is still echoed masked
