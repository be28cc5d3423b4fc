"""Taiwan Clearing House ACH media files (docs/formats.md §3): ``ACHP01`` payments, ``ACHR01`` returns.

250-**byte** records ending CRLF; text may be Chinese in Big5 (cp950), so widths are bytes. The
one fixed-width engine works on characters, so a record is handled as its bytes decoded as
Latin-1 (one character per byte): every position and width below is then a byte position, and
``Big5Text`` encodes to cp950, pads by bytes and refuses what cannot be encoded or does not fit
(never ``?``, never half a character). Dates are ROC (``0`` + 3-digit ROC year + MMDD); amounts
whole NTD.

``write_achp01`` builds a whole file; ``read_ach`` reads one back (payments we wrote, returns a
bank sent), naming line, field and value for every problem. ``write_csv`` is the CSV variant some
banks take instead. No Airflow import here.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import io
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finflows.errors import FinflowsError
from finflows.formats import tch
from finflows.formats.fixedwidth import (
    Choice,
    Digits,
    Field,
    FieldError,
    FormatError,
    ImpliedDecimal,
    Layout,
    RecordError,
    Text,
    Time,
)
from finflows.pci import mask_pans, may_hold_pan

RECORD = 250
EOL = b"\r\n"
WIRE = "latin-1"  # bytes ↔ characters one to one; Big5 text is decoded inside its fields
CLEARING_HOUSE = "9990250"
MAX_AMOUNT = 9_999_999_999  # the detail's 10 digits


def cp950_only(data: bytes) -> bytes | None:
    """The first two-byte code in ``data`` that cp950 has and Big5 proper does not (``€`` A3E1, the
    ETEN extensions F9D6–F9FE), or ``None``. ``data`` is cp950 bytes."""
    i, n = 0, len(data)
    while i < n:
        if data[i] < 0x80:
            i += 1
            continue
        pair = data[i : i + 2]
        if pair == b"\xa3\xe1" or (pair[0] == 0xF9 and len(pair) == 2 and pair[1] >= 0xD6):
            return pair
        i += 2
    return None


class Big5Text:
    """Text that travels as Big5 (cp950) bytes, left-aligned and space-padded to ``width`` bytes.

    Writing is strict Big5 unless ``extensions``: cp950's own additions (``€``, F9D6–F9FE) are
    refused, since a bank whose system is Big5 would not show them. Reading accepts cp950."""

    semantic = True  # the pattern cannot tell valid Big5: a match is still decoded

    def __init__(self, required: bool = False, encoding: str = "cp950", extensions: bool = True) -> None:
        self.required = required
        self.encoding = encoding
        self.extensions = extensions

    def regex(self, width: int) -> str:
        return f".{{{width}}}"

    def decode(self, raw: str) -> str:
        try:
            value = raw.encode(WIRE).decode(self.encoding).rstrip(" ")
        except UnicodeDecodeError:
            raise ValueError("is not valid Big5 text") from None
        if self.required and not value:
            raise ValueError("must not be blank")
        return value

    def encode(self, value: Any, width: int) -> str:
        text = value if type(value) is str else "" if value is None else str(value)
        if self.required and not text.strip():
            raise ValueError("must not be blank")
        if "\r" in text or "\n" in text:
            raise ValueError("must not contain a line break")
        try:
            data = text.encode(self.encoding)
        except UnicodeEncodeError as e:
            raise ValueError(f"character {e.object[e.start]!r} cannot be encoded in Big5") from None
        n = len(data)
        if n > width:
            raise ValueError(f"is {n} bytes in Big5; the field holds {width}")
        if n != len(text) and data.decode(self.encoding) != text:  # cp950 maps e.g. ¢ to ￠
            back = data.decode(self.encoding)
            bad = next(c for c, d in zip(text, back, strict=False) if c != d)
            raise ValueError(f"character {bad!r} has no exact Big5 form (it would arrive changed)")
        if not self.extensions and (code := cp950_only(data)) is not None:
            bad = code.decode(self.encoding)
            raise ValueError(
                f"character {bad!r} (cp950 {code.hex().upper()}) is a cp950 extension, not Big5; "
                "this bank's configuration allows Big5 only (big5_extensions)"
            )
        return (data + b" " * (width - n)).decode(WIRE)

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        """The same checks as ``encode`` as one expression; anything unusual goes to ``encode``, which
        explains it (an unencodable character raises ``UnicodeEncodeError``, a ``ValueError``)."""
        if self.required:
            return f"{encode}({var}, {width})"
        enc = self.encoding
        strict = "" if self.extensions else f" and b'\\xf9' not in {tmp} and b'\\xa3\\xe1' not in {tmp}"
        ok = (
            f"type({var}) is str and '\\r' not in {var} and '\\n' not in {var} "
            f"and len({tmp} := {var}.encode({enc!r})) <= {width} "
            f"and (len({tmp}) == len({var}) or {tmp}.decode({enc!r}) == {var}){strict}"
        )
        return f"({tmp}.decode({WIRE!r}) + ' ' * ({width} - len({tmp})) if {ok} else {encode}({var}, {width}))"


class WholeAmount(ImpliedDecimal):
    """Whole NTD, zero-padded digits; decoded to ``Decimal``. Encodes an ``int`` without Decimal."""

    def __init__(self) -> None:
        super().__init__(0)

    def encode(self, value: Any, width: int) -> str:
        if type(value) is int and 0 <= value < 10**width:
            return str(value).zfill(width)
        return super().encode(value, width)

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        ok = f"type({tmp} := {var}) is int and 0 <= {tmp} < {10**width}"
        return f"(str({tmp}).zfill({width}) if {ok} else {encode}({var}, {width}))"


class RocDate:
    """A date in the ROC calendar: ``0`` + 3-digit ROC year + MMDD (2026-01-15 → ``01150115``).

    ``optional=True``: blank (spaces) means no date (``None``), written as spaces."""

    semantic = True

    def __init__(self, optional: bool = False, missing: str | None = None) -> None:
        self.optional = optional
        self.missing = missing  # what a blank required date is refused with, where the layout says why

    def regex(self, width: int) -> str:
        return f".{{{width}}}"

    def decode(self, raw: str) -> dt.date | None:
        if raw == " " * len(raw):  # blank is spaces, as the layout fills it
            if self.optional:
                return None
            if self.missing:
                raise ValueError(self.missing)
        if len(raw) != 8 or not (raw.isascii() and raw.isdigit()) or raw[0] != "0":
            raise ValueError("is not a date (expected an ROC date: 0 + ROC year YYY + MMDD)")
        if raw[1:4] == "000":
            raise ValueError("is not a date (ROC year 000 does not exist: the calendar starts at year 1, 1912)")
        try:
            return dt.date(int(raw[1:4]) + 1911, int(raw[4:6]), int(raw[6:8]))
        except ValueError:
            raise ValueError("is not a date (expected an ROC date: 0 + ROC year YYY + MMDD)") from None

    def encode(self, value: dt.date | None, width: int) -> str:
        if value is None:
            if self.optional:
                return " " * width
            raise ValueError("a date is required")
        year = value.year - 1911
        if not 1 <= year <= 999:
            raise ValueError("is outside the ROC calendar's 3-digit years")
        return f"0{year:03d}{value.month:02d}{value.day:02d}"


class AsciiText(Text):
    """Codes and identifiers: printable ASCII only, so a character is a byte."""

    def encode(self, value: Any, width: int) -> str:
        text = value if type(value) is str else "" if value is None else str(value)
        if len(text) > width:
            raise ValueError(f"longer than {width} characters")
        if not (text.isascii() and text.isprintable()):
            raise ValueError("must be printable ASCII")
        return text.ljust(width)

    def decode(self, raw: str) -> str:
        if not (raw.isascii() and raw.isprintable()):
            raise ValueError("must be printable ASCII")
        return super().decode(raw)

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        ok = f"type({tmp} := {var}) is str and len({tmp}) <= {width} and {tmp}.isascii() and {tmp}.isprintable()"
        return f"({tmp}.ljust({width}) if {ok} else {encode}({var}, {width}))"


class Coded(AsciiText):
    """A code or identifier held to the public layout's rule for its field (a regular expression
    over the whole slice, padding included), decoded without its trailing blanks."""

    def __init__(self, rule: str, describe: str) -> None:
        self.rule = re.compile(rule)
        self.describe = describe

    def regex(self, width: int) -> str:
        return f"(?:{self.rule.pattern})"

    def decode(self, raw: str) -> str:
        if not self.rule.fullmatch(raw):
            raise ValueError(f"must be {self.describe}")
        return raw.rstrip(" ")

    def encode(self, value: Any, width: int) -> str:
        text = super().encode(value, width)
        self.decode(text)
        return text

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        return f"{encode}({var}, {width})"


class Blank(Coded):
    """A filler (``FILLER``, and the fields a file of this kind leaves empty): spaces only, decoded
    to ``empty``. A filler carrying anything else is refused, not warned about (docs/formats.md §3)."""

    def __init__(self, describe: str = "blank (spaces only): the layout's filler", empty: Any = "") -> None:
        super().__init__(" *", describe)
        self.empty = empty

    def decode(self, raw: str) -> Any:
        super().decode(raw)
        return self.empty

    def encode(self, value: Any, width: int) -> str:
        if value not in ("", None):
            raise ValueError(f"must be {self.describe}")
        return " " * width


def left(chars: str, width: int) -> str:
    """The rule for up to ``width`` characters of class ``chars``, left-aligned, then blanks."""
    return "|".join(f"{chars}{{{k}}} {{{width - k}}}" for k in range(width, -1, -1))


class MaskedBig5(Big5Text):
    """A note field (NOTE, MEMO, NOTEB): Big5 text as read, a card number in it masked (BIN + last
    four): a bank's or an originator's free text is never trusted to hold none."""

    def decode(self, raw: str) -> str:
        return mask_pans(super().decode(raw))


ID_RULE = r"[0-9A-Z]{8}  |[0-9A-Z]{10}"  # CID, PID: a company tax id (8) or a national id (10)
ID_WORDS = "8 (company tax id) or 10 (national id) digits or upper-case letters, then blanks"


def roc(day: dt.date) -> str:
    return RocDate().encode(day, 8)


_unit_problem = functools.lru_cache(maxsize=8192)(tch.unit_problem)


class Unit(Digits):
    """A clearing-house unit: bank (3) + branch (3) + check digit, checked against the unit table
    and the check digit (``tch.unit_problem``) both ways."""

    semantic = True

    def __init__(self) -> None:
        super().__init__(exact=True)

    def decode(self, raw: str) -> str:
        problem = _unit_problem(raw)
        if problem:
            raise ValueError(problem)
        return raw

    def encode(self, value: Any, width: int) -> str:
        text = super().encode(value, width)
        problem = _unit_problem(text)
        if problem:
            raise ValueError(problem)
        return text

    def inline(self, var: str, width: int, encode: str, tmp: str) -> str:
        return f"{encode}({var}, {width})"


HEADER = Layout(
    "ACH header",
    RECORD,
    (
        Field("bof", 1, 3, Choice(["BOF"])),
        Field("data_code", 4, 6, Choice(["ACHP01", "ACHR01"])),
        Field("processing_date", 10, 8, RocDate()),
        Field("processing_time", 18, 6, Time()),
        Field("sending_unit", 24, 7, Unit()),  # SORG
        Field("receiving_unit", 31, 7, Choice([CLEARING_HOUSE])),  # RORG
        Field("version", 38, 3, Choice(["V10"])),
        Field("filler", 41, 210, Blank()),
    ),
)


def _detail_layout(extensions: bool) -> Layout:
    return Layout(
        "ACH detail",
        RECORD,
        (
            Field("record_type", 1, 1, Choice({"N": "new", "R": "return"})),  # TYPE
            Field("txn_class", 2, 2, Choice({"SC": "payment", "SD": "collection"})),  # TXTYPE
            Field("txn_code", 4, 3, Digits(exact=True)),  # TXID
            Field("seq", 7, 8, Digits()),  # SEQ
            Field("presenting_bank", 15, 7, Unit()),  # PBANK
            Field("presenting_account", 22, 16, Digits()),  # PCLNO
            Field("receiving_bank", 38, 7, Unit()),  # RBANK
            Field("receiving_account", 45, 16, Digits()),  # RCLNO
            Field("amount", 61, 10, WholeAmount()),  # AMT
            Field("return_reason", 71, 2, Coded("[0-9A-Z]{2}| {2}", "a 2-character reason code or blank")),  # RCODE
            Field("exchange_order", 73, 1, Choice(["B"])),  # SCHD
            Field("payer_id", 74, 10, Coded(ID_RULE, ID_WORDS)),  # CID
            Field("payee_id", 84, 10, Coded(ID_RULE, ID_WORDS)),  # PID
            Field(
                "listed_company", 94, 6, Coded(left("[0-9A-Z]", 6), "up to 6 digits or capitals, left-aligned")
            ),  # SID
            Field("original_date", 100, 8, RocDate(optional=True)),  # PDATE
            Field("original_seq", 108, 8, Coded("[0-9]{8}| {8}", "8 digits or blank")),  # PSEQ
            Field("original_exchange_order", 116, 1, Coded("[0-9A-Z ]", "a digit, a capital or blank")),  # PSCHD
            # CNO: letters and digits, as the public tables' charset says (our references' dashes are
            # left out when written: customer_number(); docs/formats.md §3)
            Field(
                "customer_number", 117, 20, Coded(left("[0-9A-Za-z]", 20), "up to 20 letters or digits, left-aligned")
            ),
            Field("originator_note", 137, 40, MaskedBig5(extensions=extensions)),  # NOTE
            Field("passbook_memo", 177, 10, MaskedBig5(extensions=extensions)),  # MEMO
            Field("customer_fee", 187, 5, Coded("00000", "00000 (the layout's literal: no customer fee)")),  # CFEE
            Field("originating_bank_note", 192, 20, MaskedBig5(extensions=extensions)),  # NOTEB
            Field("filler", 212, 39, Blank()),
        ),
    )


DETAIL = _detail_layout(extensions=True)  # reading: whatever cp950 holds
DETAIL_BIG5 = _detail_layout(extensions=False)  # writing for a bank that takes Big5 only (the default)

TRAILER = Layout(
    "ACH trailer",
    RECORD,
    (
        Field("eof", 1, 3, Choice(["EOF"])),
        Field("data_code", 4, 6, Choice(["ACHP01", "ACHR01"])),
        Field("processing_date", 10, 8, RocDate()),
        Field("sending_unit", 18, 7, Unit()),  # SORG
        Field("receiving_unit", 25, 7, Choice([CLEARING_HOUSE])),  # RORG
        Field("total_count", 32, 8, Digits()),
        Field("total_amount", 40, 16, WholeAmount()),
        Field("previous_business_day", 56, 8, RocDate(optional=True)),  # YDATE: blank in ACHP01
        Field("filler", 64, 187, Blank()),
    ),
)


def _for_kind(layout: Layout, codecs: dict[str, Any], name: str) -> Layout:
    """``layout`` with the fields whose rule depends on the file's kind held to that kind's rule."""
    fields = tuple(dataclasses.replace(f, codec=codecs[f.name]) if f.name in codecs else f for f in layout.fields)
    return Layout(name, layout.length, fields)


def _blank_in(code: str, empty: Any = "") -> Blank:
    return Blank(f"blank in an {code} file", empty)


# what each kind of file fills and leaves blank (the public V10 tables): a payment file (N) leaves the
# return's fields blank, a return (R) names its reason and the original entry; YDATE only in ACHR01
READ = {
    "ACHP01": (
        _for_kind(
            DETAIL,
            {
                "record_type": Coded("N", "N in an ACHP01 file"),
                "return_reason": _blank_in("ACHP01"),
                "original_date": _blank_in("ACHP01", None),
                "original_seq": _blank_in("ACHP01"),
                "original_exchange_order": _blank_in("ACHP01"),
            },
            "ACHP01 detail",
        ),
        _for_kind(
            TRAILER,
            {"previous_business_day": Blank("blank in an ACHP01 trailer (YDATE)", None)},
            "ACHP01 trailer",
        ),
    ),
    "ACHR01": (
        _for_kind(
            DETAIL,
            {
                "record_type": Coded("R", "R in an ACHR01 file"),
                "original_date": RocDate(missing="a return must name the original presenting date (ROC)"),
                "original_seq": Coded("[0-9]{8}", "the original entry's 8-digit sequence"),
            },
            "ACHR01 detail",
        ),
        _for_kind(
            TRAILER,
            {"previous_business_day": RocDate(missing="an ACHR01 trailer carries YDATE (ROC)")},
            "ACHR01 trailer",
        ),
    ),
}

# what changes from one payment to the next; everything else in a detail is the batch's
PAYMENT_FIELDS = (
    "txn_code",
    "seq",
    "receiving_bank",
    "receiving_account",
    "amount",
    "payee_id",
    "customer_number",
    "originator_note",
    "passbook_memo",
)


@dataclass(frozen=True)
class Batch:
    """What an ACH file says about itself: who sends it, for which processing day.

    For an ``ACHP01`` we send, ``sending_unit`` / ``presenting_account`` are our unit and account
    (PBANK / PCLNO). ``sending_org`` is the header's and trailer's SORG when a bank wants another
    unit there (its head office, say); otherwise the sending unit. ``previous_business_day`` is
    the trailer's YDATE: blank in an ``ACHP01``, filled in an ``ACHR01``."""

    processing_date: dt.date
    created_at: dt.time
    sending_unit: str
    presenting_account: str
    payer_id: str  # our company id (統一編號), CID
    previous_business_day: dt.date | None = None
    sending_org: str | None = None

    @property
    def sorg(self) -> str:
        return self.sending_org or self.sending_unit


