"""CivicaPay cash file reader: pure Python, no Airflow, no services."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finflows.formats.cashfile import LAYOUT, format_record, normalise_name, read_rows
from finflows.formats.fixedwidth import FormatError
from tests.helpers.cash import read_cashfile

GOOD = "0001234567CIVICAPAY           DD1+000123.4501/02/202307"


def read(text: str) -> list[tuple]:
    """The records as the oracle (the layout's full parse) reads them: typed values."""
    return list(read_cashfile(io.BytesIO(text.encode()), "CashFile20230201.dat"))


def load(data: bytes, name: str = "CashFile20230201.dat") -> list[str]:
    """What the flow's reader yields (``read_rows``): the refusals below are its own."""
    return list(read_rows(io.BytesIO(data), name))


def errors_of(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(FormatError) as e:
        load(text.encode())
    return [(x.line, x.field, x.value) for x in e.value.errors]


def test_the_documented_example_parses_exactly():
    [(line_no, raw, values)] = read(GOOD + "\n")
    assert (line_no, raw) == (1, GOOD)
    assert dict(zip(LAYOUT.names, values, strict=True)) == {
        "rent_account": "0001234567",
        "payment_source": "CIVICAPAY",
        "method": "DD1",
        "amount": Decimal("123.45"),
        "paid_on": dt.date(2023, 2, 1),
        "civica_code": "07",
    }


def test_amounts_are_exact_decimals_and_negative_amounts_keep_their_sign():
    line = GOOD[:33] + "-000000.10" + GOOD[43:]
    [(_, _, values)] = read(line + "\r\n")
    assert values[3] == Decimal("-0.10") and isinstance(values[3], Decimal)


def test_blank_lines_are_ignored_and_line_numbers_stay_true():
    rows = read(f"\n{GOOD}\n   \n{GOOD}\n")
    assert [r[0] for r in rows] == [2, 4]


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        (GOOD[:-1], "record", GOOD[:-1]),  # bad length
        (GOOD[:33] + "*000123.45" + GOOD[43:], "amount", "*000123.45"),  # bad sign
        (GOOD[:33] + "+0001X3.45" + GOOD[43:], "amount", "+0001X3.45"),  # bad amount
        (GOOD[:33] + "+000123,45" + GOOD[43:], "amount", "+000123,45"),  # comma decimal
        (GOOD[:43] + "31/02/2023" + GOOD[53:], "paid_on", "31/02/2023"),  # impossible date
        ("00012345A7" + GOOD[10:], "rent_account", "00012345A7"),  # non-digit account
        (GOOD[:53] + "7 ", "civica_code", "7 "),
        (GOOD[:10] + " " * 20 + GOOD[30:], "payment_source", " " * 20),
    ],
)
def test_each_bad_field_is_named_with_line_and_value(line, field, value):
    assert errors_of(f"{GOOD}\n{line}\n") == [(2, field, value)]


def test_every_bad_line_is_reported_in_one_error():
    bad = GOOD[:43] + "31/02/2023" + GOOD[53:]
    text = "\n".join([GOOD, bad, GOOD, "00012345A7" + GOOD[10:], GOOD[:20]])
    with pytest.raises(FormatError) as e:
        load(text.encode())
    assert [(x.line, x.field) for x in e.value.errors] == [(2, "paid_on"), (4, "rent_account"), (5, "record")]
    msg = str(e.value)
    assert "CashFile20230201.dat: 3 error(s)" in msg and "line 2, field paid_on, value '31/02/2023'" in msg


def test_an_empty_file_is_refused():
    assert errors_of("") == [(0, "file", "")]
    assert errors_of("\n\n") == [(2, "file", "")]


