"""bank_payments and bank_transfer_retry: pending payments → batches → ACHP01/CSV → PGP → SFTP, once.

Per bank:

1. ``make_batches``, one transaction under a per-bank lock: the processing date is today when it
   is a business day and the bank's cutoff (Asia/Taipei) has not passed, else the next business
   day; pending payments due by then are locked (``FOR UPDATE``), checked (a name Big5 cannot hold
   is refused with the payment named and stays pending), and split into batches of at most
   ``max_payments_per_batch`` payments and ``max_bytes_per_batch`` bytes. Payments become
   ``batched`` with their sequence number. A re-run finds nothing pending: no second batch.
2. ``deliver_batch`` for every batch not yet delivered (a stopped worker's first, then the new
   ones): the file is generated and PGP-encrypted and signed **once**, kept in the archive bucket
   and its checksums recorded; then delivered through the recorded state machine of
   ``finflows.flows.banking.delivery`` (``NAME.part``, size check, rename; at most once, an
   uncertain outcome left to a person). A transfer failing before its rename is queued in
   ``pay.transfer_retry``; ``retry_one`` (hourly DAG) delivers the same archived bytes, or, once
   the bank's cutoff for that date has passed, cancels the batch so its payments roll to the next
   business day.

No Airflow import here: tasks pass hooks, the bank configuration and an ``encrypt`` function.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from finflows import settings
from finflows.flows.banking import audit, delivery, health
from finflows.flows.banking.banks import AboveAmount, ApprovalRule, Bank, BankConfig, FileFormat
from finflows.flows.banking.delivery import DELIVERED, PROBLEMS, Delivery, Outcome
from finflows.flows.banking.sent_records import SentRecords, precondition_failed
from finflows.flows.banking.states import APPROVAL_REFUSED, Hold
from finflows.formats import ach
from finflows.seams import AwsClient, Conn, Cur, S3Hook, SftpHook, one
from finflows.settings import TAIPEI
from finflows.transfer import TransferError

if TYPE_CHECKING:
    from finflows.emails import Email


log = logging.getLogger(__name__)

FLOW = "bank_payments"
ACH_RECORD_BYTES = ach.RECORD + len(ach.EOL)

# seal(plaintext, processing date) → (ciphertext, {"encrypted_to", "signed_with"}): common.encrypter
Encrypt = Callable[[bytes, dt.date], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class Transport:
    """How a batch's file travels: kept in the archive bucket (``s3_hook``), uploaded to the bank's
    server (``sftp_hook``) with up to ``attempts`` tries, ``backoff`` seconds growing exponentially."""

    s3_hook: S3Hook
    sftp_hook: SftpHook
    archive_bucket: str
    attempts: int = 3
    backoff: float = 2.0


@dataclass
class BankRun:
    bank: str
    processing_date: str | None = None
    batches_created: int = 0
    payments_batched: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)  # {reference, error}: left pending
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    skipped_reason: str | None = None  # the bank's circuit is open: nothing batched or sent
    left_pending: int = 0  # payments due by the processing date that a skip left pending
    held: list[dict[str, Any]] = field(default_factory=list)  # {reference, duplicate_of}: held until a person decides
    approval: dict[str, Any] | None = None  # the approve step's answer: {decision, by, at, note, batches}

    @property
    def problems(self) -> list[str]:
        out = [f"payment {r['reference']} refused: {r['error']}" for r in self.refused]
        out += [
            f"payment {h['reference']} held: possible duplicate of {h['duplicate_of']} (release or cancel it in "
            "Browse → Required Actions, treasury_decisions)"
            for h in self.held
        ]
        out += [f"{d['file_name']}: {d['outcome']} ({d['error']})" for d in self.deliveries if d["outcome"] in PROBLEMS]
        a = self.approval or {}
        if a.get("decision") in (*APPROVAL_REFUSED, "refused"):
            who = f" by {a['by']}" if a.get("by") else ""
            out.append(f"approval {a['decision']}{who}: {a.get('note') or 'no reason given'}")
        return out


def last_call(bank: Bank, margin: dt.timedelta | None = None) -> dt.time:
    """The last time of day (Taipei) a batch is made for today: the bank's cutoff, or, for a bank
    that may ask a second person, the cutoff less the approval margin (an approval asked later
    could only expire: the batch goes on the next business day and is approved for it instead)."""
    if bank.approval == ApprovalRule.NONE:
        return bank.cutoff_time
    lead = settings.approval_margin() if margin is None else margin
    return (dt.datetime.combine(dt.date(2000, 1, 3), bank.cutoff_time) - lead).time()


def processing_date(cur: Cur, bank: Bank, now: dt.datetime, margin: dt.timedelta | None = None) -> dt.date:
    """Today (Taipei) before the bank's last call (``last_call``) on a business day, else the next
    business day."""
    import psycopg

    from finflows.flows.banking.business_days import CalendarNotLoaded

    local = now.astimezone(TAIPEI)
    try:
        cur.execute("SELECT pay.is_business_day(%s), pay.next_business_day(%s)", (local.date(), local.date()))
    except psycopg.Error as e:
        if e.sqlstate != "FFC01":
            raise
        raise CalendarNotLoaded(f"{bank.id}: {e.diag.message_primary}; {e.diag.message_hint}") from None
    business, following = one(cur)
    return local.date() if business and local.time() < last_call(bank, margin) else following


def plan_batches(sizes: Sequence[int], max_count: int, max_bytes: int, overhead: int = 0) -> list[range]:
    """Split items (in order) into consecutive runs of at most ``max_count`` items whose sizes plus
    ``overhead`` (header, trailer) stay within ``max_bytes``. An item larger than the limit alone
    still gets a batch of its own (the file is then over the limit; it cannot be split)."""
    out, start, used = [], 0, overhead
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_count or used + size > max_bytes):
            out.append(range(start, i))
            start, used = i, overhead
        used += size
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


class PaymentRow(NamedTuple):
    """A ``pay.payment`` row as a file needs it, read by name (``_PAYMENT_COLUMNS`` is its fields)."""

    id: int
    reference: str
    payee_bank: str
    payee_account: str
    payee_id: str
    payee_name: str
    memo: str  # NOT NULL DEFAULT ''
    txn_code: str | None  # NULL: the bank's default_txn_code
    amount: Decimal
    due_date: dt.date


_PAYMENT_COLUMNS = ", ".join(PaymentRow._fields)


def _as_payment(row: PaymentRow, bank: Bank, seq: int = 0) -> ach.Payment:
    """A payment row as the file needs it; its transaction code is the row's, else the bank's default."""
    return ach.Payment(
        seq=seq,
        reference=row.reference,
        receiving_bank=row.payee_bank,
        receiving_account=row.payee_account,
        amount=int(row.amount),
        payee_id=row.payee_id,
        name=row.payee_name,
        memo=row.memo,
        txn_code=row.txn_code or bank.default_txn_code,
    )


def _record_size(bank: Bank, p: ach.Payment) -> int:
    if bank.file_format is FileFormat.ACHP01:
        return ACH_RECORD_BYTES
    return len(ach.csv_row(_probe_batch(bank), p, bank.encoding, extensions=bank.big5_extensions))


def _probe_batch(bank: Bank, company_id: str = "00000000") -> ach.Batch:
    day = dt.date(2000, 1, 1)
    return ach.Batch(
        day, dt.time(0, 0), bank.sending_unit, bank.presenting_account, company_id, sending_org=bank.sending_org
    )


def hold_duplicates(
    cur: Cur, bank_id: str, day: dt.date, window_days: int, held_by: str | None = None
) -> list[dict[str, Any]]:
    """Hold this bank's due pending payments that repeat another payment as the bank file carries
    it: same payee bank unit, account as the layout writes it (16 digits, zero-padded:
    ``pay.wire_account``) and amount, due within ``window_days`` of it, that other one pending (and
    older), batched, uploaded or settled, paid by any of our banks. Held payments, new and still
    undecided, are returned ({reference, duplicate_of}); a released one is never held again.
    ``held_by`` (the user who triggered the run; None when scheduled) may not decide them."""
    cur.execute(
        """WITH found AS (
               SELECT c.id, o.reference AS duplicate_of
               FROM pay.payment c
               JOIN LATERAL (
                   SELECT o.reference FROM pay.payment o
                   WHERE o.id <> c.id AND o.payee_bank = c.payee_bank
                     AND pay.wire_account(o.payee_account) = pay.wire_account(c.payee_account)
                     AND o.amount = c.amount AND abs(o.due_date - c.due_date) <= %(window)s
                     AND (o.status IN ('batched', 'uploaded', 'settled') OR (o.status = 'pending' AND o.id < c.id))
                   ORDER BY o.id LIMIT 1) o ON true
               WHERE c.bank = %(bank)s AND c.status = 'pending' AND c.due_date <= %(day)s
                 AND c.held_reason IS NULL AND c.hold_decision IS NULL)
           UPDATE pay.payment p SET held_reason = format(
                   'possible duplicate of %%s (same payee bank, account and amount, due within %%s day(s))',
                   f.duplicate_of, %(window)s),
               held_at = now(), held_by = %(by)s
           FROM found f WHERE p.id = f.id""",
        {"window": window_days, "bank": bank_id, "day": day, "by": held_by},
    )
    cur.execute(
        """INSERT INTO pay.payment_event (payment_id, from_status, to_status, batch_id, detail, dag_run_id)
           SELECT id, 'pending', 'pending', NULL, held_reason, nullif(current_setting('finflows.run_id', true), '')
           FROM pay.payment WHERE bank = %s AND status = 'pending' AND held_at = now()""",
        (bank_id,),
    )
    cur.execute(
        """SELECT reference, substring(held_reason FROM 'duplicate of ([^ ]+)') FROM pay.payment
           WHERE bank = %s AND status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL
             AND due_date <= %s ORDER BY id""",
        (bank_id, day),
    )
    held = [{"reference": r, "duplicate_of": d} for r, d in cur.fetchall()]
    for h in held:
        log.warning("%s: payment %s held: possible duplicate of %s", bank_id, h["reference"], h["duplicate_of"])
    return held


def decide_hold(conn: Conn, reference: str, decision: str, *, by: str, note: str = "") -> dict[str, Any]:
    """A person's decision on a held payment: ``release`` (it is batched with the next run, never
    held again) or ``cancel`` (it fails: nothing is paid). Recorded with who and when."""
    if decision not in tuple(Hold):
        raise ValueError(f"decision must be release or cancel, not {decision!r}")
    if not by:
        raise ValueError("a decision needs the name of the person who made it")
    why = f"hold {'released' if decision == Hold.RELEASE else 'cancelled'} by {by}" + (f": {note}" if note else "")
    row = conn.execute("SELECT held_by FROM pay.payment WHERE reference = %s", (reference,)).fetchone()
    if row is not None and row[0] and row[0] == by:
        raise delivery.FourEyesRefused(
            f"{by} triggered the run that held payment {reference} and may not decide it: another person must"
        )
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, f"decision:{by}", why)
        cur.execute(
            """UPDATE pay.payment SET hold_decision = %s, hold_decided_by = %s, hold_decided_at = now()
               WHERE reference = %s AND status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL
               RETURNING id, bank""",
            (decision, by, reference),
        )
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"payment {reference} is not held and waiting for a decision")
        if decision == Hold.CANCEL:
            cur.execute(
                "UPDATE pay.payment SET status = 'failed', return_reason = %s WHERE id = %s", (why[:500], row[0])
            )
        else:
            cur.execute(
                """INSERT INTO pay.payment_event (payment_id, from_status, to_status, detail, dag_run_id)
                   VALUES (%s, 'pending', 'pending', %s, %s)""",
                (row[0], why, f"decision:{by}"),
            )
    log.warning("payment %s: %s", reference, why)
    return {"reference": reference, "bank": row[1], "decision": decision, "decided_by": by}


def held_payments(conn: Conn) -> list[dict[str, Any]]:
    """Payments held as possible duplicates and waiting for a person (references and amounts only)."""
    rows = conn.execute(
        """SELECT reference, bank, amount, due_date, held_reason, held_at FROM pay.payment
           WHERE status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL ORDER BY held_at, id"""
    ).fetchall()
    keys = ("reference", "bank", "amount", "due_date", "reason", "held_at")
    return [dict(zip(keys, r, strict=True)) | {"amount": int(r[2])} for r in rows]


def _batchable(
    cur: Cur, cfg: BankConfig, bank: Bank, day: dt.date, result: BankRun
) -> tuple[list[PaymentRow], list[int]]:
    """The bank's payments that may go on ``day`` (due, not held or released, not deferred), locked,
    with each one's record size; a payment the bank's format cannot carry is refused (left pending,
    named in ``result.refused``)."""
    pending = (
        f"SELECT {_PAYMENT_COLUMNS} FROM pay.payment WHERE bank = %s AND status = 'pending' "  # noqa: S608
        "AND (held_reason IS NULL OR hold_decision = 'release') AND (not_before IS NULL OR not_before <= %s)"
    )
    cur.execute(pending + " AND due_date <= %s ORDER BY due_date, id FOR UPDATE", (bank.id, day, day))
    rows: list[PaymentRow] = []
    sizes: list[int] = []
    probe = _probe_batch(bank, cfg.originator.company_id)
    for row in map(PaymentRow._make, cur.fetchall()):
        p = _as_payment(row, bank, seq=1)
        try:
            ach.check_payment(probe, p, bank.file_format.value, bank.encoding, extensions=bank.big5_extensions)
        except ach.PaymentError as e:
            result.refused.append({"reference": p.reference, "error": str(e)})
            log.error("%s: %s (left pending)", bank.id, e)
            continue
        rows.append(row)
        sizes.append(_record_size(bank, p))
    return rows, sizes


def _create_batches(
    cur: Cur,
    bank: Bank,
    day: dt.date,
    planned: list[list[PaymentRow]],
    run_id: str,
    result: BankRun,
    made_by: str | None,
) -> None:
    """Each planned group of payments becomes the day's next batch of the bank (its file name, its
    approval by the bank's policy), its payments batched with PSEQ numbers that run on across the
    day's batches."""
    cur.execute(
        "SELECT coalesce(max(batch_no), 0) FROM pay.batch WHERE bank = %s AND processing_date = %s", (bank.id, day)
    )
    batch_no = one(cur)[0]
    cur.execute(
        "SELECT coalesce(max(seq), 0) FROM pay.payment WHERE bank = %s AND value_date = %s AND batch_id IS NOT NULL",
        (bank.id, day),
    )
    last_seq = one(cur)[0]
    for members in planned:
        batch_no += 1
        name = ach.file_name(bank.payment_file_pattern, day, batch_no, bank.bank_code)
        total = sum(int(r.amount) for r in members)
        approval, why = _approval_policy(bank, total)
        cur.execute(
            """INSERT INTO pay.batch (bank, processing_date, batch_no, file_name, file_format, payment_count,
                                      total_amount, dag_run_id, approval, approval_note, made_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (bank.id, day, batch_no, name, bank.file_format.value, len(members), total, run_id, approval, why, made_by),
        )
        batch_id = one(cur)[0]
        cur.execute(
            """UPDATE pay.payment p SET status = 'batched', batch_id = %s, seq = u.seq, value_date = %s
               FROM unnest(%s::bigint[], %s::int[]) AS u(id, seq) WHERE p.id = u.id""",
            (batch_id, day, [r.id for r in members], list(range(last_seq + 1, last_seq + len(members) + 1))),
        )
        last_seq += len(members)
        result.batches_created += 1
        result.payments_batched += len(members)
        log.info("%s: batch %s (%s) of %d payment(s), NTD %s", bank.id, batch_id, name, len(members), total)


def make_batches(
    conn: Conn,
    cfg: BankConfig,
    bank_id: str,
    now: dt.datetime | None,
    run_id: str,
    duplicate_window: int | None = None,
    made_by: str | None = None,
) -> BankRun:
    """``now`` is the wall clock unless given (tests move the clock with time-machine); a payment that
    looks like a duplicate (``hold_duplicates``, ``duplicate_window`` days) is held, not batched.
    ``made_by``: the user who triggered the run (None when scheduled), recorded as the batches'
    maker, who may never approve or decide about them."""
    now = now or dt.datetime.now(dt.UTC)
    bank = cfg.bank(bank_id)
    result = BankRun(bank_id)
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, run_id, "batched")
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{FLOW}/{bank_id}",))
        day = processing_date(cur, bank, now)
        result.processing_date = day.isoformat()
        window = settings.duplicate_window_days() if duplicate_window is None else duplicate_window
        result.held = hold_duplicates(cur, bank_id, day, window, made_by)
        rows, sizes = _batchable(cur, cfg, bank, day, result)
        late = sum(1 for r in rows if r.due_date < day)
        if late:
            log.warning("%s: %d payment(s) were due before %s and go out on it", bank_id, late, day)
        overhead = 2 * ACH_RECORD_BYTES if bank.file_format is FileFormat.ACHP01 else 200
        chunks = plan_batches(
            sizes, cfg.originator.max_payments_per_batch, cfg.originator.max_bytes_per_batch, overhead
        )
        _create_batches(cur, bank, day, [[rows[i] for i in chunk] for chunk in chunks], run_id, result, made_by)
    return result


def _approval_policy(bank: Bank, total: int) -> tuple[str, str | None]:
    """A new batch's approval: ``required`` (a second person answers bank_payments' approve step)
    or ``not_required`` with the reason, from the bank's ``approval`` setting."""
    if bank.needs_approval(total):
        return "required", None
    if isinstance(bank.approval, AboveAmount):
        return "not_required", f"NTD {total:,} is not above the bank's approval threshold {bank.approval.above:,}"
    return "not_required", "the bank's approval setting is none (dual control in the bank's channel)"


