"""chargeback_export: chargeback JSON landing in S3 → at most four CSV files a batch → card companies.

Per input object, each step idempotent: fetch and checksum → decide from the control table →
validate every record (a bad file is quarantined whole) → plan batches (≤ 4 files, one per card
company) → upload each file not yet in ``ops.delivery`` (NAME.part, size check, rename) and record
it → control row SUCCESS → move the input to ``processed/`` → notify (SNS + email).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finflows import files, settings
from finflows.formats.chargeback import Brand, plan_batches, to_csv
from finflows.formats.chargeback import parse_file as parse_chargebacks
from finflows.formats.fixedwidth import FieldError, FormatError
from finflows.transfer import ftp_upload_atomic

log = logging.getLogger(__name__)

FLOW = "chargeback_export"
INBOX = "incoming/"
PROCESSED = "processed/"
CONFIG = Path(__file__).resolve().parents[4] / "include" / "chargeback_destinations.json"


class ChargebackRejected(files.FileRejected):
    """A chargeback file that must not be exported as it is; it has been quarantined."""


@dataclass
class Delivery:
    brand: str
    destination: str
    file_name: str
    rows: int
    bytes: int
    batch: int
    uploaded: bool  # False when an earlier try or run had already delivered it


@dataclass
class Outcome:
    key: str
    file_name: str
    status: str  # EXPORTED | ALREADY_EXPORTED
    records: int = 0
    batches: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    bytes: int = 0


class Destination(BaseModel):
    """Where one card company takes its files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conn_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    protocol: Literal["ftp", "ftps"]
    directory: Annotated[str, Field(pattern=r"^/")]


