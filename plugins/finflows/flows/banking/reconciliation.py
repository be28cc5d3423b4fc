"""bank_reconciliation: bank return files (ACHR01 or CSV) → settled / returned payments.

Per bank: list the download directory for the bank's reconciliation pattern, download each file
not yet seen (``ops.file_control``: flow ``bank_reconciliation``, name ``<bank>/<file>``, sha256),
decrypt it with our key and **verify the bank's signature** (unsigned, badly signed, signed by
another key, or not for our key → quarantined and alerted, never applied), parse it, and apply it
in **one transaction**: each line is matched to its payment by the original presenting date and
sequence (PDATE, PSEQ) and checked against our reference,
the amount and account we sent; a match settles the payment (the bank's success code, or blank in
the CSV variant) or returns it with the reason code and its meaning; anything else is recorded as unmatched, mismatched or a duplicate in
``pay.return_line``. A truncated or malformed file applies nothing. The encrypted original is
archived to S3 (``bank-reconciliation/…``, or ``…/quarantine/…`` with an error report).

No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from finflows import files
from finflows.errors import FinflowsError
from finflows.flows.banking import audit
from finflows.flows.banking.banks import Bank, FileFormat
from finflows.flows.banking.states import PaymentStatus, ReturnFile, ReturnLine
from finflows.formats import ach, tch
from finflows.formats.fixedwidth import FieldError, FormatError
from finflows.pgp import PgpError
from finflows.seams import Conn, Cur, S3Hook, Sftp, one
from finflows.settings import TAIPEI, Limit

log = logging.getLogger(__name__)

FLOW = "bank_reconciliation"
MISMATCH_ALERT_RATE = 0.05  # a batch whose mismatched lines exceed 5% of its payments alerts
# open(file bytes, the file's day) → (plaintext, the fingerprint whose signature it carries): common.decrypter
Decrypt = Callable[[bytes, dt.date], tuple[bytes, str]]


class ReaderStopped(FinflowsError, RuntimeError):
    """A file an earlier run started to read and never finished: it is quarantined, not read again."""


@dataclass
class FileOutcome:
    bank: str
    file_name: str
    outcome: ReturnFile
    settled: int = 0
    returned: int = 0
    unmatched: int = 0
    mismatch: int = 0
    duplicate: int = 0
    error: str | None = None
    alerts: list[str] = field(default_factory=list)
    bytes: int = 0


def read_bounded(sftp: Sftp, path: str, limit: Limit) -> bytes:
    """The remote file's bytes, read in chunks; :class:`files.FileTooLarge` (without reading it) when the
    server says it is over ``limit``, or as soon as more than ``limit`` bytes arrive (the only
    bound where the server refuses ``stat``)."""
    try:
        st = sftp.stat(path)
        size, mtime = st.st_size, st.st_mtime
    except PermissionError:
        size = mtime = None
    if size is not None and size > limit.bytes:
        raise files.FileTooLarge(path, size, limit, mtime)
    out = bytearray()
    with sftp.open(path, "rb") as f:
        while chunk := f.read(files.CHUNK):
            out += chunk
            if len(out) > limit.bytes:
                raise files.FileTooLarge(path, len(out), limit, mtime)
    return bytes(out)


def reconcile_files(
    conn: Conn,
    sftp: Sftp,
    *,
    bank: Bank,
    decrypt: Decrypt,
    s3_hook: S3Hook,
    archive_bucket: str,
    run_id: str,
    today: dt.date,
    host_key: str | None = None,
) -> list[FileOutcome]:
    """Every new return file of the bank, each on its own: one that cannot be read in any way is
    quarantined and the others still go through. ``host_key``: the key the server showed."""
    from finflows import settings

    names = candidates(sftp, bank)
    log.info("%s: %d file(s) match %s in %s", bank.id, len(names), bank.reconciliation_file_pattern, bank.download_path)
    out = []
    for name in names:
        path = f"{bank.download_path.rstrip('/')}/{name}"
        try:
            data = read_bounded(sftp, path, settings.intake_limit("BANK_FILE"))
        except files.FileTooLarge as e:
            out.append(refuse_unread(conn, bank=bank, name=name, identity=e.identity, error=str(e), run_id=run_id))
            continue
        out.append(
            process_file(
                conn,
                bank=bank,
                name=name,
                data=data,
                decrypt=decrypt,
                s3_hook=s3_hook,
                archive_bucket=archive_bucket,
                run_id=run_id,
                today=today,
                host_key=host_key,
            )
        )
    return out


def refuse_unread(conn: Conn, *, bank: Bank, name: str, identity: str, error: str, run_id: str) -> FileOutcome:
    """A file refused without reading it (too large): recorded ERROR under the identity its size and
    time give it, so the next run skips it; it stays on the bank's server for a person."""
    key = f"{bank.id}/{name}"
    with conn.transaction(), conn.cursor() as cur:
        control = files.lock_and_read(cur, FLOW, key)
    if control.sha256 == identity and control.status == files.ControlStatus.ERROR:
        return FileOutcome(bank.id, name, ReturnFile.SEEN)
    files.record_error(conn, FLOW, key, identity, f"sftp:{bank.id}/{name}", error, run_id)
    log.error("%s refused unread: %s", key, error)
    return FileOutcome(bank.id, name, ReturnFile.QUARANTINED, error=error, alerts=[f"{key}: {error}"])