def open_batches(conn: Conn, bank_id: str) -> list[int]:
    """Batches of this bank made but not yet delivered: this run's, those a stopped worker left
    batched or half-sent, and uncertain ones (reported again, never sent). Queued ones are
    bank_transfer_retry's."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id FROM pay.batch WHERE bank = %s AND status IN ('batched', 'sending', 'uncertain') ORDER BY id",
            (bank_id,),
        )
        return [r[0] for r in cur.fetchall()]


def build_file(cur: Cur, cfg: BankConfig, bank: Bank, batch_id: int) -> bytes:
    """The plaintext file of a batch, from the database alone: the same bytes every time."""
    cur.execute(
        "SELECT processing_date, created_at FROM pay.batch WHERE id = %s",
        (batch_id,),
    )
    day, created_at = one(cur)
    batch = ach.Batch(
        day,
        created_at.astimezone(TAIPEI).time().replace(microsecond=0),
        bank.sending_unit,
        bank.presenting_account,
        cfg.originator.company_id,
        sending_org=bank.sending_org,
    )
    sql = f"SELECT {_PAYMENT_COLUMNS}, seq FROM pay.payment WHERE batch_id = %s ORDER BY seq"  # noqa: S608
    cur.execute(sql, (batch_id,))
    payments = [_as_payment(PaymentRow._make(r[:-1]), bank, seq=r[-1]) for r in cur.fetchall()]
    if bank.file_format is FileFormat.ACHP01:
        return ach.write_achp01(batch, payments, extensions=bank.big5_extensions)
    return ach.write_csv(batch, payments, bank.encoding, extensions=bank.big5_extensions)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archive_key(bank_id: str, day: dt.date, name: str) -> str:
    return f"bank-payments/{bank_id}/{day.isoformat()}/{name}.pgp"


def _archive_new(client: AwsClient, bucket: str, key: str, data: bytes) -> str:
    """Archive ``data`` under ``key`` without ever replacing what is there (a conditional write): a
    file of the same name archived before (a batch made again after the finance database was
    restored, or a prepare a stopped worker half did) is evidence of what may have been sent, so
    this one goes beside it, its key suffixed with its own sha256. Returns the key written."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        return key
    except Exception as e:
        if not precondition_failed(e):
            raise
    beside = f"{key.removesuffix('.pgp')}.{_sha(data)[:16]}.pgp"
    client.put_object(Bucket=bucket, Key=beside, Body=data)
    log.warning("%s is already archived (another copy of that name): this one is kept beside it as %s", key, beside)
    return beside