def test_non_ascii_bytes_are_refused_with_the_line():
    with pytest.raises(FormatError) as e:
        load(GOOD.encode() + b"\n\xff" + GOOD[1:].encode(), "x.dat")
    assert (e.value.errors[0].line, e.value.errors[0].field) == (2, "record")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CashFile20260115.dat", "CashFile20260115.dat"),
        ("cashfile_2026-01-15.DAT", "CashFile20260115.dat"),
        ("CASH-FILE20260115.dat", "CashFile20260115.dat"),
        ("cashfiles/CashFile20260115.dat", "CashFile20260115.dat"),
    ],
)
def test_file_names_are_normalised(name, expected):
    assert normalise_name(name) == expected


@pytest.mark.parametrize("name", ["payments.dat", "CashFile20260231.dat", "CashFile2026011.dat"])
def test_file_names_without_a_real_date_are_refused(name):
    """Refused by the name rule: the error is a FileNameRefused, which the quarantine report, the
    control row and the email call rule ``name`` (a layout error naming a field is not one)."""
    from finflows import files
    from finflows.formats.fixedwidth import FieldError, FileNameRefused

    with pytest.raises(FileNameRefused, match="file_name") as refused:
        normalise_name(name)
    assert files.refusal_for(refused.value) is files.Refusal.NAME
    layout = FormatError(name, [FieldError(1, "file_name", name, "a field that happens to be called so")])
    assert files.refusal_for(layout) is files.Refusal.LAYOUT


records = st.fixed_dictionaries(
    {
        "rent_account": st.from_regex(r"\A[0-9]{10}\Z"),
        "payment_source": st.from_regex(r"\A[A-Z][A-Z0-9 ]{0,18}[A-Z0-9]\Z").map(str.strip).filter(bool),
        "method": st.from_regex(r"\A[A-Z0-9]{3}\Z"),
        "amount": st.decimals(min_value=Decimal("-999999.99"), max_value=Decimal("999999.99"), places=2),
        "paid_on": st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2099, 12, 31)),
        "civica_code": st.from_regex(r"\A[0-9]{2}\Z"),
    }
)


@given(st.lists(records, min_size=1, max_size=20))
def test_round_trip_format_then_read(rows):
    text = "".join(format_record(**r) + "\r\n" for r in rows)
    assert all(len(line) == 55 for line in text.split("\r\n")[:-1])
    parsed = [dict(zip(LAYOUT.names, v, strict=True)) for _, _, v in read(text)]
    assert parsed == rows


@given(st.binary(max_size=400))
def test_arbitrary_bytes_fail_only_with_the_formats_own_error(data):
    with contextlib.suppress(FormatError):
        load(data, "fuzz.dat")


near_records = st.builds(
    lambda base, edits: "".join(edits.get(i, c) for i, c in enumerate(base)),
    st.just(GOOD),
    st.dictionaries(st.integers(0, 54), st.sampled_from(list("0123456789 +-./AZaz\t\\")), max_size=4),
)


@given(st.one_of(near_records, st.text(min_size=55, max_size=55)))
def test_the_fast_path_agrees_with_the_full_parse(record):
    """copy_row (one regex, a generated row, memoised dates) must accept exactly what parse accepts."""
    from finflows.formats.fixedwidth import RecordError

    outcomes = []
    for judge in (LAYOUT.parse, LAYOUT.copy_row):
        try:
            judge(record)
            outcomes.append(True)
        except RecordError:
            outcomes.append(False)
    assert outcomes[0] is outcomes[1]


def _both(text: str):
    """(read_cashfile's outcome, read_rows' outcome): records or the errors, and the stats."""
    from finflows.formats.cashfile import CashFileStats, read_rows

    out = []
    for reader in (read_cashfile, read_rows):
        stats = CashFileStats()
        try:
            got = list(reader(io.BytesIO(text.encode("latin-1")), "x.dat", stats))
            if reader is read_rows:  # "line number TAB COPY text" → (line number, COPY text)
                got = [(int(r.split("\t", 1)[0]), r.split("\t", 1)[1]) for r in got]
        except FormatError as e:
            got = ("error", e.total, [(x.line, x.field, x.value, x.reason) for x in e.errors])
        out.append((got, (stats.lines, stats.records, stats.total)))
    return out


