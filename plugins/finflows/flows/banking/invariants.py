"""The money invariants, stated once and checked always; what breaks one goes on the attention list.

Each invariant has a name, a sentence and a check. A check yields what it finds as
:class:`Finding` rows (what, which batch or payment, the next step and its deadline: references
and amounts only, never a payee). ``check`` runs the cheap ones (SQL over what is live, indexed:
bank_health, every run) or all of them (``everything``: the daily report and the command line,
which also read the archive bucket). ``sync`` puts the findings on ``pay.attention``, the list the
finance monitor and the daily report show until a person resolves each row: a new finding is a
new row (and an alert), one found again is kept up to date, one no longer found is marked
*cleared* but stays until a person resolves it. A person's decision on the thing itself (an
uncertain delivery decided, a given-up batch re-queued) resolves its rows, with who and when.

``python -m finflows.flows.banking.invariants check [--all]`` runs them on demand: exit status 0
when nothing is found, 1 when anything is (for scripts), 2 when the check could not run.

No Airflow import at module level: the command line and the tasks pass a connection (and, for
``everything``, the archive's S3 client and our key).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finflows.flows.banking import delivery
from finflows.flows.banking.banks import BankConfig
from finflows.flows.banking.states import APPROVAL_REFUSED, STILL_TO_SEND, BatchStatus, Retry
from finflows.seams import Conn, OpenOwn, S3Hook, one
from finflows.settings import TAIPEI

if TYPE_CHECKING:
    from finflows.emails import Email
    from finflows.flows.banking.sent_records import Record, SentRecords


log = logging.getLogger(__name__)

# how long past a bank's cutoff a batch may stay unsent and uncancelled before nobody is acting on it
# (bank_transfer_retry runs hourly and cancels it; bank_payments' next run does too)
STALE_AFTER_CUTOFF = dt.timedelta(hours=2)
WINDOW_DAYS = 14  # how far back the checks look at final batches (the live ones are always checked)


@dataclass(frozen=True)
class Finding:
    """One thing an invariant found, as a person reads it on the attention list."""

    kind: str  # the invariant's name
    subject: str  # "batch 12 MEGA…", "payment P-1", "record …": what the row is about
    what: str
    next_step: str
    bank: str | None = None
    batch_id: int | None = None
    deadline: dt.datetime | None = None


@dataclass(frozen=True)
class Invariant:
    name: str
    sentence: str
    cheap: bool  # SQL over live, indexed rows: run by bank_health every time


INVARIANTS = (
    Invariant(
        "payment_in_one_place",
        "Every payment is pending (eligible, or held with its reason), in exactly one live batch, or final: "
        "a batch's payments are batched while it is live, uploaded (or later) once it is, and none is left "
        "in a cancelled batch.",
        cheap=True,
    ),
    Invariant(
        "batch_totals",
        "The payment count and total of every batch equal those of its payments.",
        cheap=True,
    ),
    Invariant(
        "next_actor",
        "Every batch that is not final has a next actor (a task that will run, or a person on this list) "
        "and a deadline: uncertain deliveries and given-up transfers wait for a person; nothing stays unsent "
        "and uncancelled past its bank's cutoff.",
        cheap=True,
    ),
    Invariant(
        "four_eyes",
        "No batch is approved, and no money decision (approval, delivery decision, re-queue, held duplicate) "
        "is taken, by the person who made it.",
        cheap=True,
    ),
    Invariant(
        "send_record_known",
        "Every write-once send record in the archive (a file that may have reached its bank) is known to the "
        "finance database: its batch delivered, uncertain or being sent under that attempt.",
        cheap=False,
    ),
    Invariant(
        "archive_opens",
        "Every payment file we made that was or may have been sent (uploaded, uncertain, queued, cancelled "
        "after an attempt) has an archived copy that matches its sha256 and opens with our key to exactly "
        "the plaintext we recorded.",
        cheap=False,
    ),
)
BY_NAME = {i.name: i for i in INVARIANTS}


def _batch_subject(batch_id: int, file_name: str) -> str:
    return f"batch {batch_id} {file_name}"


# ---------------------------------------------------------------------------- the SQL checks
def _payment_in_one_place(conn: Conn, now: dt.datetime, cfg: BankConfig) -> list[Finding]:
    rows = conn.execute(
        """SELECT b.id, b.bank, b.file_name, b.status,
                  count(*) FILTER (WHERE b.status IN ('batched', 'sending', 'queued', 'uncertain')
                                   AND p.status <> 'batched'),
                  count(*) FILTER (WHERE b.status = 'uploaded' AND p.status NOT IN ('uploaded', 'settled',
                                                                                     'returned', 'failed')),
                  count(*) FILTER (WHERE b.status IN ('cancelled', 'failed') AND p.status = 'batched'),
                  string_agg(p.reference, ', ' ORDER BY p.seq) FILTER (WHERE
                      (b.status IN ('batched', 'sending', 'queued', 'uncertain') AND p.status <> 'batched')
                   OR (b.status = 'uploaded' AND p.status NOT IN ('uploaded', 'settled', 'returned', 'failed'))
                   OR (b.status IN ('cancelled', 'failed') AND p.status = 'batched'))
           FROM pay.batch b JOIN pay.payment p ON p.batch_id = b.id
           WHERE b.status IN ('batched', 'sending', 'queued', 'uncertain') OR b.created_at >= %s
           GROUP BY b.id HAVING count(*) FILTER (WHERE
                      (b.status IN ('batched', 'sending', 'queued', 'uncertain') AND p.status <> 'batched')
                   OR (b.status = 'uploaded' AND p.status NOT IN ('uploaded', 'settled', 'returned', 'failed'))
                   OR (b.status IN ('cancelled', 'failed') AND p.status = 'batched')) > 0
           ORDER BY b.id""",
        (now - dt.timedelta(days=WINDOW_DAYS),),
    ).fetchall()
    return [
        Finding(
            "payment_in_one_place",
            _batch_subject(bid, name),
            f"{bank}: batch {bid} {name} is {status} but payment(s) {refs[:300]} are not in the state that goes "
            "with it",
            "operations: read pay.batch_event and pay.payment_event for what moved one without the other; "
            "treasury: do not re-send or cancel anything until it is explained",
            bank,
            bid,
        )
        for bid, bank, name, status, _live, _up, _cancelled, refs in rows
    ]


def _batch_totals(conn: Conn, now: dt.datetime, cfg: BankConfig) -> list[Finding]:
    rows = conn.execute(
        """SELECT b.id, b.bank, b.file_name, b.payment_count, b.total_amount, count(p.id), coalesce(sum(p.amount), 0)
           FROM pay.batch b LEFT JOIN pay.payment p ON p.batch_id = b.id
           WHERE b.status IN ('batched', 'sending', 'queued', 'uncertain')
              OR (b.status = 'uploaded' AND b.created_at >= %s)
           GROUP BY b.id HAVING count(p.id) <> b.payment_count OR coalesce(sum(p.amount), 0) <> b.total_amount
           ORDER BY b.id""",
        (now - dt.timedelta(days=WINDOW_DAYS),),
    ).fetchall()
    return [
        Finding(
            "batch_totals",
            _batch_subject(bid, name),
            f"{bank}: batch {bid} {name} says {count} payment(s), NTD {int(total):,}; its payments are "
            f"{n} payment(s), NTD {int(s):,}",
            "operations: the file sent (or to be sent) does not match the payments: stop and compare the archived "
            "file with pay.payment before anything else is decided",
            bank,
            bid,
        )
        for bid, bank, name, count, total, n, s in rows
    ]


def _next_actor(conn: Conn, now: dt.datetime, cfg: BankConfig) -> list[Finding]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT b.id, b.bank, b.file_name, b.status, b.send_step, b.processing_date, b.payment_count,
                      b.total_amount, b.approval, b.uncertain_reason, b.uncertain_at, r.status AS retry,
                      r.last_error FROM pay.batch b LEFT JOIN pay.transfer_retry r ON r.batch_id = b.id
               WHERE b.status IN ('batched', 'sending', 'queued', 'uncertain') ORDER BY b.id"""
        ).fetchall()
    return [f for row in rows for f in _who_acts_next(row, now, cfg)]