def prepare_file(
    conn: Conn, transport: Transport, cfg: BankConfig, bank: Bank, batch_id: int, encrypt: Encrypt | None
) -> tuple[bytes, dict[str, Any]]:
    """The encrypted file of a batch: made, archived and recorded once; later calls read it back."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT file_name, processing_date, payment_count, total_amount, plain_sha256, cipher_sha256,
                      archive_uri FROM pay.batch WHERE id = %s""",
            (batch_id,),
        )
        name, day, count, total, plain_sha, cipher_sha, uri = one(cur)
        info = {"file_name": name, "count": count, "total": int(total), "plain_sha256": plain_sha}
        if uri:
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            data = transport.s3_hook.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
            if _sha(data) != cipher_sha:
                raise TransferError(f"{uri}: archived file does not match its recorded sha256")
            return data, info | {"cipher_sha256": cipher_sha}
        if encrypt is None:
            raise TransferError(f"batch {batch_id} has no archived file and no key to make one")
        plain = build_file(cur, cfg, bank, batch_id)
    cipher, sealed = encrypt(plain, day)  # to the bank's key valid on the processing date, signed with ours
    archive_bucket = transport.archive_bucket
    key = _archive_new(transport.s3_hook.get_conn(), archive_bucket, _archive_key(bank.id, day, name), cipher)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """UPDATE pay.batch SET plain_sha256 = %s, plain_bytes = %s, cipher_sha256 = %s, cipher_bytes = %s,
                   archive_uri = %s, encrypted_to = %s, signed_with = %s WHERE id = %s AND archive_uri IS NULL""",
            (_sha(plain), len(plain), _sha(cipher), len(cipher), f"s3://{archive_bucket}/{key}",
             sealed["encrypted_to"], sealed["signed_with"], batch_id),
        )  # fmt: skip
    log.info(
        "%s: %s generated (%d bytes, sha256 %s), encrypted to %s and signed with %s (%d bytes), archived",
        bank.id,
        name,
        len(plain),
        _sha(plain)[:12],
        sealed["encrypted_to"],
        sealed["signed_with"],
        len(cipher),
    )
    return cipher, info | {"plain_sha256": _sha(plain), "cipher_sha256": _sha(cipher)}


