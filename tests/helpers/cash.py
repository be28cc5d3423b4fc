"""Synthetic CivicaPay cash files for tests (no real account numbers)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from finflows.formats.cashfile import LAYOUT, CashFileStats, format_record
from finflows.formats.fixedwidth import Errors

KNOWN_ACCOUNTS = [f"90000000{i:02d}" for i in range(10)]  # synthetic rent accounts seeded by the tests
UNKNOWN_ACCOUNT = "9999999999"


def cash_lines(n: int, day: dt.date, unknown: int = 0, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        account = UNKNOWN_ACCOUNT if i < unknown else rnd.choice(KNOWN_ACCOUNTS)
        lines.append(
            format_record(
                rent_account=account,
                payment_source=rnd.choice(["CIVICAPAY", "POST OFFICE"]),
                method=rnd.choice(["DD1", "CSH", "CRD"]),
                amount=Decimal(rnd.randint(100, 99999)) / 100,
                paid_on=day,
                civica_code=f"{rnd.randint(1, 20):02d}",
            )
        )
    return lines


def cash_file(n: int, day: dt.date, unknown: int = 0, seed: int = 1) -> bytes:
    return "".join(line + "\r\n" for line in cash_lines(n, day, unknown, seed)).encode("ascii")


def total(data: bytes) -> Decimal:
    return sum((Decimal(line[33:43]) for line in data.decode().splitlines() if line.strip()), Decimal(0))


def random_day(rnd: random.Random | None = None) -> dt.date:
    rnd = rnd or random.Random()
    return dt.date(1950, 1, 1) + dt.timedelta(days=rnd.randrange(50 * 365))


def read_cashfile(
    stream: BinaryIO, file_name: str, stats: CashFileStats | None = None, encoding: str = "ascii"
) -> Iterator[tuple[int, str, tuple]]:
    """The oracle the production reader (``cashfile.read_rows``, one regex and a generated row per
    record) is held to: every record through the layout's full field-by-field parse, yielding
    ``(line number, raw line, values)``; one ``FormatError`` listing every bad line at the end."""
    stats = stats if stats is not None else CashFileStats()
    errors = Errors(LAYOUT, encoding)
    for line_no, line in errors.lines(stream, stats):
        parsed = errors.explain(line_no, line)
        if parsed is not None:
            stats.records += 1
            stats.total += parsed[3]
            yield line_no, line, parsed
    errors.close(file_name, stats.lines, stats.records, what="payment records")
