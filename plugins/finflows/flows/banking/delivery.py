"""One batch to its bank at most once: the delivery state machine.

The states are the batch's (``include/sql/0013_delivery_states.sql`` draws them and its triggers
refuse any other move):

* ``batched`` / ``queued``: nothing of this batch has reached the bank.
* ``sending`` step ``part`` (committed before the first byte leaves): ``NAME.part`` is being
  written. A bank only takes files under their final name, so whatever happens now, nothing has
  reached it: a failure here is retried (the task's tries, then bank_transfer_retry).
* ``sending`` step ``rename`` (committed before the rename is sent): from here only the server can
  tell. Our bytes under the final name (size and, where the server lets us read it back, sha256)
  → ``uploaded``. Our ``NAME.part`` still there and the final name free → the rename did not
  happen, and *that* part (never a new one) is renamed: the one object that can become the final
  name becomes it at most once. Anything else → ``uncertain``.
* ``uncertain``: never sent again by any automatic path (task retries, bank_transfer_retry,
  re-runs, clears). Treasury is alerted and decides through the finance monitor ("the bank has
  it" → ``uploaded``; "resend" → ``queued``); who decided, when and why is kept on the batch and in
  ``pay.batch_event``.
* ``cancelled``: past the bank's cutoff, and only when the record proves nothing reached the bank
  (``batched``, ``queued``, ``sending``/``part``; or ``sending``/``rename`` once we removed our
  ``NAME.part`` ourselves and the final name is free). Its payments go back to pending.

The finance database is not the only memory: just before any rename is sent, a write-once send
record goes to the archive (``finflows.flows.banking.sent_records``), and before anything is sent
the batch's payments are checked against those records. A record the database does not account
for (it was restored, or failed over, past a delivery) makes the batch ``uncertain``, "sent
according to the archive record": a person decides, nothing resends it.

Nobody decides about a batch they made (``made_by``): :class:`FourEyesRefused`, and the database
refuses it too (``include/sql/0019_four_eyes_attention.sql``).

Every status change runs under the batch's advisory lock and checks the rows it changed: a change
that finds the batch moved on raises :class:`BatchMoved` and writes nothing.

``at_step`` is a seam for the crash-point test (``tests/integration/test_crash_points.py``): it is
called with each step's name as the delivery passes it, so a test can kill the worker exactly
there. It is ``None`` in production. No Airflow import here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from finflows.errors import FinflowsError
from finflows.flows.banking import audit
from finflows.flows.banking.banks import Bank
from finflows.flows.banking.sent_records import SentRecords
from finflows.flows.banking.states import BATCH_FINAL, MAY_SEND, BatchStatus, PaymentStatus, Retry, Uncertain
from finflows.seams import Conn, Cur, one
from finflows.sessions import IncompatibleServer
from finflows.settings import TAIPEI
from finflows.transfer import (
    ABSENT,
    OTHER,
    OURS,
    STAT,
    UNKNOWN,
    TransferError,
    sftp_put_part,
    sftp_remote_copy,
    sftp_remove_quietly,
)

if TYPE_CHECKING:
    from finflows.emails import Email


log = logging.getLogger(__name__)

FLOW = "bank_payments"

# The step boundaries a worker can die at, in the order a delivery passes them.
STEPS = (
    "archived",  # the encrypted file is in the archive and recorded
    "sending_committed",  # sending/part is recorded; nothing has left yet
    "part_written",  # NAME.part is complete on the server
    "rename_committed",  # sending/rename is recorded; the rename is not sent yet
    "sent_recorded",  # the write-once send record is in the archive; the rename is not sent yet
    "renamed",  # the server acknowledged the rename
    "delivered_committed",  # uploaded is recorded
    "cancel_committed",  # cancelled is recorded
)
at_step: Callable[[str], None] | None = None

DECISIONS = ("bank_has_it", "resend")


class BatchMoved(TransferError):
    """A status change found the batch no longer where this step left it: nothing was written."""


class DecisionRefused(FinflowsError, ValueError):
    """A decision asked of a batch that is not waiting for one."""


class FourEyesRefused(DecisionRefused):
    """A decision asked of the person who made what it decides about: another person must take it."""


class Outcome(StrEnum):
    """What one delivery of a batch's file came to (``Delivery.outcome``: logged, passed in XCom and
    stored in ``pay.transfer`` as these strings)."""

    UPLOADED = "uploaded"  # this try put the file there
    ALREADY_THERE = "already_there"  # complete under its final name before this try: never sent twice
    ALREADY_DELIVERED = "already_delivered"  # by an earlier try of the same run
    QUEUED = "queued"  # not delivered; bank_transfer_retry tries again
    UNCERTAIN = "uncertain"  # nobody can prove whether the bank has it: treasury decides
    EXPIRED = "expired"  # past the bank's cutoff (or unanswered approval): cancelled
    SKIPPED = "skipped"  # delivered, cancelled or failed before; or the bank's circuit is open
    BUSY = "busy"  # another run holds the batch
    GAVE_UP = "gave_up"  # refused in a way no retry changes, or out of retries
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"  # by the approver


SENT = frozenset({Outcome.UPLOADED, Outcome.ALREADY_THERE})  # at the bank, as this try saw
DELIVERED = SENT | {Outcome.ALREADY_DELIVERED}  # at the bank, by this try or an earlier one of the run
STOPPED = frozenset({Outcome.GAVE_UP, Outcome.EXPIRED, Outcome.UNCERTAIN})  # not sent and not retried: a person acts
PROBLEMS = STOPPED | {Outcome.QUEUED, Outcome.REJECTED, Outcome.AWAITING_APPROVAL}  # named in the treasury email


@dataclass
class Delivery:
    batch_id: int
    file_name: str
    outcome: Outcome
    payment_count: int = 0
    total_amount: int = 0
    attempts: int = 0
    error: str | None = None
    bytes: int = 0  # of the encrypted file, when delivered


@dataclass(frozen=True)
class Batch:
    """A batch's row as a delivery reads it (under its lock)."""

    id: int
    bank: str
    file_name: str
    status: BatchStatus
    send_step: str | None
    send_attempt: int
    processing_date: dt.date
    payment_count: int
    total_amount: int
    uploaded_at: dt.datetime | None
    uncertain_reason: str | None
    approval: str = "not_required"  # required | requested | approved | not_required | rejected | expired
    made_by: str | None = None  # who triggered the run that made it (None: scheduled)
    decision: str | None = None  # a person's decision since it last became uncertain
    decided_at: dt.datetime | None = None

    @property
    def approved(self) -> bool:
        return self.approval in MAY_SEND