def _who_acts_next(b: dict[str, Any], now: dt.datetime, cfg: BankConfig) -> list[Finding]:
    """What one batch that is not final waits for, when that is a person or nobody."""
    bank_id, status = b["bank"], b["status"]
    bank = cfg.banks.get(bank_id)
    cutoff = delivery.cutoff(bank, b["processing_date"]) if bank else None
    head = f"{bank_id}: {b['file_name']} ({b['payment_count']} payment(s), NTD {int(b['total_amount']):,})"

    def found(kind: str, what: str, next_step: str, deadline: dt.datetime | None = None) -> Finding:
        return Finding(kind, _batch_subject(b["id"], b["file_name"]), what, next_step, bank_id, b["id"], deadline)

    out = []
    why = b["uncertain_reason"] or ""
    if status == BatchStatus.UNCERTAIN:
        since = (b["uncertain_at"] or now).astimezone(TAIPEI)
        out.append(found(
            "sent_record" if why.startswith("sent according to the archive record") else "uncertain",
            f"{head} is UNCERTAIN since {since:%Y-%m-%d %H:%M} Asia/Taipei: {why}",
            "treasury (not the batch's maker): ask the bank whether it has the file, then decide in "
            "Browse → Required Actions (treasury_decisions): the bank has it, or resend. Nothing resends it until then.",
        ))  # fmt: skip
    elif status == BatchStatus.QUEUED and b["retry"] == Retry.GAVE_UP:
        out.append(found(
            "given_up",
            f"{head} was given up, not delivered: {(b['last_error'] or '')[:400]}",
            "operations: fix the cause (the account's rights, the bank's upload_check), then a person other than "
            "its maker re-queues or cancels it in Browse → Required Actions; otherwise bank_transfer_retry cancels it after the "
            "cutoff and its payments roll to the next business day",
            cutoff,
        ))  # fmt: skip
    elif status == BatchStatus.QUEUED and b["retry"] != Retry.WAITING:
        out.append(found(
            "next_actor",
            f"{head} is queued but not in the retry queue (retry: {b['retry'] or 'none'}): no task will send or "
            "cancel it",
            "operations: find why (pay.batch_event); a person re-queues it or it must be cancelled",
            cutoff,
        ))  # fmt: skip
    elif status == BatchStatus.BATCHED and b["approval"] in APPROVAL_REFUSED:
        out.append(found(
            "next_actor",
            f"{head} is batched with its approval {b['approval']}: nothing sends or cancels it",
            "operations: it should have been cancelled with the refusal; cancel it so its payments roll on",
        ))  # fmt: skip
    if cutoff is not None and status in STILL_TO_SEND and now >= cutoff + STALE_AFTER_CUTOFF:
        step = f"/{b['send_step']}" if b["send_step"] else ""
        out.append(found(
            "past_cutoff",
            f"{head} is still {status}{step} {(now - cutoff) // dt.timedelta(minutes=1)} minutes after its cutoff "
            f"{cutoff:%Y-%m-%d %H:%M} Asia/Taipei: nothing has cancelled it",
            "operations: is bank_transfer_retry running? its next run cancels it (or settles a half-sent one by "
            "asking the server); treasury: its payments are not paid today",
            cutoff,
        ))  # fmt: skip
    return out


