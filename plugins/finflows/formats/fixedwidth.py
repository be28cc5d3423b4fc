"""One engine for every fixed-width layout: a layout is a table of fields declared once.

A ``Field`` has a name, a 1-based start, a width and a codec that turns the raw slice into a
value (raising ``ValueError`` with the reason) and a value back into exactly ``width`` characters.
``Layout.parse`` returns a tuple of values in field order, or raises ``RecordError`` listing
every bad field of the record; readers collect those into one ``FormatError`` naming file, line,
field and value. No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO, Protocol, cast

from finflows.errors import FinflowsError
from finflows.pci import mask_digit_runs, mask_pans, may_hold_pan


@dataclass(frozen=True)
class FieldError:
    """One problem of a file: line, field, value, reason. The one place every reader's errors pass:
    a card number in the value, the reason or the field's name is masked to BIN + last four here, so no report,
    control row, log, email or notification made from an error can hold one."""

    line: int  # the line number, or the record index where ``unit`` says so
    field: str
    value: str
    reason: str
    unit: str = "line"

    def __post_init__(self) -> None:
        whole = self.field in ("record", "file")  # a whole record: a card number may run into the next field
        object.__setattr__(self, "value", (mask_digit_runs if whole else mask_pans)(str(self.value)))
        object.__setattr__(self, "reason", mask_pans(str(self.reason)))
        object.__setattr__(self, "field", mask_pans(str(self.field)))  # a JSON key is the sender's text too

    def __str__(self) -> str:
        shown = repr(self.value) if str(self.value).strip() else "(blank)"
        return f"{self.unit} {self.line}, field {self.field}, value {shown}: {self.reason}"


class FormatError(FinflowsError, ValueError):
    """A file that does not follow its layout; carries every error found (up to a limit)."""

    MAX_LISTED = 50

    def __init__(self, file_name: str, errors: Sequence[FieldError], total: int | None = None) -> None:
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


class FileNameRefused(FormatError):
    """A file whose name breaks its flow's naming rule: refused before a byte of it is read."""

    def __init__(self, file_name: str, why: str) -> None:
        super().__init__(file_name, [FieldError(0, "file_name", file_name, why)])


class RecordError(FinflowsError, ValueError):
    def __init__(self, errors: list[tuple[str, str, str]]) -> None:
        self.errors = errors  # (field, value, reason)
        super().__init__("; ".join(f"{f}={v!r}: {r}" for f, v, r in errors))


class Errors:
    """Every bad line of a file, up to ``FormatError.MAX_LISTED`` shown, all counted: what a reader
    of a fixed-width file collects as it goes, to raise one ``FormatError`` at the end."""

    def __init__(self, layout: Layout, encoding: str = "ascii") -> None:
        self.layout, self.encoding = layout, encoding
        self.listed: list[FieldError] = []
        self.count = 0

    def add(self, error: FieldError) -> None:
        self.count += 1
        if len(self.listed) < FormatError.MAX_LISTED:
            self.listed.append(error)

    def undecodable(self, line_no: int, raw: bytes, e: UnicodeDecodeError) -> None:
        self.add(FieldError(line_no, "record", repr(raw[:60]), f"is not {self.encoding} text ({e.reason})"))

    def explain(self, line_no: int, line: str) -> tuple[Any, ...] | None:
        """The record's values, or None after naming each bad field."""
        try:
            return self.layout.parse(line)
        except RecordError as e:
            for fname, value, reason in e.errors:
                self.add(FieldError(line_no, fname, value, reason))
            return None

    def lines(self, stream: BinaryIO, stats: ReadStats) -> Iterator[tuple[int, str]]:
        """(line number, text) of each line with something on it, the line ending taken off; a line
        that is not text in the encoding is named here and skipped; ``stats.lines`` counts them all."""
        for line_no, raw in enumerate(stream, start=1):
            stats.lines = line_no
            try:
                line = raw.decode(self.encoding).rstrip("\r\n")
            except UnicodeDecodeError as e:
                self.undecodable(line_no, raw, e)
                continue
            if line.strip():
                yield line_no, line

    def close(self, file_name: str, lines: int, records: int, what: str = "records") -> None:
        """Raise the one ``FormatError`` naming every bad line (an empty file is one too)."""
        if records == 0 and not self.count:
            self.add(FieldError(lines, "file", "", f"has no {what} (empty file)"))
        if self.count:
            raise FormatError(file_name, self.listed, total=self.count)