def deliver_batch(
    conn: Conn,
    *,
    cfg: BankConfig,
    bank_id: str,
    batch_id: int,
    run_id: str,
    transport: Transport,
    encrypt: Encrypt | None,
    now: dt.datetime | None = None,
    from_retry_queue: bool = False,
) -> Delivery:
    """Deliver one batch at most once (``delivery.deliver``: the recorded state machine), its file
    made, encrypted and archived once."""
    bank = cfg.bank(bank_id)
    records = SentRecords(transport.s3_hook.get_conn(), transport.archive_bucket, settings.sent_record_window_days())
    return delivery.deliver(
        conn,
        bank=bank,
        batch_id=batch_id,
        run_id=run_id,
        link=delivery.Link(
            transport.sftp_hook, records, transport.attempts, transport.backoff, bank.upload_check.value
        ),
        prepare=lambda: prepare_file(conn, transport, cfg, bank, batch_id, encrypt),
        now=now,
        from_retry_queue=from_retry_queue,
    )


def pay_bank(
    conn: Conn,
    *,
    cfg: BankConfig,
    bank_id: str,
    now: dt.datetime | None,
    run_id: str,
    transport: Transport,
    encrypt: Encrypt,
    circuit: health.Circuit | None = None,
    made_by: str | None = None,
) -> BankRun:
    """One bank's whole step without a person between: ``prepare_bank`` then ``upload_bank``. A
    batch whose bank asks for approval is made and archived, and waits (``awaiting_approval``): only
    bank_payments' approve step lets it go."""
    result = prepare_bank(
        conn,
        cfg=cfg,
        bank_id=bank_id,
        now=now,
        run_id=run_id,
        transport=transport,
        encrypt=encrypt,
        circuit=circuit,
        made_by=made_by,
    )
    if result.skipped_reason is None:
        result.deliveries += upload_bank(
            conn,
            cfg=cfg,
            bank_id=bank_id,
            now=now,
            run_id=run_id,
            transport=transport,
            encrypt=encrypt,
            exclude={d["batch_id"] for d in result.deliveries},
        )
    return result


