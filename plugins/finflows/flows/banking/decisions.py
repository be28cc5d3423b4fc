"""Every decision a person makes about money, asked as an Airflow Required Action.

The treasury_decisions DAG asks, every few minutes, what waits for a person and has not been asked
yet (``open_questions`` then ``reserve``), one human-in-the-loop task per question
(``finflows.operators.decision.MoneyDecisionOperator``):

- **uncertain**: a batch that may or may not have reached the bank: *The bank has it* or *Resend*
  (``delivery.decide``);
- **held**: a payment held as a possible duplicate: *Release* or *Cancel the payment*
  (``payments.decide_hold``);
- **given_up**: a batch the retry queue gave up on before the cutoff: *Re-queue* or *Cancel the
  batch* (``delivery.requeue`` / ``delivery.cancel_given_up``);
- **attention**: any other row of the attention list (``invariants``): *Resolved*, with how.

Each question says what is known, the amounts, the deadline in the bank's time (zone named) and
who may answer: the approvers less the batch's maker or the user whose run held the payment. The
answer goes through the same functions as the finance monitor's API, so the same refusals hold
(and the database's guards under them); the request row (``pay.decision_request``) keeps which
Required Action it came from, who answered and when. A question the API answered meanwhile is
closed as ``decided_elsewhere``; one left unanswered until its ``until`` is asked again.

No Airflow import here: the operator calls these.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from finflows.flows.banking import delivery, invariants, payments
from finflows.flows.banking.banks import BankConfig
from finflows.seams import Conn
from finflows.settings import TAIPEI

log = logging.getLogger(__name__)

ASK_FOR = dt.timedelta(hours=4)  # a question unanswered this long is closed and asked again (a new entry)
# attention rows another question already covers (its decision resolves them)
COVERED = frozenset({"uncertain", "sent_record", "given_up"})

OPTIONS: dict[str, tuple[str, ...]] = {
    "uncertain": ("The bank has it", "Resend"),
    "held": ("Release: not a duplicate", "Cancel the payment"),
    "given_up": ("Re-queue", "Cancel the batch"),
    "attention": ("Resolved",),
}


@dataclass(frozen=True)
class Question:
    """One decision a person must make: what is known, the choices, by when, who may not answer."""

    kind: str
    subject: str  # batch id, payment reference or attention id
    bank: str
    headline: str
    facts: tuple[str, ...]  # markdown lines: what is known, amounts (references only, no payee)
    deadline: dt.datetime | None  # UTC; None: no deadline (said in words)
    barred: tuple[str, ...] = ()  # the maker / the user whose run held it

    @property
    def options(self) -> tuple[str, ...]:
        return OPTIONS[self.kind]

    @property
    def label(self) -> str:
        """The map index Airflow shows: the bank, the kind and the subject."""
        return f"{self.bank or 'all'} · {self.kind.replace('_', ' ')} · {self.subject}"[:250]

    def when(self) -> str:
        if self.deadline is None:
            return "no deadline: nothing moves until a person decides"
        return f"{self.deadline.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei"

    def subject_line(self) -> str:
        due = f"by {self.when()}" if self.deadline else "no deadline"
        return f"{self.headline} ({due})"[:250]

    def body(self, may_answer: list[str]) -> str:
        barred = ", ".join(self.barred) or "nobody (a scheduled run made it)"
        return "\n".join([
            *self.facts,
            "",
            f"**Decide by:** {self.when()}.",
            "",
            f"**Who may answer:** {', '.join(may_answer)}; not {barred} (four eyes).",
            "",
            "Write what you know in the note (what the bank said, a ticket number; no payee details). "
            "The answer, who and when are kept on the batch or payment.",
        ])  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["deadline"] = self.deadline.isoformat() if self.deadline else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Question:
        deadline = dt.datetime.fromisoformat(d["deadline"]) if d.get("deadline") else None
        return cls(**(d | {"deadline": deadline, "facts": tuple(d["facts"]), "barred": tuple(d["barred"])}))


def _ntd(n: int) -> str:
    return f"NTD {int(n):,}"


def _cutoff(cfg: BankConfig, bank_id: str, day: dt.date | None) -> dt.datetime | None:
    bank = cfg.banks.get(bank_id)
    return delivery.cutoff(bank, day) if bank and day else None


def _uncertain(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[Question]:
    rows = conn.execute(
        """SELECT id, bank, file_name, processing_date, payment_count, total_amount, uncertain_reason, uncertain_at,
                  made_by, cipher_bytes, cipher_sha256
           FROM pay.batch WHERE status = 'uncertain' ORDER BY id"""
    ).fetchall()
    out = []
    for bid, bank, name, day, count, total, why, since, maker, size, sha in rows:
        cutoff = _cutoff(cfg, bank, day)
        late = cutoff is not None and now >= cutoff
        out.append(Question(
            "uncertain", str(bid), bank, f"{bank}: did the bank get {name}? {count} payment(s), {_ntd(total)}",
            (f"**{bank}**, batch {bid}: **{name}**, processing date {day}, {count} payment(s), **{_ntd(total)}**.",
             "",
             f"Uncertain since {since.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei: {why}",
             "",
             f"Ask the bank whether it received the file: {size or '?'} bytes encrypted, sha256 `{sha or '?'}`.",
             "",
             "- **The bank has it**: the batch is recorded as delivered; nothing is sent.",
             "- **Resend**: bank_transfer_retry sends the archived file once"
             + (" (the cutoff has passed: it will cancel it instead, and the payments roll on)." if late else
                ", before the cutoff; after it, the batch is cancelled and its payments roll on.")),
            None if late else cutoff, tuple(filter(None, [maker])),
        ))  # fmt: skip
    return out


def _held(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[Question]:
    rows = conn.execute(
        """SELECT reference, bank, amount, due_date, held_reason, held_at, held_by FROM pay.payment
           WHERE status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL ORDER BY held_at, id"""
    ).fetchall()
    out = []
    for ref, bank, amount, due, why, held_at, held_by in rows:
        cutoff = _cutoff(cfg, bank, due)
        out.append(Question(
            "held", ref, bank, f"{bank}: is payment {ref} ({_ntd(amount)}) a duplicate?",
            (f"**{bank}**: payment **{ref}**, **{_ntd(amount)}**, due {due}, held "
             f"{held_at.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei: {why}.",
             "",
             "- **Release: not a duplicate**: it is batched with the next bank_payments run and never held again.",
             "- **Cancel the payment**: it is a duplicate; it fails and nothing is paid."),
            cutoff if cutoff and cutoff > now else None, tuple(filter(None, [held_by])),
        ))  # fmt: skip
    return out


def _given_up(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[Question]:
    rows = conn.execute(
        """SELECT b.id, b.bank, b.file_name, b.processing_date, b.payment_count, b.total_amount, r.last_error,
                  b.made_by
           FROM pay.batch b JOIN pay.transfer_retry r ON r.batch_id = b.id
           WHERE b.status = 'queued' AND r.status = 'gave_up' ORDER BY b.id"""
    ).fetchall()
    out = []
    for bid, bank, name, day, count, total, error, maker in rows:
        cutoff = _cutoff(cfg, bank, day)
        if cutoff is not None and now >= cutoff:
            continue  # bank_transfer_retry cancels it now: nothing for a person to decide
        out.append(Question(
            "given_up", str(bid), bank, f"{bank}: {name} was given up: {count} payment(s), {_ntd(total)}",
            (f"**{bank}**, batch {bid}: **{name}**, processing date {day}, {count} payment(s), **{_ntd(total)}**.",
             "",
             f"The retry queue gave up on it (nothing reached the bank): {(error or '')[:400]}",
             "",
             "- **Re-queue**: its cause is fixed (say what in the note); bank_transfer_retry sends it once.",
             "- **Cancel the batch**: it is not sent; its payments go back to pending and roll on.",
             "",
             "Unanswered by the cutoff, bank_transfer_retry cancels it."),
            cutoff, tuple(filter(None, [maker])),
        ))  # fmt: skip
    return out


def _attention(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[Question]:
    out = []
    for r in invariants.open_rows(conn):
        if r["kind"] in COVERED:
            continue
        maker = None
        if r.get("batch_id"):
            row = conn.execute("SELECT made_by FROM pay.batch WHERE id = %s", (r["batch_id"],)).fetchone()
            maker = row[0] if row else None
        deadline = r.get("deadline")
        out.append(Question(
            "attention", str(r["id"]), r.get("bank") or "",
            f"{r.get('bank') or 'all banks'}: {r['kind'].replace('_', ' ')}: {r['subject']}",
            (f"**{r['kind']}** ({r['subject']}): {r['what']}",
             "",
             f"**Next step:** {r['next_step']}",
             "",
             "- **Resolved**: say how in the note. If its cause is still there, the next check raises it again."),
            deadline if deadline and deadline > now else None, tuple(filter(None, [maker])),
        ))  # fmt: skip
    return out


FINDERS: tuple[Callable[..., list[Question]], ...] = (_uncertain, _held, _given_up, _attention)


def open_questions(conn: Conn, cfg: BankConfig, now: dt.datetime) -> list[Question]:
    """Everything that waits for a person's decision now, oldest kinds first."""
    return [q for find in FINDERS for q in find(conn, cfg, now)]


