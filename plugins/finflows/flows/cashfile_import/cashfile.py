"""cashfile_import: a CivicaPay cash file in S3 → finance Google Drive + interim finance DB.

Per file, every step is idempotent, so a retried task or a re-run picks up where it stopped:
fetch and checksum → decide from the control table → load in one transaction (payments by COPY
as the file is read, then suspense rows, the file's text and the control row) → copy to the
Drive folder unless a copy with the same sha256 is there → move the object to ``processed/``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Set
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from finflows import files, inbox, settings
from finflows.formats.cashfile import LAYOUT, CashFileStats, normalise_name, read_rows
from finflows.formats.fixedwidth import FormatError, copy_escape
from finflows.seams import Conn, DriveHook, S3Hook, one

log = logging.getLogger(__name__)

FLOW = "cashfile_import"
PREFIX = "cashfiles/"  # where the flow's files wait in its bucket (``inbox.PROCESSED`` once done)
DUPLICATES = "duplicates/"


CONFLICT_STEP = (
    "{name} was already {done} with other content. Compare the quarantined copy with the {done} one "
    "(processed/{name}); nothing is changed until finance data engineering reverses the first import."
)


class Status(StrEnum):
    """A cash file's outcome (``inbox.Outcome.status``, shown as these strings)."""

    IMPORTED = "IMPORTED"  # by this run
    ALREADY_IMPORTED = "ALREADY_IMPORTED"  # by this run's earlier try (a retry, a clear)
    DUPLICATE = "DUPLICATE"  # by another run: this copy was delivered again


# ---------------------------------------------------------------------------- discovery
def keys_from_message(body: str) -> list[str]:
    """Object keys in an S3 event notification; an ``s3:TestEvent`` carries none."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        log.warning("ignoring a message that is not JSON: %.200s", body)
        return []
    if "Message" in doc and "Records" not in doc:  # delivered through SNS without raw delivery
        return keys_from_message(doc["Message"])
    if doc.get("Event") == "s3:TestEvent":
        return []
    return [
        unquote_plus(r["s3"]["object"]["key"])
        for r in doc.get("Records", [])
        if r.get("eventName", "").startswith("ObjectCreated")
    ]


def is_cashfile_key(key: str) -> bool:
    return key.startswith(PREFIX) and key.lower().endswith(".dat") and "/" not in key[len(PREFIX) :]


def discover(
    s3_hook: S3Hook, bucket: str, event_keys: list[str] | None = None, imported: Set[str] = frozenset()
) -> list[str]:
    """The cash files a run imports. A run started by S3 events takes its events' objects, so
    runs of files landing close together run side by side without reaching for each other's
    files; any other run (the daily sweep, a manual run) takes every ``.dat`` object waiting under
    ``cashfiles/``, so a lost event never loses a file. An event's key that is gone from the inbox
    because its file was imported (``imported`` holds file names with a successful import: the run
    is being cleared and run again, or the event was delivered twice) stays in the list, so the
    run reports that file as already imported instead of silently showing no file at all."""
    listed = {k for k in s3_hook.list_keys(bucket_name=bucket, prefix=PREFIX) or [] if is_cashfile_key(k)}
    if not event_keys:
        return sorted(listed)
    wanted = set()
    for k in event_keys:
        if not is_cashfile_key(k):
            continue
        if k in listed or _file_name(k) in imported:
            wanted.add(k)
        else:
            log.info("event names %s but it is no longer in the inbox and was not imported", k)
    return sorted(wanted)


def imported_names(conn: Conn, keys: list[str]) -> set[str]:
    """Of these keys' file names, those whose import succeeded."""
    names = [_file_name(k) for k in keys]
    rows = conn.execute(
        "SELECT file_name FROM ops.file_control WHERE flow = %s AND status = 'SUCCESS' AND file_name = ANY(%s)",
        (FLOW, names),
    ).fetchall()
    return {r[0] for r in rows}


def _file_name(key: str) -> str:
    raw_name = key.rsplit("/", 1)[-1]
    try:
        return normalise_name(raw_name)
    except FormatError:
        return raw_name


# ---------------------------------------------------------------------------- loading
_COLS = ", ".join(LAYOUT.copy_columns)
_COPY_PAYMENTS = f"COPY ifs.cash_payment (file_id, line_no, {_COLS}) FROM STDIN"
_COPY_SUSPENSE = f"COPY ifs.cash_suspense (file_id, line_no, {_COLS}) FROM STDIN"
_COPY_TEXT = "COPY ifs.cashfile_text (file_id, body) FROM STDIN"
_CHUNK = 1 << 20
_BATCH = 5000  # rows per COPY write


