"""What every file-based flow does with a file: identify it, decide on it, quarantine it.

A file is identified by (flow, name, sha256) in ``ops.file_control``; every decision is appended
to ``ops.file_event``. A bad file is moved to ``quarantine/`` in its bucket with a JSON error
report beside it; it is never deleted.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from finflows.errors import FinflowsError
from finflows.formats.fixedwidth import FieldError, FileNameRefused, FormatError
from finflows.seams import AwsClient, Conn, Cur, PgHook, S3Hook, one
from finflows.settings import Limit

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class ControlStatus(StrEnum):
    """``ops.file_control.status``: one row per (flow, file name)."""

    PROCESSING = "PROCESSING"  # a run has it
    SUCCESS = "SUCCESS"  # done (imported, loaded, exported, applied)
    ERROR = "ERROR"  # refused and quarantined, or failed: a person looks


class FileEvent(StrEnum):
    """``ops.file_event.event``: what happened to a file, in order, for the audit trail."""

    IMPORTED = "IMPORTED"  # cashfile_import
    LOADED = "LOADED"  # card_reconciliation
    EXPORTED = "EXPORTED"  # chargeback_export
    READING = "READING"  # bank_reconciliation: a return file is being read
    READ = "READ"
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"  # the same bytes delivered again
    QUARANTINED = "QUARANTINED"
    CONFLICT = "CONFLICT"  # the same name with other bytes
    QUARANTINE_RESOLVED = "QUARANTINE_RESOLVED"  # a corrected file of the name was loaded


class Decision(StrEnum):
    NEW = "NEW"  # never seen, or only seen as a failed import: process it
    ALREADY_IMPORTED = "ALREADY_IMPORTED"  # same name and content already imported
    CONFLICT = "CONFLICT"  # same name, different content, already imported: a human decides


class Refusal(StrEnum):
    """Why a file was refused: a stable code (as moov-io/ach names its errors) in the failure
    email, the quarantine report and the control row's error. Alerts and runbooks key on these."""

    LAYOUT = "layout"  # a line, field or value its layout (or the flow's rules) refuses
    NAME = "name"  # the file's name is not one the flow takes
    TOO_LARGE = "too_large"  # over its flow's intake limit: refused unread
    CONFLICT = "conflict"  # the name was done before with other content
    NOT_IN_INBOX = "not_in_inbox"  # asked for, but not there and never done
    ALREADY_QUARANTINED = "already_quarantined"  # asked for again after it was quarantined (a Clear): told once, then


class FileRejected(FinflowsError):
    """A file that must not be loaded as it is: it is quarantined beside its error report, nothing of
    it was loaded, and a person must act. Carries what the failure email tells them: which flow and
    file, why (``rule``), where the quarantined copy and its report are, and the next step. The
    task fails with Airflow's fail exception raised *from* it; the email reads it there
    (``rejection_of``)."""

    outcome = "REJECTED"

    def __init__(
        self,
        message: str,
        *,
        flow: str,
        file_name: str,
        source_uri: str,
        quarantined: str | None = None,
        next_step: str = "",
        rule: Refusal = Refusal.LAYOUT,
        nothing: str = "loaded",
    ) -> None:
        super().__init__(message)
        self.flow, self.file_name, self.source_uri = flow, file_name, source_uri
        self.nothing = nothing  # the flow's word for what was not done: "nothing of it was <loaded>"
        self.quarantined, self.rule = quarantined, Refusal(rule)
        self.next_step = next_step or (
            f"Correct the file (the report names each line, field and value) and upload it again under the "
            f"same name to {source_uri.rsplit('/', 1)[0]}/: it is then loaded, and the quarantined copy is "
            "moved to quarantine/resolved/."
        )

    @property
    def report(self) -> str | None:
        return f"{self.quarantined}.error.json" if self.quarantined else None


def rejection_of(exception: BaseException | str | None) -> FileRejected | None:
    """The refused file behind a task's failure: the exception itself, or the one it was raised
    from (``task_support.bad_input_fails_without_retry``)."""
    for e in (exception, getattr(exception, "__cause__", None)):
        if isinstance(e, FileRejected):
            return e
    return None


