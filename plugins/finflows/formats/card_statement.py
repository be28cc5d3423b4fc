"""Card statement ("extrato eletrônico", docs/formats.md §2): A0 header, CV details, A9 trailer.

Latin-1 text, one 400-character record per line (CRLF or LF). Positions in docs/formats.md are
0-based slices; ``Field`` takes 1-based starts, hence ``start + 1`` below.

``read_statement`` streams a file and yields one line of COPY text per detail record (validated
and converted by the layout's generated row function), then checks the trailer: its count is the
number of records in the file (header and trailer included) and every record's sequence number
follows the one before (header 1, details 2…, trailer last). Every problem is collected and one
``FormatError`` at the end names file, line, field and value. A card number is only ever echoed
masked. No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

from finflows.formats.fixedwidth import (
    Choice,
    Date,
    Digits,
    Errors,
    Field,
    FieldError,
    FormatError,
    ImpliedDecimal,
    Layout,
    MaskedCard,
    MaskedText,
    OptionalImpliedDecimal,
    Pattern,
    RecordError,
    Time,
)
from finflows.pci import mask_card_field, mask_pans

RECORD_LENGTH = 400
ENCODING = "latin-1"
YMD = "%Y%m%d"

ENTRY_TYPES = {"0": "forecast", "1": "normal settlement", "2": "early settlement"}
PRODUCT_TYPES = {"C": "credit", "D": "debit", "V": "voucher"}
CAPTURE_CHANNELS = {
    "1": "manual",
    "2": "POS",
    "3": "PDV",
    "4": "TRN off",
    "5": "internet",
    "6": "IVR",
    "8": "undefined",
    "9": "other",
}
BRANDS = {"001": "Mastercard", "002": "Visa", "007": "Elo"}
PRODUCT_CODES = {f"{i:03d}": f"product {i}" for i in range(1, 14)}
TRANSACTION_TYPES = {"00": "normal", "01": "type 01", "02": "type 02", "03": "type 03", "04": "type 04"}
RECEIVABLE_TYPES = {c: c for c in "CGPRAFEU "}


def f(name: str, start0: int, end0: int, codec: Any, store: bool = True) -> Field:
    """A field from docs/formats.md's 0-based slice [start0:end0]."""
    return Field(name, start0 + 1, end0 - start0, codec, store)


def _LEFT_DIGITS(width: int) -> str:  # noqa: N802 (reads as the rule it builds)
    """``width`` characters: up to ``width`` digits, left-aligned, then blanks (no space between digits)."""
    return "|".join(f"[0-9]{{{k}}} {{{width - k}}}" for k in range(width, -1, -1))


def _money(name: str, start0: int) -> Field:
    return f(name, start0, start0 + 11, ImpliedDecimal(2))


HEADER = Layout(
    "card-statement-A0",
    RECORD_LENGTH,
    (
        f("record_type", 0, 2, Choice(["A0"])),
        f("layout_version", 2, 8, MaskedText(required=True)),
        f("generated_on", 8, 16, Date(YMD)),
        f("generated_at", 16, 22, Time()),
        f("movement_id", 22, 28, Digits()),
        f("administrator", 28, 58, MaskedText(required=True)),
        f("sender", 58, 62, MaskedText()),
        f("recipient", 62, 71, MaskedText()),
        f("processing_type", 71, 72, MaskedText()),
        f("record_seq", 72, 78, Digits()),
    ),
)

TRAILER = Layout(
    "card-statement-A9",
    RECORD_LENGTH,
    (
        f("record_type", 0, 2, Choice(["A9"])),
        f("total_records", 2, 8, Digits()),
        f("record_seq", 8, 14, Digits()),
    ),
)