@dataclass
class ReadStats:
    lines: int = 0
    records: int = 0


def read_copy_rows(
    stream: BinaryIO, layout: Layout, file_name: str, stats: ReadStats | None = None, encoding: str = "ascii"
) -> Iterator[str]:
    """The reader of a file of one record type: ``line number + TAB + COPY text`` (columns
    ``layout.copy_columns``) for each record, blank lines ignored; every bad line collected and one
    ``FormatError`` at the end, so a caller loading by COPY as it reads rolls back whole. What a
    new layout needs, with no loop of its own (``examples/inbox_flow``)."""
    stats = stats if stats is not None else ReadStats()
    errors, copy_row = Errors(layout, encoding), layout.copy_row
    for line_no, line in errors.lines(stream, stats):
        try:
            row = copy_row(line)
        except RecordError as e:
            for name, value, reason in e.errors:
                errors.add(FieldError(line_no, name, value, reason))
            continue
        stats.records += 1
        yield f"{line_no}\t{row}"
    errors.close(file_name, stats.lines, stats.records)


class Codec(Protocol):
    def decode(self, raw: str) -> Any: ...
    def encode(self, value: Any, width: int) -> str: ...

    # optional: ``regex(width)``, a pattern every valid slice matches; a codec with ``semantic = True``
    # judges more than its pattern can (a date's calendar): its ``copy_expr`` raises ValueError for a
    # matched slice that is not valid. Without regex() the layout has no fast path.
    # optional: ``copy_expr(var, me, width)``, the COPY text of the slice named ``var`` as a piece of
    # an f-string: literal text and ``{expressions}`` (``me`` names the codec in the generated code;
    # an expression may raise ValueError; no backslash inside braces: ``NULL`` and ``TAB`` are
    # names), and ``columns(name)`` when one field fills more than one column. See ``Layout.copy_row``.


# C0, DEL and C1 controls: nothing a flow writes to a counterparty (a CSV cell, a sheet cell) carries one
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def control_character(text: str, where: str) -> str | None:
    """Why ``text`` may not go to ``where`` (the first control character it holds, by code point), or None."""
    if bad := CONTROL.search(text):
        return f"contains the control character U+{ord(bad.group()):04X}, which {where} may not carry"
    return None


NULL = "\\N"  # COPY's text-format NULL
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\r", "\\r"), ("\n", "\\n"))  # backslash first


def copy_escape(value: str) -> str:
    """Escape a value for COPY's text format (``str.replace`` per character present: a mapping
    ``translate`` looked every character up in Python and took 0.7 s for an 11 MB file)."""
    if "\\" not in value and "\t" not in value and "\n" not in value and "\r" not in value:
        return value  # the common case: one pass per character class, no copy
    for char, escaped in _COPY_ESCAPES:
        if char in value:
            value = value.replace(char, escaped)
    return value


# ---------------------------------------------------------------------------- codecs
class Digits:
    """Exactly ``width`` ASCII digits, kept as text (leading zeros matter). Writing zero-fills a
    shorter number, unless ``exact`` (a code such as a bank unit must already have every digit)."""

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact

    def regex(self, width: int) -> str:
        return f"[0-9]{{{width}}}"

    def decode(self, raw: str) -> str:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError("must be digits only")
        return raw

    def encode(self, value: Any, width: int) -> str:
        s = value if type(value) is str else str(value)
        if len(s) > width or not s.isdigit() or not s.isascii():
            raise ValueError(f"must be {'exactly' if self.exact else 'at most'} {width} digits")
        if self.exact and len(s) != width:
            raise ValueError(f"must be exactly {width} digits")
        return s if len(s) == width else s.zfill(width)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        return f"{{{var}}}"

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        """``encode`` as one expression for a text value already of the right shape (see ``formatter``)."""
        ok = f"type({tmp} := {var}) is str and len({tmp}) {'==' if self.exact else '<='} {width} and {tmp}.isdigit() and {tmp}.isascii()"
        return f"({tmp}{'' if self.exact else f'.zfill({width})'} if {ok} else {encode}({var}, {width}))"