def prepare_bank(
    conn: Conn,
    *,
    cfg: BankConfig,
    bank_id: str,
    now: dt.datetime | None,
    run_id: str,
    transport: Transport,
    encrypt: Encrypt,
    circuit: health.Circuit | None = None,
    made_by: str | None = None,
) -> BankRun:
    """Settle what a stopped worker left (delivered if approved, cancelled past its cutoff: its
    payments can then join today's batches), batch what is due, then generate, encrypt and archive
    every batch of the bank not yet archived, once each under the batch's lock. No new batch is
    sent here. Nothing at all while the bank's circuit (bank_health) is not closed."""
    if circuit is not None and not circuit.allows_payments:
        return skip_bank(conn, cfg.bank(bank_id), now or dt.datetime.now(dt.UTC), circuit)
    bank = cfg.bank(bank_id)
    left = upload_bank(conn, cfg=cfg, bank_id=bank_id, now=now, run_id=run_id, transport=transport, encrypt=encrypt)
    result = make_batches(conn, cfg, bank_id, now, run_id, made_by=made_by)
    result.deliveries = [d for d in left if d["outcome"] not in (Outcome.AWAITING_APPROVAL, Outcome.ALREADY_DELIVERED)]
    rows = conn.execute(
        "SELECT id FROM pay.batch WHERE bank = %s AND status = 'batched' AND archive_uri IS NULL ORDER BY id",
        (bank_id,),
    ).fetchall()
    for (batch_id,) in rows:
        with delivery.batch_lock(conn, batch_id) as mine:
            if mine:  # else another run is delivering it, and makes its file itself
                prepare_file(conn, transport, cfg, bank, batch_id, encrypt)
    return result