DETAIL = Layout(
    "card-statement-CV",
    RECORD_LENGTH,
    (
        f("record_type", 0, 2, Choice(["CV"]), store=False),
        f("store_id", 2, 17, Pattern(r"[0-9A-Z][0-9]{14}", "15 characters: a digit or capital letter, then 14 digits")),
        f("host_nsu", 17, 29, Digits()),
        f("txn_date", 29, 37, Date(YMD)),
        f("txn_time", 37, 43, Time()),
        f("entry_type", 43, 44, Choice(ENTRY_TYPES)),
        f("entry_date", 44, 52, Date(YMD)),
        f("product_type", 52, 53, Choice(PRODUCT_TYPES)),
        f("capture_channel", 53, 54, Choice(CAPTURE_CHANNELS)),
        _money("gross", 54),
        _money("discount", 65),
        _money("net", 76),
        f("card", 87, 106, MaskedCard()),
        f("instalment_no", 106, 108, Digits()),
        f("instalments", 108, 110, Digits()),
        f("instalment_nsu", 110, 122, Digits()),
        _money("instalment_gross", 122),
        _money("instalment_discount", 133),
        _money("instalment_net", 144),
        f("bank", 155, 158, Digits()),
        f("branch", 158, 164, Digits()),
        f("account", 164, 175, Digits()),
        f("auth_code", 175, 187, MaskedText()),
        f("brand", 187, 190, Choice(BRANDS)),
        f("product_code", 190, 193, Choice(PRODUCT_CODES)),
        _money("interchange_fee", 193),
        _money("admin_fee", 204),
        _money("instalment_interchange_fee", 215),
        _money("instalment_admin_fee", 226),
        _money("multi_border_reducer", 237),
        _money("anticipation_fee", 248),
        _money("net_anticipated", 259),
        f("transaction_type", 270, 272, Choice(TRANSACTION_TYPES)),
        f("order_code", 272, 302, MaskedText()),
        f("country", 302, 305, Choice(["BRA"])),
        f("sale_establishment", 305, 314, Digits()),
        f("payment_establishment", 314, 323, Digits()),
        f("payment_cnpj", 323, 337, Digits()),
        f("original_due_date", 337, 345, Date(YMD, optional=True)),
        f("debit_balance", 345, 346, Choice({"D": "debit balance", " ": "none"})),
        f("resend", 346, 347, Choice({"R": "resent", " ": "not resent"})),
        f("origin_nsu", 347, 353, Pattern(_LEFT_DIGITS(6), "up to 6 digits, left-aligned, then blanks")),
        # an operation number, not free text: 20 characters or blank (the layout; syncrocardpay checks
        # just that), and digits (a numeric identifier, #43). Not scanned for card numbers: a run of
        # 20 digits is no card number, and masking would corrupt the identifier.
        f("receivable_op", 356, 376, Pattern(r"[0-9]{20}| {20}", "20 digits, or blank")),
        f("receivable_seq", 376, 378, Pattern(r"[0-9]{2}| {2}", "2 digits or blank")),
        f("receivable_type", 378, 379, Choice(RECEIVABLE_TYPES)),
        f("receivable_amount", 379, 390, OptionalImpliedDecimal(2)),
        f("record_seq", 390, 396, Digits()),
    ),
)
COPY_COLUMNS = DETAIL.copy_columns
_NAME = re.compile(r"^EXTRATO_UNICA_([0-9]+)_([0-9]{8})_([0-9]+)(\.txt)?$", re.IGNORECASE)


_BY_CODE = {"A0": HEADER, "CV": DETAIL, "A9": TRAILER}


def mask_line(line: str) -> str:
    """One line of a statement as a copy of the file may be stored: its record's free text and card
    field masked (``Layout.mask_text``), its length unchanged; a line of no known record, as it is."""
    layout = _BY_CODE.get(line[:2])
    return layout.mask_text(line) if layout is not None else line


def is_statement_name(name: str) -> bool:
    m = _NAME.match(name)
    if not m:
        return False
    try:
        dt.datetime.strptime(m.group(2), YMD)  # noqa: DTZ007
    except ValueError:
        return False
    return True


# distinct dimension members a read holds (a few MB); past it the loader reads them from the facts
MEMBERS_HELD = 50_000


