"""The treasurer's start page: today in Asia/Taipei, per bank, with a link for every row.

``today`` answers the finance monitor's ``GET /today``: for each bank the files prepared today and
where each is (awaiting approval with its deadline, sent, rejected, expired, uncertain, given up,
queued, cancelled), held payments, returns and the circuit; the decisions waiting for a person,
each linked to its Required Action; and the failed or quarantined files of every flow, each naming
the file, the rule it broke and the next step, linked to its run. Every time is a string in
Asia/Taipei with the zone named. No Airflow import: links are built by ``finflows.links``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from finflows import links
from finflows.flows.banking import approval, daily_report, decisions, delivery
from finflows.flows.banking.states import (
    APPROVAL_REFUSED,
    WAITING_FOR_APPROVAL,
    Approval,
    BatchStatus,
    Retry,
    Uncertain,
)
from finflows.seams import Conn
from finflows.settings import TAIPEI

if TYPE_CHECKING:
    from finflows.flows.banking.banks import BankConfig


PAYMENTS_DAG, DECISIONS_DAG = "bank_payments", "treasury_decisions"


class DayState(StrEnum):
    """Where one of today's batches stands on the monitor's Today page (one column each)."""

    PREPARED = "prepared"  # counted for every batch of the day, whatever came after
    AWAITING_APPROVAL = "awaiting_approval"
    SENT = "sent"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNCERTAIN = "uncertain"
    GIVEN_UP = "given_up"
    QUEUED = "queued"
    CANCELLED = "cancelled"
    FAILED = "failed"


STATES = tuple(DayState)
NEXT_STEP = {
    "cashfile_import": "ask CivicaPay for a corrected file; the quarantined one is kept and never retried as it is",
    "card_reconciliation": "ask the acquirer for a corrected statement; the quarantined one is kept and never retried",
    "bank_reconciliation": "ask the bank about the return file (key, signature, layout); it is kept in quarantine",
    "chargeback_export": "fix the chargeback data and land it again; the quarantined file is kept",
}


def taipei(t: dt.datetime | None) -> str | None:
    return f"{t.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei" if t else None


def _where(b: dict[str, Any], margin: dt.timedelta, cutoffs: dict[str, Any]) -> tuple[str, str]:
    """(state, words) of one of today's batches."""
    status, appr = b["status"], b["approval"]
    if status == BatchStatus.BATCHED and appr in WAITING_FOR_APPROVAL:
        due = cutoffs.get(b["bank"])
        by = f", answer by {taipei(due - margin)}" if due else ""
        return DayState.AWAITING_APPROVAL, f"awaiting a second person's approval{by}"
    if appr in APPROVAL_REFUSED and status == BatchStatus.CANCELLED:
        who = f" by {b['approval_by']}" if b["approval_by"] else " (no answer by the deadline)"
        note = f": {b['approval_note']}" if b["approval_note"] else ""
        return DayState(
            appr
        ), f"approval {appr}{who} at {taipei(b['approval_at'])}{note}; nothing sent, payments roll on"
    if status == BatchStatus.UPLOADED:
        how = f", decided by {b['decided_by']} (the bank has it)" if b["decision"] == Uncertain.BANK_HAS_IT else ""
        approved = f", approved by {b['approval_by']}" if appr == Approval.APPROVED else ""
        return DayState.SENT, f"sent {taipei(b['uploaded_at'])}{approved}{how}"
    if status == BatchStatus.UNCERTAIN:
        return DayState.UNCERTAIN, f"UNCERTAIN since {taipei(b['uncertain_at'])}: {b['uncertain_reason']}"
    if status == BatchStatus.QUEUED:
        if b["retry"] == Retry.GAVE_UP:
            return DayState.GIVEN_UP, f"given up: {(b['last_error'] or '')[:300]}"
        return DayState.QUEUED, "queued: bank_transfer_retry sends it (hourly :15)"
    if status == BatchStatus.SENDING:
        return DayState.QUEUED, f"being sent ({b['send_step']})"
    if status == BatchStatus.BATCHED:  # approved, or needing no approval: bank_payments' upload step sends it
        return DayState.QUEUED, f"prepared, approval {appr}: bank_payments' upload step sends it"
    return DayState(status) if status in STATES else DayState.FAILED, status