@dataclass(frozen=True)
class Parcel:
    """What one delivery moves: a batch's encrypted bytes and where they go."""

    batch: Batch
    final: str
    data: bytes
    plain_sha256: str
    cipher_sha256: str
    run_id: str
    started: dt.datetime
    from_retry_queue: bool = False  # bank_transfer_retry's try: counted in pay.transfer_retry
    references: tuple[str, ...] = ()  # the payments the file carries (named in the send record)

    @property
    def part(self) -> str:
        return f"{self.final}.part"


def _step(name: str) -> None:
    if at_step is not None:
        at_step(name)


def cutoff(bank: Bank, day: dt.date) -> dt.datetime:
    """The bank's cutoff on a processing date (Asia/Taipei)."""
    return dt.datetime.combine(day, bank.cutoff_time, tzinfo=TAIPEI)


def remote_path(bank: Bank, name: str) -> str:
    return f"{bank.upload_path.rstrip('/')}/{name}"


@contextlib.contextmanager
def batch_lock(conn: Conn, batch_id: int) -> Iterator[bool]:
    """The batch's session advisory lock, if free (True), released on leaving. A killed worker's
    lock goes with its database session."""
    key = f"{FLOW}/batch/{batch_id}"
    got = one(conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)))[0]
    try:
        yield got
    finally:
        if got:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def read_batch(conn: Conn, batch_id: int) -> Batch:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:  # read by name, not by position
        row = cur.execute(
            """SELECT id, bank, file_name, status, send_step, send_attempt, processing_date, payment_count,
                      total_amount, uploaded_at, uncertain_reason, approval, made_by, decision, decided_at
               FROM pay.batch WHERE id = %s""",
            (batch_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no batch {batch_id}")
    return Batch(**row | {"status": BatchStatus(row["status"]), "total_amount": int(row["total_amount"])})


def _move(
    cur: Cur, b: Batch, sets: str, params: tuple[Any, ...], *, status: str | None = None, step: str | None = None
) -> Any:
    """``UPDATE pay.batch SET <sets>`` where the batch still is in ``status``/``step`` (default: as
    read); exactly one row changes, or :class:`BatchMoved`. Returns the RETURNING row, if any."""
    status = status or b.status
    step = b.send_step if status == b.status and step is None else step
    cur.execute(
        f"UPDATE pay.batch SET {sets} WHERE id = %s AND status = %s "  # noqa: S608 (sets are ours)
        "AND send_step IS NOT DISTINCT FROM %s RETURNING send_attempt",
        (*params, b.id, status, step),
    )
    row = cur.fetchone()
    if row is None:
        raise BatchMoved(f"{b.file_name}: expected {status}{'/' + step if step else ''}; the batch moved on")
    return row


def _payments_to(cur: Cur, b: Batch, to: str) -> None:
    """The batch's batched payments move to ``to``; all of them, or :class:`BatchMoved`."""
    if to == PaymentStatus.UPLOADED:
        cur.execute("UPDATE pay.payment SET status = 'uploaded' WHERE batch_id = %s AND status = 'batched'", (b.id,))
    else:
        cur.execute(
            """UPDATE pay.payment SET status = 'pending', batch_id = NULL, seq = NULL, value_date = NULL
               WHERE batch_id = %s AND status = 'batched'""",
            (b.id,),
        )
    if cur.rowcount != b.payment_count:
        raise BatchMoved(f"{b.file_name}: {cur.rowcount} of its {b.payment_count} payment(s) were batched")


def _transfer_row(cur: Cur, p: Parcel, outcome: str, attempts: int, error: str | None = None) -> None:
    b = p.batch
    cur.execute(
        """INSERT INTO pay.transfer (batch_id, bank, file_name, remote_path, plain_sha256, cipher_sha256, bytes,
               payment_count, total_amount, attempts, outcome, error, started_at, dag_run_id)
           VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
        (
            b.id,
            b.bank,
            b.file_name,
            p.final,
            p.plain_sha256,
            p.cipher_sha256,
            len(p.data),
            b.payment_count,
            b.total_amount,
            max(1, attempts),
            outcome,
            error[:4000] if error else None,
            p.started,
            p.run_id,
        ),
    )


def _delivery(p: Parcel, outcome: Outcome, attempts: int, error: str | None = None) -> Delivery:
    b = p.batch
    return Delivery(b.id, b.file_name, outcome, b.payment_count, b.total_amount, attempts, error, len(p.data))


# ---------------------------------------------------------------------------- the recorded steps
def _begin(conn: Conn, p: Parcel) -> Batch:
    """sending/part, committed before the first byte leaves."""
    b = p.batch
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"sending {p.final}")
        (attempt,) = _move(
            cur,
            b,
            "status = 'sending', send_step = 'part', send_attempt = send_attempt + 1, remote_path = %s",
            (p.final,),
        )
    _step("sending_committed")
    return Batch(**{**b.__dict__, "status": "sending", "send_step": "part", "send_attempt": attempt})


def _record_sent(link: Link, p: Parcel, attempt: int) -> None:
    """The write-once send record, put just before a rename is sent (after ``sending/rename`` is
    committed): from here the file may be at the bank, whatever the finance database later says."""
    b = p.batch
    link.records.write(
        bank=b.bank,
        day=b.processing_date,
        file_name=b.file_name,
        batch_id=b.id,
        attempt=attempt,
        cipher_sha256=p.cipher_sha256,
        plain_sha256=p.plain_sha256,
        references=p.references,
        run_id=p.run_id,
    )
    _step("sent_recorded")


def _rename_next(conn: Conn, p: Parcel) -> None:
    """sending/rename, committed before the rename is sent."""
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"renaming {p.part} to {p.final}")
        _move(cur, p.batch, "send_step = 'rename'", (), status="sending", step="part")
    _step("rename_committed")


def _shown(link: Link) -> str | None:
    """The host key the bank's server showed in the session (``BankSFTPHook.shown_host_key``)."""
    return getattr(link.sftp_hook, "shown_host_key", None)


def _delivered(
    conn: Conn, p: Parcel, outcome: Outcome, attempts: int, step: str = "rename", host_key: str | None = None
) -> Delivery:
    """Our bytes are under the final name (the rename was acknowledged, or the server shows them);
    ``host_key``: the key the server showed, kept on the batch."""
    b = p.batch
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"{b.file_name} {outcome}: {p.final}")
        _move(cur, b, "status = 'uploaded', send_step = NULL, uploaded_at = now(), host_key = coalesce(%s, host_key)",
              (host_key,), status="sending", step=step)  # fmt: skip
        _payments_to(cur, b, "uploaded")
        _transfer_row(cur, p, outcome, attempts)
        cur.execute(
            "UPDATE pay.transfer_retry SET status = 'delivered', attempts = attempts + %s, updated_at = now() "
            "WHERE batch_id = %s",
            (int(p.from_retry_queue), b.id),
        )
    _step("delivered_committed")
    log.info(
        "%s: %s %s (%d bytes, %d payment(s), NTD %s)",
        b.bank,
        b.file_name,
        outcome,
        len(p.data),
        b.payment_count,
        b.total_amount,
    )
    return _delivery(p, outcome, attempts)


def _uncertain(conn: Conn, p: Parcel, reason: str, attempts: int, step: str) -> Delivery:
    """Nobody can tell whether the bank has the file: a person decides; nothing resends it."""
    b = p.batch
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"uncertain: {reason}")
        _move(
            cur,
            b,
            "status = 'uncertain', send_step = NULL, uncertain_reason = %s",
            (reason[:4000],),
            status="sending",
            step=step,
        )
        _transfer_row(cur, p, Outcome.UNCERTAIN, attempts, reason)
        cur.execute(
            """INSERT INTO pay.transfer_retry (batch_id, status, last_error) VALUES (%s, 'uncertain', %s)
               ON CONFLICT (batch_id) DO UPDATE SET status = 'uncertain', last_error = EXCLUDED.last_error,
                   updated_at = now()""",
            (b.id, reason[:4000]),
        )
    log.error("%s: %s UNCERTAIN: %s; waiting for treasury's decision, nothing is resent", b.bank, b.file_name, reason)
    return _delivery(p, Outcome.UNCERTAIN, attempts, reason)


def _queue(conn: Conn, p: Parcel, attempts: int, error: str, *, give_up: bool = False) -> Delivery:
    """Every try failed before the rename was recorded: nothing reached the bank; queued for retry,
    or (``give_up``: a refusal no retry can change) given up to a person at once."""
    b = p.batch
    status = "gave_up" if give_up else "waiting"
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"not delivered ({error[:200]}): {'given up' if give_up else 'queued'}")
        _move(cur, b, "status = 'queued', send_step = NULL", (), status="sending", step="part")
        _transfer_row(cur, p, "failed", attempts, error)
        cur.execute(
            """INSERT INTO pay.transfer_retry (batch_id, last_error, status) VALUES (%s, %s, %s)
               ON CONFLICT (batch_id) DO UPDATE SET status = EXCLUDED.status,
                   attempts = pay.transfer_retry.attempts + %s,
                   last_error = EXCLUDED.last_error, updated_at = now(), next_attempt_at = now()""",
            (b.id, error[:4000], status, int(p.from_retry_queue)),
        )
    log.error(
        "%s: %s not delivered after %d tries (%s): %s",
        b.bank,
        b.file_name,
        attempts,
        error,
        "given up to a person" if give_up else "queued for bank_transfer_retry",
    )
    return _delivery(p, Outcome.GAVE_UP if give_up else Outcome.QUEUED, attempts, error)


