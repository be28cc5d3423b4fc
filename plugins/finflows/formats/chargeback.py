"""Chargeback records (docs/formats.md §4): JSON in, one RFC 4180 CSV per card company out.

A file is a JSON array of records (or ``{"records": [...]}``); every record is validated with
pydantic and a file with any invalid record is refused whole, the error naming record index,
field and value. Output cells that a spreadsheet would run as a formula are neutralised, amounts
are written with the currency's own minor units, and the ARN stays text. No Airflow import here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finflows.formats.fixedwidth import FieldError, FormatError, control_character
from finflows.pci import mask_pans

# ISO 4217 minor units of the currencies card companies settle in (a missing one is refused).
CURRENCY_EXPONENT = {
    "BRL": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "MXN": 2,
    "ARS": 2,
    "COP": 2,
    "TWD": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "INR": 2,
    "ZAR": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "PYG": 0,
    "VND": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    ELO = "elo"
    AMEX = "amex"


class Stage(StrEnum):
    CHARGEBACK = "chargeback"
    REPRESENTMENT = "representment"
    PRE_ARBITRATION = "pre-arbitration"
    ARBITRATION = "arbitration"


_REASON = {
    Brand.MASTERCARD: re.compile(r"^48\d{2}$"),
    Brand.VISA: re.compile(r"^1[0-3]\.\d{1,2}$"),
    Brand.ELO: re.compile(r"^\d{2,4}$"),
    Brand.AMEX: re.compile(r"^[A-Z]\d{2}$|^\d{4}$"),
}


class Chargeback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str = Field(min_length=1, max_length=64)
    original_reference: str = Field(min_length=1, max_length=64)
    arn: str
    brand: Brand
    masked_card: str
    reason_code: str
    reason_text: str = Field(max_length=200)
    stage: Stage
    amount_minor: int = Field(ge=0, le=10**15)
    currency: str
    transaction_date: dt.date
    due_date: dt.date
    merchant: str = Field(min_length=1, max_length=120)
    status: str = Field(default="open", max_length=32)

    @field_validator("case_id", "original_reference", "reason_text", "merchant", "status", "reason_code")
    @classmethod
    def _no_control_characters(cls, v: str) -> str:
        """Nothing but printable text goes to a card company's CSV: a NUL, a line break or any other
        control character (C0, DEL, C1) in a cell is refused, naming the record and the field."""
        if problem := control_character(v, "a CSV cell"):
            raise ValueError(problem)
        return v

    @field_validator("case_id", "original_reference", "masked_card", "reason_code", "currency", "merchant", "status")
    @classmethod
    def _as_sent(cls, v: str) -> str:
        """A value is taken as the acquirer wrote it, never trimmed into shape: ' 4853' is not the
        Mastercard reason code 4853, and a case id with a trailing blank is another case id."""
        if v != v.strip():
            raise ValueError("has blanks around it: a value is taken exactly as written, not trimmed")
        return v

    @field_validator("arn", mode="before")
    @classmethod
    def _arn_is_23_digits_as_text(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError("must be a string of 23 digits (a number loses digits)")
        if re.fullmatch(r"[0-9.]+[eE][+-]?[0-9]+", v.strip()):
            raise ValueError("is in E-notation: a spreadsheet destroyed this ARN")
        if not re.fullmatch(r"[0-9]{23}", v):
            raise ValueError("must be exactly 23 digits")
        return v

    @field_validator("masked_card")
    @classmethod
    def _masked(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9]{6}[*Xx]{2,9}[0-9]{4}", v):
            raise ValueError("must be masked as BIN (6 digits) + '*' + last 4; a full card number is refused")
        return v

    @field_validator("currency")
    @classmethod
    def _iso4217(cls, v: str) -> str:
        if v not in CURRENCY_EXPONENT:
            raise ValueError("is not an ISO 4217 currency this flow knows")
        return v

    @model_validator(mode="after")
    def _reason_matches_brand(self) -> Chargeback:
        if not _REASON[self.brand].fullmatch(self.reason_code):
            raise ValueError(f"reason_code {self.reason_code!r} is not a {self.brand.value} reason code")
        if self.due_date < self.transaction_date:
            raise ValueError("due_date is before transaction_date")
        return self


def parse_file(data: bytes, file_name: str) -> list[Chargeback]:
    """All records of a file, or one FormatError naming every (record index, field, value)."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        why = f"is not UTF-8 JSON: {str(e)[:120]}"
        raise FormatError(file_name, [FieldError(0, "file", repr(data[:60]), why)]) from None
    except RecursionError:
        raise FormatError(file_name, [FieldError(0, "file", repr(data[:60]), "is JSON nested too deeply")]) from None
    rows = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows:
        raise FormatError(file_name, [FieldError(0, "file", str(type(rows).__name__), "holds no list of records")])
    out, errors = [], []
    for index, row in enumerate(rows):
        try:
            # strict, as JSON: an amount is a number, not a string; a date is exactly YYYY-MM-DD
            out.append(Chargeback.model_validate_json(json.dumps(row), strict=True))
        except ValidationError as e:
            for err in e.errors():
                field = ".".join(str(p) for p in err["loc"]) or "record"
                value = row.get(err["loc"][0]) if isinstance(row, dict) and err["loc"] else row
                errors.append(
                    FieldError(index, field, mask_pans(str(value))[:80], mask_pans(err["msg"]), unit="record")
                )
    if errors:
        raise FormatError(file_name, errors)
    return out