def _four_eyes(conn: Conn, now: dt.datetime, cfg: BankConfig) -> list[Finding]:
    since = now - dt.timedelta(days=WINDOW_DAYS)
    rows = conn.execute(
        """SELECT 'batch ' || b.id || ' ' || b.file_name, b.bank, b.id,
                  format('%%s approved their own batch', b.made_by)
           FROM pay.batch b WHERE b.made_by IS NOT NULL AND b.approval_by = b.made_by
             AND (b.created_at >= %(since)s OR b.status IN ('batched', 'sending', 'queued', 'uncertain'))
           UNION ALL
           SELECT 'batch ' || b.id || ' ' || b.file_name, b.bank, b.id,
                  format('%%s decided about their own batch: %%s', e.decided_by, left(coalesce(e.detail, ''), 200))
           FROM pay.batch b JOIN pay.batch_event e ON e.batch_id = b.id
           WHERE b.made_by IS NOT NULL AND e.decided_by = b.made_by AND b.created_at >= %(since)s
           UNION ALL
           SELECT 'payment ' || p.reference, p.bank, p.batch_id,
                  format('%%s decided the hold of a payment their own run held (%%s)', p.hold_decided_by, p.hold_decision)
           FROM pay.payment p WHERE p.held_by IS NOT NULL AND p.hold_decided_by = p.held_by
             AND p.hold_decided_at >= %(since)s""",
        {"since": since},
    ).fetchall()
    return [
        Finding(
            "four_eyes",
            subject,
            f"{bank}: {what}: the database refuses this; it can only have been written around the application",
            "the head of treasury: review the decision with a second person and record the review; operations: "
            "find who wrote it (the database's own logs)",
            bank,
            bid,
        )
        for subject, bank, bid, what in rows
    ]


