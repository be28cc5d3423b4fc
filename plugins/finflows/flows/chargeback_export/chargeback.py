"""chargeback_export: chargeback JSON landing in S3 → at most four CSV files a batch → card companies.

Per input object, each step idempotent: fetch and checksum → decide from the control table →
validate every record (a bad file is quarantined whole) → plan batches (≤ 4 files, one per card
company) → upload each file not yet in ``ops.delivery`` (NAME.part, size check, rename) and record
it → control row SUCCESS → move the input to ``processed/`` → notify (SNS + email).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finflows import files, inbox, settings
from finflows.formats.chargeback import Brand, plan_batches, to_csv
from finflows.formats.chargeback import parse_file as parse_chargebacks
from finflows.formats.fixedwidth import FieldError, FormatError
from finflows.seams import Conn, FtpHook, S3Hook
from finflows.transfer import ftp_upload_atomic

log = logging.getLogger(__name__)

FLOW = "chargeback_export"
PREFIX = "incoming/"  # where the flow's files wait in its bucket (``inbox.PROCESSED`` once done)
CONFIG = settings.INCLUDE / "chargeback_destinations.json"


class Status(StrEnum):
    """A chargeback file's outcome (``inbox.Outcome.status``, shown as these strings)."""

    EXPORTED = "EXPORTED"  # by this run
    ALREADY_EXPORTED = "ALREADY_EXPORTED"  # before (this run's earlier try, or another run: then a DUPLICATE event)


@dataclass
class Delivery:
    brand: str
    destination: str
    file_name: str
    rows: int
    bytes: int
    batch: int
    uploaded: bool  # False when an earlier try or run had already delivered it


class Destination(BaseModel):
    """Where one card company takes its files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conn_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    protocol: Literal["ftp", "ftps"]
    directory: Annotated[str, Field(pattern=r"^/")]
    # how the company's server lets us check an upload: SIZE (the default), its directory listing
    # (servers that deny SIZE, as ProFTPD and Pure-FTPd can be set to), or the transfer's own 226 alone
    upload_check: Literal["size", "list", "trust"] = "size"
    # false for a server that denies renaming (RNFR/RNTO): the file goes under its final name at once
    rename: bool = True


class Destinations(BaseModel):
    """``include/chargeback_destinations.json``, validated as ``banks.yaml`` is: a bad entry names the
    card company and the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: Annotated[str, Field(alias="_comment")] = ""
    max_rows_per_file: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    destinations: dict[Brand, Destination]


