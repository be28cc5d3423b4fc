"""A second person before a payment file goes out: bank_payments' approve step (maker-checker).

A batch is made with the approval its bank's policy asks for (``banks.yaml`` ``approval``:
``required``, ``{above: N}`` or ``none``; see ``Bank.needs_approval``). The approve step of a run
gathers the bank's batches that wait for one (``request``: they become ``requested``, named by the
asking task) and shows a person what they are about to send: per batch the processing date,
payment count and total, the ten largest payments (reference and amount, never an account), held
possible duplicates, and the time by which the answer must come (the bank's cutoff less a margin,
or sooner). Then:

- ``approve``: the batches the person saw become ``approved`` with who and when; only they (and
  ``not_required`` ones) may ever be sent: the database refuses ``sending`` for any other batch,
  whichever path asks (a run, a re-run, a cleared task, the retry queue, a "resend" decision).
- ``refuse`` (rejected with a reason, or expired unanswered): the batches are cancelled, their
  payments go back to pending and wait for the next business day (``not_before``); treasury is told.

No Airflow import here: the operator (``finflows.operators.approval``) asks through Airflow's
human-in-the-loop API and calls these.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from finflows.flows.banking import audit, delivery
from finflows.flows.banking.banks import Bank
from finflows.flows.banking.states import APPROVAL_REFUSED, Approval
from finflows.seams import Conn
from finflows.settings import TAIPEI

if TYPE_CHECKING:
    from finflows.emails import Email


log = logging.getLogger(__name__)

LARGEST = 10


@dataclass
class Request:
    """What one approval asks about: one bank's batches, as the approver sees them."""

    bank: str
    request_id: str
    batches: list[dict[str, Any]]  # {id, file_name, processing_date, payment_count, total_amount}
    largest: list[dict[str, Any]]  # {reference, amount, file_name}: the ten largest payments
    held: list[dict[str, Any]]  # {reference, amount, reason}: possible duplicates held back, not in any batch
    deadline: dt.datetime  # answer by (UTC); unanswered, the batches are cancelled
    cutoff: dt.datetime  # the bank's cutoff for the earliest processing date (Asia/Taipei)
    makers: frozenset[str] = frozenset()  # the users who made these batches: none of them may answer
    payment_count: int = field(init=False)
    total_amount: int = field(init=False)

    def __post_init__(self) -> None:
        self.payment_count = sum(b["payment_count"] for b in self.batches)
        self.total_amount = sum(b["total_amount"] for b in self.batches)

    @property
    def subject(self) -> str:
        return (
            f"Approve {self.bank} payments: {len(self.batches)} file(s), {self.payment_count} payment(s), "
            f"NTD {self.total_amount:,}, by {self.deadline.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei"
        )

    @property
    def body(self) -> str:
        """Markdown for Airflow's Required Actions page: what will be sent, nothing a payee could be
        recognised by (references and amounts only)."""
        lines = [
            f"**{self.bank}**: {len(self.batches)} payment file(s), {self.payment_count} payment(s), "
            f"**NTD {self.total_amount:,}**.",
            "",
            f"Answer by **{self.deadline.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei** (the bank's cutoff "
            f"{self.cutoff:%H:%M} less the margin). Unanswered by then, or rejected, nothing is uploaded: the "
            "files are cancelled and their payments wait for the next business day. The person who triggered "
            "this run, or made any of these files, cannot approve it.",
            "",
            "| file | processing date | payments | NTD |",
            "|---|---|---:|---:|",
            *(
                f"| {b['file_name']} | {b['processing_date']} | {b['payment_count']} | {b['total_amount']:,} |"
                for b in self.batches
            ),
            "",
            f"The {len(self.largest)} largest payment(s):",
            "",
            "| reference | NTD | file |",
            "|---|---:|---|",
            *(f"| {p['reference']} | {p['amount']:,} | {p['file_name']} |" for p in self.largest),
        ]
        if self.held:
            lines += [
                "",
                f"**{len(self.held)} possible duplicate(s) held back** (not in these files; release or cancel "
                "each in Browse → Required Actions):",
                "",
                *(f"- {h['reference']}: NTD {h['amount']:,}, {h['reason']}" for h in self.held),
            ]
        lines += ["", "To reject, give the reason in the form, then choose Reject."]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "request": self.request_id,
            "batches": [b["id"] for b in self.batches],
            "payment_count": self.payment_count,
            "total_amount": self.total_amount,
            "deadline": self.deadline.isoformat(),
        }


