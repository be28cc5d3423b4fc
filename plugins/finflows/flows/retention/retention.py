"""Retention: rows past the policy (include/retention.yaml) exported to the archive bucket, then
removed; and the erasure of one person's personal data on request. No Airflow import here.

Each kind is removed in batches of ``batch_size`` rows, each batch one short transaction: the due
keys are taken (``FOR UPDATE SKIP LOCKED``: a row a flow holds is left for the next run), every
table's rows of the batch are copied out (``COPY … TO STDOUT``, gzip CSV with a header), uploaded
with a manifest naming each file's table, rows and sha256, the upload checked by its size, and only
then are the rows deleted and the transaction committed. A failure anywhere rolls the batch back:
nothing is removed that is not in the archive. Each kind's run is recorded in ``ops.retention_run``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from finflows.errors import FinflowsError
from finflows.flows.retention.policy import Policy
from finflows.seams import Conn, S3Hook, one

log = logging.getLogger(__name__)
PREFIX = "retention"
ERASED = "(erased)"


class ErasureRefused(FinflowsError, ValueError):
    """An erasure that would break something that must still happen (a payment in flight)."""


@dataclass(frozen=True)
class Part:
    """One table a kind removes: its key, when a row is due, and the tables whose rows point at it
    (``(table, column)``), exported and removed with it."""

    table: str
    key: tuple[str, ...]
    due: str  # SQL over the table's columns, with %(cutoff)s
    children: tuple[tuple[str, str], ...] = ()


KINDS: dict[str, tuple[Part, ...]] = {
    "payments": (
        Part(
            "pay.payment",
            ("id",),
            "created_at < %(cutoff)s AND status IN ('settled', 'returned', 'failed')",
            (("pay.return_line", "payment_id"), ("pay.payment_event", "payment_id")),
        ),
    ),
    "card_facts": (Part("card.fact_transaction", ("file_id", "record_seq"), "txn_date < %(cutoff)s::date"),),
    "health_checks": (
        Part("pay.health_check", ("id",), "checked_at < %(cutoff)s"),
        Part("pay.connection_test", ("id",), "at < %(cutoff)s"),
    ),
}
BODIES = "tenure_event_bodies"  # emptied in place, not exported


@dataclass
class Outcome:
    kind: str
    cutoff: str
    rows_exported: int = 0
    rows_removed: int = 0
    batches: int = 0
    manifests: list[str] = field(default_factory=list)
    prefix: str | None = None  # s3://… where this run's batches and manifests are (None: nothing was due)


def cutoff(policy: Policy, kind: str, now: dt.datetime) -> dt.datetime:
    return now - policy.age(kind)


def expire(
    conn: Conn, s3_hook: S3Hook, bucket: str, policy: Policy, kind: str, *, now: dt.datetime, run_id: str
) -> Outcome:
    """Export and remove every row of ``kind`` older than the policy allows (emptied in place for
    tenure event bodies); recorded in ``ops.retention_run``."""
    limit = cutoff(policy, kind, now)
    out = Outcome(kind, limit.isoformat())
    if kind == BODIES:
        out.rows_removed = _empty_bodies(conn, limit, policy.batch_size)
    else:
        where = f"{PREFIX}/{kind}/{run_id.replace(':', '-').replace('+', '_')}"
        for part in KINDS[kind]:
            while True:
                done = _batch(
                    conn, s3_hook, bucket, part, limit, policy.batch_size, f"{where}/batch-{out.batches + 1:05d}"
                )
                if done is None:
                    break
                exported, removed, manifest = done
                out.rows_exported += exported
                out.rows_removed += removed
                out.batches += 1
                out.manifests.append(manifest)
                out.prefix = f"s3://{bucket}/{where}/"
    with conn.transaction():
        conn.execute(
            "INSERT INTO ops.retention_run (kind, cutoff, rows_exported, rows_removed, manifest, dag_run_id) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (kind, limit, out.rows_exported, out.rows_removed, out.prefix, run_id),
        )
    log.info(
        "%s older than %s: %d row(s) exported in %d batch(es), %d removed",
        kind,
        limit.isoformat(),
        out.rows_exported,
        out.batches,
        out.rows_removed,
    )
    return out


def _batch(
    conn: Conn, s3_hook: S3Hook, bucket: str, part: Part, limit: dt.datetime, size: int, where: str
) -> tuple[int, int, str] | None:
    """One batch of ``part``: (rows exported, rows removed, manifest address), or None when nothing
    is due any more."""
    keys = ", ".join(part.key)
    # (table, how its rows meet the batch's keys): the rows pointing at the parent first
    tables = [(t, f"due.{part.key[0]} = x.{column}") for t, column in part.children]
    tables.append((part.table, " AND ".join(f"x.{k} = due.{k}" for k in part.key)))
    with conn.transaction(), conn.cursor() as cur, tempfile.TemporaryDirectory(prefix="retention-") as tmp:
        cur.execute(
            f"CREATE TEMP TABLE due ON COMMIT DROP AS SELECT {keys} FROM (SELECT {keys} FROM {part.table} "  # noqa: S608 (our names)
            f"WHERE {part.due} ORDER BY {keys} LIMIT %(size)s FOR UPDATE SKIP LOCKED) s",
            {"cutoff": limit, "size": size},
        )
        if not cur.rowcount:
            return None
        files, exported = [], 0
        for table, meets in tables:
            path = Path(tmp) / f"{table}.csv.gz"
            query = f"SELECT x.* FROM {table} x JOIN due ON {meets}"  # noqa: S608
            with (
                gzip.open(path, "wb") as gz,
                cur.copy(f"COPY ({query} ORDER BY 1) TO STDOUT (FORMAT csv, HEADER)") as copy,
            ):
                for data in copy:
                    gz.write(data)
            rows = one(cur.execute(f"SELECT count(*) FROM ({query}) q"))[0]  # noqa: S608
            key = f"{where}/{table}.csv.gz"
            s3_hook.load_file(str(path), key=key, bucket_name=bucket, replace=True)
            stored = s3_hook.get_conn().head_object(Bucket=bucket, Key=key)["ContentLength"]
            if stored != path.stat().st_size:
                raise FinflowsError(f"s3://{bucket}/{key} holds {stored} bytes, {path.stat().st_size} were written")
            files.append({"table": table, "key": key, "rows": rows, "sha256": _sha256(path), "bytes": stored})
            exported += rows
        manifest = {"cutoff": limit.isoformat(), "key": list(part.key), "files": files}
        s3_hook.load_string(
            json.dumps(manifest, indent=1), key=f"{where}/manifest.json", bucket_name=bucket, replace=True
        )
        removed = sum(
            cur.execute(f"DELETE FROM {table} x USING due WHERE {meets}").rowcount  # noqa: S608
            for table, meets in tables
        )
        if removed != exported:  # a row that came or went between the export and the delete
            raise FinflowsError(f"{part.table}: exported {exported} row(s) but would remove {removed}: nothing removed")
    return exported, removed, f"s3://{bucket}/{where}/manifest.json"


def _empty_bodies(conn: Conn, limit: dt.datetime, size: int) -> int:
    emptied = 0
    while True:
        with conn.transaction():
            n = conn.execute(
                "UPDATE ops.tenure_event SET snapshot = NULL WHERE message_id IN (SELECT message_id FROM "
                "ops.tenure_event WHERE snapshot IS NOT NULL AND received_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                (limit, size),
            ).rowcount
        emptied += n
        if n < size:
            return emptied


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- erasure on request
def erase_payee(conn: Conn, payee_id: str, *, requested_by: str, reason: str) -> int:
    """A payee's name, account, national id and memos replaced on every payment of theirs; the
    amounts, references, dates and statuses stay (financial records). Refused while any of their
    payments is pending or batched: the bank still needs the account. Recorded in ``ops.erasure``."""
    with conn.transaction():
        in_flight = one(
            conn.execute(
                "SELECT count(*) FROM pay.payment WHERE payee_id = %s AND status IN ('pending', 'batched')", (payee_id,)
            )
        )[0]
        if in_flight:
            raise ErasureRefused(
                f"{in_flight} payment(s) of this payee are pending or batched: erase once they are paid or cancelled"
            )
        n = conn.execute(
            "UPDATE pay.payment SET payee_name = %s, payee_account = '0', payee_id = 'ERASED', memo = '' "
            "WHERE payee_id = %s",
            (ERASED, payee_id),
        ).rowcount
        _record(conn, "payee", payee_id, n, requested_by, reason)
    return n


def erase_tenure(conn: Conn, tenure_id: str, *, requested_by: str, reason: str) -> int:
    """A tenancy's personal fields (names, title, date of birth, address, post code) replaced and its
    stored event bodies emptied; ids, dates, rent group and versions stay. Recorded in ``ops.erasure``."""
    with conn.transaction():
        n = conn.execute(
            "UPDATE ifs.tenancy SET title = NULL, forename = %(x)s, surname = %(x)s, date_of_birth = NULL, "
            "address = %(x)s, short_address = %(x)s, post_code = %(x)s WHERE tenure_id = %(id)s",
            {"x": ERASED, "id": tenure_id},
        ).rowcount
        n += conn.execute(
            "UPDATE ops.tenure_event SET snapshot = NULL WHERE tenure_id = %s AND snapshot IS NOT NULL", (tenure_id,)
        ).rowcount
        _record(conn, "tenure", tenure_id, n, requested_by, reason)
    return n


def _record(conn: Conn, kind: str, subject: str, rows: int, requested_by: str, reason: str) -> None:
    if not requested_by.strip() or not reason.strip():
        raise ErasureRefused("an erasure names who asked for it and why")
    conn.execute(
        "INSERT INTO ops.erasure (kind, subject_sha256, rows_changed, requested_by, reason) VALUES (%s, %s, %s, %s, %s)",
        (kind, hashlib.sha256(subject.encode()).hexdigest(), rows, requested_by, reason),
    )
    log.info(
        "erased %s (sha256 %s…): %d row(s), asked by %s",
        kind,
        hashlib.sha256(subject.encode()).hexdigest()[:12],
        rows,
        requested_by,
    )