@dataclass(frozen=True)
class Payment:
    """One payment as the file needs it. ``name`` goes to the originator note (Big5, 40 bytes).

    ``txn_code`` comes from the clearing house's table and must be a payment (SC) code: there is
    no silent default; the payment or its bank's configuration says which."""

    seq: int
    reference: str  # our payment reference (≤ 20): the customer number (CNO) without its dashes
    receiving_bank: str  # 7 digits: bank + branch + check digit
    receiving_account: str  # digits, ≤ 16
    amount: int  # whole NTD
    payee_id: str  # 8 (company tax id) or 10 (national id) characters
    name: str
    memo: str = ""  # passbook memo (Big5, 10 bytes)
    txn_code: str | None = None


# a payee's name, national id, account and our notes to them: an error names the field, never the value
PERSONAL_FIELDS = frozenset(
    {"receiving_account", "payee_account", "payee_id", "payee_name", "originator_note", "passbook_memo", "memo"}
)


class PaymentError(FinflowsError, ValueError):
    """A payment that cannot be written as it is; names the payment and the field, and the value
    unless it is the payee's (name, id, account, notes): the message reaches XCom, logs and email."""

    def __init__(self, reference: str, errors: list[tuple[str, str, str]]) -> None:
        self.reference = reference
        self.errors = errors
        text = "; ".join(
            f"field {f}, value {'(withheld: the payee’s data)' if f in PERSONAL_FIELDS else shown(v)}: {r}"
            for f, v, r in errors
        )
        super().__init__(mask_pans(f"payment {reference}: {text}"))


