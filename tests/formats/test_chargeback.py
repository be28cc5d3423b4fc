"""Chargeback records and CSV: pure Python, no Airflow, no services."""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from finflows.formats.chargeback import (
    MAX_FILES_PER_BATCH,
    Brand,
    Chargeback,
    amount_text,
    neutralise,
    parse_file,
    plan_batches,
    to_csv,
)
from finflows.formats.fixedwidth import FormatError
from tests.helpers.chargebacks import record


def test_a_valid_record_round_trips_through_csv_module_and_pandas():
    recs = [Chargeback.model_validate(record(i)) for i in range(3)]
    data = to_csv(recs)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert [r["case_id"] for r in rows] == [r.case_id for r in recs]
    assert rows[0]["arn"] == recs[0].arn and rows[0]["amount"] == "123.45"
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    assert df["arn"].tolist() == [r.arn for r in recs]  # 23 digits survive as text
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 4  # RFC 4180 line ends, a header


@pytest.mark.parametrize(
    ("currency", "minor", "text"),
    [("JPY", 1234, "1234"), ("BHD", 1234, "1.234"), ("BRL", 1234, "12.34"), ("USD", 5, "0.05")],
)
def test_amounts_use_the_currencys_own_minor_units(currency, minor, text):
    assert amount_text(minor, currency) == text


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"])
def test_formula_cells_are_neutralised(payload):
    rec = Chargeback.model_validate(record(0, merchant=payload, reason_text=payload))
    row = next(csv.DictReader(io.StringIO(to_csv([rec]).decode(), newline="")))
    assert row["merchant"] == "'" + payload and row["reason_text"] == "'" + payload
    assert neutralise("plain") == "plain"


@pytest.mark.parametrize(
    "cell",
    [
        'refund;=HYPERLINK("http://x")',  # Excel with ";" as its list separator (pt-BR, Europe)
        "a,=1+1",
        "a|@SUM(1)",
        "a\t-2+3",
        "  =1+1",  # leading spaces
        "x; +cmd",
    ],
)
def test_a_formula_after_any_separator_is_neutralised(cell):
    out = neutralise(cell)
    for part in re.split(r"[,;\t|]", out):
        assert not part.lstrip(" ").startswith(("=", "+", "-", "@")), (cell, out)


def test_free_text_never_carries_a_card_number_to_the_card_company():
    assert neutralise("cardholder says 4111 1111 1111 1111 not theirs") == (
        "cardholder says 4111 11** **** 1111 not theirs"
    )


def test_json_nested_too_deeply_is_refused_by_name():
    with pytest.raises(FormatError, match="nested too deeply"):
        parse_file(b"[" * 100_000 + b"]" * 100_000, "deep.json")


def test_tab_and_cr_led_cells_are_neutralised_too():
    assert neutralise("\tcmd") == "'\tcmd" and neutralise("\rcmd") == "'\rcmd"
    # a record never brings one: a value with blanks around it is refused, not trimmed (#41)
    with pytest.raises(ValidationError, match="merchant"):
        Chargeback.model_validate(record(0, merchant="\t=cmd"))
    rec = Chargeback.model_validate(record(0, merchant="=cmd"))
    assert next(csv.DictReader(io.StringIO(to_csv([rec]).decode(), newline="")))["merchant"] == "'=cmd"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reason_code", " 4853"),
        ("reason_code", "4853 "),
        ("case_id", "CB-1 "),
        ("currency", " BRL"),
        ("status", "open "),
    ],
)
def test_a_value_with_blanks_around_it_is_refused_not_trimmed(field, value):
    """The issue's leniency: ' 4853' was read as the Mastercard code 4853 (str_strip_whitespace)."""
    data = json.dumps([record(0) | {field: value}]).encode()
    with pytest.raises(FormatError) as e:
        parse_file(data, "blanks.json")
    [error] = e.value.errors
    assert error.field == field and "taken exactly as written" in error.reason


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("arn", "2.47E+22", "E-notation"),
        ("arn", 24712345678901234567890, "string of 23 digits"),
        ("arn", "1234", "exactly 23 digits"),
        ("masked_card", "4111111111111111", "full card number is refused"),
        ("currency", "XYZ", "ISO 4217"),
        ("reason_code", "13.1", "not a mastercard reason code"),
        ("stage", "appeal", "Input should be"),
        ("amount_minor", -5, "greater than or equal to 0"),
        ("transaction_date", "2026-02-31", "date"),
    ],
)
def test_an_invalid_record_refuses_the_whole_file_naming_index_field_and_value(field, value, message):
    rows = [record(0), record(1, **({"brand": "mastercard", "reason_code": "4853"} | {field: value}))]
    with pytest.raises(FormatError) as err:
        parse_file(json.dumps(rows).encode(), "cb.json")
    [e] = err.value.errors
    assert e.line == 1 and (e.field == field or field in ("reason_code",)) and message in e.reason
    if field == "masked_card":
        assert e.value == "411111******1111"  # echoed masked, never in full
    elif field != "reason_code":
        assert str(value)[:20] in e.value