def deadline_for(
    bank: Bank, day: dt.date, now: dt.datetime, margin: dt.timedelta, max_wait: dt.timedelta | None
) -> dt.datetime:
    """When an approval for this processing date must be answered: the bank's cutoff less the
    margin, or ``max_wait`` from now when that is sooner."""
    out = delivery.cutoff(bank, day) - margin
    if max_wait is not None:
        out = min(out, now + max_wait)
    return out.astimezone(dt.UTC)


def eligible(approvers: list[str], makers: frozenset[str] | set[str], triggered_by: str | None) -> list[str]:
    """Who may answer: the configured approvers less every maker of the batches asked about and the
    user who triggered the asking run (four eyes: nobody approves what they made)."""
    barred = set(makers) | ({triggered_by} if triggered_by else set())
    return [u for u in approvers if u not in barred]


def makers(conn: Conn, request_id: str) -> frozenset[str]:
    """The users who made the batches of a request (scheduled runs have no maker)."""
    rows = conn.execute(
        "SELECT DISTINCT made_by FROM pay.batch WHERE approval_request = %s AND made_by IS NOT NULL", (request_id,)
    ).fetchall()
    return frozenset(r[0] for r in rows)


def request(
    conn: Conn,
    bank: Bank,
    *,
    request_id: str,
    run_id: str,
    now: dt.datetime,
    margin: dt.timedelta,
    max_wait: dt.timedelta | None = None,
) -> Request | None:
    """Ask for the bank's batches that wait for approval (made, not yet sent, and not asked about by
    another request: a live request is never taken over; the same task's retry asks again under the
    same id); None when none does."""
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, run_id, f"approval requested ({request_id})")
        cur.execute(
            """UPDATE pay.batch SET approval = 'requested', approval_request = %s
               WHERE bank = %s AND status = 'batched'
                 AND (approval = 'required' OR (approval = 'requested' AND approval_request = %s))
               RETURNING id, file_name, processing_date, payment_count, total_amount, made_by""",
            (request_id, bank.id, request_id),
        )
        rows = sorted(cur.fetchall())
        if not rows:
            return None
        batches = [
            {"id": i, "file_name": n, "processing_date": d.isoformat(), "payment_count": c, "total_amount": int(t)}
            for i, n, d, c, t, _maker in rows
        ]
        made = frozenset(maker for *_batch, maker in rows if maker)
        cur.execute(
            """SELECT p.reference, p.amount, b.file_name FROM pay.payment p JOIN pay.batch b ON b.id = p.batch_id
               WHERE p.batch_id = ANY(%s) ORDER BY p.amount DESC, p.reference LIMIT %s""",
            ([b["id"] for b in batches], LARGEST),
        )
        largest = [{"reference": r, "amount": int(a), "file_name": f} for r, a, f in cur.fetchall()]
        cur.execute(
            """SELECT reference, amount, held_reason FROM pay.payment
               WHERE bank = %s AND status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL
               ORDER BY id""",
            (bank.id,),
        )
        held = [{"reference": r, "amount": int(a), "reason": why} for r, a, why in cur.fetchall()]
    first_day = min(dt.date.fromisoformat(b["processing_date"]) for b in batches)
    deadline = deadline_for(bank, first_day, now, margin, max_wait)
    req = Request(bank.id, request_id, batches, largest, held, deadline, delivery.cutoff(bank, first_day), made)
    log.info(
        "%s: approval requested for %d file(s), %d payment(s), NTD %s; answer by %s",
        bank.id,
        len(batches),
        req.payment_count,
        f"{req.total_amount:,}",
        deadline.astimezone(TAIPEI).strftime("%Y-%m-%d %H:%M Asia/Taipei"),
    )
    return req


def approve(conn: Conn, request_id: str, *, by: str, at: dt.datetime, run_id: str, note: str = "") -> list[int]:
    """The batches shown in ``request_id`` are approved by ``by``: only those still waiting, unsent."""
    with conn.transaction(), conn.cursor() as cur:
        audit.who(cur, run_id, f"approved by {by}")
        cur.execute(
            """UPDATE pay.batch SET approval = 'approved', approval_by = %s, approval_at = %s, approval_note = %s
               WHERE approval_request = %s AND approval = 'requested' AND status = 'batched' RETURNING id""",
            (by, at, note or None, request_id),
        )
        ids = sorted(r[0] for r in cur.fetchall())
    log.warning("approval %s: %d batch(es) approved by %s", request_id, len(ids), by)
    return ids


