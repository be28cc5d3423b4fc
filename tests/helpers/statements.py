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