def candidates(sftp: Sftp, bank: Bank) -> list[str]:
    """File names in the bank's download directory that match its reconciliation pattern."""
    rx = bank.reconciliation_regex()
    return sorted(n for n in sftp.listdir(bank.download_path) if rx.fullmatch(n))


def _lines(bank: Bank, plain: bytes, name: str) -> list[dict[str, Any]]:
    """Every return line as {line, reference, amount, account, unit, original_date, original_seq,
    reason}; raises FormatError. In an ACHR01 the sides are swapped against the ACHP01 it answers:
    PBANK/PCLNO hold the payee's unit and account, RBANK/RCLNO ours."""
    if bank.file_format is FileFormat.ACHP01:
        parsed = ach.read_ach(plain, name, "ACHR01", success_codes=bank.paid_codes)
        return [
            {
                "line": d["line"],
                "reference": d["customer_number"],
                "amount": d["amount"],
                "account": d["presenting_account"],
                "unit": d["presenting_bank"],
                "original_date": d["original_date"],
                "original_seq": int(d["original_seq"]),
                "reason": d["return_reason"],
            }
            for d in parsed.details
        ]
    rows = ach.read_csv(plain, name, bank.encoding, ach.RETURN_CSV_COLUMNS)
    out, errors = [], []
    for r in rows:
        line = {
            "line": r["line"],
            "reference": r["reference"],
            "account": r["payee_account"],
            "unit": None,
            "reason": r["return_reason"].strip(),
        }
        try:
            amount = Decimal(r["amount"])
            if not amount.is_finite() or amount < 0:
                raise ArithmeticError
            line["amount"] = amount
        except ArithmeticError:
            errors.append(FieldError(r["line"], "amount", r["amount"], "is not an amount in NTD"))
        try:
            line["original_date"] = dt.date.fromisoformat(r["original_date"])
        except ValueError:
            errors.append(
                FieldError(r["line"], "original_date", r["original_date"], "is not a date (expected YYYY-MM-DD)")
            )
        if r["original_seq"].isascii() and r["original_seq"].isdigit():
            line["original_seq"] = int(r["original_seq"])
        else:
            errors.append(FieldError(r["line"], "original_seq", r["original_seq"], "is not a sequence number"))
        reason = line["reason"]
        if reason and reason not in bank.paid_codes and (problem := tch.return_problem(reason)):
            errors.append(FieldError(r["line"], "return_reason", reason, problem))
        out.append(line)
    if errors:
        raise FormatError(name, errors)
    return out