def refuse(
    conn: Conn, bank: Bank, request_id: str, *, outcome: str, by: str | None, at: dt.datetime, run_id: str, note: str
) -> list[dict[str, Any]]:
    """The batches of ``request_id`` were rejected (``by`` a person, with ``note`` as the reason) or
    expired unanswered: each is cancelled (nothing of it was sent: the database allows no upload
    before approval), its payments go back to pending and wait for the next business day."""
    if outcome not in APPROVAL_REFUSED:
        raise ValueError(f"outcome must be rejected or expired, not {outcome!r}")
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM pay.batch WHERE approval_request = %s AND approval IN ('required', 'requested') "
            "AND status = 'batched' ORDER BY id",
            (request_id,),
        ).fetchall()
    ]
    out = []
    for batch_id in ids:
        with delivery.batch_lock(conn, batch_id) as mine:
            if not mine:
                log.error("batch %s is locked by another run; it stays unapproved and unsent", batch_id)
                continue
            b = delivery.read_batch(conn, batch_id)
            why = f"{b.file_name}: approval {outcome}" + (f" by {by}" if by else "") + (f": {note}" if note else "")
            with conn.transaction(), conn.cursor() as cur:
                audit.who(cur, run_id, why)
                cur.execute(
                    "UPDATE pay.payment SET not_before = pay.next_business_day(%s) WHERE batch_id = %s "
                    "AND status = 'batched'",
                    (b.processing_date, b.id),
                )
                cur.execute(
                    """UPDATE pay.batch SET approval = %s, approval_by = %s, approval_at = %s, approval_note = %s
                       WHERE id = %s AND approval = 'requested' AND status = 'batched'""",
                    (outcome, by, at, note[:2000] or None, b.id),
                )
                if cur.rowcount != 1:
                    raise delivery.BatchMoved(f"{b.file_name}: no longer waiting for approval")
            d = delivery.cancel(conn, b, run_id, why + "; cancelled, its payments wait for the next business day")
            d.outcome = delivery.Outcome(outcome)
            out.append(d.__dict__)
    return out


def refusal_email(
    bank_id: str,
    outcome: str,
    by: str | None,
    note: str,
    cancelled: list[dict[str, Any]],
    link: str = "",
    asked: bool = True,
) -> Email:
    """Treasury's email when an approval was rejected or expired (``asked``: False when nobody
    could be asked, which is said as such, never as an unanswered request)."""
    from finflows.emails import Email

    count = sum(d["payment_count"] for d in cancelled)
    total = sum(d["total_amount"] for d in cancelled)
    if outcome == Approval.REJECTED:
        what = f"rejected by {by}"
    else:
        what = "not answered in time" if asked else "not asked: nobody who may approve it could be asked"
    lines = [
        f"{bank_id}: the approval of {len(cancelled)} payment file(s) ({count} payment(s), NTD {total:,}) was "
        f"{what}. Nothing was uploaded: the files are cancelled and their payments wait for the next business day.",
        *(f"{d['file_name']}: {d['payment_count']} payment(s), NTD {d['total_amount']:,}" for d in cancelled),
    ]
    if note:
        lines.append(f"Reason given: {note}" if asked else f"Why: {note}")
    lines.append(
        "Next step: if they should still go out, they are batched again by the next bank_payments run on or "
        "after the next business day, and asked for approval again; payments that must not go out are "
        "cancelled in the finance system."
    )
    if link:
        lines.append(f"The approval in Airflow: {link}")
    word = outcome.upper() if asked else "NOT APPROVED (nobody could be asked)"
    return Email(f"[finflows] bank payments {word}: {bank_id}, {len(cancelled)} file(s)", tuple(lines))


def awaiting(conn: Conn) -> list[dict[str, Any]]:
    """Batches waiting for a second person (not yet asked, or asked and unanswered)."""
    rows = conn.execute(
        """SELECT id, bank, file_name, processing_date, payment_count, total_amount, approval, approval_request,
                  created_at FROM pay.batch WHERE approval IN ('required', 'requested') AND status = 'batched'
           ORDER BY processing_date, bank, id"""
    ).fetchall()
    keys = ("id", "bank", "file_name", "processing_date", "payment_count", "total_amount", "approval", "request")
    return [dict(zip(keys, r[:-1], strict=True)) | {"total_amount": int(r[5]), "made_at": r[-1]} for r in rows]
