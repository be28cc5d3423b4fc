"""CivicaPay cash file (``.dat``): 55-character fixed-width payment records (docs/formats.md §1).

``read_rows`` streams a binary file and yields each record as COPY text; every bad line is
collected and, at the end, one ``FormatError`` names them all. A caller that loads as it reads
(COPY inside a transaction) rolls back on that error, so memory stays flat and nothing of a bad
file remains.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from finflows.formats.fixedwidth import (
    Date,
    Digits,
    Errors,
    Field,
    FileNameRefused,
    Layout,
    MaskedText,
    Pattern,
    ReadStats,
    SignedDecimal,
)

LAYOUT = Layout(
    name="civicapay-cashfile",
    length=55,
    fields=(
        Field("rent_account", 1, 10, Digits()),
        # free text a counterparty fills: a card number written there is masked before it is stored
        Field("payment_source", 11, 20, MaskedText(required=True)),
        Field("method", 31, 3, Pattern(r"[A-Z0-9]{3}", "3 capital letters or digits")),
        Field("amount", 34, 10, SignedDecimal(places=2)),
        Field("paid_on", 44, 10, Date("%d/%m/%Y")),
        Field("civica_code", 54, 2, Digits()),
    ),
)

_NAME = re.compile(r"(?i)^cash[ _-]?file[ _-]?(\d{4})-?(\d{2})-?(\d{2})\.dat$")


def normalise_name(name: str) -> str:
    """``cashfile_2026-01-15.DAT`` → ``CashFile20260115.dat``; refuses a name with no real date."""
    base = name.rsplit("/", 1)[-1]
    m = _NAME.match(base)
    if not m:
        raise FileNameRefused(base, "does not look like CashFileYYYYMMDD.dat")
    try:
        day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise FileNameRefused(base, "does not name a real payment date") from None
    return f"CashFile{day:%Y%m%d}.dat"


@dataclass
class CashFileStats(ReadStats):
    total: Decimal = Decimal(0)


def _nowhere(row: str) -> None:
    raise AssertionError("a row for other= without known accounts")


def read_rows(
    stream: BinaryIO,
    file_name: str,
    stats: CashFileStats | None = None,
    encoding: str = "ascii",
    *,
    prefix: str = "",
    known: Container[str] | None = None,
    other: Callable[[str], object] | None = None,
) -> Iterator[str]:
    """Yield ``prefix + line number + TAB + COPY text of the record`` (columns ``LAYOUT.copy_columns``)
    for each record the layout's full parse accepts (the tests hold it to that oracle,
    ``tests/helpers/cash.read_cashfile``), converted for PostgreSQL's COPY (a date as ISO, an
    amount as numeric text) by the layout's generated row function; one FormatError at the end.
    With ``known``, a record whose rent account is not in it goes to ``other`` instead (the
    suspense rows). The hot loop of the cash import: one regex match and
    one f-string per record, nothing else."""
    stats = stats if stats is not None else CashFileStats()
    if known is not None and other is None:
        raise TypeError("read_rows: with known accounts, other= must take the rest")
    to_other: Callable[[str], object] = other if other is not None else _nowhere  # not called without known
    errors = Errors(LAYOUT, encoding)
    match, row_of = LAYOUT.fast_path()
    amount, account = LAYOUT.group_index("amount"), LAYOUT.group_index("rent_account")
    cents = records = line_no = 0
    try:
        for line_no, raw_bytes in enumerate(stream, start=1):
            try:
                line = raw_bytes.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as e:
                errors.undecodable(line_no, raw_bytes, e)
                continue
            if (m := match(line)) is not None:
                g = m.groups()
                try:
                    row = row_of(g)
                except ValueError:  # a date the calendar refuses: explained below
                    pass
                else:
                    records += 1
                    cents += int(g[amount].replace(".", ""))
                    if known is None or g[account] in known:
                        yield f"{prefix}{line_no}\t{row}"
                    else:
                        to_other(f"{prefix}{line_no}\t{row}")
                    continue
            if line.strip() and errors.explain(line_no, line) is not None:  # the two disagree: a layout bug
                raise AssertionError(f"line {line_no}: the layout's fast path refused a valid record")
    finally:
        stats.lines, stats.records, stats.total = line_no, records, Decimal(cents).scaleb(-2)
    errors.close(file_name, stats.lines, stats.records, what="payment records")


def format_record(**values: object) -> str:
    """One 55-character record (used by tests, demos and benchmarks to make files)."""
    return LAYOUT.format(values)