def shown(value: Any) -> str:
    """A value as an error shows it: quoted, or ``(blank)``."""
    text = "" if value is None else str(value)
    return repr(text) if text.strip() else "(blank)"


def customer_number(reference: str) -> str:
    """The customer number (CNO) written for our payment ``reference``: the public tables allow
    letters and digits only, so its dashes are left out (``GOLD-00001`` → ``GOLD00001``). A return
    is matched by its original date and sequence; the CNO it echoes is checked against this."""
    return reference.replace("-", "")


def _detail_values(p: Payment) -> tuple[Any, ...]:
    cno = customer_number(p.reference)
    return (p.txn_code, p.seq, p.receiving_bank, p.receiving_account, p.amount, p.payee_id, cno, p.name, p.memo)


def _detail_constants(batch: Batch) -> dict[str, Any]:
    return {
        "record_type": "N",
        "txn_class": "SC",
        "presenting_bank": batch.sending_unit,
        "presenting_account": batch.presenting_account,
        "return_reason": "",
        "exchange_order": "B",
        "payer_id": batch.payer_id,
        "listed_company": "",
        "original_date": None,
        "original_seq": "",
        "original_exchange_order": "",
        "customer_fee": "00000",
        "originating_bank_note": "",
        "filler": "",
    }


def _problems(p: Payment, txn_class: str = "SC") -> list[tuple[str, str, str]]:
    """Domain rules the codecs cannot know: a positive whole amount that fits, a transaction code
    of the file's class from the clearing house's table, an 8- or 10-character payee id, no card
    number in the free text we send (the note and memo)."""
    out = []
    if type(p.amount) is not int or not 0 < p.amount <= MAX_AMOUNT:
        out.append(("amount", str(p.amount), f"must be a whole NTD amount 1..{MAX_AMOUNT}"))
    if not p.txn_code:
        out.append(("txn_code", "", "no transaction code: set the payment's txn_code or the bank's default_txn_code"))
    elif problem := tch.txn_problem(p.txn_code, txn_class):
        out.append(("txn_code", p.txn_code, problem))
    if problem := tch.pid_problem(p.payee_id):
        out.append(("payee_id", p.payee_id, problem))
    # free text only: our reference (CNO) is an identifier of fixed meaning, and a reference such as
    # P37792681-00001 passes the Luhn check as often as one in ten
    for name, text in (("originator_note", p.name), ("passbook_memo", p.memo)):
        if isinstance(text, str) and mask_pans(text) != text:
            out.append((name, text, "carries a card number: it is never written to a bank's file"))
    return out


