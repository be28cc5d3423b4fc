"""ACHP01/ACHR01 (docs/formats.md §3): byte-exact writing, Big5 by bytes, ROC dates, reading back."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finflows import pci
from finflows.formats import ach
from finflows.formats.fixedwidth import FormatError
from tests.helpers import tch

BATCH = ach.Batch(
    processing_date=dt.date(2026, 11, 20),
    created_at=dt.time(6, 0, 0),
    sending_unit="0172026",
    presenting_account="0100000000000001",
    payer_id="12345675",
)


def payment(seq: int = 1, **kw) -> ach.Payment:
    values = {
        "seq": seq,
        "reference": f"REF-{seq:05d}",
        "receiving_bank": "0081005",
        "receiving_account": "123456789012",
        "amount": 1500,
        "payee_id": "A123456789",
        "name": "王小明",
        "memo": "貨款",
        "txn_code": "405",
    }
    return ach.Payment(**(values | kw))


# fmt: off
REF_PAYMENTS = [
    payment(1, reference="GOLD-00001"),
    payment(2, reference="GOLD-00002", receiving_bank="8120023", receiving_account="9876543210", amount=20000,
            payee_id="B223456789", name="ＡＢＣ股份有限公司１２３", memo="薪資", txn_code="101"),
    payment(3, reference="GOLD-00003", receiving_bank="0040037", receiving_account="55", amount=1,
            payee_id="12345675", name="臺灣銀行股份有限公司台北分行營業部門一二", memo="五個中文字"),
    payment(4, reference="GOLD-00004", receiving_bank="8120012", receiving_account="1", amount=9_999_999_999,
            payee_id="C123456789", name="ACME TRADING CO LTD TAIPEI BRANCH 00001", memo=""),
]
# fmt: on


def reference_file(payments=REF_PAYMENTS) -> bytes:
    """The ACHP01 for BATCH and ``payments`` built from the public layout table (tests/helpers/tch.py)."""
    return tch.file(
        "ACHP01",
        BATCH.processing_date,
        BATCH.sorg,
        [
            tch.payment_detail(
                seq=p.seq,
                txid=p.txn_code,
                pbank=BATCH.sending_unit,
                pclno=BATCH.presenting_account,
                rbank=p.receiving_bank,
                rclno=p.receiving_account,
                amount=p.amount,
                cid=BATCH.payer_id,
                pid=p.payee_id,
                cno=tch.cno(p.reference),
                note=p.name,
                memo=p.memo,
            )
            for p in payments
        ],
        ttime="060000",
    )


REFERENCE = reference_file()


def test_our_writer_matches_the_file_built_from_the_public_layout_byte_for_byte():
    assert ach.write_achp01(BATCH, REF_PAYMENTS) == REFERENCE


def test_reference_file_positions():
    records = REFERENCE.split(b"\r\n")
    assert records[-1] == b"" and all(len(r) == 250 for r in records[:-1])
    header, second, trailer = records[0], records[2], records[-2]
    assert header[:9] == b"BOFACHP01" and header[9:17] == b"01151120" and header[30:37] == b"9990250"
    assert second[60:70] == b"0000020000" and second[72] == ord("B")
    assert second[136:176].decode("cp950").rstrip() == "ＡＢＣ股份有限公司１２３"
    assert trailer[31:39] == b"00000004" and trailer[39:55] == b"0000010000021500"  # 1,500 + 20,000 + 1 + 9,999,999,999
    assert trailer[55:63] == b"        "  # YDATE: blank in an ACHP01


def test_an_achp01_from_the_public_layout_reads_with_a_blank_ydate():
    f = ach.read_ach(REFERENCE, "ref.txt", "ACHP01")
    assert f.trailer["previous_business_day"] is None
    assert [(d["customer_number"], d["txn_code"], d["receiving_bank"]) for d in f.details] == [
        (tch.cno(p.reference), p.txn_code, p.receiving_bank) for p in REF_PAYMENTS
    ]


def test_the_sending_org_can_differ_from_the_presenting_unit():
    batch = ach.Batch(**(BATCH.__dict__ | {"sending_org": "0170000"}))
    records = ach.write_achp01(batch, REF_PAYMENTS[:1]).split(b"\r\n")
    assert records[0][23:30] == b"0170000" and records[-2][17:24] == b"0170000"  # SORG: Mega's head office
    assert records[1][14:21] == b"0172026"  # PBANK: our branch


def test_a_field_filled_exactly_to_its_byte_width_keeps_every_byte():
    data = ach.write_achp01(BATCH, [payment(name="一" * 20, memo="二" * 5)])
    record = data.split(b"\r\n")[1]
    assert record[136:176] == "一".encode("cp950") * 20
    assert record[176:186] == "二".encode("cp950") * 5
    assert record[186:191] == b"00000"  # the next field starts where it should


def test_a_two_byte_character_that_would_straddle_the_boundary_is_refused_not_cut():
    with pytest.raises(ach.PaymentError) as e:
        ach.write_achp01(BATCH, [payment(reference="STRADDLE-1", name="A" * 39 + "王")])
    assert e.value.reference == "STRADDLE-1"
    assert "STRADDLE-1" in str(e.value) and "originator_note" in str(e.value) and "41 bytes" in str(e.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("王小明😀", "cannot be encoded in Big5"),
        ("𠮷野家", "cannot be encoded in Big5"),
        ("Ǹ", "cannot be encoded"),
        ("¢5", "no exact Big5 form"),
    ],  # cp950 would send ¢ as the full-width ￠
)
def test_an_unencodable_character_is_refused_with_the_payment_named(name, reason):
    with pytest.raises(ach.PaymentError) as e:
        ach.write_achp01(BATCH, [payment(), payment(2, reference="BAD-NAME-1", name=name)])
    assert "BAD-NAME-1" in str(e.value) and reason in str(e.value)
    assert "?" not in str(e.value).split(":")[0]


@pytest.mark.parametrize("file_format", ["achp01", "csv"])
def test_a_refused_payment_names_itself_and_the_field_never_the_payees_data(file_format):
    """The error reaches XCom, the log and treasury's email: reference and field, not who is paid."""
    bad = payment(2, reference="BAD-PAYEE-1", name="陳大文😀", payee_id="a123456789", receiving_account="12-34")
    with pytest.raises(ach.PaymentError) as e:
        ach.check_payment(BATCH, bad, file_format, "cp950")
    text = str(e.value)
    assert "BAD-PAYEE-1" in text and ("payee_id" in text or "payee_name" in text or "originator_note" in text)
    for personal in ("陳大文", "a123456789", "12-34"):
        assert personal not in text, text