def cancel(conn: Conn, b: Batch, run_id: str, why: str, *, part_removed: bool = False) -> Delivery:
    """The batch will not be delivered: its payments go back to pending. Only from a state that
    proves nothing reached the bank (the trigger refuses sending/rename without ``part_removed``)."""
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, run_id, why)
        if part_removed:
            cur.execute("SELECT set_config('finflows.part_removed', 'yes', true)")
        _move(cur, b, "status = 'cancelled', send_step = NULL", ())
        _payments_to(cur, b, "pending")
        cur.execute(
            "UPDATE pay.transfer_retry SET status = 'expired', last_error = %s, updated_at = now() WHERE batch_id = %s",
            (why, b.id),
        )
    _step("cancel_committed")
    log.error("%s", why)
    return Delivery(b.id, b.file_name, Outcome.EXPIRED, b.payment_count, b.total_amount, error=why)


# ---------------------------------------------------------------------------- a delivery
@dataclass(frozen=True)
class Link:
    """How to reach the bank: its SFTP hook, the send records, how often to try, and how its server
    lets us check an upload (``stat``, ``list`` or ``trust``: banks.yaml ``upload_check``)."""

    sftp_hook: Any
    records: SentRecords  # the write-once send records in the archive (outside the finance database)
    attempts: int = 3
    backoff: float = 2.0
    check: str = STAT

    def pause(self, tried: int) -> None:
        time.sleep(min(self.backoff * 2 ** (tried - 1), 300))