def refusal_for(error: FormatError) -> Refusal:
    """The rule a layout's refusal breaks: its size, its name, or its content."""
    if isinstance(error, FileTooLarge):
        return Refusal.TOO_LARGE
    if isinstance(error, FileNameRefused):
        return Refusal.NAME
    return Refusal.LAYOUT


@dataclass(frozen=True)
class Control:
    id: int | None
    status: str | None
    sha256: str | None
    dag_run_id: str | None


def connect(pg_hook: PgHook) -> Conn:
    """A finance-DB connection whose every ``conn.transaction()`` block is its own committed
    transaction. Without autocommit a lone query opens an implicit transaction, later blocks
    become savepoints inside it, and a failure rolls back what earlier steps had recorded."""
    conn: Conn = pg_hook.get_conn()  # type: ignore[assignment]  # the provider types it as DB-API's
    conn.autocommit = True
    return conn


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ObjectGone(FinflowsError):
    """The object is no longer at its key (an earlier try moved it to processed/, or someone did)."""


class FileTooLarge(FormatError):
    """A counterparty's file over its flow's size limit: refused by its size, never read whole.
    ``identity`` stands for its sha256 (not read): the same file, as its store describes it
    (``version``: the object's ETag, or the remote file's mtime), gets the same one, so it is
    recorded and refused once."""

    def __init__(self, source_uri: str, size: int, limit: Limit, version: str | int | None = None) -> None:
        name = source_uri.rsplit("/", 1)[-1]
        why = f"over the limit of {limit.bytes:,} bytes ({limit.setting}): refused unread"
        super().__init__(name, [FieldError(0, "size", f"{size:,} bytes or more", why, unit="file")])
        self.source_uri, self.version = source_uri, version
        self.etag = version if isinstance(version, str) else None
        self.identity = hashlib.sha256(f"unread\0{source_uri}\0{size}\0{version}".encode()).hexdigest()


def download(
    s3_hook: S3Hook, bucket: str, key: str, directory: str, limit: Limit | None = None
) -> tuple[Path, str, int, str | None]:
    """Stream an S3 object to a local file; return (path, sha256, bytes, ETag). The ETag names this
    version of the object: moving it later takes that version only (``move_object``), so a
    corrected file uploaded meanwhile stays for the next run. ``ObjectGone`` if it is not there: a
    task cleared after it succeeded finds its file moved, and says so (``finished``).
    :class:`FileTooLarge` when the object is over ``limit`` bytes (by its length, unread; or as
    soon as more arrive)."""
    client = s3_hook.get_conn()
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        raise ObjectGone(f"s3://{bucket}/{key}") from None
    body, etag = got["Body"], got.get("ETag")
    uri = f"s3://{bucket}/{key}"
    if limit is not None and got.get("ContentLength", 0) > limit.bytes:
        body.close()
        raise FileTooLarge(uri, got["ContentLength"], limit, etag)
    target = Path(tempfile.mkstemp(dir=directory, suffix=Path(key).suffix)[1])
    h, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        for chunk in body.iter_chunks(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if limit is not None and size > limit.bytes:
                body.close()
                raise FileTooLarge(uri, size, limit, etag)
            out.write(chunk)
    return target, h.hexdigest(), size, etag


def refused_too_large(
    conn: Conn, s3_hook: S3Hook, e: FileTooLarge, f: Incoming, rejected: type[FileRejected]
) -> FileRejected:
    """A file over its flow's limit, quarantined (moved in the store, not read: it may hold a card
    number, so the server re-encrypts it under the quarantine key, ``quarantine_key``, which is
    looked up before anything is recorded) with its report and recorded under its identity;
    returns the flow's exception for the task to raise."""
    sealed_with = quarantine_key(s3_hook)
    unread = replace(f, sha256=e.identity, etag=e.etag)
    return rejected_format(conn, s3_hook, unread, e, rejected, nothing="read", sealed_with=sealed_with)


def hold_file(conn: Conn, flow: str, file_name: str) -> None:
    """Hold (flow, file) for as long as this connection lives: from the download to the last move.
    A second run reaching for the same file waits here, then finds it imported and moved, instead
    of finding it imported but not yet moved and taking it for a second delivery."""
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 1))", (f"{flow}/{file_name}",))