def upload_bank(
    conn: Conn,
    *,
    cfg: BankConfig,
    bank_id: str,
    now: dt.datetime | None,
    run_id: str,
    transport: Transport,
    encrypt: Encrypt | None,
    exclude: frozenset[int] | set[int] = frozenset(),
) -> list[dict[str, Any]]:
    """Deliver every batch of the bank not yet delivered that may go (approved, or needing no
    approval; ``delivery.deliver``): this run's and those a stopped worker left; a batch past its
    cutoff is cancelled; uncertain ones are reported again, never sent. A cleared green try sends
    nothing and reports what its run delivered."""
    deliveries: list[dict[str, Any]] = []
    seen: set[int] = set(exclude)
    for batch_id in open_batches(conn, bank_id):
        if batch_id in seen:  # reported once per run (an uncertain batch stays open)
            continue
        seen.add(batch_id)
        d = deliver_batch(
            conn,
            cfg=cfg,
            bank_id=bank_id,
            batch_id=batch_id,
            run_id=run_id,
            transport=transport,
            encrypt=encrypt,
            now=now,
        )
        deliveries.append(asdict(d))
    return deliveries + delivered_by_run(conn, bank_id, run_id, exclude=seen)


def delivered_by_run(
    conn: Conn, bank_id: str, run_id: str, exclude: frozenset[int] | set[int] = frozenset()
) -> list[dict[str, Any]]:
    """The batches of this bank an earlier try of the same run delivered, as ``already_delivered``
    deliveries: a cleared green task sends nothing and still reports what its run sent."""
    rows = conn.execute(
        """SELECT DISTINCT ON (t.batch_id) t.batch_id, t.file_name, t.payment_count, t.total_amount, t.attempts,
                  t.bytes, t.finished_at
           FROM pay.transfer t WHERE t.bank = %s AND t.dag_run_id = %s
             AND t.outcome IN ('uploaded', 'already_there', 'confirmed')
           ORDER BY t.batch_id, t.id""",
        (bank_id, run_id),
    ).fetchall()
    out = []
    for batch_id, name, count, total, attempts, size, when in rows:
        if batch_id in exclude:
            continue
        log.info(
            "%s: already delivered by this run: %s (%d payment(s), NTD %s) at %s", bank_id, name, count, total, when
        )
        out.append(
            asdict(
                Delivery(
                    batch_id,
                    name,
                    Outcome.ALREADY_DELIVERED,
                    count,
                    int(total),
                    attempts,
                    f"delivered by an earlier try of this run at {when:%Y-%m-%d %H:%M:%S %Z}",
                    size,
                )
            )
        )
    return out


