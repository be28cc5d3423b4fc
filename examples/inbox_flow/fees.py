"""The example flow's own pieces: its layout and its load (``examples/inbox_flow``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from finflows import files, inbox
from finflows.formats.fixedwidth import Date, Digits, Field, Layout, Pattern, ReadStats, SignedDecimal, read_copy_rows

FLOW = "example_bank_fees"

# A bank's daily fee file: 32 characters a line, ASCII.
LAYOUT = Layout(
    name="example-bank-fees",
    length=32,
    fields=(
        Field("account", 1, 8, Digits()),
        Field("fee_code", 9, 3, Pattern(r"[A-Z]{3}", "3 capital letters")),
        Field("amount", 12, 11, SignedDecimal(places=2)),
        Field("charged_on", 23, 10, Date("%d/%m/%Y")),
    ),
)
_COPY = f"COPY example.bank_fee (file_id, line_no, {', '.join(LAYOUT.copy_columns)}) FROM STDIN"


class Status(StrEnum):
    """A fee file's outcome (``inbox.Outcome.status``)."""

    LOADED = "LOADED"  # by this run
    ALREADY_LOADED = "ALREADY_LOADED"  # before


class BankFees(inbox.InboxFlow):
    flow, limit, done = FLOW, "BANK_FEES", "loaded"
    statuses = inbox.statuses(Status.LOADED, Status.ALREADY_LOADED)

    def process(self, conn, path: Path, f: files.Incoming) -> tuple[files.Decision, dict[str, Any]]:
        """Decide and load in one transaction: a bad line rolls the whole file back."""
        with conn.transaction(), conn.cursor() as cur:
            decision, info, file_id = files.begin_load(cur, FLOW, f.file_name, f.sha256, f.source_uri, f.run_id)
            if file_id is None:
                return decision, info
            stats = ReadStats()
            with path.open("rb") as fh:
                files.copy_lines(cur, _COPY, f"{file_id}\t", read_copy_rows(fh, LAYOUT, f.file_name, stats))
            files.finish_control(cur, file_id, stats.lines, stats.records, None)
            files.record_event(cur, FLOW, f.file_name, f.sha256, "IMPORTED", f"{stats.records} fees", f.run_id)
        return decision, {"records": stats.records}

    def summary(self, conn, file_name: str) -> dict[str, Any]:
        row = conn.execute(
            "SELECT row_count FROM ops.file_control WHERE flow = %s AND file_name = %s", (FLOW, file_name)
        ).fetchone()
        return {"records": row[0] if row else 0}