def reserve(conn: Conn, questions: list[Question], run_id: str, task_id: str, now: dt.datetime) -> list[Question]:
    """The questions this run asks: those no live request is asking already (a request past its
    ``until`` is closed as unanswered first). Their map indexes are their positions in the list."""
    asked: list[Question] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """UPDATE pay.decision_request SET closed_at = now(), outcome = 'unanswered'
               WHERE closed_at IS NULL AND until <= %s""",
            (now,),
        )
        for q in questions:
            cur.execute(
                """INSERT INTO pay.decision_request (kind, subject, bank, dag_run_id, task_id, map_index, until)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id""",
                (q.kind, q.subject, q.bank or None, run_id, task_id, len(asked), now + ASK_FOR),
            )
            if cur.fetchone() is not None:
                asked.append(q)
    return asked


def still_open(conn: Conn, cfg: BankConfig, q: Question, now: dt.datetime) -> bool:
    """Whether the question still waits (the monitor's API may have answered it meanwhile, or the
    retry DAG cancelled a given-up batch at its cutoff)."""
    return any(o.subject == q.subject for o in _FINDER[q.kind](conn, cfg, now))


def apply(conn: Conn, q: Question, option: str, *, by: str, note: str) -> dict[str, Any]:
    """Carry out a person's answer through the same functions as the monitor's API. Raises
    ``delivery.FourEyesRefused`` (the maker), ``delivery.DecisionRefused`` or ``LookupError``
    (nothing to decide any more)."""
    if option not in q.options:
        raise delivery.DecisionRefused(f"{option!r} is not one of {', '.join(q.options)}")
    first = option == q.options[0]
    if q.kind == "uncertain":
        return delivery.decide(conn, int(q.subject), "bank_has_it" if first else "resend", by=by, note=note)
    if q.kind == "held":
        try:
            return payments.decide_hold(conn, q.subject, "release" if first else "cancel", by=by, note=note)
        except delivery.DecisionRefused:
            raise
        except ValueError as e:  # no name (the operator always has one)
            raise delivery.DecisionRefused(str(e)) from e
    if q.kind == "given_up":
        act = delivery.requeue if first else delivery.cancel_given_up
        return act(conn, int(q.subject), by=by, note=note)
    if by in q.barred:
        raise delivery.FourEyesRefused(f"{by} made the batch this row is about and may not resolve it")
    return invariants.resolve(conn, int(q.subject), by=by, note=note or "resolved in Required Actions")


def close(conn: Conn, q: Question, run_id: str, outcome: str, *, by: str | None = None, answer: str | None = None,
          note: str | None = None) -> None:  # fmt: skip
    """Close this run's request for the question with its outcome."""
    conn.execute(
        """UPDATE pay.decision_request SET closed_at = now(), outcome = %s, answered_by = %s, answer = %s, note = %s
           WHERE kind = %s AND subject = %s AND dag_run_id = %s AND closed_at IS NULL""",
        (outcome, by, answer, (note or "")[:500] or None, q.kind, q.subject, run_id),
    )


def waiting(conn: Conn) -> list[dict[str, Any]]:
    """The live requests (for the monitor: each links to its Required Action)."""
    rows = conn.execute(
        """SELECT kind, subject, bank, dag_run_id, task_id, map_index, asked_at, until FROM pay.decision_request
           WHERE closed_at IS NULL ORDER BY asked_at, id"""
    ).fetchall()
    keys = ("kind", "subject", "bank", "dag_run_id", "task_id", "map_index", "asked_at", "until")
    return [dict(zip(keys, r, strict=True)) for r in rows]


_FINDER = {"uncertain": _uncertain, "held": _held, "given_up": _given_up, "attention": _attention}