class Presented(NamedTuple):
    """Our payment as a return line finds it (``pay.payment``, read by name)."""

    id: int
    batch_id: int
    status: PaymentStatus
    amount: Decimal
    payee_account: str
    reference: str
    payee_bank: str


def _match(cur: Cur, bank: Bank, ln: dict[str, Any]) -> tuple[Presented | None, str, str | None]:
    """The payment a return line answers, found by the original presenting date and sequence
    (PDATE, PSEQ), then checked against our reference, the amount and the payee's account.
    Returns (our payment or None, outcome, detail)."""
    cur.execute(
        "SELECT id, batch_id, status, amount, payee_account, reference, payee_bank FROM pay.payment "
        "WHERE bank = %s AND value_date = %s AND seq = %s FOR UPDATE",
        (bank.id, ln["original_date"], ln["original_seq"]),
    )
    found = cur.fetchone()
    where = f"{ln['original_date']} #{ln['original_seq']}"
    if found is None:
        return None, ReturnLine.UNMATCHED, f"no payment of ours was presented at this bank as {where}"
    row = Presented(*found)
    status, amount, account, reference = row.status, row.amount, row.payee_account, row.reference
    named = ach.customer_number(reference) if bank.file_format is FileFormat.ACHP01 else reference  # what we wrote
    if ln["reference"] and ln["reference"] != named:
        return row, ReturnLine.MISMATCH, f"{where} is our payment {reference}, the bank names {ln['reference']}"
    if Decimal(amount) != Decimal(ln["amount"]) or account.lstrip("0") != str(ln["account"]).lstrip("0"):
        return (
            row,
            ReturnLine.MISMATCH,
            (f"bank says NTD {ln['amount']} to …{str(ln['account'])[-4:]}, we sent NTD {amount} to …{account[-4:]}"),
        )
    if status != PaymentStatus.UPLOADED:
        return row, ReturnLine.DUPLICATE, f"payment is already {status}"
    paid = not ln["reason"] or ln["reason"] in bank.paid_codes
    return row, ReturnLine.SETTLED if paid else ReturnLine.RETURNED, None