class Text:
    """Free text, right-padded with spaces; decoded with trailing spaces removed."""

    def __init__(self, required: bool = False) -> None:
        self.required = required

    # NUL is the one character PostgreSQL's text cannot hold: a line carrying one is refused by
    # the reader, naming it, instead of failing the load (and being retried) in the database
    def regex(self, width: int) -> str:
        c = "[^\\x00]"
        return f"(?={c}{{0,{width - 1}}}[^ \\x00]){c}{{{width}}}" if self.required else f"{c}{{{width}}}"

    def decode(self, raw: str) -> str:
        if "\x00" in raw:
            raise ValueError("contains a NUL character, which the finance database cannot store")
        value = raw.rstrip(" ")
        if self.required and not value:
            raise ValueError("must not be blank")
        return value

    def encode(self, value: Any, width: int) -> str:
        s = "" if value is None else str(value)
        if len(s) > width:
            raise ValueError(f"longer than {width} characters")
        return s.ljust(width)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        return f"{{copy_escape(_v) if (_v := {var}.rstrip(' ')) else NULL}}"


class Pattern:
    """Text that must match a regular expression (a code such as ``DD1``)."""

    def __init__(self, regex: str, describe: str) -> None:
        self.compiled = re.compile(regex)
        self.describe = describe

    def regex(self, width: int) -> str:
        return f"(?:{self.compiled.pattern})"

    def decode(self, raw: str) -> str:
        if not self.compiled.fullmatch(raw):
            raise ValueError(f"must be {self.describe}")
        return raw

    def encode(self, value: Any, width: int) -> str:
        return self.decode(str(value).ljust(width))

    def copy_expr(self, var: str, me: str, width: int) -> str:
        return f"{{copy_escape(_v) if (_v := {var}.rstrip(' ')) else NULL}}"


class SignedDecimal:
    """``+000123.45``: a sign, integer digits, a point and ``places`` decimals; exact ``Decimal``."""

    def __init__(self, places: int = 2) -> None:
        self.places = places

    def regex(self, width: int) -> str:
        return f"[+-][0-9]{{{width - self.places - 2}}}\\.[0-9]{{{self.places}}}"

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

    def copy_expr(self, var: str, me: str, width: int) -> str:
        return f"{{{var}}}"  # the regex admits only sign, digits, point: numeric input as it stands


def _memo(cache: dict[str, str], raw: str, text: str) -> str:
    """Remember a validated slice's COPY text (bounded: a day has 86,400 times, a file few dates)."""
    if len(cache) >= 200_000:
        cache.clear()
    cache[raw] = text
    return text


_HUMAN = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss"}


def human_format(fmt: str) -> str:
    """A ``strptime`` format as finance people write it: ``%d/%m/%Y`` → ``DD/MM/YYYY``."""
    for code, text in _HUMAN.items():
        fmt = fmt.replace(code, text)
    return fmt


def _numeric_plan(fmt: str) -> tuple[int, tuple[Any, ...], tuple[Any, ...]] | None:
    """For a format made of ``%Y %m %d`` (or ``%H %M %S``) and literal characters: (width, the
    slices of each number in the format's order of codes, the literal characters and their
    positions). None for any other format (it keeps ``strptime``)."""
    widths = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
    pos, i, numbers, literals = 0, 0, {}, []
    while i < len(fmt):
        code = fmt[i : i + 2]
        if code in widths:
            numbers[code] = slice(pos, pos + widths[code])
            pos, i = pos + widths[code], i + 2
        elif fmt[i] == "%":
            return None
        else:
            literals.append((pos, fmt[i]))
            pos, i = pos + 1, i + 1
    return pos, tuple(numbers.items()), tuple(literals)