def deliver(
    conn: Conn,
    *,
    bank: Bank,
    batch_id: int,
    run_id: str,
    link: Link,
    prepare: Callable[[], tuple[bytes, dict[str, Any]]],
    now: dt.datetime | None = None,
    from_retry_queue: bool = False,
) -> Delivery:
    """Deliver one batch at most once, whoever else is trying, whatever an earlier worker left.

    ``prepare`` returns the batch's encrypted bytes (made and archived once) and their checksums."""
    now = now or dt.datetime.now(dt.UTC)
    with batch_lock(conn, batch_id) as mine:
        if not mine:
            return Delivery(batch_id, "", Outcome.BUSY, error="another run is delivering this batch")
        b = read_batch(conn, batch_id)
        if b.status in BATCH_FINAL:
            when = f" at {b.uploaded_at:%Y-%m-%d %H:%M:%S %Z}" if b.uploaded_at else ""
            what = "already delivered" if b.status == BatchStatus.UPLOADED else f"batch is {b.status}"
            return Delivery(b.id, b.file_name, Outcome.SKIPPED, b.payment_count, b.total_amount, error=f"{what}{when}")
        if b.status == BatchStatus.UNCERTAIN:
            return Delivery(
                b.id,
                b.file_name,
                Outcome.UNCERTAIN,
                b.payment_count,
                b.total_amount,
                error=f"waiting for treasury's decision, not resent: {b.uncertain_reason}",
            )
        past = now >= cutoff(bank, b.processing_date)
        if past and not (b.status == BatchStatus.SENDING and b.send_step == "rename"):
            if b.status == BatchStatus.SENDING:
                sftp_remove_quietly(link.sftp_hook, remote_path(bank, b.file_name) + ".part")
            return cancel(conn, b, run_id, _too_late(bank, b))
        if not b.approved and b.status in (BatchStatus.BATCHED, BatchStatus.QUEUED):
            return Delivery(
                b.id,
                b.file_name,
                Outcome.AWAITING_APPROVAL,
                b.payment_count,
                b.total_amount,
                error=f"approval is {b.approval}: nothing is sent before a second person approves it",
            )
        p = _parcel(conn, bank, b, prepare, run_id, now, from_retry_queue)
        if b.status == BatchStatus.SENDING and b.send_step == "rename":
            why = "a worker stopped after the rename step was recorded"
            if past:
                return _settle_after_cutoff(conn, p, link, why, _too_late(bank, b))
            return _settle_rename(conn, p, link, why, 0)
        # nothing is sent where the archive's send records say the bank may have these payments already
        return _stopped_by_record(conn, p, link) or _send(
            conn, Parcel(**{**p.__dict__, "batch": _begin(conn, p)}), link
        )


