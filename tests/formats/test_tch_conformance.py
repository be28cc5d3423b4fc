"""Taiwan ACH against the clearing house's public tables, not against our own writer.

Every file here is built by tests/helpers/tch.py from the public V10 layout tables; the code tables
(transaction codes, return reasons, units) are the public ones shipped in include/banking/tch/.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from finflows.flows.banking import banks
from finflows.formats import ach, tch
from finflows.formats.fixedwidth import FieldError, FormatError
from tests.formats.test_ach import BATCH, REF_PAYMENTS, payment
from tests.helpers import tch as build

RETURN_DAY = dt.date(2026, 11, 23)
PAYEE_BANK_UNIT = "0081005"


def p01_details(payments=REF_PAYMENTS) -> list[dict]:
    return [
        build.payment_detail(
            seq=p.seq,
            txid=p.txn_code,
            pbank=BATCH.sending_unit,
            pclno=BATCH.presenting_account,
            rbank=p.receiving_bank,
            rclno=p.receiving_account,
            amount=p.amount,
            cid=BATCH.payer_id,
            pid=p.payee_id,
            cno=build.cno(p.reference),
            note=p.name,
            memo=p.memo,
        )
        for p in payments
    ]


def returns_file(reasons: dict[int, str], sorg: str = PAYEE_BANK_UNIT) -> bytes:
    """The payee's bank answers BATCH: one R detail per returned payment (seq → reason)."""
    originals = {d["SEQ"]: d for d in p01_details()}
    details = [
        build.return_of(originals[s], seq=n, rcode=r, pdate=BATCH.processing_date)
        for n, (s, r) in enumerate(sorted(reasons.items()), start=1)
    ]
    return build.file("ACHR01", RETURN_DAY, sorg, details, ydate=dt.date(2026, 11, 20))


# ---------------------------------------------------------------------------- ACHR01
def test_a_return_built_from_the_public_layout_reads_with_the_sides_swapped():
    f = ach.read_ach(returns_file({1: "04", 3: "22"}), "r.txt", "ACHR01")
    first, second = f.details
    ours = REF_PAYMENTS[0]
    # PBANK/PCLNO: the returning (payee's) unit and account; RBANK/RCLNO: ours
    assert (first["presenting_bank"], first["presenting_account"].lstrip("0")) == (
        ours.receiving_bank,
        ours.receiving_account,
    )
    assert (first["receiving_bank"], first["receiving_account"]) == (BATCH.sending_unit, BATCH.presenting_account)
    assert (first["original_date"], first["original_seq"], first["return_reason"]) == (
        BATCH.processing_date,
        "00000001",
        "04",
    )
    assert (second["customer_number"], second["original_seq"], second["return_reason"]) == (
        "GOLD00003",  # our reference GOLD-00003, its dash left out (the tables' CNO is letters and digits)
        "00000003",
        "22",
    )
    assert f.trailer["previous_business_day"] == dt.date(2026, 11, 20)
    assert f.header["sending_unit"] == f.trailer["sending_unit"] == PAYEE_BANK_UNIT


def test_our_return_writer_matches_the_public_layout_byte_for_byte():
    returned = [(REF_PAYMENTS[0], "04"), (REF_PAYMENTS[2], "22")]
    batch = ach.Batch(RETURN_DAY, dt.time(17), PAYEE_BANK_UNIT, "0", "00000000", dt.date(2026, 11, 20))
    assert ach.write_achr01(batch, BATCH, returned) == returns_file({1: "04", 3: "22"})


@pytest.mark.parametrize("code", sorted(tch.return_codes()))
def test_every_return_reason_of_the_table_is_read_and_keeps_its_meaning(code):
    if "SC" not in tch.return_codes()[code].applies:
        with pytest.raises(FormatError, match=f"value '{code}'.*does not apply to SC"):
            ach.read_ach(returns_file({2: code}), "r.txt", "ACHR01")
        return
    [d] = ach.read_ach(returns_file({2: code}), "r.txt", "ACHR01").details
    assert d["return_reason"] == code
    assert tch.describe_return(code).startswith(f"{code} ") and "(" in tch.describe_return(code)


def test_the_table_has_the_public_codes_and_no_success_code():
    assert sorted(tch.return_codes()) == [f"{n:02d}" for n in (*range(1, 14), *range(22, 29), 91, 99)]
    assert tch.describe_return("04") == "04 no such account (無此帳號)"


def test_a_success_code_is_read_only_where_the_bank_sends_one():
    data = returns_file({1: "00", 2: "04"})
    with pytest.raises(FormatError, match=r"line 2, field return_reason, value '00'"):
        ach.read_ach(data, "r.txt", "ACHR01")
    assert [d["return_reason"] for d in ach.read_ach(data, "r.txt", "ACHR01", success_codes={"00"}).details] == [
        "00",
        "04",
    ]