# ---------------------------------------------------------------------------- CSV
COLUMNS = (
    "case_id",
    "original_reference",
    "arn",
    "brand",
    "masked_card",
    "reason_code",
    "reason_text",
    "stage",
    "amount",
    "currency",
    "transaction_date",
    "due_date",
    "merchant",
    "status",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# a formula may also start after a separator that the reader's spreadsheet splits on: a comma
# here, but a semicolon where Excel's list separator is ";" (pt-BR, most of Europe), a tab or a pipe
_AFTER_SEPARATOR = re.compile(r"([,;\t|])([ ]*)([=+\-@\t\r])")


def neutralise(cell: str) -> str:
    """Text as it may go into a CSV a person opens: any card number masked, and every place a
    spreadsheet could start a formula (the cell's start, after leading spaces, or after any
    separator a spreadsheet may split on) given an apostrophe (OWASP CSV injection)."""
    cell = _AFTER_SEPARATOR.sub(r"\1\2'\3", mask_pans(cell))
    return "'" + cell if cell.lstrip(" ").startswith(_FORMULA_START) else cell


def amount_text(minor: int, currency: str) -> str:
    exp = CURRENCY_EXPONENT[currency]
    return f"{Decimal(minor).scaleb(-exp):.{exp}f}"


def to_csv(records: Iterable[Chargeback]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    for r in records:
        w.writerow(
            [
                neutralise(r.case_id),
                neutralise(r.original_reference),
                r.arn,
                r.brand.value,
                r.masked_card,
                neutralise(r.reason_code),
                neutralise(r.reason_text),
                r.stage.value,
                amount_text(r.amount_minor, r.currency),
                r.currency,
                r.transaction_date.isoformat(),
                r.due_date.isoformat(),
                neutralise(r.merchant),
                neutralise(r.status),
            ]
        )
    return buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------- batches
MAX_FILES_PER_BATCH = 4


def plan_batches(
    records: list[Chargeback], max_rows_per_file: int = 10_000, max_files: int = MAX_FILES_PER_BATCH
) -> list[dict[Brand, list[Chargeback]]]:
    """Split records into batches of at most ``max_files`` files (one per card company) of at most
    ``max_rows_per_file`` rows each; what does not fit goes into the next batch, never a fifth file."""
    if max_files < 1 or max_rows_per_file < 1:
        raise ValueError("a batch carries at least one file of at least one row")
    chunks: list[tuple[Brand, list[Chargeback]]] = []
    by_brand: dict[Brand, list[Chargeback]] = defaultdict(list)
    for r in records:
        by_brand[r.brand].append(r)
    for brand in sorted(by_brand):
        rows = by_brand[brand]
        chunks += [(brand, rows[i : i + max_rows_per_file]) for i in range(0, len(rows), max_rows_per_file)]
    batches: list[dict[Brand, list[Chargeback]]] = []
    for brand, rows in chunks:  # first batch without this brand that still has room
        for batch in batches:
            if brand not in batch and len(batch) < max_files:
                batch[brand] = rows
                break
        else:
            batches.append({brand: rows})
    return batches