def _numbers(plan: tuple[int, tuple[Any, ...], tuple[Any, ...]], raw: str) -> dict[str, int] | None:
    """The numbers of ``raw`` by its plan, or None when ``raw`` is not digits and literals at their
    places (then ``strptime`` decides, as it always did)."""
    width, numbers, literals = plan
    if len(raw) != width or any(raw[at] != ch for at, ch in literals):
        return None
    out = {}
    for code, where in numbers:
        part = raw[where]
        if not part.isascii() or not part.isdigit():
            return None
        out[code] = int(part)
    return out


class Date:
    """A calendar date in a ``strptime`` format, exactly as the format writes it (digits at every
    digit's place, no space strptime would forgive: ``202511 5`` is refused); impossible dates
    (31/02) are refused.

    With ``optional=True`` a blank or all-zero slice means no date (``None``). A slice of digits
    (and the format's separators) at their places is decoded by the calendar itself (``date()``
    refuses 31/02 as ``strptime`` does, at a fraction of its cost: real statements carry many
    dates); anything else goes to ``strptime``, which decides as it always did.
    """

    semantic = True  # a pattern cannot know the calendar: a match is still decoded

    def __init__(self, fmt: str, optional: bool = False) -> None:
        self.fmt = fmt
        self.optional = optional
        self.plan = _numeric_plan(fmt) if {"%Y", "%m", "%d"} <= {fmt[i : i + 2] for i in range(len(fmt))} else None
        self.decode = functools.lru_cache(maxsize=8192)(self._decode)
        self.copied: dict[str, str] = {}  # valid slice → COPY text, for the generated row function

    def regex(self, width: int) -> str:
        return f".{{{width}}}"

    def _decode(self, raw: str) -> dt.date | None:
        if self.optional and not raw.strip(" 0"):
            return None
        n = _numbers(self.plan, raw) if self.plan else None
        try:
            if n is not None:
                return dt.date(n["%Y"], n["%m"], n["%d"])
            if self.plan is not None:  # a digit's place holds something else (" 5"): strptime would take it
                raise ValueError(raw)
            value = dt.datetime.strptime(raw, self.fmt).date()  # noqa: DTZ007 (a calendar date, no time)
            if value.strftime(self.fmt) != raw:  # exactly the layout's form: no padding strptime forgives
                raise ValueError(raw)
            return value
        except ValueError:
            raise ValueError(f"is not a date (expected {human_format(self.fmt)})") from None

    def encode(self, value: dt.date | None, width: int) -> str:
        if value is None:
            if self.optional:
                return "0" * width
            raise ValueError("a date is required")
        return value.strftime(self.fmt)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        return f"{{{me}_copied({var}) or {me}.copy({var})}}"  # {me}_copied: this codec's copied.get

    def copy(self, raw: str) -> str:
        value = self.decode(raw)  # validates
        return _memo(self.copied, raw, NULL if value is None else value.isoformat())


class Time:
    """A time of day ``HHMMSS`` (or another ``strptime`` format); 25:00 is refused. Digits at their
    places are checked by ``time()`` itself (a statement has a time per sale); anything else goes
    to ``strptime``, which decides as it always did."""

    # ``HHMMSS`` as the record regex can judge it whole (hours 00–23, minutes and seconds 00–59,
    # what ``time()`` admits); PostgreSQL reads that form itself (ISO 8601 basic), so a matched
    # slice is copied as it stands. Any other format is decoded (``semantic``) and memoised.
    _HHMMSS = "(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]"

    def __init__(self, fmt: str = "%H%M%S") -> None:
        self.fmt = fmt
        self.plan = _numeric_plan(fmt) if {"%H", "%M", "%S"} <= {fmt[i : i + 2] for i in range(len(fmt))} else None
        self.decode = functools.lru_cache(maxsize=8192)(self._decode)
        self.copied: dict[str, str] = {}
        self.semantic = fmt != "%H%M%S"

    def regex(self, width: int) -> str:
        if self.semantic:
            return f".{{{width}}}"
        if width != 6:
            raise ValueError(f"an HHMMSS time is 6 characters wide, not {width}")
        return self._HHMMSS

    def _decode(self, raw: str) -> dt.time:
        n = _numbers(self.plan, raw) if self.plan else None
        try:
            if n is not None:
                return dt.time(n["%H"], n["%M"], n["%S"])
            if self.plan is not None:  # a digit's place holds something else: strptime would take " 5"
                raise ValueError(raw)
            value = dt.datetime.strptime(raw, self.fmt).time()  # noqa: DTZ007
            if value.strftime(self.fmt) != raw:  # exactly the layout's form
                raise ValueError(raw)
            return value
        except ValueError:
            raise ValueError(f"is not a time of day (expected {human_format(self.fmt)})") from None

    def encode(self, value: dt.time, width: int) -> str:
        return value.strftime(self.fmt)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        if not self.semantic:
            return f"{{{var}}}"  # the regex admitted a valid HHMMSS: PostgreSQL's own input form
        return f"{{{me}_copied({var}) or {me}.copy({var})}}"

    def copy(self, raw: str) -> str:
        return _memo(self.copied, raw, self.decode(raw).isoformat())