def _check(p: Payment) -> None:
    if errors := _problems(p):
        raise PaymentError(p.reference, errors)


def _header(batch: Batch, data_code: str) -> str:
    return HEADER.format(
        {
            "bof": "BOF",
            "data_code": data_code,
            "processing_date": batch.processing_date,
            "processing_time": batch.created_at,
            "sending_unit": batch.sorg,
            "receiving_unit": CLEARING_HOUSE,
            "version": "V10",
            "filler": "",
        }
    )


def _trailer(batch: Batch, data_code: str, count: int, total: int) -> str:
    ydate = batch.previous_business_day if data_code == "ACHR01" else None
    return TRAILER.format(
        {
            "eof": "EOF",
            "data_code": data_code,
            "processing_date": batch.processing_date,
            "sending_unit": batch.sorg,
            "receiving_unit": CLEARING_HOUSE,
            "total_count": count,
            "total_amount": total,
            "previous_business_day": ydate,
            "filler": "",
        }
    )


def _sc_codes() -> frozenset[str]:
    return frozenset(c for c, t in tch.txn_codes().items() if t.txn_class == "SC")


def write_achp01(batch: Batch, payments: Iterable[Payment], *, extensions: bool = False) -> bytes:
    """The whole ``ACHP01`` file: header, one detail per payment (in the order given), trailer.

    ``extensions``: the bank takes cp950's additions to Big5 (``€``, F9D6–F9FE). A payment that
    cannot be written raises ``PaymentError`` naming it and every bad field; nothing is returned."""
    layout = DETAIL if extensions else DETAIL_BIG5
    constants = _detail_constants(batch)
    detail = layout.formatter(PAYMENT_FIELDS, constants)
    sc, pid, card = _sc_codes(), tch.pid_problem, may_hold_pan
    records = [_header(batch, "ACHP01")]
    count = total = 0
    append = records.append
    for p in payments:
        if (
            type(p.amount) is not int
            or not 0 < p.amount <= MAX_AMOUNT
            or p.txn_code not in sc
            or pid(p.payee_id)
            or (type(p.name) is str and card(p.name))
        ):
            _check(p)  # raises, naming the payment (or finds the digits are no card number)
        try:
            append(
                detail(
                    p.txn_code,
                    p.seq,
                    p.receiving_bank,
                    p.receiving_account,
                    p.amount,
                    p.payee_id,
                    customer_number(p.reference),
                    p.name,
                    p.memo,
                )
            )
        except (ValueError, TypeError, ArithmeticError):
            try:  # the slow path names every bad field
                layout.format(constants | dict(zip(PAYMENT_FIELDS, _detail_values(p), strict=True)))
            except RecordError as e:
                raise PaymentError(p.reference, e.errors) from None
            raise
        count += 1
        total += p.amount
    records.append(_trailer(batch, "ACHP01", count, total))
    return ("\r\n".join(records) + "\r\n").encode(WIRE)