def _apply(cur: Cur, file_id: int, bank: Bank, lines: list[dict[str, Any]], run_id: str) -> FileOutcome:
    out = FileOutcome(bank.id, "", ReturnFile.APPLIED)
    cur.execute("SELECT set_config('finflows.run_id', %s, true)", (run_id,))  # the reason: per line, below
    for ln in lines:
        row, outcome, detail = _match(cur, bank, ln)
        payment_id, batch_id = (row.id, row.batch_id) if row else (None, None)
        meaning = tch.describe_return(ln["reason"]) if ln["reason"] not in bank.paid_codes else None
        if outcome in (ReturnLine.SETTLED, ReturnLine.RETURNED):
            why = "settled by the bank" if outcome == ReturnLine.SETTLED else f"returned: {meaning}"
            audit.who(cur, run_id, why)
            cur.execute(
                "UPDATE pay.payment SET status = %s, return_reason = %s WHERE id = %s",
                (outcome, None if outcome == ReturnLine.SETTLED else ln["reason"], payment_id),
            )
        cur.execute(
            """INSERT INTO pay.return_line (file_id, bank, line, reference, payment_id, batch_id, outcome,
                                            return_reason, return_meaning, amount, detail, original_date,
                                            original_seq)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                file_id,
                bank.id,
                ln["line"],
                ln["reference"] or (row.reference if row else None),
                payment_id,
                batch_id,
                outcome,
                ln["reason"] or None,
                meaning or None,
                ln["amount"],
                detail,
                ln["original_date"],
                ln["original_seq"],
            ),
        )
        setattr(out, outcome, getattr(out, outcome) + 1)
        if outcome == ReturnLine.RETURNED:
            out.alerts.append(f"{row.reference if row else ln['reference']} returned by {bank.id}: {meaning}")
    # per batch: mismatches over 5% of its payments alert
    cur.execute(
        """SELECT b.file_name, b.payment_count, count(*) FILTER (WHERE r.outcome = 'mismatch')
           FROM pay.return_line r JOIN pay.batch b ON b.id = r.batch_id WHERE r.file_id = %s
           GROUP BY b.file_name, b.payment_count""",
        (file_id,),
    )
    for batch_file, count, mismatched in cur.fetchall():
        if mismatched and mismatched / count > MISMATCH_ALERT_RATE:
            out.alerts.append(f"{batch_file}: {mismatched} of {count} payment(s) mismatched ({mismatched / count:.0%})")
    if out.unmatched:
        out.alerts.append(f"{out.unmatched} return line(s) match no payment")
    return out


def settle_unreturned(conn: Conn, bank: Bank, today: dt.date, run_id: str) -> list[str]:
    """For a bank whose return files list only returned items (no ``success_code``): payments still
    uploaded once ``return_window_days`` business days have passed since their processing date
    settle. Returns the references settled. A bank that lists paid items settles nothing here."""
    if bank.success_code:
        return []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT value_date FROM pay.payment WHERE bank = %s AND status = 'uploaded' ORDER BY 1",
            (bank.id,),
        )
        due = []
        for (day,) in cur.fetchall():
            end = day
            for _ in range(bank.return_window_days):
                cur.execute("SELECT pay.next_business_day(%s)", (end,))
                end = one(cur)[0]
            if today > end:
                due.append(day)
        if not due:
            return []
        why = f"settled: no return within {bank.return_window_days} business day(s)"
        audit.who(cur, run_id, why)
        cur.execute(
            "UPDATE pay.payment SET status = 'settled' WHERE bank = %s AND status = 'uploaded' "
            "AND value_date = ANY(%s) RETURNING reference",
            (bank.id, due),
        )
        refs = sorted(r[0] for r in cur.fetchall())
    log.info(
        "%s: %d payment(s) settled, no return within %d business day(s)", bank.id, len(refs), bank.return_window_days
    )
    return refs


def _begin_reading(conn: Conn, key: str, sha: str, run_id: str) -> bool | None:
    """None when this file (name and content) was applied or quarantined before; True when a run
    died reading it (a READING with no READ after it: memory, time), which is never tried again;
    False for a file to read, after recording that its reading begins."""
    with conn.transaction(), conn.cursor() as cur:
        control = files.lock_and_read(cur, FLOW, key)
        if control.sha256 == sha and control.status in (files.ControlStatus.SUCCESS, files.ControlStatus.ERROR):
            return None
        cur.execute(
            """SELECT event FROM ops.file_event WHERE flow = %s AND file_name = %s AND sha256 = %s
                 AND event IN (%s, %s) ORDER BY id DESC LIMIT 1""",
            (FLOW, key, sha, files.FileEvent.READING, files.FileEvent.READ),
        )
        stopped = (cur.fetchone() or [None])[0] == files.FileEvent.READING
        if not stopped:
            files.record_event(cur, FLOW, key, sha, files.FileEvent.READING, "", run_id)
    return bool(stopped)


def file_day(bank: Bank, name: str) -> dt.date | None:
    """The day a return file's name carries (its pattern's ``{YYYYMMDD}``), or None."""
    import re

    pattern = bank.reconciliation_regex().pattern.replace("[0-9]{8}", "([0-9]{8})", 1)
    m = re.fullmatch(pattern, name)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)[:4]), int(m.group(1)[4:6]), int(m.group(1)[6:]))
    except ValueError:
        return None


def process_file(
    conn: Conn,
    *,
    bank: Bank,
    name: str,
    data: bytes,
    decrypt: Decrypt,
    s3_hook: S3Hook,
    archive_bucket: str,
    run_id: str,
    today: dt.date,
    host_key: str | None = None,
) -> FileOutcome:
    key = f"{bank.id}/{name}"
    sha = hashlib.sha256(data).hexdigest()
    stopped = _begin_reading(conn, key, sha, run_id)
    if stopped is None:
        return FileOutcome(bank.id, name, ReturnFile.SEEN)
    try:
        if stopped:
            raise ReaderStopped(
                "a run stopped while decrypting or reading this file (its worker was killed: out of memory or "
                "time?); it is not read again"
            )
        plain, signer = decrypt(data, file_day(bank, name) or today)  # any of the bank's keys valid that day
        lines = _lines(bank, plain, name)
    except Exception as e:  # any way a file breaks a reader: quarantined, never retried in a loop
        why = str(e) if isinstance(e, (PgpError, FormatError, ReaderStopped)) else f"{type(e).__name__}: {e}"
        error = f"{key}: {why}"[:4000]
        report = {"file": key, "sha256": sha, "run_id": run_id, "error": why[:4000]}
        if isinstance(e, FormatError):
            report |= e.report()
        archive = files.quarantine_copy(
            s3_hook, archive_bucket, f"bank-reconciliation/quarantine/{bank.id}/{name}", data, report
        )
        files.record_error(conn, FLOW, key, sha, f"s3://{archive_bucket}/{archive}", error, run_id)
        log.error("%s quarantined (nothing applied): %s", key, why)
        return FileOutcome(bank.id, name, ReturnFile.QUARANTINED, error=error, alerts=[error])
    with conn.transaction(), conn.cursor() as cur:
        files.record_event(cur, FLOW, key, sha, files.FileEvent.READ, f"{len(lines)} line(s)", run_id)
    archive = f"bank-reconciliation/{bank.id}/{today.isoformat()}/{name}"
    with conn.transaction(), conn.cursor() as cur:
        files.lock_and_read(cur, FLOW, key)
        file_id = files.start_control(cur, FLOW, key, sha, f"s3://{archive_bucket}/{archive}", run_id)
        cur.execute(
            "UPDATE ops.file_control SET verified_with = %s, host_key = %s WHERE id = %s", (signer, host_key, file_id)
        )
        out = _apply(cur, file_id, bank, lines, run_id)
        files.finish_control(cur, file_id, len(lines), len(lines), sum((ln["amount"] for ln in lines), Decimal(0)))
        files.record_event(
            cur, FLOW, key, sha, files.FileEvent.APPLIED, json.dumps(asdict(out) | {"alerts": None}), run_id
        )
    s3_hook.get_conn().put_object(Bucket=archive_bucket, Key=archive, Body=data)
    out.file_name, out.bytes = name, len(data)
    log.info(
        "%s: %d settled, %d returned, %d unmatched, %d mismatched, %d duplicate",
        key,
        out.settled,
        out.returned,
        out.unmatched,
        out.mismatch,
        out.duplicate,
    )
    return out


def unreconciled_batches(conn: Conn, now: dt.datetime, close: dt.time) -> list[str]:
    """Uploaded batches with payments still unanswered after their business day closed; each is
    returned (and marked) once, so the alert goes out once."""

    local = now.astimezone(TAIPEI)
    last_closed = local.date() if local.time() >= close else local.date() - dt.timedelta(days=1)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """UPDATE pay.batch b SET unreconciled_alerted_at = now()
               WHERE b.status = 'uploaded' AND b.processing_date <= %s AND b.unreconciled_alerted_at IS NULL
                 AND EXISTS (SELECT 1 FROM pay.payment p WHERE p.batch_id = b.id AND p.status = 'uploaded')
               RETURNING b.bank, b.file_name, b.processing_date""",
            (last_closed,),
        )
        return [
            f"{bank}: {name} (processing date {day}) has no reconciliation yet" for bank, name, day in cur.fetchall()
        ]