def load_config(path: Path = CONFIG) -> Destinations:
    """The destinations file, validated (``ValueError`` naming the company and the field)."""
    try:
        conf = Destinations.model_validate_json(path.read_text())
    except ValidationError as e:
        problems = "; ".join(f"{' '.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ValueError(f"{path.name}: {problems}") from None
    return conf


def discover(s3_hook: S3Hook, bucket: str) -> list[str]:
    keys = s3_hook.list_keys(bucket_name=bucket, prefix=PREFIX) or []
    return sorted(k for k in keys if k.lower().endswith(".json") and "/" not in k[len(PREFIX) :])


def _ftp_hook(dest: Destination) -> FtpHook:
    from finflows.hooks.ftp import FTPHook, FTPSHook

    return (FTPSHook if dest.protocol == "ftps" else FTPHook)(ftp_conn_id=dest.conn_id)


class Chargebacks(inbox.InboxFlow):
    """The chargeback file's part of the inbox lifecycle: decide, validate every record, then
    deliver each planned CSV file once (``ops.delivery``); the control row is SUCCESS only when all
    are there."""

    flow, limit, done, nothing = FLOW, "CHARGEBACK", "exported", "exported"
    statuses = inbox.statuses(Status.EXPORTED, Status.ALREADY_EXPORTED)
    conflict_step = (
        "{name} was already exported with other content. Compare the quarantined copy with the exported one "
        "(processed/{name}) and agree with the card companies before sending it again under a new name."
    )

    def __init__(self, config: Destinations, hook_for: Callable[[Destination], FtpHook] = _ftp_hook) -> None:
        self.config, self.hook_for = config, hook_for

    def process(self, conn: Conn, path: Path, f: files.Incoming) -> tuple[files.Decision, dict[str, Any]]:
        with conn.transaction(), conn.cursor() as cur:
            control = files.lock_and_read(cur, FLOW, f.file_name)
        decision = files.decide(control, f.sha256)
        if decision is not files.Decision.NEW:  # decided before reading a record: nothing is sent twice
            return decision, {"previous_run": control.dag_run_id}
        records = self.validate(path, f.file_name)
        with conn.transaction(), conn.cursor() as cur:
            files.lock_and_read(cur, FLOW, f.file_name)
            file_id = files.start_control(cur, FLOW, f.file_name, f.sha256, f.source_uri, f.run_id)
        batches = plan_batches(records, max_rows_per_file=self.config.max_rows_per_file)
        deliveries = [
            self._deliver_planned(conn, f, no, brand, rows)
            for no, b in enumerate(batches, 1)
            for brand, rows in b.items()
        ]
        with conn.transaction(), conn.cursor() as cur:
            files.finish_control(cur, file_id, None, len(records), None)
            detail = f"{len(records)} records in {len(batches)} batch(es), {len(deliveries)} file(s)"
            files.record_event(cur, FLOW, f.file_name, f.sha256, files.FileEvent.EXPORTED, detail, f.run_id)
        return decision, {"records": len(records), "batches": len(batches), "deliveries": deliveries}

    def validate(self, path: Path, name: str) -> list[Any]:
        """Every record read and checked (a card number must be masked already; a brand needs a
        destination); ``FormatError`` naming each refusal."""
        records = parse_chargebacks(path.read_bytes(), name)
        unknown = [
            FieldError(i, "brand", r.brand.value, "has no destination configured", unit="record")
            for i, r in enumerate(records)
            if r.brand not in self.config.destinations
        ]
        if unknown:
            raise FormatError(name, unknown)
        return records

    def _deliver_planned(self, conn: Conn, f: files.Incoming, batch_no: int, brand: Brand, rows: list[Any]) -> Delivery:
        dest = self.config.destinations[brand]
        data = to_csv(rows)
        planned = Delivery(
            brand=brand.value,
            destination=f"{dest.conn_id}:{dest.directory}",
            file_name=f"chargebacks_{brand.value}_{f.file_name.rsplit('.', 1)[0]}_{f.sha256[:8]}_b{batch_no:02d}.csv",
            rows=len(rows),
            bytes=len(data),
            batch=batch_no,
            uploaded=False,
        )
        return _deliver(conn, self.hook_for(dest), dest, planned, data, f)

    def summary(self, conn: Conn, file_name: str) -> dict[str, Any]:
        """What was delivered for this file before (none uploaded again)."""
        rows = conn.execute(
            "SELECT destination, file_name, row_count, bytes, batch_no FROM ops.delivery "
            "WHERE flow = %s AND source_file = %s ORDER BY batch_no, file_name",
            (FLOW, file_name),
        ).fetchall()
        deliveries = [
            Delivery(out.split("_")[1], dest, out, n, size, batch, uploaded=False) for dest, out, n, size, batch in rows
        ]
        return {
            "records": sum(d.rows for d in deliveries),
            "batches": max((d.batch for d in deliveries), default=0),
            "deliveries": deliveries,
        }


def _deliver(
    conn: Conn, hook: FtpHook, dest: Destination, planned: Delivery, data: bytes, source: files.Incoming
) -> Delivery:
    """Upload one planned file unless ``ops.delivery`` says it is there already; record it once."""
    done = conn.execute(
        "SELECT 1 FROM ops.delivery WHERE destination = %s AND file_name = %s",
        (planned.destination, planned.file_name),
    ).fetchone()
    if done:
        log.info("%s already delivered to %s; not uploaded again", planned.file_name, planned.destination)
        return planned
    try:
        ftp_upload_atomic(hook, dest.directory, planned.file_name, data, check=dest.upload_check, rename=dest.rename)
    finally:
        if getattr(hook, "conn", None) is not None:
            hook.close_conn()
    with conn.transaction():
        conn.execute(
            """INSERT INTO ops.delivery (flow, destination, file_name, source_file, sha256, bytes, row_count,
                                         batch_no, dag_run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (destination, file_name) DO NOTHING""",
            (
                FLOW,
                planned.destination,
                planned.file_name,
                source.file_name,
                hashlib.sha256(data).hexdigest(),
                planned.bytes,
                planned.rows,
                planned.batch,
                source.run_id,
            ),
        )
    return replace(planned, uploaded=True)


def summary_message(outcomes: list[dict[str, Any]], failed: list[str]) -> tuple[str, str]:
    """(subject, body) for the SNS message and the email."""
    uploaded = [d for o in outcomes for d in o["deliveries"] if d["uploaded"]]
    status = "FAILED" if failed else "OK"
    subject = f"[finflows] chargeback_export {status}: {len(uploaded)} file(s) delivered"
    lines = [f"{o['file_name']}: {o['status']}, {o['records']} records, {o['batches']} batch(es)" for o in outcomes]
    lines += [f"  {d['file_name']} -> {d['destination']} ({d['rows']} rows, {d['bytes']} bytes)" for d in uploaded]
    lines += [f"FAILED: {k}" for k in failed]
    return subject, "\n".join(lines) or "nothing to export"