def test_full_width_characters_count_two_bytes_each():
    ach.check_payment(BATCH, payment(name="ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴ"), "achp01", "cp950")  # 20 × 2 = 40
    with pytest.raises(ach.PaymentError, match="42 bytes"):
        ach.check_payment(BATCH, payment(name="ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵ"), "achp01", "cp950")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("amount", 0, "whole NTD amount"),
        ("amount", 10_000_000_000, "whole NTD amount"),
        ("receiving_account", "12345678901234567", "at most 16 digits"),
        ("receiving_account", "12-34", "at most 16 digits"),
        ("receiving_bank", "82209", "exactly 7 digits"),
        ("receiving_bank", "0070017", "check digit"),
        ("receiving_bank", "8120034", "not in the clearing house's unit table"),
        ("payee_id", "王12345678", "printable ASCII"),
        ("payee_id", "a123456789", "upper-case"),
        ("payee_id", "123456789", "8 (company tax id) or 10"),
        ("txn_code", "704", "a collection (SD)"),
        ("txn_code", "100", "not in the clearing house's transaction-code table"),
        ("txn_code", None, "no transaction code"),
        ("reference", "X" * 21, "longer than 20"),
    ],
)
def test_bad_payment_fields_are_named(field, value, reason):
    with pytest.raises(ach.PaymentError) as e:
        ach.check_payment(BATCH, payment(**{field: value}), "achp01", "cp950")
    assert field.replace("reference", "customer_number") in str(e.value) or field == "amount"
    if reason:
        assert reason in str(e.value)