@dataclass
class Members:
    """The dimension members the details name, as the file has them: store ids, sale and entry
    dates (``YYYYMMDD``), products (type and code, 4 characters). Held while there are at most
    ``MEMBERS_HELD``; a statement with more (a million stores) drops them, and its loader gathers
    the members from the facts it copied instead: memory stays flat whatever the file holds.
    ``read_statement`` fills the sets itself (the hot path binds their ``add`` once)."""

    stores: set[str] = field(default_factory=set)
    days: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)

    def size(self) -> int:
        return len(self.stores) + len(self.days) + len(self.products)


@dataclass
class StatementStats:
    lines: int = 0
    details: int = 0
    gross: Decimal = Decimal(0)
    net: Decimal = Decimal(0)
    header: dict[str, Any] = field(default_factory=dict)
    members: Members | None = field(default_factory=Members)  # None: more than MEMBERS_HELD


def _shown(field_name: str, value: str) -> str:
    """What an error may echo: a card slice always masked, anything else PAN-masked."""
    if field_name == "card":
        return mask_card_field(value)
    return mask_pans(value)


class _Reading(Errors):
    """One read's state beside its rows, and a handler per record type for every record the hot
    path does not take (the header, the trailer, a detail that is refused or out of place, a blank
    line). Problems are collected as every fixed-width reader collects them (``Errors``: all
    counted, the first ``FormatError.MAX_LISTED`` kept), a card slice always masked."""

    def __init__(self, stats: StatementStats) -> None:
        super().__init__(DETAIL, ENCODING)
        self.stats = stats
        self.trailer: tuple[Any, ...] | None = None  # () once a trailer was met that could not be read
        self.trailer_line = 0
        self.headed = True  # False: the file has no header, so its sequence is not judged either

    def error(self, line: int, name: str, value: str, reason: str) -> None:
        self.add(FieldError(line, name, _shown(name, value), reason))

    def refused(self, line: int, e: RecordError) -> None:
        for name, value, reason in e.errors:
            self.error(line, name, value, reason)

    def blank_lines(self, blanks: list[int]) -> None:
        """Blank lines with records after them (trailing ones are tolerated)."""
        for n in blanks:
            self.error(n, "record_type", "", "is an empty line")
        blanks.clear()

    def record(self, line_no: int, line: str) -> None:
        """A record the hot path did not take: the header, the trailer, or one to explain."""
        kind = line[:2]
        if self.trailer is not None:
            self.error(line_no, "record_type", kind, "comes after the A9 trailer")
        elif line_no == 1 and kind == "A0":
            self.header(line)
        elif line_no == 1 and kind != "CV":
            self.error(1, "record_type", kind, "the first record must be the A0 header")
        elif kind == "CV":
            self.detail(line_no, line)
        elif kind == "A9":
            self.trailer_record(line_no, line)
        else:
            self.error(line_no, "record_type", kind, "is not A0, CV or A9")

    def header(self, line: str) -> None:
        try:
            values = HEADER.parse(line)
        except RecordError as e:
            self.refused(1, e)
            return
        self.stats.header = dict(zip(HEADER.names, values, strict=True))
        if self.stats.header["record_seq"] != "000001":
            self.error(1, "record_seq", self.stats.header["record_seq"], "breaks the sequence: expected 000001")

    def detail(self, line_no: int, line: str) -> None:
        """A detail the record regex refused (every bad field named), or one on line 1, where the
        header should be: the file is refused for that, said once, and its sequence not judged."""
        if line_no == 1:
            self.headed = False
            self.error(1, "record_type", "CV", "the file has no A0 header (the first record is a CV detail)")
        try:
            DETAIL.copy_row(line)
        except RecordError as e:
            self.refused(line_no, e)

    def trailer_record(self, line_no: int, line: str) -> None:
        try:
            self.trailer = TRAILER.parse(line)
        except RecordError as e:
            self.trailer = ()
            self.refused(line_no, e)
        self.trailer_line = line_no

    def finish(self, file_name: str, last: int) -> None:
        """After the last line (``last``: the last one not blank): the trailer's count and sequence,
        then one ``FormatError`` naming every problem of the file."""
        if last == 0:
            self.error(0, "file", "", "is empty")
        elif self.trailer is None:
            self.error(last, "record_type", "", "no A9 trailer: the file is incomplete")
        elif self.trailer and self.headed:
            at, (_, total, seq) = self.trailer_line, self.trailer
            if int(total) != last:
                self.error(at, "total_records", total, f"says {int(total)} records but the file has {last}")
            if int(seq) != at:
                self.error(at, "record_seq", seq, f"breaks the sequence: expected {at:06d}")
        if self.count:
            raise FormatError(file_name, self.listed, total=self.count)