def test_copy_rows_carry_exactly_the_values_the_full_parse_reads():
    text = (GOOD + "\r\n") * 2 + "\n" + GOOD[:10] + "PAYPOINT 12         CSH-000010.0129/02/202412\n"
    (parsed, full), (rows, fast) = _both(text)
    assert full == fast == (4, 3, Decimal("236.89"))
    assert [n for n, _, _ in parsed] == [n for n, _ in rows] == [1, 2, 4]
    for (_, _, v), (_, row) in zip(parsed, rows, strict=True):
        account, source, method, amount, paid_on, code = row.split("\t")
        assert (account, source, method, code) == (v[0], v[1], v[2], v[5])
        assert Decimal(amount) == v[3] and dt.date.fromisoformat(paid_on) == v[4]
    assert rows[2][1].split("\t")[1:5] == ["PAYPOINT 12", "CSH", "-000010.01", "2024-02-29"]


@given(st.lists(st.one_of(near_records, st.just(""), st.just("   ")), min_size=1, max_size=6))
def test_copy_rows_accept_and_refuse_exactly_what_the_full_parse_does(lines):
    """Same lines, same errors (line, field, value, reason), same counts and totals."""
    (parsed, full), (rows, fast) = _both("\r\n".join(lines) + "\r\n")
    assert full == fast
    if parsed and parsed[0] == "error":
        assert rows == parsed
    else:
        assert [n for n, _, _ in parsed] == [n for n, _ in rows]


def test_copy_rows_route_unknown_accounts_elsewhere_with_their_prefix():
    from finflows.formats.cashfile import read_rows

    other_account = "0009999999" + GOOD[10:]
    text = f"{GOOD}\r\n{other_account}\r\n{GOOD}\r\n".encode()
    elsewhere: list[str] = []
    rows = list(read_rows(io.BytesIO(text), "x", prefix="7\t", known={GOOD[:10]}, other=elsewhere.append))
    assert [r.split("\t")[:3] for r in rows] == [["7", "1", GOOD[:10]], ["7", "3", GOOD[:10]]]
    assert [r.split("\t")[:3] for r in elsewhere] == [["7", "2", "0009999999"]]


def test_copy_rows_refuse_an_impossible_date_the_regex_lets_through():
    from finflows.formats.cashfile import read_rows

    rows = read_rows(io.BytesIO((GOOD + "\n" + GOOD[:43] + "30/02/2023" + GOOD[53:]).encode()), "x")
    with pytest.raises(FormatError, match="line 2, field paid_on"):
        list(rows)


def test_a_date_error_reads_as_finance_people_write_dates():
    from tests.helpers.cash import cash_lines

    line = cash_lines(1, dt.date(2026, 11, 20))[0]
    bad = line[:43] + "31/02/2026" + line[53:]
    with pytest.raises(FormatError) as e:
        load((bad + "\r\n").encode(), "CashFile20261120.dat")
    assert "line 1, field paid_on, value '31/02/2026': is not a date (expected DD/MM/YYYY)" in str(e.value)


def test_a_nul_in_free_text_is_refused_by_the_reader_not_the_database():
    """Found by a mutation fuzzer: a NUL passed both readers and failed the COPY in PostgreSQL
    (the task errored and was retried instead of quarantining the file)."""
    bad = GOOD[:12] + "\x00" + GOOD[13:]  # inside payment_source
    (parsed, _), (rows, _) = _both(GOOD + "\r\n" + bad + "\r\n")
    assert parsed == rows and parsed[0] == "error"
    [(line, field, _value, reason)] = parsed[2]
    assert (line, field) == (2, "payment_source") and "NUL" in reason


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("CashFile20261123.dat", True),
        ("../../etc/cron.d/x.dat", False),
        ("..", False),
        ("sub/dir.dat", False),
        ("a\\..\\b.dat", False),
        ("line\nbreak.dat", False),
    ],
)
def test_only_plain_names_from_the_sftp_drop_are_taken(name, ok):
    from finflows.flows.cashfile_import.tasks import drop_name_ok

    assert drop_name_ok(name) is ok
