"""What the finance monitor API answers, as plain queries over the finance database.

No Airflow and no FastAPI here (``finflows.monitor_api`` adds HTTP and authorisation). Every
answer is JSON-ready; payee names and account numbers never leave: a batch shows references,
amounts and states only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def _rows(cur, sql: str, params=()) -> list[dict]:
    cur.execute(sql, params)
    names = [d.name for d in cur.description]
    return [{k: _plain(v) for k, v in zip(names, r, strict=True)} for r in cur.fetchall()]


def _plain(v):
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def health(conn, bank_ids: list[str], now: dt.datetime, half_open_after: dt.timedelta) -> dict:
    """Each bank's circuit and latest check, and the finance database itself."""
    from finflows.flows.banking import health as circuits

    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        # each bank's latest check by its index (bank, checked_at DESC): one row read per bank,
        # however many checks years of five-minute probes have left
        last = {
            r["bank"]: r
            for r in _rows(
                cur,
                """
            SELECT b.bank, h.ok, h.latency_ms, h.error, h.checked_at FROM unnest(%s::text[]) AS b (bank)
            JOIN LATERAL (SELECT ok, latency_ms, error, checked_at FROM pay.health_check c
                          WHERE c.bank = b.bank ORDER BY c.checked_at DESC LIMIT 1) h ON true""",
                (list(bank_ids),),
            )
        }
    banks = []
    for b in bank_ids:
        c = circuits.circuit(conn, b, now, half_open_after)
        check = last.get(b) or {}
        banks.append(
            {
                "bank": b,
                "circuit": c.state,
                "consecutive_failures": c.consecutive_failures,
                "opened_at": _plain(c.opened_at),
                "last_check_ok": check.get("ok"),
                "last_latency_ms": check.get("latency_ms"),
                "last_checked_at": check.get("checked_at"),
                "last_error": check.get("error"),
            }
        )
    return {
        "database": "ok",
        "banks": banks,
        "circuits_open": [b["bank"] for b in banks if b["circuit"] != circuits.CLOSED],
    }


def dashboard(conn, days: int, now: dt.datetime) -> dict:
    """Per flow over the last ``days`` days: files, rows, amounts, failures; and the bank batches."""
    since = now - dt.timedelta(days=days)
    with conn.cursor() as cur:
        flows = _rows(
            cur,
            """
            SELECT flow, count(*) AS files, count(*) FILTER (WHERE status = 'SUCCESS') AS loaded,
                   count(*) FILTER (WHERE status = 'ERROR') AS failures, coalesce(sum(row_count), 0) AS rows,
                   coalesce(sum(total_amount), 0) AS amount
            FROM ops.file_control WHERE started_at >= %s GROUP BY flow ORDER BY flow""",
            (since,),
        )
        batches = _rows(
            cur,
            """
            SELECT bank, count(*) AS batches, coalesce(sum(payment_count), 0) AS payments,
                   coalesce(sum(total_amount), 0) AS amount,
                   count(*) FILTER (WHERE status = 'uploaded') AS uploaded,
                   count(*) FILTER (WHERE status IN ('queued', 'failed')) AS failures,
                   count(*) FILTER (WHERE status = 'uncertain') AS uncertain,
                   count(*) FILTER (WHERE approval = 'rejected') AS rejected,
                   count(*) FILTER (WHERE approval = 'expired') AS expired,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled
            FROM pay.batch WHERE created_at >= %s GROUP BY bank ORDER BY bank""",
            (since,),
        )
        failed_transfers = _rows(
            cur, "SELECT count(*) AS n FROM pay.transfer WHERE outcome = 'failed' AND finished_at >= %s", (since,)
        )[0]["n"]
    return {
        "days": days,
        "since": since.isoformat(),
        "flows": flows,
        "bank_batches": batches,
        "failed_transfers": failed_transfers,
    }


def transfers(conn, days: int, now: dt.datetime, bank: str | None = None, limit: int = 200) -> list[dict]:
    with conn.cursor() as cur:
        return _rows(
            cur,
            """
            SELECT id, batch_id, bank, file_name, outcome, attempts, bytes, payment_count, total_amount, error,
                   started_at, finished_at, dag_run_id
            FROM pay.transfer WHERE finished_at >= %s AND (%s::text IS NULL OR bank = %s)
            ORDER BY finished_at DESC LIMIT %s""",
            (now - dt.timedelta(days=days), bank, bank, limit),
        )


def batch(conn, batch_id: int) -> dict | None:
    with conn.cursor() as cur:
        found = _rows(
            cur,
            """
            SELECT id, bank, processing_date, batch_no, file_name, file_format, status, payment_count, total_amount,
                   plain_sha256, cipher_sha256, cipher_bytes, archive_uri, dag_run_id, created_at, uploaded_at,
                   send_step, send_attempt, remote_path, uncertain_reason, decision, decided_by, decided_at,
                   decision_note, approval, approval_by, approval_at, approval_note, made_by, encrypted_to,
                   signed_with, host_key
            FROM pay.batch WHERE id = %s""",
            (batch_id,),
        )
        if not found:
            return None
        out = found[0]
        out["payments"] = _rows(
            cur,
            "SELECT seq, reference, amount, status, return_reason FROM pay.payment WHERE batch_id = %s ORDER BY seq",
            (batch_id,),
        )
        out["transfers"] = _rows(
            cur,
            "SELECT outcome, attempts, error, started_at, finished_at FROM pay.transfer "
            "WHERE batch_id = %s ORDER BY id",
            (batch_id,),
        )
        out["events"] = _rows(
            cur,
            "SELECT from_status, to_status, send_step, send_attempt, detail, decided_by, dag_run_id, at "
            "FROM pay.batch_event WHERE batch_id = %s ORDER BY id",
            (batch_id,),
        )
        out["returns"] = _rows(
            cur,
            "SELECT outcome, count(*) AS lines FROM pay.return_line WHERE batch_id = %s "
            "GROUP BY outcome ORDER BY outcome",
            (batch_id,),
        )
    return out