def test_files_that_are_not_json_lists_are_refused():
    for data in (b"\xff\xfe", b"{}", b"[]", b'{"records": 3}', b"not json"):
        with pytest.raises(FormatError, match="field file"):
            parse_file(data, "cb.json")
    assert len(parse_file(json.dumps({"records": [record(0)]}).encode(), "cb.json")) == 1


brands = st.sampled_from(list(Brand))


@given(st.lists(brands, max_size=200), st.integers(1, 30), st.integers(1, MAX_FILES_PER_BATCH))
def test_no_batch_ever_has_more_than_four_files_and_every_record_goes_exactly_once(chosen, max_rows, max_files):
    recs = [Chargeback.model_validate(record(i, **_brand_fields(b))) for i, b in enumerate(chosen)]
    batches = plan_batches(recs, max_rows_per_file=max_rows, max_files=max_files)
    assert all(1 <= len(b) <= max_files for b in batches)
    assert all(len(rows) <= max_rows for b in batches for rows in b.values())
    assert all(r.brand == brand for b in batches for brand, rows in b.items() for r in rows)
    placed = [r.case_id for b in batches for rows in b.values() for r in rows]
    assert sorted(placed) == sorted(r.case_id for r in recs)


def test_five_card_companies_make_a_second_batch_not_a_fifth_file():
    recs = [Chargeback.model_validate(record(i, **_brand_fields(b))) for i, b in enumerate(list(Brand) * 2)]
    extra = [Chargeback.model_validate(record(99, **_brand_fields(Brand.VISA)))]
    batches = plan_batches(recs + extra, max_rows_per_file=2)
    assert [len(b) for b in batches] == [4, 1]


def _brand_fields(brand: Brand) -> dict:
    return {
        "brand": brand.value,
        "reason_code": {"visa": "13.1", "mastercard": "4853", "elo": "53", "amex": "C08"}[brand.value],
    }


def test_the_destinations_file_is_validated_naming_the_company_and_the_field(tmp_path):
    """include/chargeback_destinations.json, validated as banks.yaml is."""
    import json

    from finflows.flows.chargeback_export import chargeback

    shipped = chargeback.load_config()
    assert set(shipped.destinations) == {"visa", "mastercard", "elo", "amex"}
    assert shipped.destinations[chargeback.Brand.ELO].model_dump() == {
        "conn_id": "ftp_elo",
        "protocol": "ftp",
        "directory": "/inbound",
        "upload_check": "size",  # the default: SIZE after the .part is written
        "rename": True,
    }
    raw = json.loads(chargeback.CONFIG.read_text())
    for change, message in (
        ({"visa": {"conn_id": "ftps_visa", "protocol": "sftp", "directory": "/inbound"}}, "destinations visa protocol"),
        ({"amex": {"conn_id": "ftp_amex", "protocol": "ftp", "directory": "inbound"}}, "destinations amex directory"),
        ({"diners": {"conn_id": "ftp_d", "protocol": "ftp", "directory": "/in"}}, "destinations diners"),
        ({"elo": {"conn_id": "ftp_elo", "protocol": "ftp"}}, "destinations elo directory: Field required"),
        (
            {"elo": {"conn_id": "ftp_elo", "protocol": "ftp", "directory": "/in", "rename": "sometimes"}},
            "destinations elo rename",
        ),
    ):
        path = tmp_path / "chargeback_destinations.json"
        path.write_text(json.dumps(raw | {"destinations": raw["destinations"] | change}))
        with pytest.raises(ValueError, match=message):
            chargeback.load_config(path)


@pytest.mark.parametrize("char", ["\x00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85"])
def test_a_control_character_in_any_text_cell_is_refused_naming_record_and_field(char):
    """Issue #41: NUL and other control characters went from the JSON into the card company's CSV."""
    rows = [record(0), record(1, merchant=f"Loja{char}Centro")]
    with pytest.raises(FormatError) as e:
        parse_file(json.dumps({"records": rows}).encode(), "cb.json")
    [err] = e.value.errors
    assert (err.line, err.field) == (1, "merchant") and f"U+{ord(char):04X}" in err.reason