def skip_bank(conn: Conn, bank: Bank, now: dt.datetime, circuit: health.Circuit) -> BankRun:
    """The bank's circuit is open: batch nothing, send nothing, and say what stays pending."""
    with conn.cursor() as cur:
        day = processing_date(cur, bank, now)
        cur.execute(
            "SELECT count(*) FROM pay.payment WHERE bank = %s AND status = 'pending' AND due_date <= %s", (bank.id, day)
        )
        due = one(cur)[0]
    why = f"{circuit.describe(TAIPEI)}; {due} payment(s) due by {day} stay pending"
    log.warning("skipping %s", why)
    return BankRun(bank.id, processing_date=day.isoformat(), skipped_reason=why, left_pending=due)


# ---------------------------------------------------------------------------- retry queue
def waiting_transfers(conn: Conn, now: dt.datetime, everything: bool = False) -> list[tuple[int, str]]:
    """(batch id, bank) of queued transfers due for another try (all of them with ``everything``),
    and batches a stopped worker left half-sent (``sending``): settled by asking the server."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT b.id, b.bank FROM pay.batch b LEFT JOIN pay.transfer_retry r ON r.batch_id = b.id
               WHERE (b.status = 'queued' AND r.status = 'waiting' AND (%s OR r.next_attempt_at <= %s))
                  OR b.status = 'sending'
               ORDER BY coalesce(r.enqueued_at, b.created_at), b.id""",
            (everything, now),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]