def _parcel(
    conn: Conn,
    bank: Bank,
    b: Batch,
    prepare: Callable[[], tuple[bytes, dict[str, Any]]],
    run_id: str,
    now: dt.datetime,
    from_retry_queue: bool,
) -> Parcel:
    """The batch's encrypted file (made and archived once by ``prepare``) and what it carries."""
    data, info = prepare()
    _step("archived")
    return Parcel(
        b,
        remote_path(bank, b.file_name),
        data,
        info["plain_sha256"],
        info["cipher_sha256"],
        run_id,
        now,
        from_retry_queue,
        _references(conn, b.id),
    )


def _references(conn: Conn, batch_id: int) -> tuple[str, ...]:
    rows = conn.execute("SELECT reference FROM pay.payment WHERE batch_id = %s ORDER BY seq", (batch_id,)).fetchall()
    return tuple(r[0] for r in rows)


def _stopped_by_record(conn: Conn, p: Parcel, link: Link) -> Delivery | None:
    """Before anything is sent: the send records of the bank that name this batch's payments and
    that the database does not account for (it was restored, or failed over, past a delivery).
    Then nothing is sent: the batch is uncertain, "sent according to the archive record", and a
    person decides. None when no record stops it."""
    b = p.batch
    found = link.records.blocking(
        bank=b.bank,
        day=b.processing_date,
        file_name=b.file_name,
        send_attempt=b.send_attempt,
        references=p.references,
        resend_decided_at=b.decided_at if b.decision == Uncertain.RESEND else None,
    )
    if not found:
        return None
    named = "; ".join(f"{r.describe()} names {n} of its {b.payment_count} payment(s)" for r, n in found)
    reason = (
        f"sent according to the archive record: {named}. The finance database does not know of that delivery "
        "(was it restored?); nothing is sent until a person decides"
    )
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, p.run_id, f"uncertain: {reason}")
        _move(cur, b, "status = 'uncertain', send_step = NULL, uncertain_reason = %s", (reason[:4000],))
        cur.execute(
            """INSERT INTO pay.transfer_retry (batch_id, status, last_error) VALUES (%s, 'uncertain', %s)
               ON CONFLICT (batch_id) DO UPDATE SET status = 'uncertain', last_error = EXCLUDED.last_error,
                   updated_at = now()""",
            (b.id, reason[:4000]),
        )
    log.error("%s: %s UNCERTAIN: %s", b.bank, b.file_name, reason)
    return _delivery(p, Outcome.UNCERTAIN, 0, reason)


def _too_late(bank: Bank, b: Batch) -> str:
    return (
        f"{b.file_name} not delivered before {bank.id}'s cutoff {cutoff(bank, b.processing_date):%Y-%m-%d %H:%M} "
        "Taipei: cancelled (nothing of it reached the bank), its payments roll to a later batch"
    )