def test_roc_dates():
    codec = ach.RocDate()
    assert codec.encode(dt.date(2026, 1, 15), 8) == "01150115"
    assert codec.decode("01150115") == dt.date(2026, 1, 15)
    assert codec.decode("00890101") == dt.date(2000, 1, 1)
    for bad in ("01150230", "11150115", "0115013 ", "20260115"):
        with pytest.raises(ValueError, match=r"is not a date \(expected an ROC date"):
            codec.decode(bad)
    assert ach.RocDate(optional=True).decode("        ") is None
    with pytest.raises(ValueError, match="ROC year 000"):  # blank is spaces, as the layout fills it
        ach.RocDate(optional=True).decode("00000000")


def test_the_fast_formatter_and_the_field_by_field_format_agree():
    constants = ach._detail_constants(BATCH)
    fast = ach.DETAIL.formatter(ach.PAYMENT_FIELDS, constants)
    for p in REF_PAYMENTS:
        values = ach._detail_values(p)
        assert fast(*values) == ach.DETAIL.format(constants | dict(zip(ach.PAYMENT_FIELDS, values, strict=True)))


def test_read_the_reference_file():
    f = ach.read_ach(REFERENCE, "ref.txt", "ACHP01")
    assert f.header["processing_date"] == dt.date(2026, 11, 20)
    assert [d["originator_note"] for d in f.details] == [p.name for p in REF_PAYMENTS]
    assert f.total == Decimal(10_000_021_500) and f.trailer["total_count"] == "00000004"