def write_achr01(batch: Batch, original: Batch, returns: Iterable[tuple[Payment, str]]) -> bytes:
    """An ``ACHR01`` return file as the returning (payee's) bank sends it: the bank's side, which
    the demo plays. ``batch`` is the return file's own day and unit (SORG) and its trailer's YDATE;
    ``original`` is the ``ACHP01`` batch the payments came in. Each detail is ``R`` with the
    reason code, and **the two sides swapped**: PBANK/PCLNO the payee's unit and account,
    RBANK/RCLNO our unit and account; PDATE/PSEQ point at the original entry."""
    records = [_header(batch, "ACHR01")]
    total = 0
    for seq, (p, reason) in enumerate(returns, start=1):
        values = {
            "record_type": "R",
            "txn_class": tch.txn_codes()[p.txn_code].txn_class if p.txn_code in tch.txn_codes() else "SC",
            "txn_code": p.txn_code,
            "seq": seq,
            "presenting_bank": p.receiving_bank,
            "presenting_account": p.receiving_account,
            "receiving_bank": original.sending_unit,
            "receiving_account": original.presenting_account,
            "amount": p.amount,
            "return_reason": reason,
            "exchange_order": "B",
            "payer_id": original.payer_id,
            "payee_id": p.payee_id,
            "listed_company": "",
            "original_date": original.processing_date,
            "original_seq": f"{p.seq:08d}",
            "original_exchange_order": "B",
            "customer_number": customer_number(p.reference),
            "originator_note": "",
            "passbook_memo": "",
            "customer_fee": "00000",
            "originating_bank_note": "",
            "filler": "",
        }
        records.append(DETAIL.format(values))
        total += p.amount
    records.append(_trailer(batch, "ACHR01", len(records) - 1, total))
    return ("\r\n".join(records) + "\r\n").encode(WIRE)