def _send(conn: Conn, p: Parcel, link: Link) -> Delivery:
    error = ""
    for tried in range(1, max(1, link.attempts) + 1):
        if tried > 1:
            link.pause(tried - 1)
        rename_recorded = wrote_part = False
        op = f"look for {p.final}"  # what was being done when a permission was refused
        try:
            with link.sftp_hook.get_managed_conn() as sftp:
                # (``unknown`` where the server shows nothing: an earlier copy under the final name
                # then makes the rename fail, and the settling below asks a person)
                there = sftp_remote_copy(sftp, p.final, p.data, link.check)
                if there == OURS:  # our bytes under the final name: an earlier delivery's record was lost
                    return _delivered(conn, p, Outcome.ALREADY_THERE, tried, step="part", host_key=_shown(link))
                if there == OTHER:
                    return _uncertain(
                        conn,
                        p,
                        f"{p.final} already holds a different file (size or sha256 differ from ours): a person must look",
                        tried,
                        "part",
                    )
                wrote_part, op = True, f"write and check {p.part}"
                sftp_put_part(sftp, p.part, p.data, link.check)
                _step("part_written")
                rename_recorded = True  # from here a failure is settled by asking the server, never by a new part
                _rename_next(conn, p)
                _record_sent(link, p, p.batch.send_attempt)
                try:
                    sftp.rename(p.part, p.final)
                except Exception as e:
                    return _settle_rename(conn, p, link, f"the rename failed: {type(e).__name__}: {e}", tried)
                _step("renamed")
                return _delivered(conn, p, Outcome.UPLOADED, tried, host_key=_shown(link))
        except BatchMoved:
            raise
        except Exception as e:
            if rename_recorded:
                raise  # the record says rename: the next try settles it by asking the server
            error = f"{type(e).__name__}: {e}"
            log.warning("upload of %s failed before its rename (try %d): %s", p.final, tried, error)
            if wrote_part:  # a cut upload leaves no NAME.part behind where the server still answers
                sftp_remove_quietly(link.sftp_hook, p.part)
            if isinstance(e, PermissionError):  # the account's rights, not the network: no retry can help
                why = (
                    f"permission denied by {p.batch.bank}'s server to {op} (upload_check {link.check}: {e}): the SFTP "
                    "account's rights on that directory must change, or the bank's upload_check in banks.yaml be set "
                    "to what its server allows (stat, list or trust); not retried"
                )
                return _queue(conn, p, tried, why, give_up=True)
            if isinstance(e, IncompatibleServer):  # configuration, not the network: no retry can help
                return _queue(conn, p, tried, f"{e}; not retried", give_up=True)
    return _queue(conn, p, max(1, link.attempts), error)


def _settle_rename(conn: Conn, p: Parcel, link: Link, why: str, tried: int) -> Delivery:
    """The rename is recorded as sent, its outcome unknown: ask the server, never send a new part."""
    last = why
    for n in range(1, max(1, link.attempts) + 1):
        if n > 1:
            link.pause(n - 1)
        try:
            with link.sftp_hook.get_managed_conn() as sftp:
                final = sftp_remote_copy(sftp, p.final, p.data, link.check)
                if final == OURS:
                    return _delivered(conn, p, Outcome.ALREADY_THERE, tried + n, host_key=_shown(link))
                if final == UNKNOWN:
                    return _uncertain(
                        conn, p, f"{why}; the server lets us see neither name (upload_check trust)", tried + n, "rename"
                    )
                if final == OTHER:
                    return _uncertain(conn, p, f"{why}; {p.final} now holds a different file", tried + n, "rename")
                if sftp_remote_copy(sftp, p.part, p.data, link.check) != OURS:
                    return _uncertain(
                        conn,
                        p,
                        f"{why}; neither {p.final} nor our {p.part} is on the server: the bank may have taken it",
                        tried + n,
                        "rename",
                    )
                _record_sent(link, p, p.batch.send_attempt)
                sftp.rename(p.part, p.final)  # the one part that can become the final name: at most once
                _step("renamed")
                return _delivered(conn, p, Outcome.UPLOADED, tried + n, host_key=_shown(link))
        except BatchMoved:
            raise
        except Exception as e:
            last = f"{type(e).__name__}: {e}"
            log.warning("%s: could not settle the rename (%s)", p.final, last)
    return _uncertain(conn, p, f"{why}; the server could not be asked since ({last})", tried + link.attempts, "rename")


def _settle_after_cutoff(conn: Conn, p: Parcel, link: Link, why: str, too_late: str) -> Delivery:
    """Past the cutoff with the rename recorded: our file on the server is delivered (late, but
    there); our part removed by us with the final name free proves nothing reached the bank."""
    b = p.batch
    try:
        with link.sftp_hook.get_managed_conn() as sftp:
            final = sftp_remote_copy(sftp, p.final, p.data, link.check)
            if final == OURS:
                return _delivered(conn, p, Outcome.ALREADY_THERE, 1, host_key=_shown(link))
            part = sftp_remote_copy(sftp, p.part, p.data, link.check)
            if final == ABSENT and part != ABSENT:
                sftp.remove(p.part)
                if sftp_remote_copy(sftp, p.final, p.data, link.check) == ABSENT:
                    link.records.void(
                        bank=b.bank,
                        day=b.processing_date,
                        file_name=b.file_name,
                        attempt=b.send_attempt,
                        why=f"{too_late}; our {p.part} was removed before any rename of it",
                    )
                    return cancel(
                        conn,
                        b,
                        p.run_id,
                        f"{too_late}; our {p.part} was removed before any rename of it",
                        part_removed=True,
                    )
            reason = f"{why}; past the cutoff, {p.final} is {final} and {p.part} is {part} on the server"
    except BatchMoved:
        raise
    except Exception as e:
        reason = f"{why}; past the cutoff the server could not be asked ({type(e).__name__}: {e})"
    return _uncertain(conn, p, reason, 1, "rename")