def test_every_problem_of_a_bad_return_is_named_at_once():
    originals = p01_details()
    bad = [
        build.return_of(originals[0], seq=1, rcode="AB", pdate=BATCH.processing_date),
        build.return_of(originals[1], seq=2, rcode="04", pdate=BATCH.processing_date) | {"PSEQ": "0000002X"},
        build.return_of(originals[2], seq=3, rcode="04", pdate=BATCH.processing_date) | {"TYPE": "N"},
    ]
    data = build.file(
        "ACHR01", RETURN_DAY, PAYEE_BANK_UNIT, bad, ydate=dt.date(2026, 11, 20), trailer={"SORG": "8120012"}
    )
    with pytest.raises(FormatError) as e:
        ach.read_ach(data, "r.txt", "ACHR01")
    got = {(x.line, x.field, x.value) for x in e.value.errors}
    assert {
        (2, "return_reason", "AB"),
        (3, "original_seq", "0000002X"),
        (4, "record_type", "N"),
        (5, "sending_unit", "8120012"),
    } <= got


# ---------------------------------------------------------------------------- ACHP01 rules
def test_an_achp01_with_its_ydate_filled_is_refused():
    """The public ACHP01 layout fills YDATE with blanks (it is the ACHR01's previous business day)."""
    data = build.file("ACHP01", BATCH.processing_date, BATCH.sorg, p01_details(), ydate=dt.date(2026, 11, 19))
    with pytest.raises(FormatError, match=r"line 6, field previous_business_day, value '01151119': must be blank"):
        ach.read_ach(data, "p.txt", "ACHP01")


def test_our_writer_leaves_ydate_blank_in_an_achp01():
    trailer = ach.write_achp01(BATCH, REF_PAYMENTS).split(b"\r\n")[-2]
    assert trailer[55:63] == b" " * 8


def test_a_transaction_code_must_agree_with_the_class_it_travels_in():
    sd_in_sc = build.file("ACHP01", BATCH.processing_date, BATCH.sorg, [p01_details()[0] | {"TXID": "530"}])
    with pytest.raises(FormatError, match=r"field txn_code, value '530': is 慈善捐款, a collection \(SD\)"):
        ach.read_ach(sd_in_sc, "p.txt")
    sd = build.file("ACHP01", BATCH.processing_date, BATCH.sorg, [p01_details()[0] | {"TXID": "704", "TXTYPE": "SD"}])
    assert ach.read_ach(sd, "p.txt").details[0]["txn_class"] == "SD"  # a collection file of 704 is fine


def test_the_transaction_code_table_is_the_public_one():
    codes = tch.txn_codes()
    assert (codes["101"].txn_class, codes["704"].txn_class, codes["530"].txn_class) == ("SC", "SD", "SD")
    assert codes["405"].name == "貨款" and len(codes) == 238


# ---------------------------------------------------------------------------- units
def test_units_follow_the_public_table_and_the_check_digit():
    table = json.loads((tch.TABLES / "branches.json").read_text(encoding="utf-8"))
    units = table["units"]
    assert len(units) == len(set(units)) == 4185 and units == sorted(units)  # the whole public table
    whole = tch.branches()
    assert whole.whole and len(whole.complete) == 276
    # the 7-3-1 check digit holds for every bank the table says follows it; 009 and the credit
    # cooperatives (101, 102, ...) use another rule, which the table itself shows
    checked = [u for u in units if u[3:] != "0000" and u[:3] not in whole.exempt]
    assert len(checked) > 3000 and all(tch.check_digit(u) == int(u[6]) for u in checked)
    assert {"009", "101"} <= whole.exempt and not {"004", "017", "812", "822"} & whole.exempt
    assert all(tch.unit_problem(u) is None for u in units)
    assert tch.check_digit("0070017") == 8 and "check digit" in tch.unit_problem("0070017")
    assert "check digit" in tch.unit_problem("8080019")  # the two units banks.yaml had
    assert "not in the clearing house's unit table for bank 812" in tch.unit_problem("8120034")
    assert tch.unit_problem("0092200") is None  # 009's units follow another rule: the table lists them
    assert tch.unit_name("8120012") == "台新國際營業部"


@pytest.mark.parametrize(
    ("unit", "why"),
    [
        ("0000000", "no bank 000 in it"),  # passed before: a head-office-shaped code of no bank
        ("9990000", "no bank 999 in it"),
        ("9990250", "no bank 999 in it"),  # the clearing house receives files; it is no payee's unit
        (
            "8220004",
            "not in the clearing house's unit table for bank 822",
        ),  # right digit; CTBC's head office is 8220000
        ("8220011", "check digit"),  # 822001 ends in 5 (8220015 is CTBC Dunbei)
        ("1010012", "not in the clearing house's unit table for bank 101"),  # a cooperative: no 7-3-1 to lean on
        ("7000000", "not in the clearing house's unit table for bank 700"),  # the post office lists 7000010/21 only
    ],
)
def test_a_unit_the_public_table_does_not_list_is_refused_by_name(unit, why):
    assert why in tch.unit_problem(unit)