# ---------------------------------------------------------------------------- CSV variant
CSV_COLUMNS = (
    "seq",
    "processing_date",
    "txn_code",
    "payer_bank",
    "payer_account",
    "payer_id",
    "payee_bank",
    "payee_account",
    "amount",
    "payee_id",
    "payee_name",
    "memo",
    "reference",
)


def csv_row(batch: Batch, p: Payment, encoding: str, *, extensions: bool = False) -> bytes:
    """One payment as a CSV line (RFC 4180, CRLF), strictly in the bank's encoding (Big5 proper for
    cp950 unless ``extensions``)."""
    _check(p)
    if problem := tch.unit_problem(p.receiving_bank):
        raise PaymentError(p.reference, [("receiving_bank", p.receiving_bank, problem)])
    for name, value in (("payee_name", p.name), ("memo", p.memo)):
        try:
            data = str(value).encode(encoding)
        except UnicodeEncodeError as e:
            raise PaymentError(
                p.reference, [(name, value, f"character {e.object[e.start]!r} cannot be encoded in {encoding}")]
            ) from None
        if encoding == "cp950" and not extensions and (code := cp950_only(data)) is not None:
            raise PaymentError(
                p.reference,
                [
                    (
                        name,
                        value,
                        f"character {code.decode(encoding)!r} is a cp950 extension, not Big5 (big5_extensions)",
                    )
                ],
            )
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerow(
        (
            p.seq,
            batch.processing_date.isoformat(),
            p.txn_code,
            batch.sending_unit,
            batch.presenting_account,
            batch.payer_id,
            p.receiving_bank,
            p.receiving_account,
            p.amount,
            p.payee_id,
            p.name,
            p.memo,
            p.reference,
        )
    )
    return out.getvalue().encode(encoding)