# ---------------------------------------------------------------------------- a person's decision
def resolve_attention(cur: Cur, batch_id: int, kinds: Iterable[str], *, by: str, how: str) -> None:
    """A person's decision on the batch itself resolves its attention-list rows of these kinds, in
    the decision's transaction (``finflows.flows.banking.invariants`` raises them)."""
    cur.execute(
        """UPDATE pay.attention SET resolved_at = now(), resolved_by = %s, resolution = %s
           WHERE batch_id = %s AND kind = ANY(%s) AND resolved_at IS NULL""",
        (by, how[:2000], batch_id, sorted(kinds)),
    )


def decide(conn: Conn, batch_id: int, decision: str, *, by: str, note: str = "") -> dict[str, Any]:
    """Treasury's decision on an uncertain batch, recorded with who made it and when.

    ``bank_has_it``: the batch is delivered (a ``confirmed`` transfer). ``resend``: it is queued and
    bank_transfer_retry sends the archived bytes once (or cancels it if the cutoff has passed)."""
    if decision not in DECISIONS:
        raise DecisionRefused(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not by:
        raise DecisionRefused("a decision needs the name of the person who made it")
    with batch_lock(conn, batch_id) as mine:
        if not mine:
            raise DecisionRefused(f"batch {batch_id} is being worked on right now; try again in a minute")
        b = read_batch(conn, batch_id)
        if b.status != BatchStatus.UNCERTAIN:
            raise DecisionRefused(f"batch {batch_id} ({b.file_name}) is {b.status}, not uncertain: nothing to decide")
        if b.made_by and b.made_by == by:
            raise FourEyesRefused(
                f"{by} made batch {batch_id} ({b.file_name}) and may not decide its delivery: another person must"
            )
        why = f"decision {decision} by {by}" + (f": {note}" if note else "")
        with conn.transaction(), conn.cursor() as cur:
            audit.who(cur, f"decision:{by}", why)
            common = "decision = %s, decided_by = %s, decided_at = now(), decision_note = %s"
            if decision == Uncertain.BANK_HAS_IT:
                _move(cur, b, f"status = 'uploaded', uploaded_at = now(), {common}", (decision, by, note or None))
                _payments_to(cur, b, "uploaded")
                cur.execute(
                    """INSERT INTO pay.transfer (batch_id, bank, file_name, remote_path, plain_sha256, cipher_sha256,
                           bytes, payment_count, total_amount, attempts, outcome, error, started_at, dag_run_id)
                       SELECT id, bank, file_name, coalesce(remote_path, file_name), plain_sha256, cipher_sha256,
                              cipher_bytes, payment_count, total_amount, 0, 'confirmed', %s, now(), %s
                       FROM pay.batch WHERE id = %s""",
                    (why, f"decision:{by}", b.id),
                )
                cur.execute(
                    "UPDATE pay.transfer_retry SET status = 'delivered', updated_at = now() WHERE batch_id = %s",
                    (b.id,),
                )
            else:
                _move(cur, b, f"status = 'queued', {common}", (decision, by, note or None))
                cur.execute(
                    """INSERT INTO pay.transfer_retry (batch_id, last_error) VALUES (%s, %s)
                       ON CONFLICT (batch_id) DO UPDATE SET status = 'waiting', attempts = 0,
                           last_error = EXCLUDED.last_error, updated_at = now(), next_attempt_at = now()""",
                    (b.id, why),
                )
            resolve_attention(cur, b.id, ("uncertain", "sent_record"), by=by, how=why)
    log.warning("%s: %s", b.file_name, why)
    return {"batch_id": b.id, "file_name": b.file_name, "decision": decision, "decided_by": by}


def _given_up(conn: Conn, batch_id: int, by: str, note: str, what: str) -> Batch:
    """The given-up batch a person re-queues or cancels (under its lock), after the refusals."""
    if not by:
        raise DecisionRefused(f"a {what} needs the name of the person who asks for it")
    if not note.strip():
        raise DecisionRefused(f"say why ({what})")
    b = read_batch(conn, batch_id)
    row = conn.execute("SELECT status FROM pay.transfer_retry WHERE batch_id = %s", (batch_id,)).fetchone()
    if b.status != BatchStatus.QUEUED or row is None or row[0] != Retry.GAVE_UP:
        state = f"{b.status}" + (f", retry {row[0]}" if row else "")
        raise DecisionRefused(f"batch {batch_id} ({b.file_name}) is {state}, not given up: nothing to {what}")
    if b.made_by and b.made_by == by:
        raise FourEyesRefused(f"{by} made batch {batch_id} ({b.file_name}) and may not {what} it: another person must")
    return b


def requeue(conn: Conn, batch_id: int, *, by: str, note: str) -> dict[str, Any]:
    """A person puts a given-up batch back in the retry queue (its cause is fixed: the account's
    rights, the bank's upload_check): bank_transfer_retry tries it again from its archived bytes,
    or cancels it past the cutoff. Recorded with who, when and why; never by the batch's maker."""
    with batch_lock(conn, batch_id) as mine:
        if not mine:
            raise DecisionRefused(f"batch {batch_id} is being worked on right now; try again in a minute")
        b = _given_up(conn, batch_id, by, note, "re-queue")
        why = f"re-queued by {by}: {note}"
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """UPDATE pay.transfer_retry SET status = 'waiting', attempts = 0, next_attempt_at = now(),
                       updated_at = now(), requeued_by = %s, requeued_at = now(), requeue_note = %s
                   WHERE batch_id = %s AND status = 'gave_up'""",
                (by, note[:500], batch_id),
            )
            cur.execute(
                """INSERT INTO pay.batch_event (batch_id, from_status, to_status, detail, decided_by, dag_run_id)
                   VALUES (%s, 'queued', 'queued', %s, %s, %s)""",
                (batch_id, why[:2000], by, f"decision:{by}"),
            )
            resolve_attention(cur, b.id, ("given_up",), by=by, how=why)
    log.warning("%s: %s", b.file_name, why)
    return {"batch_id": b.id, "file_name": b.file_name, "decision": "requeue", "decided_by": by}