def lock_and_read(cur: Cur, flow: str, file_name: str) -> Control:
    """Serialise work on one (flow, file) for the rest of the transaction and read its control row."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{flow}/{file_name}",))
    cur.execute(
        "SELECT id, status, sha256, dag_run_id FROM ops.file_control WHERE flow = %s AND file_name = %s FOR UPDATE",
        (flow, file_name),
    )
    row = cur.fetchone()
    return Control(*row) if row else Control(None, None, None, None)


def finished(conn: Conn, flow: str, file_name: str) -> Control | None:
    """The control row of a file this flow processed successfully, or None (never, or not yet)."""
    row = conn.execute(
        "SELECT id, status, sha256, dag_run_id FROM ops.file_control WHERE flow = %s "
        "AND file_name = %s AND status = 'SUCCESS'",
        (flow, file_name),
    ).fetchone()
    return Control(row[0], row[1], row[2].strip(), row[3]) if row else None


def quarantined(conn: Conn, flow: str, file_name: str) -> tuple[str, str | None] | None:
    """(run id, error) of the run that quarantined this file, when its last outcome was a refusal."""
    row = conn.execute(
        "SELECT dag_run_id, error FROM ops.file_control WHERE flow = %s AND file_name = %s AND status = 'ERROR'",
        (flow, file_name),
    ).fetchone()
    return (row[0] or "an earlier run", row[1]) if row else None


def gone_but_done(
    conn: Conn,
    flow: str,
    file_name: str,
    source_uri: str,
    rejected: type[FileRejected],
    *,
    done: str,
    raw_name: str | None = None,
) -> Control:
    """The control row of a file that is gone from the inbox because this flow processed it (a
    task cleared and run again after it succeeded: the object moved to processed/). Otherwise no
    retry can help: ``rejected`` says the file was never ``done`` and to put it back."""
    control = finished(conn, flow, file_name)
    if control is None and (q := quarantined(conn, flow, file_name)):
        run_id, error = q
        first = (error or "").strip().splitlines()[0][:300] if error else "see its report"
        raise rejected(
            f"{source_uri} is not in the inbox: run {run_id} quarantined it ({first}). Clearing the task does not "
            "bring it back; this was told when it was quarantined, so no email is sent again",
            flow=flow,
            file_name=raw_name or file_name,
            source_uri=source_uri,
            next_step=f"Correct the file and put it again at {source_uri} to have it {done}.",
            rule=Refusal.ALREADY_QUARANTINED,
            nothing=done,
        )
    if control is None:
        raise rejected(
            f"{source_uri} is not in the inbox and was never {done}",
            flow=flow,
            file_name=raw_name or file_name,
            source_uri=source_uri,
            next_step=f"Put the file again at {source_uri} to have it {done}.",
            rule=Refusal.NOT_IN_INBOX,
            nothing=done,
        )
    log.info("%s was already %s (now under processed/): nothing to do again", file_name, done)
    return control


def processed_by_run(conn: Conn, flow: str, run_id: str, bucket: str) -> list[str]:
    """The inbox keys of the files this run processed successfully. A cleared run lists them again
    with what is waiting, so each is reported as already done instead of vanishing from the run."""
    prefix = f"s3://{bucket}/"
    rows = conn.execute(
        "SELECT source_uri FROM ops.file_control WHERE flow = %s AND dag_run_id = %s AND status = 'SUCCESS'",
        (flow, run_id),
    ).fetchall()
    return sorted(r[0].removeprefix(prefix) for r in rows if r[0] and r[0].startswith(prefix))


def decide(control: Control, sha256: str) -> Decision:
    if control.status == ControlStatus.SUCCESS:
        return Decision.ALREADY_IMPORTED if control.sha256 == sha256 else Decision.CONFLICT
    return Decision.NEW


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bulk load runs: the readers allocate a tuple per
    record and make no cycles, and the collector's passes over them cost a tenth of the parse
    (bench/card_statement.py). Reference counting still frees every row as it goes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def copy_lines(cur: Cur, statement: str, prefix: str, lines: Iterable[str], batch: int = 2000) -> None:
    """Stream ``prefix + line`` for each line into ``COPY … FROM STDIN``, a batch per write (one
    join per batch: the prefix goes in as the separator)."""
    sep = f"\n{prefix}"
    with cur.copy(statement) as copy:
        buf: list[str] = []
        append = buf.append
        for line in lines:
            append(line)
            if len(buf) >= batch:
                copy.write(f"{prefix}{sep.join(buf)}\n")
                buf.clear()
        if buf:
            copy.write(f"{prefix}{sep.join(buf)}\n")


def begin_load(
    cur: Cur, flow: str, file_name: str, sha256: str, source_uri: str, run_id: str
) -> tuple[Decision, dict[str, Any], int | None]:
    """First step inside a load's transaction: lock the name's control row and decide. A new file's
    control row is started and its id (every loaded row's ``file_id``) returned; otherwise the id is
    None and the info says which control row and run had it."""
    control = lock_and_read(cur, flow, file_name)
    decision = decide(control, sha256)
    if decision is not Decision.NEW:
        return decision, {"control_id": control.id, "previous_run": control.dag_run_id}, None
    return decision, {}, start_control(cur, flow, file_name, sha256, source_uri, run_id)


def start_control(cur: Cur, flow: str, file_name: str, sha256: str, source_uri: str, run_id: str) -> int:
    """Inside the load's transaction (after ``lock_and_read``): the control row says PROCESSING;
    returns its id, the ``file_id`` of every row the load writes."""
    cur.execute(
        """INSERT INTO ops.file_control (flow, file_name, sha256, status, source_uri, dag_run_id)
           VALUES (%s, %s, %s, 'PROCESSING', %s, %s)
           ON CONFLICT (flow, file_name) DO UPDATE SET sha256 = EXCLUDED.sha256, status = 'PROCESSING',
               source_uri = EXCLUDED.source_uri, dag_run_id = EXCLUDED.dag_run_id, error = NULL,
               started_at = now(), finished_at = NULL
           RETURNING id""",
        (flow, file_name, sha256, source_uri, run_id),
    )
    return int(one(cur)[0])


def finish_control(cur: Cur, file_id: int, lines: int | None, rows: int, total: Any) -> None:
    cur.execute(
        """UPDATE ops.file_control SET status = 'SUCCESS', line_count = %s, row_count = %s, total_amount = %s,
               finished_at = now() WHERE id = %s""",
        (lines, rows, total, file_id),
    )


def record_event(
    cur: Cur, flow: str, file_name: str, sha256: str | None, event: str, detail: str = "", run_id: str | None = None
) -> None:
    cur.execute(
        "INSERT INTO ops.file_event (flow, file_name, sha256, event, detail, dag_run_id) VALUES (%s,%s,%s,%s,%s,%s)",
        (flow, file_name, sha256, event, detail[:4000], run_id),
    )


def record_error(
    conn: Conn,
    flow: str,
    file_name: str,
    sha256: str,
    source_uri: str,
    error: str,
    run_id: str,
    event: str = FileEvent.QUARANTINED,
) -> None:
    """In its own transaction: the control row says ERROR (unless the name was already imported)."""
    with conn.transaction(), conn.cursor() as cur:
        control = lock_and_read(cur, flow, file_name)
        if control.status != ControlStatus.SUCCESS:
            cur.execute(
                """INSERT INTO ops.file_control (flow, file_name, sha256, status, source_uri, error, dag_run_id,
                                                 finished_at)
                   VALUES (%s, %s, %s, 'ERROR', %s, %s, %s, now())
                   ON CONFLICT (flow, file_name) DO UPDATE SET sha256 = EXCLUDED.sha256, status = 'ERROR',
                       source_uri = EXCLUDED.source_uri, error = EXCLUDED.error, dag_run_id = EXCLUDED.dag_run_id,
                       line_count = NULL, row_count = NULL, total_amount = NULL, finished_at = now()""",
                (flow, file_name, sha256, source_uri, error[:8000], run_id),
            )
        record_event(cur, flow, file_name, sha256, event, error, run_id)


@dataclass(frozen=True)
class Incoming:
    """The file a task is working on: its flow, where it is, what it is called, its content's
    sha256 and the run. Passed whole wherever a file is recorded, quarantined or refused."""

    flow: str
    bucket: str
    key: str
    file_name: str
    sha256: str
    run_id: str
    etag: str | None = None  # the version read: only that one is moved

    @property
    def source_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def reject(
    conn: Conn,
    s3_hook: S3Hook,
    f: Incoming,
    *,
    error: str,
    report: dict[str, Any],
    event: str = FileEvent.QUARANTINED,
    body: Path | None = None,
    sealed_with: str | None = None,
) -> str:
    """A file that must not be loaded as it is: control row ERROR (unless that name was already
    imported), the decision recorded, the object quarantined beside its report (``body``: the file
    with its card numbers masked, kept instead of the original bytes; ``sealed_with``: the KMS key
    an unread file is kept encrypted under). Nothing deleted but the original of a masked or sealed
    copy. Returns the quarantined copy's ``s3://`` address."""
    record_error(conn, f.flow, f.file_name, f.sha256, f.source_uri, error, f.run_id, event=event)
    target = quarantine(
        s3_hook,
        f.bucket,
        f.key,
        report | {"file": f.file_name, "source": f.source_uri, "sha256": f.sha256, "run_id": f.run_id},
        etag=f.etag,
        body=body,
        original_sha256=f.sha256,
        sealed_with=sealed_with,
    )
    return f"s3://{f.bucket}/{target}"


def rejected_format(
    conn: Conn,
    s3_hook: S3Hook,
    f: Incoming,
    error: FormatError,
    rejected: type[FileRejected],
    *,
    nothing: str = "loaded",
    shown_name: str | None = None,
    body: Path | None = None,
    sealed_with: str | None = None,
) -> FileRejected:
    """A file its layout refuses (``error``: a ``FormatError``), quarantined with the report naming
    every line, field and value (``reject``); returns the flow's exception for the task to raise."""
    rule = refusal_for(error)
    report = {"rule": rule.value} | error.report()
    quarantined = reject(conn, s3_hook, f, error=f"[{rule}] {error}", report=report, body=body, sealed_with=sealed_with)
    return rejected(
        f"{f.source_uri} rejected and quarantined, nothing {nothing}:\n{error}",
        flow=f.flow,
        file_name=shown_name or f.file_name,
        source_uri=f.source_uri,
        quarantined=quarantined,
        rule=rule,
        nothing=nothing,
    )


def rejected_conflict(
    conn: Conn,
    s3_hook: S3Hook,
    f: Incoming,
    rejected: type[FileRejected],
    *,
    done: str,
    next_step: str,
    shown_name: str | None = None,
    body: Path | None = None,
) -> FileRejected:
    """A file whose name was already ``done`` (imported, loaded, exported) with other content: the
    new file is quarantined, the first one's results stay as they are, and a person decides;
    returns the flow's exception for the task to raise."""
    msg = (
        f"{f.file_name} was already {done} with different content (sha256 differs); the new file "
        f"{f.source_uri} is quarantined for a human to decide"
    )
    rule = Refusal.CONFLICT
    quarantined = reject(
        conn,
        s3_hook,
        f,
        error=f"[{rule}] {msg}",
        report={"rule": rule.value, "error": msg},
        event=FileEvent.CONFLICT,
        body=body,
    )
    return rejected(
        msg,
        flow=f.flow,
        file_name=shown_name or f.file_name,
        source_uri=f.source_uri,
        quarantined=quarantined,
        next_step=next_step,
        rule=rule,
        nothing=done,
    )


def resolve_quarantine(
    conn: Conn,
    s3_hook: S3Hook,
    *,
    flow: str,
    bucket: str,
    name: str,
    sha256: str,
    run_id: str,
    prefix: str = "quarantine/",
) -> str | None:
    """A corrected file of this name was just loaded: move the rejected copy and its report from
    ``quarantine/`` to ``quarantine/resolved/<run>/`` (kept, never deleted) and record it. Returns the new
    address of the copy, or None when nothing of that name was in quarantine."""
    target = f"{prefix}resolved/{run_id.replace(':', '-')}/{name}"
    if not move_object(s3_hook, bucket, f"{prefix}{name}", target):
        return None
    move_object(s3_hook, bucket, f"{prefix}{name}.error.json", f"{target}.error.json")
    with conn.transaction(), conn.cursor() as cur:
        record_event(
            cur,
            flow,
            name,
            sha256,
            FileEvent.QUARANTINE_RESOLVED,
            f"a corrected {name} was loaded; the rejected copy is now s3://{bucket}/{target}",
            run_id,
        )
    log.info("a corrected %s was loaded: the rejected copy moved to s3://%s/%s", name, bucket, target)
    return f"s3://{bucket}/{target}"


def exists(s3_hook: S3Hook, bucket: str, key: str) -> bool:
    client = s3_hook.get_conn()
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def move_object(
    s3_hook: S3Hook,
    bucket: str,
    key: str,
    new_key: str,
    etag: str | None = None,
    *,
    body: Path | None = None,
    original_sha256: str | None = None,
    sealed_with: str | None = None,
) -> bool:
    """Copy then delete; False when the source is already gone (an earlier try moved it), or, given
    the ``etag`` of the version that was read, when another version has replaced it since: that one
    is left in place for the next run (S3 ``CopySourceIfMatch``). With ``body`` (the file with its
    card numbers masked), ``new_key`` gets that instead of the original bytes, the original's sha256
    in its metadata, and the original is deleted only once the masked copy is in place. With
    ``sealed_with`` (a KMS key ARN: ``quarantine_key``), the copy, made by the server, is encrypted
    under that key (a file kept unread)."""
    client = s3_hook.get_conn()

    def etag_of(k: str) -> str | None:
        try:
            etag: str | None = client.head_object(Bucket=bucket, Key=k).get("ETag")
            return etag
        except client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    now = etag_of(key)
    if now is None:
        return False
    if etag and now != etag:
        log.warning("s3://%s/%s changed while it was processed: the new version stays for the next run", bucket, key)
        return False
    if body is not None:
        with body.open("rb") as data:
            meta = {"original-sha256": original_sha256 or "", "card-numbers": "masked"}
            client.put_object(Bucket=bucket, Key=new_key, Body=data, Metadata=meta)
        written = etag_of(new_key)
    elif not _server_copy(client, bucket, key, new_key, etag, sealed_with):
        return False
    else:
        written = etag
    if etag and etag_of(key) != etag:  # replaced around the copy: keep only a copy of the version read
        if etag_of(new_key) != written:
            client.delete_object(Bucket=bucket, Key=new_key)
        log.warning("s3://%s/%s was replaced while it was moved: the new version stays for the next run", bucket, key)
        return False
    client.delete_object(Bucket=bucket, Key=key)
    return True


def _server_copy(
    client: AwsClient, bucket: str, key: str, new_key: str, etag: str | None, sealed_with: str | None
) -> bool:
    """The server copies ``key`` to ``new_key`` (a managed copy: in parts past 5 GB; under SSE-KMS
    with ``sealed_with``); False when the version read was replaced meanwhile."""
    args: dict[str, Any] = (
        {"CopySourceIfMatch": etag} if etag else {}
    )  # where the server enforces it, the race is closed
    if sealed_with:
        meta = {"card-numbers": "unread: kept encrypted under the quarantine key"}
        args |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sealed_with}
        args |= {"MetadataDirective": "REPLACE", "Metadata": meta}
    try:
        client.copy({"Bucket": bucket, "Key": key}, bucket, new_key, ExtraArgs=args)
    except client.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        log.warning("s3://%s/%s changed while it was processed: the new version stays for the next run", bucket, key)
        return False
    return True