class ImpliedDecimal:
    """Unsigned digits with ``places`` implied decimals (``00000012345`` = 123.45); exact ``Decimal``."""

    groups = 2  # in the record regex: the whole digits and the decimals, each captured

    def __init__(self, places: int = 2) -> None:
        self.places = places
        self.quantum = Decimal(1).scaleb(-places)

    def regex(self, width: int) -> str:
        return f"([0-9]{{{width - self.places}}})([0-9]{{{self.places}}})"

    def decode(self, raw: str) -> Decimal:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"must be {len(raw)} digits with {self.places} implied decimals")
        return Decimal(int(raw)).scaleb(-self.places)

    def encode(self, value: Any, width: int) -> str:
        d = Decimal(value)
        if d < 0 or d != d.quantize(self.quantum):
            raise ValueError(f"must be a non-negative amount with at most {self.places} decimals")
        s = str(int(d.scaleb(self.places)))
        if len(s) > width:
            raise ValueError(f"does not fit in {width} digits")
        return s.zfill(width)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        decimals = var.replace("]", " + 1]")  # the next group
        return f"{{{var}}}.{{{decimals}}}"


class Choice:
    """One of a fixed set of codes (e.g. a card brand); decoded to the code itself."""

    def __init__(self, codes: dict[str, str] | Sequence[str]) -> None:
        self.codes = dict(codes) if isinstance(codes, dict) else {c: c for c in codes}
        widths = {len(c) for c in self.codes}
        if len(widths) != 1:
            raise ValueError("every code of a Choice must have the same width")

    def regex(self, width: int) -> str:
        return "(?:" + "|".join(re.escape(c) for c in sorted(self.codes)) + ")"

    def decode(self, raw: str) -> str:
        if raw not in self.codes:
            shown = ", ".join(f"{c.strip() or repr(c)} ({n})" for c, n in self.codes.items())
            raise ValueError(f"is not one of {shown}")
        return raw

    def encode(self, value: Any, width: int) -> str:
        return self.decode(str(value))

    def copy_expr(self, var: str, me: str, width: int) -> str:
        if all(c.strip() == c and c for c in self.codes):
            return f"{{{var}}}"  # the regex admits only the codes themselves
        if not hasattr(self, "copied"):
            self.copied = {c: copy_escape(c.strip()) or NULL for c in self.codes}
        return f"{{{me}.copied[{var}]}}"


class MaskedText(Text):
    """Free text in which a card number must never survive: any Luhn-valid 13–19 digit run is
    masked to BIN + last four (``pci.mask_pans``) before the value is stored, logged or echoed."""

    def __init__(self, required: bool = False) -> None:
        super().__init__(required)

    def mask(self, value: str) -> str:
        """``pci.mask_pans``, after one quick look for 13 digits, in a row or in groups (most text has
        none; text shorter than 13 characters cannot hold one, and is not looked at)."""
        return mask_pans(value) if len(value) > 12 and may_hold_pan(value) else value

    def decode(self, raw: str) -> str:
        return self.mask(super().decode(raw))

    def copy_expr(self, var: str, me: str, width: int) -> str:
        if width < 13:  # too narrow to hold a card number (13 digits at least)
            return super().copy_expr(var, me, width)
        masked = f"({me}.mask(_v) if len(_v) > 12 else _v)"  # shorter than 13: no card number fits
        return f"{{copy_escape({masked}) if (_v := {var}.rstrip(' ')) else NULL}}"