def _records(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


def _join(records: list[bytes]) -> bytes:
    return b"\r\n".join(records) + b"\r\n"


@pytest.mark.parametrize(
    ("mutate", "line", "field", "reason"),
    [
        (lambda r: r[:2] + r[3:], 5, "total_count", "3 detail record"),  # a detail lost
        (lambda r: [r[0], r[1][:249], *r[2:]], 2, "record", "249 bytes"),
        (lambda r: [r[0], r[1][:60] + b"00000015X0" + r[1][70:], *r[2:]], 2, "amount", ""),
        (lambda r: [r[0], r[1][:136] + b"\xff\xff" + r[1][138:], *r[2:]], 2, "originator_note", "Big5"),
        (lambda r: [r[0], r[1][:72] + b"X" + r[1][73:], *r[2:]], 2, "exchange_order", ""),
        (lambda r: r[:-1], 5, "eof", ""),  # no trailer: the last detail is read as one
        (lambda r: [r[0][:9] + b"01150230" + r[0][17:], *r[1:]], 1, "processing_date", "is not a date"),
    ],
)
def test_bad_files_name_line_field_and_value(mutate, line, field, reason):
    with pytest.raises(FormatError) as e:
        ach.read_ach(_join(mutate(_records(REFERENCE))), "bad.txt")
    hits = [err for err in e.value.errors if err.field == field and err.line == line]
    assert hits, e.value
    assert reason in hits[0].reason


def test_a_file_with_bare_lf_endings_is_refused():
    with pytest.raises(FormatError, match=r"CRLF|bare LF"):
        ach.read_ach(REFERENCE.replace(b"\r\n", b"\n"), "lf.txt")


def test_an_empty_file_is_refused():
    with pytest.raises(FormatError, match="empty"):
        ach.read_ach(b"", "empty.txt")


def test_csv_variant():
    data = ach.write_csv(BATCH, REF_PAYMENTS[:2], "cp950")
    rows = ach.read_csv(data, "x.csv", "cp950")
    assert data.startswith(b"seq,processing_date,") and data.endswith(b"\r\n")
    assert [r["payee_name"] for r in rows] == ["王小明", "ＡＢＣ股份有限公司１２３"]
    assert rows[1]["amount"] == "20000" and rows[1]["processing_date"] == "2026-11-20"
    with pytest.raises(ach.PaymentError, match=r"CSV-1.*cannot be encoded in cp950"):
        ach.write_csv(BATCH, [payment(reference="CSV-1", name="😀")], "cp950")
    assert "😀".encode() in ach.write_csv(BATCH, [payment(name="😀")], "utf-8")  # a UTF-8 bank takes it


def test_file_names():
    assert ach.file_name("ACHP01_{BANK}_{YYYYMMDD}_{BATCH}.txt", dt.date(2026, 1, 5), 7, "017") == (
        "ACHP01_017_20260105_007.txt"
    )


# every character Big5 (cp950) can hold in one or two bytes, except controls
_big5 = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")).filter(lambda c: _encodable(c) and c not in "\r\n")


def _encodable(c: str) -> bool:
    try:
        data = c.encode("cp950")
    except UnicodeEncodeError:
        return False
    return data.decode("cp950") == c and ach.cp950_only(data) is None  # strict Big5: the writer's default


def _fits(width: int):
    """Text of at most ``width`` Big5 bytes that carries no card number (one the writer refuses by
    design, issue #41: ``test_field_rules.test_a_card_number_in_a_text_we_send_refuses_…``)."""
    return (
        st.text(_big5, max_size=width)
        .map(str.rstrip)
        .filter(lambda s: len(s.encode("cp950")) <= width and pci.mask_pans(s) == s)
    )


_payments = st.builds(
    ach.Payment,
    seq=st.just(0),
    reference=st.from_regex(r"[0-9A-Z-]{1,20}", fullmatch=True),
    receiving_bank=st.sampled_from(["0081005", "8120023", "0040037", "0172026", "0092200", "8081366"]),
    receiving_account=st.from_regex(r"[0-9]{1,16}", fullmatch=True),
    amount=st.integers(1, ach.MAX_AMOUNT),
    payee_id=st.from_regex(r"[A-Z0-9]{8}|[A-Z0-9]{10}", fullmatch=True),
    name=_fits(40),
    memo=_fits(10),
    txn_code=st.sampled_from(["101", "405", "499"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_payments, min_size=1, max_size=20))
def test_round_trip(payments):
    payments = [ach.Payment(**(p.__dict__ | {"seq": i})) for i, p in enumerate(payments, start=1)]
    data = ach.write_achp01(BATCH, payments)
    assert len(data) == 252 * (len(payments) + 2)
    back = ach.read_ach(data, "rt.txt", "ACHP01")
    assert [
        (
            d["customer_number"],
            d["originator_note"],
            d["passbook_memo"],
            int(d["amount"]),
            d["receiving_account"].lstrip("0") or "0",
        )
        for d in back.details
    ] == [(tch.cno(p.reference), p.name, p.memo, p.amount, p.receiving_account.lstrip("0") or "0") for p in payments]
    assert int(back.trailer["total_count"]) == len(payments) and back.total == sum(p.amount for p in payments)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=800), st.integers(0, 1500))
def test_reader_fails_only_with_format_error(noise, at):
    good = REFERENCE
    for data in (noise, good[:at] + noise + good[at:]):
        with contextlib.suppress(FormatError):
            ach.read_ach(data, "fuzz.txt")


@pytest.mark.parametrize("name", ["王\r\n小明", "line\nbreak"])
def test_a_line_break_in_a_name_is_refused_by_the_fast_path_too(name):
    with pytest.raises(ach.PaymentError, match=r"REF-00001: field originator_note.*line break"):
        ach.write_achp01(BATCH, [payment(name=name)])