class Destinations(BaseModel):
    """``include/chargeback_destinations.json``, validated as ``banks.yaml`` is: a bad entry names the
    card company and the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: Annotated[str, Field(alias="_comment")] = ""
    max_rows_per_file: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    destinations: dict[Brand, Destination]


def load_config(path: Path = CONFIG) -> dict:
    """The destinations file, validated (``ValueError`` naming the company and the field), as a
    plain mapping: ``{"max_rows_per_file": N, "destinations": {brand: {conn_id, protocol, directory}}}``."""
    try:
        conf = Destinations.model_validate_json(path.read_text())
    except ValidationError as e:
        problems = "; ".join(f"{' '.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ValueError(f"{path.name}: {problems}") from None
    return {
        "max_rows_per_file": conf.max_rows_per_file,
        "destinations": {brand.value: d.model_dump() for brand, d in conf.destinations.items()},
    }


def discover(s3_hook, bucket: str) -> list[str]:
    keys = s3_hook.list_keys(bucket_name=bucket, prefix=INBOX) or []
    return sorted(k for k in keys if k.lower().endswith(".json") and "/" not in k[len(INBOX) :])


def _ftp_hook(dest: dict):
    from finflows.hooks.ftp import FTPHook, FTPSHook

    return (FTPSHook if dest["protocol"] == "ftps" else FTPHook)(ftp_conn_id=dest["conn_id"])


def export_file(
    key: str, *, bucket: str, run_id: str, s3_hook, pg_hook, config: dict | None = None, hook_for=_ftp_hook
) -> Outcome:
    config = config or load_config()
    source_uri = f"s3://{bucket}/{key}"
    name = key.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="chargeback-") as tmp, files.connect(pg_hook) as conn:
        try:
            path, sha256, size, etag = files.download(s3_hook, bucket, key, tmp, settings.intake_limit("CHARGEBACK"))
        except files.ObjectGone:
            return _already_exported(conn, key, name, source_uri, run_id)
        except files.FileTooLarge as e:
            here = files.Incoming(FLOW, bucket, key, name, "", run_id)
            raise files.refused_too_large(conn, s3_hook, e, here, ChargebackRejected) from None
        with conn.transaction(), conn.cursor() as cur:
            control = files.lock_and_read(cur, FLOW, name)
        decision = files.decide(control, sha256)
        here = files.Incoming(FLOW, bucket, key, name, sha256, run_id, etag)
        if decision is files.Decision.CONFLICT:
            raise files.rejected_conflict(
                conn,
                s3_hook,
                here,
                ChargebackRejected,
                done="exported",
                next_step=(
                    f"{name} was already exported with other content. Compare the quarantined "
                    f"copy with the exported one (processed/{name}) and agree with the card "
                    "companies before sending it again under a new name."
                ),
            )
        if decision is files.Decision.ALREADY_IMPORTED:
            log.warning("DUPLICATE: %s (sha256 %s) was already exported; nothing is uploaded", name, sha256)
            with conn.transaction(), conn.cursor() as cur:
                files.record_event(cur, FLOW, name, sha256, "DUPLICATE", "already exported", run_id)
            files.move_object(s3_hook, bucket, key, f"{PROCESSED}{name}", etag)
            return Outcome(key=key, file_name=name, status="ALREADY_EXPORTED")

        try:
            records = parse_chargebacks(path.read_bytes(), name)
            unknown = [
                FieldError(i, "brand", r.brand.value, "has no destination configured", unit="record")
                for i, r in enumerate(records)
                if r.brand.value not in config["destinations"]
            ]
            if unknown:
                raise FormatError(name, unknown)
        except FormatError as e:
            raise files.rejected_format(conn, s3_hook, here, e, ChargebackRejected, nothing="exported") from None

        with conn.transaction(), conn.cursor() as cur:
            files.lock_and_read(cur, FLOW, name)
            cur.execute(
                """INSERT INTO ops.file_control (flow, file_name, sha256, status, source_uri, dag_run_id, row_count)
                   VALUES (%s, %s, %s, 'PROCESSING', %s, %s, %s)
                   ON CONFLICT (flow, file_name) DO UPDATE SET sha256 = EXCLUDED.sha256, status = 'PROCESSING',
                       source_uri = EXCLUDED.source_uri, dag_run_id = EXCLUDED.dag_run_id, error = NULL,
                       row_count = EXCLUDED.row_count, started_at = now(), finished_at = NULL""",
                (FLOW, name, sha256, source_uri, run_id, len(records)),
            )

        batches = plan_batches(records, max_rows_per_file=int(config.get("max_rows_per_file", 5000)))
        stem = name.rsplit(".", 1)[0]
        deliveries = []
        for batch_no, batch in enumerate(batches, start=1):
            for brand, rows in batch.items():
                dest = config["destinations"][brand.value]
                data = to_csv(rows)
                planned = Delivery(
                    brand=brand.value,
                    destination=f"{dest['conn_id']}:{dest['directory']}",
                    file_name=f"chargebacks_{brand.value}_{stem}_{sha256[:8]}_b{batch_no:02d}.csv",
                    rows=len(rows),
                    bytes=len(data),
                    batch=batch_no,
                    uploaded=False,
                )
                deliveries.append(_deliver(conn, hook_for(dest), dest["directory"], planned, data, here))

        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "UPDATE ops.file_control SET status = 'SUCCESS', finished_at = now() WHERE flow = %s AND file_name = %s",
                (FLOW, name),
            )
            files.record_event(
                cur,
                FLOW,
                name,
                sha256,
                "EXPORTED",
                f"{len(records)} records in {len(batches)} batch(es), {len(deliveries)} file(s)",
                run_id,
            )
        files.move_object(s3_hook, bucket, key, f"{PROCESSED}{name}", etag)
        files.resolve_quarantine(conn, s3_hook, flow=FLOW, bucket=bucket, name=name, sha256=sha256, run_id=run_id)
    return Outcome(
        key=key,
        file_name=name,
        status="EXPORTED",
        records=len(records),
        batches=len(batches),
        deliveries=deliveries,
        bytes=size,
    )


def _already_exported(conn, key: str, name: str, source_uri: str, run_id: str) -> Outcome:
    """The file is gone from the inbox. Exported before (a task cleared and run again after it
    succeeded: the object moved to processed/): say so, with what was delivered, and succeed."""
    files.gone_but_done(conn, FLOW, name, source_uri, ChargebackRejected, done="exported")
    rows = conn.execute(
        "SELECT destination, file_name, row_count, bytes, batch_no FROM ops.delivery "
        "WHERE flow = %s AND source_file = %s ORDER BY batch_no, file_name",
        (FLOW, name),
    ).fetchall()
    deliveries = [
        Delivery(out.split("_")[1], dest, out, n, size, batch, uploaded=False) for dest, out, n, size, batch in rows
    ]
    log.info("%s: %d file(s) delivered before, none uploaded again (run %s)", name, len(deliveries), run_id)
    return Outcome(
        key=key,
        file_name=name,
        status="ALREADY_EXPORTED",
        records=sum(d.rows for d in deliveries),
        batches=max((d.batch for d in deliveries), default=0),
        deliveries=deliveries,
    )


def _deliver(conn, hook, directory: str, planned: Delivery, data: bytes, source: files.Incoming) -> Delivery:
    """Upload one planned file unless ``ops.delivery`` says it is there already; record it once."""
    done = conn.execute(
        "SELECT 1 FROM ops.delivery WHERE destination = %s AND file_name = %s",
        (planned.destination, planned.file_name),
    ).fetchone()
    if done:
        log.info("%s already delivered to %s; not uploaded again", planned.file_name, planned.destination)
        return planned
    try:
        ftp_upload_atomic(hook, directory, planned.file_name, data)
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


def as_dict(outcome: Outcome) -> dict:
    return asdict(outcome)


def summary_message(outcomes: list[dict], failed: list[str]) -> tuple[str, str]:
    """(subject, body) for the SNS message and the email."""
    uploaded = [d for o in outcomes for d in o["deliveries"] if d["uploaded"]]
    status = "FAILED" if failed else "OK"
    subject = f"[finflows] chargeback_export {status}: {len(uploaded)} file(s) delivered"
    lines = [f"{o['file_name']}: {o['status']}, {o['records']} records, {o['batches']} batch(es)" for o in outcomes]
    lines += [f"  {d['file_name']} -> {d['destination']} ({d['rows']} rows, {d['bytes']} bytes)" for d in uploaded]
    lines += [f"FAILED: {k}" for k in failed]
    return subject, "\n".join(lines) or "nothing to export"