def test_the_public_file_itself_dropped_in_place_is_authoritative_for_every_bank(tmp_path):
    path = tmp_path / "branch.json"
    path.write_text(json.dumps([{"code": "8120012", "name": "台新國際營業部", "head": "8120000"}]), encoding="utf-8")
    whole = tch.branches(str(path))
    assert whole.whole and whole.complete == {"812"} and "8120012" in whole.names


def test_bank_configuration_refuses_units_codes_and_settlement_that_do_not_fit(bank_yaml_raw):
    data = bank_yaml_raw
    data["banks"]["first"]["sending_unit"] = "0070017"
    data["banks"]["esun"]["sending_unit"] = "8080019"
    data["banks"]["mega"]["default_txn_code"] = "704"
    data["banks"]["ctbc"]["success_code"] = "04"
    data["banks"]["taishin"]["sending_org"] = "8120034"
    with pytest.raises(banks.BankConfigError) as e:
        banks.parse(data, env=dict.fromkeys(_vars(data), "X"))
    text = str(e.value)
    for needed in (
        "bank first, field sending_unit",
        "0070017 has a wrong check digit: 007001 ends in 8",
        "bank esun, field sending_unit",
        "bank mega, field default_txn_code",
        "a collection (SD)",
        "bank ctbc, field success_code",
        "bank taishin, field sending_org",
    ):
        assert needed in text, text


def _vars(data) -> set[str]:
    import re

    return set(re.findall(r"\$\{([A-Z0-9_]+)\}", json.dumps(data)))


@pytest.fixture
def bank_yaml_raw():
    import yaml

    raw = yaml.safe_load(banks.DEFAULT_FILE.read_text(encoding="utf-8"))
    env = dict.fromkeys(_vars(raw), "0")
    env["FINFLOWS_ACH_COMPANY_ID"] = "12345675"
    for k in env:
        if "FPR" in k:
            env[k] = "A" * 40
    banks.parse(raw, env=env)  # the shipped file is valid as it stands
    return raw


# ---------------------------------------------------------------------------- Big5, PID, errors
@pytest.mark.parametrize("name", ["€100", "碁石", "銹", "▓"])
def test_cp950_extensions_only_where_the_bank_allows_them(name):
    data = name.encode("cp950")
    assert ach.cp950_only(data) is not None
    with pytest.raises(ach.PaymentError, match=r"cp950 extension, not Big5"):
        ach.write_achp01(BATCH, [payment(name=name, reference="EXT-1")])
    with pytest.raises(ach.PaymentError, match=r"EXT-1.*cp950 extension"):
        ach.write_csv(BATCH, [payment(name=name, reference="EXT-1")], "cp950")
    written = ach.write_achp01(BATCH, [payment(name=name)], extensions=True)
    assert ach.read_ach(written, "x.txt").details[0]["originator_note"] == name  # reading takes cp950


def test_a_plain_big5_name_is_not_taken_for_an_extension():
    for name in ("王小明", "兆豐國際商業銀行", "ＡＢＣ股份有限公司"):
        assert ach.cp950_only(name.encode("cp950")) is None


def test_a_blank_value_is_shown_as_blank_in_errors():
    assert str(FieldError(3, "return_reason", "", "is not a return reason")) == (
        "line 3, field return_reason, value (blank): is not a return reason"
    )
    with pytest.raises(ach.PaymentError, match=r"field txn_code, value \(blank\): no transaction code"):
        ach.check_payment(BATCH, payment(txn_code=None), "achp01", "cp950")


def test_a_trailer_in_roc_year_000_is_named_not_a_crash():
    """Found by a mutation fuzzer: 000 as the ROC year decoded to 1911 and the error message then
    crashed writing it back; now the reader names the line and the field."""
    data = returns_file({1: "04"})
    lines = data.split(b"\r\n")
    last = lines[-2]  # the trailer (EOF); TDATE at bytes 11-18 as the public layout places it
    lines[-2] = last[:10] + b"00001123" + last[18:]
    with pytest.raises(FormatError) as e:
        ach.read_ach(b"\r\n".join(lines), "r.txt", "ACHR01")
    assert any(x.line == len(lines) - 1 and "ROC year 000" in x.reason for x in e.value.errors), e.value.errors


@pytest.mark.parametrize("tail", [b"\r\n", b"\r\n\r\n", b"\x1a"], ids=["blank line", "two blank lines", "Ctrl-Z"])
def test_nothing_after_the_eof_record_but_blank_lines_or_ctrl_z_is_accepted(tail):
    data = returns_file({1: "04", 3: "22"})
    f = ach.read_ach(data + tail, "r.txt", "ACHR01")
    assert [d["return_reason"] for d in f.details] == ["04", "22"] and f.trailer["total_count"]


def test_a_blank_line_between_records_is_named_as_a_record_of_the_wrong_length():
    lines = returns_file({1: "04", 3: "22"}).split(b"\r\n")
    data = b"\r\n".join([*lines[:2], b"", *lines[2:]])
    with pytest.raises(FormatError) as e:
        ach.read_ach(data, "r.txt", "ACHR01")
    assert (3, "record") in {(x.line, x.field) for x in e.value.errors}
