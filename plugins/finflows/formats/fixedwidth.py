"""One engine for every fixed-width layout: a layout is a table of fields declared once.

A ``Field`` has a name, a 1-based start, a width and a codec that turns the raw slice into a
value (raising ``ValueError`` with the reason) and a value back into exactly ``width`` characters.
``Layout.parse`` returns a tuple of values in field order, or raises ``RecordError`` listing
every bad field of the record; readers collect those into one ``FormatError`` naming file, line,
field and value. No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol


@dataclass(frozen=True)
class FieldError:
    line: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, field {self.field}, value {self.value!r}: {self.reason}"


class FormatError(ValueError):
    """A file that does not follow its layout; carries every error found (up to a limit)."""

    MAX_LISTED = 50

    def __init__(self, file_name: str, errors: Sequence[FieldError], total: int | None = None):
        self.file_name = file_name
        self.errors = list(errors)
        self.total = total if total is not None else len(self.errors)
        shown = "\n".join(f"  {e}" for e in self.errors[: self.MAX_LISTED])
        more = f"\n  … and {self.total - self.MAX_LISTED} more" if self.total > self.MAX_LISTED else ""
        super().__init__(f"{file_name}: {self.total} error(s)\n{shown}{more}")

    def report(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "error_count": self.total,
            "errors": [e.__dict__ for e in self.errors],
        }


class RecordError(ValueError):
    def __init__(self, errors: list[tuple[str, str, str]]):
        self.errors = errors  # (field, value, reason)
        super().__init__("; ".join(f"{f}={v!r}: {r}" for f, v, r in errors))


class Codec(Protocol):
    def decode(self, raw: str) -> Any: ...
    def encode(self, value: Any, width: int) -> str: ...


# ---------------------------------------------------------------------------- codecs
class Digits:
    """Exactly ``width`` ASCII digits, kept as text (leading zeros matter)."""

    def decode(self, raw: str) -> str:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError("must be digits only")
        return raw

    def encode(self, value: Any, width: int) -> str:
        s = str(value)
        if not (s.isascii() and s.isdigit()) or len(s) > width:
            raise ValueError(f"must be at most {width} digits")
        return s.zfill(width)


class Text:
    """Free text, right-padded with spaces; decoded with trailing spaces removed."""

    def __init__(self, required: bool = False):
        self.required = required

    def decode(self, raw: str) -> str:
        value = raw.rstrip(" ")
        if self.required and not value.strip():
            raise ValueError("must not be blank")
        return value

    def encode(self, value: Any, width: int) -> str:
        s = "" if value is None else str(value)
        if len(s) > width:
            raise ValueError(f"longer than {width} characters")
        return s.ljust(width)


class Choice:
    def __init__(self, *allowed: str):
        self.allowed = frozenset(allowed)

    def decode(self, raw: str) -> str:
        if raw not in self.allowed:
            raise ValueError(f"must be one of {sorted(self.allowed)}")
        return raw

    def encode(self, value: Any, width: int) -> str:
        return Text().encode(self.decode(str(value).ljust(width)), width)


class Pattern:
    """Text that must match a regular expression (a code such as ``DD1``)."""

    def __init__(self, regex: str, describe: str):
        self.regex = re.compile(regex)
        self.describe = describe

    def decode(self, raw: str) -> str:
        if not self.regex.fullmatch(raw):
            raise ValueError(f"must be {self.describe}")
        return raw

    def encode(self, value: Any, width: int) -> str:
        return self.decode(str(value).ljust(width))


class SignedDecimal:
    """``+000123.45``: a sign, integer digits, a point and ``places`` decimals; exact ``Decimal``."""

    def __init__(self, places: int = 2):
        self.places = places

    def decode(self, raw: str) -> Decimal:
        if len(raw) < self.places + 3 or raw[0] not in "+-" or raw[-self.places - 1] != ".":
            raise ValueError(f"must be a sign, digits, '.' and {self.places} decimals")
        whole, frac = raw[1 : -self.places - 1], raw[-self.places :]
        if not (whole.isascii() and whole.isdigit() and frac.isascii() and frac.isdigit()):
            raise ValueError(f"must be a sign, digits, '.' and {self.places} decimals")
        return Decimal(raw)

    def encode(self, value: Any, width: int) -> str:
        d = Decimal(value)
        if d != d.quantize(Decimal(1).scaleb(-self.places)):
            raise ValueError(f"has more than {self.places} decimals")
        body = f"{abs(d):.{self.places}f}".zfill(width - 1)
        if len(body) > width - 1:
            raise ValueError(f"does not fit in {width} characters")
        return ("-" if d < 0 else "+") + body


class ImpliedDecimal:
    """Unsigned digits with ``places`` implied decimals: ``00000012345`` → ``Decimal('123.45')``."""

    def __init__(self, places: int = 2):
        self.places = places

    def decode(self, raw: str) -> Decimal:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError("must be digits only (implied decimals)")
        return Decimal(int(raw)).scaleb(-self.places)

    def encode(self, value: Any, width: int) -> str:
        d = Decimal(value)
        units = d.scaleb(self.places)
        if d < 0 or units != units.to_integral_value():
            raise ValueError(f"must be non-negative with at most {self.places} decimals")
        return Digits().encode(int(units), width)


class Date:
    """A calendar date in a ``strptime`` format; impossible dates (31/02) are refused."""

    def __init__(self, fmt: str, blank_ok: bool = False):
        self.fmt = fmt
        self.blank_ok = blank_ok

    def decode(self, raw: str) -> dt.date | None:
        if self.blank_ok and not raw.strip(" 0"):
            return None
        try:
            return dt.datetime.strptime(raw, self.fmt).date()  # noqa: DTZ007 (a calendar date, no time)
        except ValueError:
            raise ValueError(f"is not a real date in the form {self.fmt}") from None

    def encode(self, value: dt.date | None, width: int) -> str:
        if value is None:
            return " " * width
        return value.strftime(self.fmt)


# ---------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based, as counterparties document it
    width: int
    codec: Codec = field(default_factory=Text)

    @property
    def slice(self) -> slice:
        return slice(self.start - 1, self.start - 1 + self.width)


@dataclass(frozen=True)
class Layout:
    name: str
    length: int
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        pos = 1
        for f in sorted(self.fields, key=lambda f: f.start):
            if f.start < pos:
                raise ValueError(f"{self.name}: field {f.name} overlaps the field before it")
            pos = f.start + f.width
        if pos - 1 > self.length:
            raise ValueError(f"{self.name}: fields run past the record length {self.length}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def parse(self, record: str) -> tuple:
        if len(record) != self.length:
            raise RecordError([("record", record[:80], f"is {len(record)} characters long, expected {self.length}")])
        values, errors = [], []
        for f in self.fields:
            raw = record[f.slice]
            try:
                values.append(f.codec.decode(raw))
            except ValueError as e:
                errors.append((f.name, raw, str(e)))
        if errors:
            raise RecordError(errors)
        return tuple(values)

    def format(self, values: dict[str, Any]) -> str:
        out = [" "] * self.length
        errors = []
        for f in self.fields:
            try:
                text = f.codec.encode(values.get(f.name), f.width)
            except (ValueError, TypeError, ArithmeticError, InvalidOperation) as e:
                errors.append((f.name, str(values.get(f.name)), str(e)))
                continue
            if len(text) != f.width:
                errors.append((f.name, str(values.get(f.name)), f"encodes to {len(text)} characters, not {f.width}"))
                continue
            out[f.slice] = text
        if errors:
            raise RecordError(errors)
        return "".join(out)