def load(
    conn: Conn, path: Path, file_name: str, sha256: str, source_uri: str, run_id: str
) -> tuple[files.Decision, dict[str, Any]]:
    """Decide and, for a new file, load it whole in one transaction. Raises FormatError (rolled back).

    Each record is validated and converted in Python (``read_rows``) and streams by COPY into
    ``ifs.cash_payment`` while it is read: PostgreSQL stores the rows on one core while the
    reader parses on the other. A record whose rent account is unknown goes to a spool file and
    from there into ``ifs.cash_suspense`` (a second COPY); then the file's text into
    ``ifs.cashfile_text`` (raw lines by number through the ``ifs.cashfile_line`` view). Every
    error is collected; a bad file raises one FormatError and the whole transaction rolls back."""
    with conn.transaction(), conn.cursor() as cur:
        decision, info, file_id = files.begin_load(cur, FLOW, file_name, sha256, source_uri, run_id)
        if file_id is None:
            return decision, info
        accounts = {r[0] for r in cur.execute("SELECT payment_ref FROM ifs.rent_account")}
        stats = CashFileStats()
        with path.open("rb") as f, tempfile.TemporaryFile("w+", encoding="ascii") as spool, files.gc_paused():
            suspense = 0

            def to_suspense(row: str) -> None:
                nonlocal suspense
                spool.write(row + "\n")
                suspense += 1

            rows = read_rows(f, file_name, stats, prefix=f"{file_id}\t", known=accounts, other=to_suspense)
            files.copy_lines(cur, _COPY_PAYMENTS, "", rows, batch=_BATCH)
            if suspense:
                spool.seek(0)
                with cur.copy(_COPY_SUSPENSE) as copy:
                    while chunk := spool.read(_CHUNK):
                        copy.write(chunk)
            f.seek(0)
            with cur.copy(_COPY_TEXT) as copy:  # one row: the file's text, escaped for COPY
                copy.write(f"{file_id}\t")
                # whole lines per block, card numbers masked (the control row keeps the original's sha256)
                while block := f.read(_CHUNK) + f.readline():
                    copy.write(copy_escape(LAYOUT.mask_text(block.decode("ascii"))))  # validated above: ASCII
                copy.write("\n")
        payments_count = stats.records - suspense
        files.finish_control(cur, file_id, stats.lines, stats.records, stats.total)
        files.record_event(
            cur,
            FLOW,
            file_name,
            sha256,
            files.FileEvent.IMPORTED,
            f"{stats.records} records, {payments_count} payments, {suspense} in suspense, total {stats.total}",
            run_id,
        )
    return files.Decision.NEW, {
        "control_id": file_id,
        "lines": stats.lines,
        "records": stats.records,
        "payments": payments_count,
        "suspense": suspense,
        "total": stats.total,
    }


def control_summary(conn: Conn, file_name: str) -> dict[str, Any]:
    row = one(
        conn.execute(
            """SELECT c.line_count, c.row_count, c.total_amount,
                  (SELECT count(*) FROM ifs.cash_payment p WHERE p.file_id = c.id),
                  (SELECT count(*) FROM ifs.cash_suspense s WHERE s.file_id = c.id)
           FROM ops.file_control c WHERE c.flow = %s AND c.file_name = %s""",
            (FLOW, file_name),
        )
    )
    return {
        "lines": row[0] or 0,
        "records": row[1],
        "total": row[2] or Decimal(0),
        "payments": row[3],
        "suspense": row[4],
    }


# ---------------------------------------------------------------------------- Drive
def copy_to_drive(drive_hook: DriveHook, folder_id: str, path: Path, file_name: str, sha256: str) -> str:
    """Upload unless the folder already holds this name with this content; returns the Drive file id."""
    service = drive_hook.get_conn()
    escaped = file_name.replace("'", "\\'")
    found = (
        service.files()
        .list(
            q=f"name = '{escaped}' and '{folder_id}' in parents and trashed = false",
            fields="files(id, name, sha256Checksum)",
            supportsAllDrives=True,
            includeItemsFromAllDrives=True,
        )
        .execute(num_retries=drive_hook.num_retries)
        .get("files", [])
    )
    for f in found:
        if f.get("sha256Checksum") == sha256:
            log.info("Drive already holds %s (id %s); not copied again", file_name, f["id"])
            return str(f["id"])
    upload = Path(tempfile.mkdtemp()) / file_name
    upload.hardlink_to(path)
    try:
        file_id = drive_hook.upload_file(
            local_location=str(upload),
            remote_location=file_name,
            folder_id=folder_id,
            resumable=True,
            chunk_size=8 << 20,
        )
    finally:
        upload.unlink()
        upload.parent.rmdir()
    log.info("copied %s to the finance Drive folder (id %s)", file_name, file_id)
    return str(file_id)


# ---------------------------------------------------------------------------- one file
class CashFiles(inbox.InboxFlow):
    """The cash file's part of the inbox lifecycle: the name normalised, the load, and a copy of
    every good file (new or seen before) in the finance Drive folder."""

    flow, limit, done, duplicates = FLOW, "CASHFILE", "imported", DUPLICATES
    statuses = inbox.statuses(Status.IMPORTED, Status.ALREADY_IMPORTED, Status.DUPLICATE)
    conflict_step = CONFLICT_STEP

    def __init__(self, drive_hook: DriveHook, drive_folder: str) -> None:
        self.drive_hook, self.drive_folder = drive_hook, drive_folder

    @classmethod
    def for_task(cls) -> CashFiles:
        """With the finance Drive folder (connection ``google_finflows``, ``FINFLOWS_FINANCE_DRIVE_FOLDER``)."""
        from finflows.google import DriveHook

        return cls(DriveHook(gcp_conn_id=settings.CONN_GOOGLE), settings.finance_drive_folder())

    def file_name(self, raw_name: str) -> str:
        return normalise_name(raw_name)

    def process(self, conn: Conn, path: Path, f: files.Incoming) -> tuple[files.Decision, dict[str, Any]]:
        return load(conn, path, f.file_name, f.sha256, f.source_uri, f.run_id)

    def summary(self, conn: Conn, file_name: str) -> dict[str, Any]:
        return control_summary(conn, file_name)

    def after(self, conn: Conn, path: Path, f: files.Incoming, seen: inbox.Seen) -> dict[str, Any]:
        return {"drive_file_id": copy_to_drive(self.drive_hook, self.drive_folder, path, f.file_name, f.sha256)}

    def mask_line(self, line: str) -> str:
        return LAYOUT.mask_text(line)  # the payment source, the one free text a cash line has