def write_csv(batch: Batch, payments: Iterable[Payment], encoding: str, *, extensions: bool = False) -> bytes:
    """The CSV variant: RFC 4180, CRLF, a header row, Gregorian ISO dates, whole NTD amounts.

    Encoded strictly in the bank's encoding: a name it cannot hold fails with the payment named."""
    header = ",".join(CSV_COLUMNS).encode(encoding) + b"\r\n"
    return header + b"".join(csv_row(batch, p, encoding, extensions=extensions) for p in payments)


def check_payment(batch: Batch, p: Payment, file_format: str, encoding: str, *, extensions: bool = False) -> None:
    """Raise ``PaymentError`` (payment, every bad field, value) if ``p`` cannot be written in this format."""
    if file_format == "csv":
        csv_row(batch, p, encoding, extensions=extensions)
        return
    errors = _problems(p)
    try:
        (DETAIL if extensions else DETAIL_BIG5).format(
            _detail_constants(batch) | dict(zip(PAYMENT_FIELDS, _detail_values(p), strict=True))
        )
    except RecordError as e:
        errors += e.errors
    if errors:
        raise PaymentError(p.reference, errors)


# the CSV variant of a return file
RETURN_CSV_COLUMNS = ("reference", "original_date", "original_seq", "payee_account", "amount", "return_reason")


def write_return_csv(returns: Iterable[tuple[Payment, str]], original_date: dt.date, encoding: str) -> bytes:
    """The CSV variant of a return file (the bank's side, for the demo): one row per answered payment."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(RETURN_CSV_COLUMNS)
    for p, reason in returns:
        w.writerow((p.reference, original_date.isoformat(), f"{p.seq:08d}", p.receiving_account, p.amount, reason))
    return out.getvalue().encode(encoding)


def file_name(pattern: str, processing_date: dt.date, batch_no: int, bank_code: str) -> str:
    """A bank's file-name pattern filled in: ``{YYYYMMDD}``, ``{BATCH}`` (3 digits), ``{BANK}``."""
    return (
        pattern.replace("{YYYYMMDD}", processing_date.strftime("%Y%m%d"))
        .replace("{BATCH}", f"{batch_no:03d}")
        .replace("{BANK}", bank_code)
    )


# ---------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class AchFile:
    header: dict[str, Any]
    details: list[dict[str, Any]]
    trailer: dict[str, Any]

    @property
    def total(self) -> Decimal:
        return sum((d["amount"] for d in self.details), Decimal(0))


def _shown(raw: str) -> str:
    """A slice as an error shows it: its text, or its bytes in hex where they are not cp950."""
    data = raw.encode(WIRE)
    try:
        return data.decode("cp950").rstrip(" ")
    except UnicodeDecodeError:
        return f"<bytes {data.rstrip(b' ').hex(' ').upper()}>"


def _detail_problems(d: dict[str, Any], data_code: str, success_codes: Collection[str]) -> list[tuple[str, str, str]]:
    """Rules across a detail's fields (what the file's kind fills and leaves blank is its layout's,
    ``READ``): the transaction code's class, a collection's customer number, a return's reason."""
    out = []
    if problem := tch.txn_problem(d["txn_code"], d["txn_class"]):
        out.append(("txn_code", d["txn_code"], problem))
    if d["txn_class"] == "SD" and not d["customer_number"]:
        out.append(("customer_number", "", "a collection (SD) names the customer number (CNO)"))
    reason = d["return_reason"]
    if (
        data_code == "ACHR01"
        and reason not in success_codes
        and (problem := tch.return_problem(reason, d["txn_class"]))
    ):
        out.append(("return_reason", reason, problem))
    return out


def _trailer_against_header(header: dict[str, Any], trailer: dict[str, Any], last: int) -> list[FieldError]:
    """The trailer (line ``last``) names the header's data code, sending unit and date (YDATE is the
    kind's trailer layout's, ``READ``)."""
    errors = [
        FieldError(last, name, trailer[name], f"differs from the header's {header[name]}")
        for name in ("data_code", "sending_unit")
        if trailer[name] != header[name]
    ]
    if trailer["processing_date"] != header["processing_date"]:
        errors.append(FieldError(last, "processing_date", roc(trailer["processing_date"]), "differs from the header's"))

    return errors


def _trailer_totals(trailer: dict[str, Any], details: list[dict[str, Any]], last: int) -> list[FieldError]:
    """The trailer's count and total are the details'."""
    errors = []
    if int(trailer["total_count"]) != len(details):
        errors.append(
            FieldError(last, "total_count", trailer["total_count"], f"the file has {len(details)} detail record(s)")
        )
    total = sum((d["amount"] for d in details), Decimal(0))
    if trailer["total_amount"] != total:
        errors.append(FieldError(last, "total_amount", str(trailer["total_amount"]), f"the details add up to {total}"))
    return errors