def given_up_past_cutoff(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[tuple[int, str]]:
    """(batch id, bank) of given-up batches (queued, their retry ``gave_up``) whose bank's cutoff has
    passed: nothing of them reached the bank (their record says so), so they are cancelled like
    any queued batch and their payments roll to a later business day. Before the cutoff a given-up
    batch waits on the attention list for a person (re-queue, or let it be cancelled)."""
    rows = conn.execute(
        """SELECT b.id, b.bank, b.processing_date FROM pay.batch b JOIN pay.transfer_retry r ON r.batch_id = b.id
           WHERE b.status = 'queued' AND r.status = 'gave_up' ORDER BY b.id"""
    ).fetchall()
    configured = cfg.banks
    return [
        (batch_id, bank_id)
        for batch_id, bank_id, day in rows
        if bank_id in configured and now >= delivery.cutoff(configured[bank_id], day)
    ]


def retry_queue(conn: Conn) -> list[tuple[str, int, dt.datetime]]:
    """(bank, transfers waiting, oldest enqueued) of the retry queue, largest first."""
    return conn.execute(
        """SELECT b.bank, count(*), min(r.enqueued_at) FROM pay.transfer_retry r JOIN pay.batch b ON b.id = r.batch_id
           WHERE r.status = 'waiting' GROUP BY b.bank ORDER BY count(*) DESC, b.bank"""
    ).fetchall()


def retry_queue_alert(queue: list[tuple[str, int, dt.datetime]], limit: int) -> Email | None:
    """The alert when the queue holds more than ``limit`` transfers, else None."""
    from finflows.emails import Email

    total = sum(n for _bank, n, _oldest in queue)
    if total <= limit:
        return None
    lines = [
        f"{total} bank transfers are waiting in the retry queue (the alert is set above {limit}): "
        "payments are not reaching the banks."
    ]
    lines += [
        f"{bank}: {n} waiting, the oldest since {oldest.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei"
        for bank, n, oldest in queue
    ]
    lines.append(
        "Next step: check each bank's SFTP health (bank_health, the finance monitor) and the last "
        "errors in pay.transfer_retry; bank_transfer_retry tries the queue hourly and cancels a "
        "batch after its bank's cutoff, putting its payments on the next business day."
    )
    return Email(f"[finflows] bank transfer retry queue: {total} waiting (alert above {limit})", tuple(lines))


def retry_one(
    conn: Conn,
    *,
    cfg: BankConfig,
    batch_id: int,
    bank_id: str,
    now: dt.datetime,
    run_id: str,
    transport: Transport,
    limit: int,
    circuit: health.Circuit | None = None,
) -> Delivery:
    """Deliver a queued batch from its archived bytes (or settle one a stopped worker left half-sent),
    unless its bank's cutoff for it has passed: then it is cancelled where its record proves nothing
    reached the bank, and uncertain otherwise. While the bank's circuit is open it waits (no attempt
    counted)."""
    bank = cfg.bank(bank_id)
    row = one(
        conn.execute(
            "SELECT b.file_name, b.processing_date, coalesce(r.attempts, 0) FROM pay.batch b "
            "LEFT JOIN pay.transfer_retry r ON r.batch_id = b.id WHERE b.id = %s",
            (batch_id,),
        )
    )
    name, day, tried = row
    if circuit is not None and not circuit.allows_payments and now < delivery.cutoff(bank, day):
        return Delivery(batch_id, name, Outcome.SKIPPED, error=circuit.describe(TAIPEI))
    d = deliver_batch(
        conn,
        cfg=cfg,
        bank_id=bank_id,
        batch_id=batch_id,
        run_id=run_id,
        transport=transport,
        encrypt=None,  # a queued batch is delivered from its archived bytes, never made again
        now=now,
        from_retry_queue=True,
    )
    if d.outcome == Outcome.QUEUED and tried + 1 >= limit:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "UPDATE pay.transfer_retry SET status = 'gave_up', updated_at = now() WHERE batch_id = %s", (batch_id,)
            )
        d.outcome = Outcome.GAVE_UP
    return d


def summary(runs: Sequence[dict[str, Any]], subject_prefix: str = "[finflows] bank payments") -> tuple[str, str]:
    """Subject and HTML body of the treasury email."""
    import html

    files = [d for r in runs for d in r["deliveries"] if d["outcome"] in DELIVERED]
    problems = [p for r in runs for p in BankRun(**r).problems]
    skipped = [r for r in runs if r.get("skipped_reason")]
    count = sum(d["payment_count"] for d in files)
    total = sum(d["total_amount"] for d in files)
    state = "PROBLEMS" if problems or skipped else "OK"
    subject = f"{subject_prefix} {state}: {len(files)} file(s), {count} payment(s), NTD {total:,}"
    rows = "".join(
        f"<tr><td>{html.escape(r['bank'])}</td><td>{r.get('processing_date') or ''}</td>"
        f"<td>{html.escape(d['file_name'])}</td><td>{d['outcome']}</td><td align=right>{d['payment_count']}</td>"
        f"<td align=right>{d['total_amount']:,}</td></tr>"
        for r in runs
        for d in r["deliveries"]
    )
    body = (
        f"<p>{len(files)} file(s) delivered: {count} payment(s), NTD {total:,}.</p>"
        "<table border=1 cellpadding=4><tr><th>bank</th><th>processing date</th><th>file</th><th>outcome</th>"
        f"<th>payments</th><th>NTD</th></tr>{rows}</table>"
    )
    if skipped:
        body += (
            "<p><b>Banks skipped:</b></p><ul>"
            + "".join(f"<li>{html.escape(r['bank'])}: {html.escape(r['skipped_reason'])}</li>" for r in skipped)
            + "</ul>"
        )
    if problems:
        body += "<p><b>Needs attention:</b></p><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>"
    return subject, body