class OptionalImpliedDecimal(ImpliedDecimal):
    """An amount with implied decimals that may be left blank (all spaces): ``None`` / NULL."""

    groups = 1

    def regex(self, width: int) -> str:
        return f"(?:[0-9]{{{width}}}| {{{width}}})"

    def decode(self, raw: str) -> Decimal | None:  # type: ignore[override]  # blank: None, the one widening
        if not raw.strip(" "):
            return None
        return super().decode(raw)

    def encode(self, value: Any, width: int) -> str:
        if value is None or value == "":
            return " " * width
        return super().encode(value, width)

    def copy_expr(self, var: str, me: str, width: int) -> str:
        p = self.places
        return f"{{{var}[:-{p}] + '.' + {var}[-{p}:] if {var}[0] != ' ' else NULL}}"


class MaskedCard:
    """A card number as the acquirer masks it: BIN (6 digits), ``*``s, last four; right-aligned and
    zero- (or space-) filled on the left, as acquirers send it (``000411111******1111``); a
    left-aligned, space-padded field is read too.

    Only BIN and last four are ever kept (two columns); anything showing more than BIN + last
    four (an unmasked number, ``4111111111**1111``) is refused, and the refused value is shown with
    at most BIN + last four (``pci.mask_card_field``), so the error itself stores no card number."""

    semantic = True
    groups = 3  # the common form's BIN and last four, or the whole field for decode() to judge
    _MASKED = re.compile(r"[0 ]*([1-9][0-9]{5})\*{3,9}([0-9]{4}) *")

    def regex(self, width: int) -> str:
        # the form acquirers send, zero-filled BIN + six '*' + last four, captured in the record
        # regex itself; any other width or fill falls to the third group, which decode() judges
        lead = width - 16
        if lead < 0:  # too narrow for the common form: its two groups never match
            return f"(?:(?!)(.)(.)|(.{{{width}}}))"
        return f"(?:0{{{lead}}}([1-9][0-9]{{5}})\\*{{6}}([0-9]{{4}})|(.{{{width}}}))"

    def decode(self, raw: str) -> tuple[str, str]:
        m = self._MASKED.fullmatch(raw)
        if m is None:
            digits = sum(c.isdigit() for c in raw.strip(" ").lstrip("0"))
            if digits > 10:
                raise ValueError("shows more than BIN + last four digits: only those may be received or stored")
            raise ValueError("must be BIN, '*'s and the last four digits (left-filled with zeros or spaces)")
        return m.group(1), m.group(2)

    def encode(self, value: tuple[str, str], width: int) -> str:
        bin6, last4 = value
        return (bin6 + "*" * 6 + last4).rjust(width, "0")

    def columns(self, name: str) -> tuple[str, str]:
        return f"{name}_bin", f"{name}_last4"

    def copy_expr(self, var: str, me: str, width: int) -> str:
        bin6, last4, other = var, var.replace("]", " + 1]"), var.replace("]", " + 2]")
        return f"{{{bin6} + TAB + {last4} if {other} is None else TAB.join({me}.decode({other}))}}"


# ---------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based, as counterparties document it
    width: int
    codec: Codec = field(default_factory=Text)
    store: bool = True  # False: validated, not a column (a record type, a filler)

    @property
    def slice(self) -> slice:
        return slice(self.start - 1, self.start - 1 + self.width)


