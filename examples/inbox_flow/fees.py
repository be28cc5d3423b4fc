"""The example flow's own pieces: its layout and its load (``examples/inbox_flow``)."""

from __future__ import annotations

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


class BankFeesRejected(files.FileRejected):
    """A fee file that must not be loaded as it is; quarantined for a person."""


class BankFees(inbox.InboxFlow):
    flow, limit, done, rejected = FLOW, "BANK_FEES", "loaded", BankFeesRejected

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


def import_file(key: str, *, bucket: str, run_id: str, s3_hook, pg_hook) -> dict:
    done = inbox.run(BankFees(), key, bucket=bucket, run_id=run_id, s3_hook=s3_hook, pg_hook=pg_hook)
    status = "LOADED" if done.seen is inbox.Seen.NEW else "ALREADY_LOADED"
    return {"key": key, "file_name": done.file_name, "status": status, "records": done.info["records"]}