class QuarantineKeyMissing(FinflowsError):
    """The KMS key a file kept unread is encrypted under is not there or not enabled: the file stays
    where it is, unread, until the key is (a configuration error, named with its setting)."""


def quarantine_key(s3_hook: S3Hook) -> str:
    """The ARN of the enabled KMS key ``FINFLOWS_QUARANTINE_KMS_KEY`` names (an S3 server would take
    a key it cannot use at copy time and fail at the first read: we look it up first)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from finflows.settings import quarantine_kms_key

    name = quarantine_kms_key()
    kms = AwsBaseHook(aws_conn_id=s3_hook.aws_conn_id, client_type="kms").get_conn()
    try:
        meta = kms.describe_key(KeyId=name)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        raise QuarantineKeyMissing(f"no KMS key {name} (FINFLOWS_QUARANTINE_KMS_KEY)") from None
    if meta.get("KeyState") != "Enabled":
        raise QuarantineKeyMissing(f"KMS key {name} (FINFLOWS_QUARANTINE_KMS_KEY) is {meta.get('KeyState')}")
    return str(meta["Arn"])


def quarantine_copy(s3_hook: S3Hook, bucket: str, target: str, data: bytes, report: dict[str, Any]) -> str:
    """A copy of a file that lives elsewhere (a counterparty's server, where it stays), kept at
    ``target`` beside ``<target>.error.json``, as ``quarantine`` keeps an object of ours."""
    target = free_key(s3_hook, bucket, target)
    _write_report(s3_hook, bucket, target, report)
    s3_hook.load_bytes(data, key=target, bucket_name=bucket, replace=True)
    log.error("quarantined a copy at s3://%s/%s (report %s.error.json)", bucket, target, target)
    return target


def _write_report(s3_hook: S3Hook, bucket: str, target: str, report: dict[str, Any]) -> None:
    s3_hook.load_string(
        json.dumps(report, indent=1, default=str), key=f"{target}.error.json", bucket_name=bucket, replace=True
    )


def free_key(s3_hook: S3Hook, bucket: str, target: str) -> str:
    """``target``, or, when a quarantined copy already holds it, ``target`` with the time added: a
    second bad file of a name never overwrites the first."""
    if not exists(s3_hook, bucket, target):
        return target
    import datetime as dt

    return f"{target}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"


def quarantine(
    s3_hook: S3Hook,
    bucket: str,
    key: str,
    report: dict[str, Any],
    prefix: str = "quarantine/",
    etag: str | None = None,
    *,
    body: Path | None = None,
    original_sha256: str | None = None,
    sealed_with: str | None = None,
) -> str:
    """Move the object under ``quarantine/`` (or, given ``body``, its masked copy; given
    ``sealed_with``, encrypted under that KMS key: ``move_object``) and write ``<name>.error.json``
    beside it."""
    name = key.rsplit("/", 1)[-1]
    target = free_key(s3_hook, bucket, f"{prefix}{name}")
    if body is not None:
        report = report | {"card_numbers": "masked in this copy"}
    elif sealed_with:
        report = report | {"card_numbers": f"not read; this copy is encrypted under KMS key {sealed_with}"}
    _write_report(s3_hook, bucket, target, report)
    move_object(s3_hook, bucket, key, target, etag, body=body, original_sha256=original_sha256, sealed_with=sealed_with)
    log.error("quarantined s3://%s/%s → s3://%s/%s (report %s.error.json)", bucket, key, bucket, target, target)
    return target
