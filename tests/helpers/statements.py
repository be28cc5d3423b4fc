"""Card statements for tests, the demo and the benchmark: synthetic stores, masked test BINs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from finflows.formats.card_statement import format_detail, format_header, format_trailer

DAY = dt.date(2026, 11, 20)


def detail(seq: int, **changes: Any) -> dict[str, Any]:
    """Values of one CV record (record sequence ``seq``); amounts exact, card masked."""
    gross = Decimal(changes.pop("amount", "100.00"))
    values: dict[str, Any] = {
        "store_id": "000012345678901",
        "host_nsu": f"{700000000000 + seq:012d}",
        "txn_date": DAY,
        "txn_time": dt.time(10, 30, seq % 60),
        "entry_type": "0",
        "entry_date": DAY + dt.timedelta(days=30),
        "product_type": "C",
        "capture_channel": "2",
        "gross": gross,
        "discount": (gross * Decimal("0.02")).quantize(Decimal("0.01")),
        "net": gross - (gross * Decimal("0.02")).quantize(Decimal("0.01")),
        "card": ("411111", "1111"),
        "instalment_no": 1,
        "instalments": 1,
        "instalment_nsu": f"{800000000000 + seq:012d}",
        "bank": "341",
        "branch": "001234",
        "account": "00001234567",
        "auth_code": f"AUT{seq:06d}",
        "brand": "002",
        "product_code": "001",
        "interchange_fee": Decimal("0.50"),
        "admin_fee": Decimal("0.10"),
        "instalment_interchange_fee": Decimal("0"),
        "instalment_admin_fee": Decimal("0"),
        "multi_border_reducer": Decimal("0"),
        "anticipation_fee": Decimal("0"),
        "net_anticipated": Decimal("0"),
        "transaction_type": "00",
        "order_code": f"ORDER-{seq}",
        "country": "BRA",
        "sale_establishment": "123456789",
        "payment_establishment": "123456789",
        "payment_cnpj": "12345678000199",
        "original_due_date": None,
        "debit_balance": " ",
        "resend": " ",
        "origin_nsu": "",
        "receivable_op": "",
        "receivable_seq": "",
        "receivable_type": " ",
        "receivable_amount": "",
        "record_seq": seq,
    }
    values["instalment_gross"] = values["gross"]
    values["instalment_discount"] = values["discount"]
    values["instalment_net"] = values["net"]
    values.update(changes)
    return values


def statement_lines(details: list[dict[str, Any]], day: dt.date = DAY) -> list[str]:
    return [format_header(day)] + [format_detail(**d) for d in details] + [format_trailer(len(details) + 2)]


def statement(details: list[dict[str, Any]] | int = 3, day: dt.date = DAY) -> bytes:
    if isinstance(details, int):
        details = [detail(i + 2) for i in range(details)]
    return "".join(line + "\r\n" for line in statement_lines(details, day)).encode("latin-1")


def name(unique: str, day: dt.date = DAY, seq: int = 1) -> str:
    return f"EXTRATO_UNICA_{int(unique, 16) % 10**9:09d}_{day:%Y%m%d}_{seq}"


# ---------------------------------------------------------------------------- as acquirers send it
def acquirer_line(
    seq: int, card: str = "000411111******1111", txn_date: str = "20261120", txn_time: str = "103000", **text: str
) -> str:
    """A CV record laid out slice by slice from docs/formats.md §2 (not by our writer)."""
    rec = [" "] * 400

    def put(start: int, end: int, value: str) -> None:
        assert len(value) == end - start, (start, end, value)
        rec[start:end] = value

    put(0, 2, "CV")
    put(2, 17, "000012345678901")
    put(17, 29, f"{700000000000 + seq:012d}")
    put(29, 37, txn_date)
    put(37, 43, txn_time)
    put(43, 44, "0")
    put(44, 52, "20261220")
    put(52, 53, "C")
    put(53, 54, "2")
    put(54, 65, "00000010000")
    put(65, 76, "00000000200")
    put(76, 87, "00000009800")
    put(87, 106, card)
    put(106, 108, "01")
    put(108, 110, "01")
    put(110, 122, f"{800000000000 + seq:012d}")
    put(122, 133, "00000010000")
    put(133, 144, "00000000200")
    put(144, 155, "00000009800")
    put(155, 158, "341")
    put(158, 164, "001234")
    put(164, 175, "00001234567")
    put(175, 187, text.get("auth", "AUT000001".ljust(12)))
    put(187, 190, "002")
    put(190, 193, "001")
    for start in range(193, 270, 11):
        put(start, start + 11, "0" * 11)
    put(270, 272, "00")
    put(272, 302, text.get("order", "PEDIDO 1".ljust(30)))
    put(302, 305, "BRA")
    put(305, 314, "123456789")
    put(314, 323, "123456789")
    put(323, 337, "12345678000199")
    put(337, 345, "00000000")
    put(356, 376, text.get("op", " " * 20))
    put(376, 378, text.get("op_seq", "  "))
    put(378, 379, text.get("op_type", " "))
    put(379, 390, text.get("op_amount", " " * 11))
    put(390, 396, f"{seq:06d}")
    return "".join(rec)


def acquirer_file(*details: str) -> bytes:
    """A0 header (laid out from docs/formats.md §2, not by our writer), the details, A9 trailer; CRLF."""
    header = "A0V10.0020261120060000000001" + "ACQUIRER LOCAL TEST".ljust(30) + "ACQ " + "FINFLOWS " + "N000001"
    lines = [header.ljust(400), *details, f"A9{len(details) + 2:06d}{len(details) + 2:06d}".ljust(400)]
    return "".join(line + "\r\n" for line in lines).encode("latin-1")


# ---------------------------------------------------------------------------- the inboxes a card run reads
def empty_inboxes(s3_hook, bucket: str) -> None:
    """Empty both inboxes a card_reconciliation run reads, the S3 prefix and the acquirer's FTPS
    ``/Saida``: a run loads everything waiting, and a file an earlier suite left there (the chaos
    day's hostile statement stays on the acquirer's server) is read again by a fresh database."""
    from finflows.hooks.ftp import FTPSHook

    waiting = s3_hook.list_keys(bucket_name=bucket, prefix="statements/") or []
    if waiting:
        s3_hook.delete_objects(bucket=bucket, keys=waiting)
    ftps = FTPSHook(ftp_conn_id="ftps_acquirer")
    try:
        for path in ftps.list_directory("/Saida"):
            ftps.delete_file(path if path.startswith("/") else f"/Saida/{path}")
    finally:
        ftps.close_conn()