CHEAP_CHECKS: dict[str, Callable[[Any, dt.datetime, BankConfig], list[Finding]]] = {
    "payment_in_one_place": _payment_in_one_place,
    "batch_totals": _batch_totals,
    "next_actor": _next_actor,
    "four_eyes": _four_eyes,
}
# the kinds each check may raise (next_actor also raises the kinds a person works from)
KINDS = {
    "payment_in_one_place": {"payment_in_one_place"},
    "batch_totals": {"batch_totals"},
    "next_actor": {"next_actor", "uncertain", "sent_record", "given_up", "past_cutoff"},
    "four_eyes": {"four_eyes"},
    "send_record_known": {"send_record_known"},
    "archive_opens": {"archive_opens"},
}


# ---------------------------------------------------------------------------- the archive checks
def _record_accounted(conn: Conn, r: Record) -> bool:
    """Whether the database knows of what a send record says may have reached the bank: the batch
    under its name is that batch, at that attempt or later, delivered, uncertain or renaming; or
    every payment it names is final, in an uncertain batch (a person decides), or in a batch a
    person decided to resend after the record was written."""
    row = conn.execute(
        "SELECT id, status, send_step, send_attempt FROM pay.batch WHERE bank = %s AND file_name = %s",
        (r.bank, r.file_name),
    ).fetchone()
    if row is not None:
        batch_id, status, step, attempt = row
        if batch_id == r.batch_id and attempt >= r.attempt:
            if status in (BatchStatus.UPLOADED, BatchStatus.UNCERTAIN):
                return True
            if status == BatchStatus.SENDING and step == "rename":
                return True
    (known,) = one(
        conn.execute(
            """SELECT count(*) FROM pay.payment p LEFT JOIN pay.batch b ON b.id = p.batch_id
           WHERE p.reference = ANY(%s) AND (p.status IN ('uploaded', 'settled', 'returned', 'failed')
                 OR b.status = 'uncertain'
                 OR (b.status IN ('queued', 'sending') AND b.decision = 'resend' AND b.decided_at > %s))""",
            (sorted(r.references), r.written_at),
        )
    )
    return bool(known == len(r.references))


def _send_record_known(
    conn: Conn, now: dt.datetime, cfg: BankConfig, records: SentRecords, days: int | None
) -> list[Finding]:
    """Each send record of the last ``days`` processing days (default: the records' window; a
    restore from an older backup asks for more) against what the database knows."""
    out = []
    today = now.astimezone(TAIPEI).date()
    for bank_id in cfg.banks:
        for r in records.records(bank_id, today + dt.timedelta(days=7), (days or records.window_days) + 7):
            if _record_accounted(conn, r):
                continue
            row = conn.execute(
                "SELECT id, status, send_attempt FROM pay.batch WHERE bank = %s AND file_name = %s",
                (bank_id, r.file_name),
            ).fetchone()
            state = "no batch of that name" if row is None else "batch {}, {}, attempt {}".format(*row)
            out.append(
                Finding(
                    "send_record_known",
                    f"record {r.key}",
                    f"{bank_id}: the archive records {r.describe()} with {len(r.references)} payment(s) as possibly "
                    f"sent; the finance database has {state} and does not account for all of its payments. It was "
                    "restored or failed over past that delivery.",
                    "treasury: ask the bank whether it has the file; the send records stop its payments from going "
                    "again, and any batch holding them becomes uncertain until a person decides. Operations: "
                    "reconcile the database with the archive (README: after a restore)",
                    bank_id,
                    r.batch_id,
                )
            )
    return out


def _archive_opens(conn: Conn, now: dt.datetime, s3_hook: S3Hook, open_own: OpenOwn | None) -> list[Finding]:
    from finflows.flows.banking import daily_report

    rows = conn.execute(
        """SELECT id, bank, file_name, archive_uri, cipher_sha256, plain_sha256 FROM pay.batch
           WHERE archive_uri IS NOT NULL AND (status IN ('uploaded', 'uncertain', 'queued', 'sending')
                 OR (status = 'cancelled' AND send_attempt > 0))
             AND (created_at >= %s OR status IN ('uncertain', 'queued', 'sending'))
           ORDER BY id""",
        (now - dt.timedelta(days=WINDOW_DAYS),),
    ).fetchall()
    files = [
        {"kind": "payment", "bank": bank, "file_name": name, "archive_uri": uri, "sha256": sha, "plain_sha256": plain,
         "batch_id": bid}
        for bid, bank, name, uri, sha, plain in rows
    ]  # fmt: skip
    bad = daily_report.verify_archive(s3_hook, files, open_own)
    by_name = {f"{f['bank']}/{f['file_name']}": f for f in files}
    out = []
    for problem in bad:
        name = problem.split(" (", 1)[0]
        f = by_name.get(name, {})
        out.append(
            Finding(
                "archive_opens",
                f"batch {f.get('batch_id')} {f.get('file_name')}",
                f"{problem}: we cannot prove what we sent",
                "operations: restore the archived copy from the bucket's versions or object lock; treasury: the "
                "bank's copy is the evidence until then",
                f.get("bank"),
                f.get("batch_id"),
            )
        )
    return out