def read_statement(stream: BinaryIO, file_name: str, stats: StatementStats | None = None) -> Iterator[str]:
    """Yield each detail record as a line of COPY text (columns ``COPY_COLUMNS``, no newline).

    The loop holds only the hot path, a valid CV detail in its place (the layout's regex and its
    generated row function, the record's sequence, totals and dimension members, all inlined);
    every other record goes to its handler in ``_Reading``."""
    stats = stats if stats is not None else StatementStats()
    reading = _Reading(stats)
    fast, row_of = DETAIL.fast_path()
    g_of = DETAIL.group_index
    gross_g, net_g, seq_g = g_of("gross"), g_of("net"), g_of("record_seq")
    store_g, txn_g, entry_g = g_of("store_id"), g_of("txn_date"), g_of("entry_date")
    ptype_g, pcode_g = g_of("product_type"), g_of("product_code")
    gross_cents = net_cents = line_no = last = details = 0  # last: the last line that is not blank
    members, held = stats.members, MEMBERS_HELD
    if members is not None:  # the members' sets, their adds bound once
        add_store, add_day, add_product = members.stores.add, members.days.add, members.products.add
    blanks: list[int] = []  # blank lines not yet known to be trailing
    for line_no, raw in enumerate(stream, start=1):
        line = raw.decode(ENCODING).rstrip("\r\n")
        if not line or (line[0] == " " and not line.strip(" ")):
            blanks.append(line_no)
            continue
        if blanks:
            reading.blank_lines(blanks)
        last = line_no
        if line_no != 1 and reading.trailer is None and (m := fast(line)) is not None:
            g = m.groups()
            try:
                row = row_of(g)
            except ValueError:  # a field the regex cannot judge (a date's calendar): its handler names it
                reading.detail(line_no, line)
                continue
            if int(g[seq_g]) != line_no and reading.headed:
                reading.error(line_no, "record_seq", g[seq_g], f"breaks the sequence: expected {line_no:06d}")
            details += 1
            if members is not None:
                add_store(g[store_g])
                add_day(g[txn_g])
                add_day(g[entry_g])
                add_product(g[ptype_g] + g[pcode_g])
                if not line_no & 0xFFF and members.size() > held:
                    members = stats.members = None
            gross_cents += int(g[gross_g] + g[gross_g + 1])
            net_cents += int(g[net_g] + g[net_g + 1])
            yield row
        else:
            reading.record(line_no, line)
    stats.lines, stats.details = last, stats.details + details
    if members is not None and members.size() > held:
        stats.members = None
    stats.gross, stats.net = Decimal(gross_cents).scaleb(-2), Decimal(net_cents).scaleb(-2)
    reading.finish(file_name, last)


# ---------------------------------------------------------------------------- writing (tests, demo, bench)
def format_header(generated_on: dt.date, movement_id: int = 1) -> str:
    return HEADER.format(
        {
            "record_type": "A0",
            "layout_version": "V10.00",
            "generated_on": generated_on,
            "generated_at": dt.time(6, 0, 0),
            "movement_id": movement_id,
            "administrator": "ACQUIRER LOCAL TEST",
            "sender": "ACQ",
            "recipient": "FINFLOWS",
            "processing_type": "N",
            "record_seq": 1,
        }
    )


def format_trailer(total_records: int) -> str:
    return TRAILER.format({"record_type": "A9", "total_records": total_records, "record_seq": total_records})


def format_detail(**values: Any) -> str:
    return DETAIL.format({"record_type": "CV", **values})