def cancel_given_up(conn: Conn, batch_id: int, *, by: str, note: str) -> dict[str, Any]:
    """A person cancels a given-up batch before its cutoff (nothing of it reached the bank: its send
    record says so): its payments go back to pending and roll on. Who, when and why are kept on its
    retry row and in its events; never by the batch's maker."""
    with batch_lock(conn, batch_id) as mine:
        if not mine:
            raise DecisionRefused(f"batch {batch_id} is being worked on right now; try again in a minute")
        b = _given_up(conn, batch_id, by, note, "cancel")
        why = f"given-up batch cancelled by {by}: {note}"
        with conn.transaction():  # one transaction: the cancel's own is a savepoint inside it
            with conn.cursor() as cur:
                cur.execute(
                    """UPDATE pay.transfer_retry SET cancelled_by = %s, cancelled_at = now(), cancel_note = %s
                       WHERE batch_id = %s AND status = 'gave_up'""",
                    (by, note[:500], batch_id),
                )
                resolve_attention(cur, b.id, ("given_up",), by=by, how=why)
            cancel(conn, b, f"decision:{by}", why)
    return {"batch_id": b.id, "file_name": b.file_name, "decision": "cancel", "decided_by": by}


def uncertain_alert(deliveries: list[dict[str, Any]], base_url: str = "") -> Email | None:
    """Treasury's email, sent at once, for the deliveries of a run that ended ``uncertain``; None when none did."""
    from finflows.emails import Email

    stuck = [d for d in deliveries if d["outcome"] == Outcome.UNCERTAIN]
    if not stuck:
        return None
    lines = [
        f"{len(stuck)} bank file(s) may or may not have reached the bank. Nothing sends them again until "
        "treasury decides: ask the bank whether it received the file (name, size and sha256 below; the "
        "encrypted copy we sent is in the archive)."
    ]
    lines += [
        f"Batch {d['batch_id']} {d['file_name']}: {d['payment_count']} payment(s), NTD {d['total_amount']:,}, "
        f"{d['bytes'] or 'see the archive for'} bytes. {d['error']}"
        for d in stuck
    ]
    lines.append(
        "Decide in the Airflow UI, Browse → Required Actions (treasury_decisions asks within 10 minutes; "
        'not the person who made the batch): "The bank has it" records the batch as delivered; "Resend" '
        "queues the archived file for bank_transfer_retry, which sends it once (or cancels it if the bank's "
        "cutoff has passed). Scripts may use POST /finflows/api/batches/<id>/decision, with the same rules."
    )
    if base_url:
        lines.append(f"Finance monitor: {base_url.rstrip('/')}/finflows/api/ui")
    names = ", ".join(d["file_name"] for d in stuck)
    return Email(f"[finflows] UNCERTAIN bank delivery, treasury must decide: {names}", tuple(lines))


def uncertain_batches(conn: Conn) -> list[dict[str, Any]]:
    """Batches waiting for treasury's decision, oldest first (references and amounts only)."""
    rows = conn.execute(
        """SELECT b.id, b.bank, b.file_name, b.processing_date, b.payment_count, b.total_amount, b.remote_path,
                  b.uncertain_reason, (SELECT max(e.at) FROM pay.batch_event e
                                       WHERE e.batch_id = b.id AND e.to_status = 'uncertain')
           FROM pay.batch b WHERE b.status = 'uncertain' ORDER BY b.id"""
    ).fetchall()
    keys = (
        "batch_id",
        "bank",
        "file_name",
        "processing_date",
        "payment_count",
        "total_amount",
        "remote_path",
        "reason",
        "since",
    )
    return [dict(zip(keys, r, strict=True)) | {"total_amount": int(r[5])} for r in rows]