# ---------------------------------------------------------------------------- running them
@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # invariant names run

    @property
    def kinds(self) -> set[str]:
        return set().union(*(KINDS[n] for n in self.checked)) if self.checked else set()

    @property
    def broken(self) -> list[Finding]:
        """Findings that are invariant violations, not the work a person is already shown
        (uncertain deliveries, given-up transfers: on the list by design)."""
        return [f for f in self.findings if f.kind not in ("uncertain", "given_up")]


def check(
    conn: Conn,
    cfg: BankConfig,
    now: dt.datetime | None = None,
    *,
    everything: bool = False,
    records: SentRecords | None = None,
    s3_hook: S3Hook | None = None,
    open_own: OpenOwn | None = None,
    record_days: int | None = None,
) -> Result:
    """Run the cheap invariants, or all of them (``everything``: needs the send ``records``, the
    archive's ``s3_hook`` and ``open_own``, our key's decrypt; ``record_days``: how many processing
    days of send records to read, default the records' window)."""
    now = now or dt.datetime.now(dt.UTC)
    result = Result()
    for name, run in CHEAP_CHECKS.items():
        result.findings += run(conn, now, cfg)
        result.checked.append(name)
    if everything:
        if records is None or s3_hook is None:
            raise ValueError("checking everything needs the send records and the archive")
        result.findings += _send_record_known(conn, now, cfg, records, record_days)
        result.checked.append("send_record_known")
        result.findings += _archive_opens(conn, now, s3_hook, open_own)
        result.checked.append("archive_opens")
    for f in result.findings:
        log.warning("attention [%s] %s: %s", f.kind, f.subject, f.what)
    return result


def sync(conn: Conn, result: Result) -> list[dict[str, Any]]:
    """Put the findings on the attention list; returns the rows raised now (new: to alert)."""
    new = []
    with conn.transaction(), conn.cursor() as cur:
        seen = set()
        for f in result.findings:
            seen.add((f.kind, f.subject))
            cur.execute(
                """INSERT INTO pay.attention (kind, subject, bank, batch_id, what, next_step, deadline)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (kind, subject) WHERE resolved_at IS NULL DO UPDATE
                   SET what = EXCLUDED.what, next_step = EXCLUDED.next_step, deadline = EXCLUDED.deadline,
                       last_seen_at = now(), cleared_at = NULL
                   RETURNING id, (xmax = 0)""",
                (f.kind, f.subject, f.bank, f.batch_id, f.what[:4000], f.next_step[:2000], f.deadline),
            )
            row_id, inserted = one(cur)
            if inserted:
                new.append({"id": row_id, **f.__dict__})
        cur.execute(
            "SELECT id, kind, subject FROM pay.attention WHERE resolved_at IS NULL AND cleared_at IS NULL "
            "AND kind = ANY(%s)",
            (sorted(result.kinds),),
        )
        gone = [r[0] for r in cur.fetchall() if (r[1], r[2]) not in seen]
        if gone:
            cur.execute("UPDATE pay.attention SET cleared_at = now() WHERE id = ANY(%s)", (gone,))
    return new


