"""CivicaPay cash file (``.dat``): 55-character fixed-width payment records (formats.md §1).

``read_cashfile`` streams a binary file and yields ``(line_no, raw_line, values)`` for each
record; every bad line is collected and, at the end, one ``FormatError`` names them all. A
caller that loads as it reads (COPY inside a transaction) rolls back on that error, so memory
stays flat and nothing of a bad file remains.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from finflows.formats.fixedwidth import (
    Date,
    Digits,
    Field,
    FieldError,
    FormatError,
    Layout,
    Pattern,
    RecordError,
    SignedDecimal,
    Text,
)

LAYOUT = Layout(
    name="civicapay-cashfile",
    length=55,
    fields=(
        Field("rent_account", 1, 10, Digits()),
        Field("payment_source", 11, 20, Text(required=True)),
        Field("method", 31, 3, Pattern(r"[A-Z0-9]{3}", "3 capital letters or digits")),
        Field("amount", 34, 10, SignedDecimal(places=2)),
        Field("paid_on", 44, 10, Date("%d/%m/%Y")),
        Field("civica_code", 54, 2, Digits()),
    ),
)
COLUMNS = LAYOUT.names

_NAME = re.compile(r"(?i)^cash[ _-]?file[ _-]?(\d{4})-?(\d{2})-?(\d{2})\.dat$")


def normalise_name(name: str) -> str:
    """``cashfile_2026-01-15.DAT`` → ``CashFile20260115.dat``; refuses a name with no real date."""
    base = name.rsplit("/", 1)[-1]
    m = _NAME.match(base)
    if not m:
        raise FormatError(base, [FieldError(0, "file_name", base, "does not look like CashFileYYYYMMDD.dat")])
    try:
        day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise FormatError(base, [FieldError(0, "file_name", base, "does not name a real payment date")]) from None
    return f"CashFile{day:%Y%m%d}.dat"


class CashFileStats:
    def __init__(self) -> None:
        self.lines = 0
        self.records = 0
        self.total = Decimal(0)


def read_cashfile(
    stream: BinaryIO, file_name: str, stats: CashFileStats | None = None, encoding: str = "ascii", values: bool = True
) -> Iterator[tuple[int, str, tuple | None]]:
    """Yield (line number, raw line, parsed values); raise one FormatError listing every bad line.

    With ``values=False`` lines are only validated (one regex per line, the per-field parse only
    to explain a bad one) and ``None`` is yielded in place of values: for a loader that lets the
    database convert the validated lines."""
    stats = stats if stats is not None else CashFileStats()
    errors: list[FieldError] = []
    error_count = 0
    parse, is_valid = LAYOUT.parse, LAYOUT.is_valid
    amount = LAYOUT.fields[LAYOUT.names.index("amount")].slice
    for line_no, raw_bytes in enumerate(stream, start=1):
        stats.lines = line_no
        try:
            line = raw_bytes.decode(encoding).rstrip("\r\n")
        except UnicodeDecodeError as e:
            error_count += 1
            if len(errors) < FormatError.MAX_LISTED:
                errors.append(
                    FieldError(line_no, "record", repr(raw_bytes[:60]), f"is not {encoding} text ({e.reason})")
                )
            continue
        if not line.strip():
            continue  # blank lines are ignored, as the source system does
        if not values and is_valid(line):
            stats.records += 1
            stats.total += Decimal(line[amount])
            yield line_no, line, None
            continue
        try:
            parsed = parse(line)
        except RecordError as e:
            error_count += len(e.errors)
            for fname, value, reason in e.errors:
                if len(errors) < FormatError.MAX_LISTED:
                    errors.append(FieldError(line_no, fname, value, reason))
            continue
        stats.records += 1
        stats.total += parsed[3]
        yield line_no, line, parsed
    if stats.records == 0 and not error_count:
        error_count = 1
        errors.append(FieldError(stats.lines, "file", "", "has no payment records (empty file)"))
    if error_count:
        raise FormatError(file_name, errors, total=error_count)


def format_record(**values: object) -> str:
    """One 55-character record (used by tests, demos and benchmarks to make files)."""
    return LAYOUT.format(values)