@dataclass(frozen=True)
class Layout:
    name: str
    length: int
    fields: tuple[Field, ...]
    # derived in __post_init__ (not arguments): the parse plan, the fast path and its row function
    _plan: tuple[tuple[str, slice, Callable[[str], Any]], ...] = field(init=False, repr=False, compare=False)
    _fast: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _copy: Callable[[tuple[Any, ...]], str] | None = field(init=False, repr=False, compare=False)
    _first: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pos = 1
        for f in sorted(self.fields, key=lambda f: f.start):
            if f.start < pos:
                raise ValueError(f"{self.name}: field {f.name} overlaps the field before it")
            pos = f.start + f.width
        if pos - 1 > self.length:
            raise ValueError(f"{self.name}: fields run past the record length {self.length}")
        # precompiled (name, slice, decode) per field: parse() is the hot loop of every reader
        object.__setattr__(self, "_plan", tuple((f.name, f.slice, f.codec.decode) for f in self.fields))
        # the fast path: one regex over the whole record, built from the codecs' own patterns;
        # each field is one capturing group, gaps between fields are non-capturing
        # (a codec with ``groups = n`` brings its own n capturing groups, e.g. an amount's whole
        # and decimal digits, so the row function needs no slicing)
        fast: re.Pattern[str] | None = None
        first: dict[str, int] = {}
        if all(hasattr(f.codec, "regex") for f in self.fields):
            parts, pos, group = [], 1, 1
            for f in sorted(self.fields, key=lambda f: f.start):
                if f.start > pos:
                    parts.append(f".{{{f.start - pos}}}")
                n = getattr(f.codec, "groups", 1)
                regex = f.codec.regex(f.width)  # type: ignore[attr-defined]  # checked above: every codec has one
                parts.append(f"({regex})" if n == 1 else regex)
                first[f.name] = group - 1  # its first group's index in m.groups()
                group += n
                pos = f.start + f.width
            if pos <= self.length:
                parts.append(f".{{{self.length - pos + 1}}}")
            fast = re.compile("".join(parts), re.DOTALL)
        object.__setattr__(self, "_fast", fast)
        object.__setattr__(self, "_copy", self._compile_copy(first) if fast is not None else None)
        object.__setattr__(self, "_first", first)

    def fast_path(self) -> tuple[Callable[[str], re.Match[str] | None], Callable[[tuple[Any, ...]], str]]:
        """``(match, row)``: the record regex's ``fullmatch`` and the generated row function over
        its ``groups()``, for a reader's hot loop (``copy_row`` is the two, plus the explanation).
        A match whose row raises ValueError (a calendar date) is not valid."""
        if self._fast is None or self._copy is None:
            raise TypeError(f"{self.name}: a codec has no regex, so there is no fast path")
        return self._fast.fullmatch, self._copy

    def group_index(self, name: str) -> int:
        """Where a field's (first) captured group is in the fast path's ``groups()``."""
        return self._first[name]

    def _compile_copy(self, first: dict[str, int]) -> Callable[[Sequence[str]], str]:
        """Generate ``row(groups) -> str``: the stored fields as one line of COPY text.

        One f-string for the whole record, a piece per field (from its codec) and tabs between:
        no per-field loop, dispatch or intermediate string in the hot path (an implied-decimal
        amount is two slices around a literal point). Codecs without ``copy_expr`` are escaped text."""
        namespace: dict[str, Any] = {"copy_escape": copy_escape, "NULL": NULL, "TAB": "\t"}
        parts = []
        for i, f in enumerate(sorted(self.fields, key=lambda f: f.start)):
            if not f.store:
                continue
            me, var = f"c{i}", f"g[{first[f.name]}]"
            namespace[me] = f.codec
            if hasattr(f.codec, "copied"):  # a memo of validated slices: its lookup bound once
                namespace[f"{me}_copied"] = f.codec.copied.get
            if hasattr(f.codec, "copy_expr"):
                parts.append(f.codec.copy_expr(var, me, f.width))
            else:
                parts.append(f"{{copy_escape({var})}}")
        body = "\\t".join(parts)
        src = f'def row(g):\n    return f"""{body}"""\n'
        exec(compile(src, f"<copy row {self.name}>", "exec"), namespace)  # noqa: S102 (code from our codecs only)
        return cast("Callable[[Sequence[str]], str]", namespace["row"])

    @property
    def copy_columns(self) -> tuple[str, ...]:
        """The columns ``copy_row`` fills, in its order."""
        cols: list[str] = []
        for f in sorted(self.fields, key=lambda f: f.start):
            if f.store:
                cols += f.codec.columns(f.name) if hasattr(f.codec, "columns") else [f.name]
        return tuple(cols)

    def copy_row(self, record: str) -> str:
        """The record validated and converted to one line of COPY text (no newline).

        Raises ``RecordError`` naming every bad field, exactly as ``parse`` would."""
        m = self._fast.fullmatch(record) if self._fast is not None else None
        if m is not None and self._copy is not None:
            try:
                return self._copy(m.groups())
            except ValueError:
                pass
        self.parse(record)  # explains the failure
        raise RecordError([("record", record[:80], "is not valid for this layout")])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def mask_text(self, text: str) -> str:
        """The file's text as it may be stored: in every record, each free-text field that may carry a
        card number (``MaskedText``) masked on its own (a number beside it cannot hide one there), and
        a card field (``MaskedCard``) showing more than BIN + last four masked to them, the rest kept
        character for character (the length of every line is unchanged)."""
        from finflows.pci import mask_card_slice, mask_pans

        texts = [f.slice for f in self.fields if isinstance(f.codec, MaskedText)]
        cards = [f.slice for f in self.fields if isinstance(f.codec, MaskedCard)]
        if not texts and not cards:
            return text
        out = []
        for raw in text.splitlines(keepends=True):
            line = raw
            for at, hide in [(at, mask_pans) for at in texts] + [(at, mask_card_slice) for at in cards]:
                part = line[at]
                shown = part and (hide is mask_pans or not MaskedCard._MASKED.fullmatch(part))
                if shown and (hidden := hide(part)) != part:
                    line = line[: at.start] + hidden + line[at.stop :]
            out.append(line)
        return "".join(out)

    def parse(self, record: str) -> tuple[Any, ...]:
        if len(record) != self.length:
            raise RecordError([("record", record[:80], f"is {len(record)} characters long, expected {self.length}")])
        values, errors = [], []
        for name, sl, decode in self._plan:
            raw = record[sl]
            try:
                values.append(decode(raw))
            except ValueError as e:
                errors.append((name, raw, str(e)))
        if errors:
            raise RecordError(errors)
        return tuple(values)

    def formatter(self, variable: Sequence[str], constants: dict[str, Any]) -> Callable[..., str]:
        """Generate ``fmt(*values) -> str`` for writers of many records: fields named in
        ``constants`` are encoded once, the ``variable`` ones (in that order) per call by their
        codec. Any bad value raises ``ValueError``: call ``format`` for the error naming every field."""
        missing = set(self.names) - set(variable) - set(constants)
        if missing:
            raise ValueError(f"{self.name}: no value for {', '.join(sorted(missing))}")
        namespace: dict[str, Any] = {}
        parts, pos = [], 1
        for i, f in enumerate(sorted(self.fields, key=lambda f: f.start)):
            if f.start > pos:
                parts.append(repr(" " * (f.start - pos)))
            if f.name in constants:
                parts.append(repr(self._encode(f, constants[f.name])))
            else:
                namespace[f"e{i}"] = f.codec.encode
                if hasattr(f.codec, "inline"):  # the common case inline, the call only to explain or convert
                    parts.append(f.codec.inline(f.name, f.width, f"e{i}", f"_t{i}"))
                else:
                    parts.append(f"e{i}({f.name}, {f.width})")
            pos = f.start + f.width
        if pos <= self.length:
            parts.append(repr(" " * (self.length - pos + 1)))
        merged: list[str] = []  # adjacent constants become one literal: fewer pieces to join
        for part in parts:
            if merged and part[0] == "'" and merged[-1][0] == "'":
                merged[-1] = repr(eval(merged[-1]) + eval(part))  # noqa: S307 (our own repr() literals)
            else:
                merged.append(part)
        parts = merged
        src = (
            f"def fmt({', '.join(variable)}):\n"
            f"    r = ''.join(({', '.join(parts)},))\n"
            f"    if len(r) != {self.length}:\n"
            f"        raise ValueError('a field encoded to the wrong width')\n"
            f"    return r\n"
        )
        exec(compile(src, f"<format {self.name}>", "exec"), namespace)  # noqa: S102 (code from our codecs only)
        return cast("Callable[..., str]", namespace["fmt"])

    @staticmethod
    def _encode(f: Field, value: Any) -> str:
        text = f.codec.encode(value, f.width)
        if len(text) != f.width:
            raise ValueError(f"{f.name}: encodes to {len(text)} characters, not {f.width}")
        return text

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