def _batches(conn: Conn, day: dt.date) -> list[dict[str, Any]]:
    """Today's batches, every one not final, and every one sent, decided or approved today."""
    from psycopg.rows import dict_row

    start = daily_report._day_bounds(day)[0]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT b.id, b.bank, b.file_name, b.processing_date, b.status, b.payment_count, b.total_amount,
                      b.approval, b.approval_by, b.approval_at, b.approval_note, b.approval_request, b.uploaded_at,
                      b.uncertain_at, b.uncertain_reason, b.decision, b.decided_by, b.made_by, b.dag_run_id,
                      b.send_step, r.status AS retry, r.last_error
               FROM pay.batch b LEFT JOIN pay.transfer_retry r ON r.batch_id = b.id
               WHERE b.processing_date = %s OR b.status IN ('uncertain', 'queued', 'sending', 'batched')
                  OR b.uploaded_at >= %s OR b.decided_at >= %s OR b.approval_at >= %s
               ORDER BY b.bank, b.id""",
            (day, start, start, start),
        ).fetchall()


def _batch_row(b: dict[str, Any], base: str, margin: dt.timedelta, cutoffs: dict[str, Any]) -> dict[str, Any]:
    state, words = _where(b, margin, cutoffs)
    row = {
        "batch_id": b["id"], "bank": b["bank"], "file_name": b["file_name"], "processing_date": str(b["processing_date"]),
        "payments": b["payment_count"], "ntd": int(b["total_amount"]), "state": state, "words": words,
        "made_by": b["made_by"] or "scheduled", "batch_url": f"/finflows/api/batches/{b['id']}",
    }  # fmt: skip
    if b["dag_run_id"] and not b["dag_run_id"].startswith("decision:"):
        row["run_url"] = links.run_url(base, PAYMENTS_DAG, b["dag_run_id"])
        row["log_url"] = links.task_url(base, PAYMENTS_DAG, b["dag_run_id"], "bank.prepare")
    if state == DayState.AWAITING_APPROVAL and b["approval_request"]:
        run_id, task_id, map_index = b["approval_request"].rsplit("/", 2)
        row["action_url"] = links.required_actions_url(base, PAYMENTS_DAG, run_id, task_id, map_index)
    return row


def _decision_rows(conn: Conn, base: str) -> list[dict[str, Any]]:
    out = []
    for w in decisions.waiting(conn):
        out.append({
            "kind": w["kind"], "subject": w["subject"], "bank": w["bank"], "asked_at": taipei(w["asked_at"]),
            "asked_again_after": taipei(w["until"]),
            "action_url": links.required_actions_url(base, DECISIONS_DAG, w["dag_run_id"], w["task_id"], w["map_index"]),
        })  # fmt: skip
    for a in approval.awaiting(conn):
        row = {"kind": "approval", "subject": a["file_name"], "bank": a["bank"], "asked_at": taipei(a["made_at"])}
        if a["request"]:
            run_id, task_id, map_index = a["request"].rsplit("/", 2)
            row["action_url"] = links.required_actions_url(base, PAYMENTS_DAG, run_id, task_id, map_index)
        out.append(row)
    return out


def _failures(conn: Conn, start: dt.datetime, end: dt.datetime, base: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT flow, file_name, error, dag_run_id, started_at FROM ops.file_control
           WHERE status = 'ERROR' AND started_at >= %s AND started_at < %s ORDER BY started_at DESC, id DESC""",
        (start, end),
    ).fetchall()
    return [
        {"flow": flow, "file_name": name, "rule": (error or "")[:500], "at": taipei(at),
         "next_step": NEXT_STEP.get(flow, "read the error; the file is kept in quarantine and never retried as it is"),
         **({"run_url": links.run_url(base, flow, run_id)} if run_id else {})}
        for flow, name, error, run_id, at in rows
    ]  # fmt: skip


def today(
    conn: Conn, cfg: BankConfig, now: dt.datetime, half_open_after: dt.timedelta, margin: dt.timedelta, base: str
) -> dict[str, Any]:
    """The treasurer's day so far: per bank, the batches with their links, decisions and failures."""
    day = now.astimezone(TAIPEI).date()
    ids = cfg.enabled
    report = daily_report.gather(conn, day, ids, now, half_open_after)
    cutoffs = {b: delivery.cutoff(cfg.banks[b], day) for b in ids if b in cfg.banks}
    batches = [_batch_row(b, base, margin, cutoffs) for b in _batches(conn, day)]
    held = Counter(h[0] for h in conn.execute(
        "SELECT bank FROM pay.payment WHERE status = 'pending' AND held_reason IS NOT NULL AND hold_decision IS NULL"
    ).fetchall())  # fmt: skip
    banks = []
    for d in report.banks:
        mine = [b for b in batches if b["bank"] == d.bank]
        counts = Counter(b["state"] for b in mine if b["processing_date"] == str(day))
        counts[DayState.PREPARED] = sum(1 for b in mine if b["processing_date"] == str(day))
        banks.append({
            "bank": d.bank, "circuit": d.circuit, "cutoff": taipei(cutoffs.get(d.bank)),
            **{str(s): counts.get(s, 0) for s in STATES}, "held": held.get(d.bank, 0), "settled": d.settled,
            "returned": d.returned, "unmatched": d.unmatched, "quarantined": d.quarantined,
            "still_pending": d.still_pending,
        })  # fmt: skip
    start, end = daily_report._day_bounds(day)
    return {"day": str(day), "zone": "Asia/Taipei", "now": taipei(now), "banks": banks, "batches": batches,
            "decisions": _decision_rows(conn, base), "failures": _failures(conn, start, end, base)}  # fmt: skip