def resolve(conn: Conn, attention_id: int, *, by: str, note: str) -> dict[str, Any]:
    """A person resolves a row of the attention list, saying how (kept with who and when)."""
    if not by:
        raise ValueError("resolving needs the name of the person")
    if not note.strip():
        raise ValueError("say how it was resolved")
    row = conn.execute(
        """UPDATE pay.attention SET resolved_at = now(), resolved_by = %s, resolution = %s
           WHERE id = %s AND resolved_at IS NULL RETURNING id, kind, subject""",
        (by, note[:2000], attention_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no open attention row {attention_id}")
    log.warning("attention %s [%s] %s resolved by %s: %s", row[0], row[1], row[2], by, note)
    return {"id": row[0], "kind": row[1], "subject": row[2], "resolved_by": by}


def open_rows(conn: Conn) -> list[dict[str, Any]]:
    """The attention list: every row not resolved, oldest first."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT id, kind, subject, bank, batch_id, what, next_step, deadline, raised_at, last_seen_at,
                      cleared_at FROM pay.attention WHERE resolved_at IS NULL ORDER BY raised_at, id"""
        ).fetchall()


def describe(rows: list[dict[str, Any]]) -> list[str]:
    """The attention list in words (an empty list is said, not implied)."""
    if not rows:
        return ["The attention list is empty: every payment is final, pending, or with a task that will move it."]
    out = []
    for r in rows:
        when = f"{r['raised_at'].astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei"
        due = f"; by {r['deadline'].astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei" if r.get("deadline") else ""
        cleared = "; no longer found by the check, a person closes it" if r.get("cleared_at") else ""
        out.append(f"[{r['kind']}] {r['what']} Next: {r['next_step']}{due}. (since {when}{cleared})")
    return out


def alert(new: list[dict[str, Any]]) -> Email | None:
    """The email for rows raised now (what, which, next step), or None."""
    from finflows.emails import Email

    if not new:
        return None
    lines = [f"{len(new)} new item(s) on the finance attention list. Each stays there until a person resolves it."]
    for n in new:
        due = f" By {n['deadline'].astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei." if n.get("deadline") else ""
        lines.append(f"[{n['kind']}] {n['subject']}: {n['what']} Next: {n['next_step']}.{due}")
    kinds = ", ".join(sorted({n["kind"] for n in new}))
    return Email(f"[finflows] ATTENTION: {len(new)} new ({kinds})", tuple(lines))


# ---------------------------------------------------------------------------- on demand
def main(argv: list[str] | None = None) -> int:
    """``check [--all]``: run the invariants against the finance database (the Airflow connection
    ``postgres_finance``), put what they find on the attention list, print it; exit 1 if anything was found."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m finflows.flows.banking.invariants", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run the money invariants")
    c.add_argument("--all", action="store_true", help="also the archive checks (send records, archived copies)")
    c.add_argument("--no-sync", action="store_true", help="print only; do not touch the attention list")
    c.add_argument(
        "--days",
        type=int,
        default=None,
        help="processing days of send records to read with --all (default FINFLOWS_SENT_RECORD_WINDOW_DAYS); "
        "after restoring an older backup, at least the days since it was taken",
    )
    args = parser.parse_args(argv)
    try:
        from finflows import files
        from finflows.flows.banking import banks
        from finflows.task_support import finance_db

        cfg = banks.load()
        with files.connect(finance_db()) as conn:
            extra: dict[str, Any] = {}
            if args.all:
                extra = _archive_access(cfg)
            with extra.pop("_session", _nothing()) as open_own:
                result = check(conn, cfg, everything=args.all, open_own=open_own, record_days=args.days, **extra)
            if not args.no_sync:
                sync(conn, result)
    except Exception as e:  # the check could not run: say so, distinctly from "found something"
        sys.stderr.write(f"invariants: could not check: {type(e).__name__}: {e}\n")
        return 2
    for name in result.checked:
        sys.stdout.write(f"checked {name}: {BY_NAME[name].sentence}\n")
    for f in result.findings:
        sys.stdout.write(f"FOUND [{f.kind}] {f.subject}: {f.what} Next: {f.next_step}\n")
    found = len(result.findings)
    broken, ran = len(result.broken), len(result.checked)
    sys.stdout.write(f"{found} found ({broken} broken invariant(s)) by {ran} checks\n")
    return 1 if result.findings else 0


def _nothing() -> contextlib.nullcontext[None]:
    import contextlib

    return contextlib.nullcontext(None)


def _archive_access(cfg: BankConfig) -> dict[str, Any]:
    from finflows import settings
    from finflows.flows.banking.common import own_decrypter
    from finflows.flows.banking.sent_records import SentRecords
    from finflows.task_support import s3_hook

    hook = s3_hook()
    records = SentRecords(hook.get_conn(), settings.archive_bucket(), settings.sent_record_window_days())
    return {"records": records, "s3_hook": hook, "_session": own_decrypter(cfg)}


if __name__ == "__main__":
    sys.exit(main())