def _records(text: str, errors: list[FieldError]) -> list[str]:
    """The file's records: CRLF-separated. An MS-DOS end-of-file mark (Ctrl-Z) and blank lines after
    the last record carry nothing: they are left out, so that the EOF record is still the trailer and
    named as such. A last record without CRLF is an error."""
    lines = text.removesuffix("\x1a").split("\r\n")
    if lines[-1] == "":
        lines.pop()
        while len(lines) > 1 and lines[-1] == "":
            lines.pop()
    else:
        errors.append(FieldError(len(lines), "record", _shown(lines[-1][:40]), "does not end with CRLF"))
    return lines


def _parse_records(
    lines: list[str], errors: list[FieldError], data_code: str | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """Each record by its place (header first, trailer last, details between), 250 bytes each, the
    details and trailer by the rules of the header's kind of file (else ``data_code``'s); the
    details carry their line number."""
    header = trailer = None
    details: list[dict[str, Any]] = []
    for n, line in enumerate(lines, start=1):
        if len(line) != RECORD:
            reason = "contains a bare LF" if "\n" in line else f"is {len(line)} bytes long, expected {RECORD}"
            errors.append(FieldError(n, "record", _shown(line[:40]), reason))
            continue
        code: str | None = header["data_code"] if header else data_code
        detail, last = READ.get(code or "", (DETAIL, TRAILER))
        kind = HEADER if n == 1 else last if n == len(lines) else detail
        try:
            values = dict(zip(kind.names, kind.parse(line), strict=True))
        except RecordError as e:
            errors += [FieldError(n, f, _shown(v), r) for f, v, r in e.errors]
            continue
        if kind is HEADER:
            header = values
        elif kind is last:
            trailer = values
        else:
            details.append(values | {"line": n})
    return header, details, trailer


def read_ach(
    data: bytes, file_name: str, data_code: str | None = None, *, success_codes: Collection[str] = ()
) -> AchFile:
    """Read a whole ACH file (payments or returns): every record 250 bytes + CRLF, header first,
    trailer last, the trailer's data code, date and sending unit equal to the header's, its count
    and total equal to the details'. In an ``ACHR01`` every detail is a return (``R``) with a reason
    from the clearing house's table (or one of ``success_codes``, where a bank lists paid items
    too), the original date and sequence, and the trailer has YDATE. Raises one ``FormatError``
    listing every problem (line, field, value)."""
    errors: list[FieldError] = []
    text = data.decode(WIRE)
    if not text:
        raise FormatError(file_name, [FieldError(0, "file", "", "is empty")])
    lines = _records(text, errors)
    header, details, trailer = _parse_records(lines, errors, data_code)
    last = len(lines)
    if len(lines) < 2:
        errors.append(FieldError(len(lines), "record", "", "a file needs a header (BOF) and a trailer (EOF)"))
    if header and data_code and header["data_code"] != data_code:
        errors.append(FieldError(1, "data_code", header["data_code"], f"expected {data_code}"))
    code = header["data_code"] if header else data_code
    if code:
        for d in details:
            errors += [FieldError(d["line"], f, _shown(v), r) for f, v, r in _detail_problems(d, code, success_codes)]
    if header and trailer:
        errors += _trailer_against_header(header, trailer, last)
    if trailer and not errors:
        errors += _trailer_totals(trailer, details, last)
    if errors:
        raise FormatError(file_name, errors)
    if header is None or trailer is None:  # each is an error above: unreachable
        raise FormatError(file_name, [FieldError(0, "file", "", "has no header or trailer record")])
    return AchFile(header, details, trailer)


def read_csv(data: bytes, file_name: str, encoding: str, columns: Sequence[str] = CSV_COLUMNS) -> list[dict[str, Any]]:
    """Rows of a CSV variant file keyed by its header, which must be ``columns``."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise FormatError(
            file_name, [FieldError(0, "file", "", f"is not valid {encoding} at byte {e.start}")]
        ) from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(rows[0]) != tuple(columns):
        raise FormatError(
            file_name, [FieldError(1, "header", ",".join(rows[0]) if rows else "", f"expected {','.join(columns)}")]
        )
    errors = [
        FieldError(n, "record", ",".join(r)[:80], f"has {len(r)} columns, expected {len(columns)}")
        for n, r in enumerate(rows[1:], start=2)
        if len(r) != len(columns)
    ]
    if errors:
        raise FormatError(file_name, errors)
    return [dict(zip(columns, r, strict=True)) | {"line": n} for n, r in enumerate(rows[1:], start=2)]
