"""Task body of bank_transfer_retry: the queue of deliveries that failed, worked off. Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict
from typing import Any

from finflows import files, settings
from finflows.flows.banking import banks, payments
from finflows.flows.banking.common import alert_uncertain, circuit_now, email_treasury, run_id, transport
from finflows.flows.banking.delivery import SENT, STOPPED
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
)

log = logging.getLogger(__name__)


def retry_transfers(everything: bool) -> dict[str, Any]:
    """Work off the retry queue: deliver each waiting batch's archived file, or cancel it after its
    cutoff; a given-up batch is cancelled once its cutoff has passed (treasury is told in the summary)."""
    cfg = banks.load()
    now = dt.datetime.now(dt.UTC)
    done = []
    with files.connect(finance_db()) as conn:
        waiting = payments.waiting_transfers(conn, now, everything)
        given_up = payments.given_up_past_cutoff(conn, cfg, now)  # cancelled: their payments roll on
        log.info("%d queued transfer(s) to try, %d given up past the cutoff", len(waiting), len(given_up))
        waiting += given_up
        for batch_id, bank_id in waiting:
            d = payments.retry_one(
                conn,
                cfg=cfg,
                batch_id=batch_id,
                bank_id=bank_id,
                now=now,
                run_id=run_id(),
                transport=transport(cfg.bank(bank_id)),
                limit=settings.bank_retry_limit(),
                circuit=circuit_now(conn, bank_id),
            )
            done.append(asdict(d) | {"bank": bank_id})
        queue = payments.retry_queue(conn)
    alert_uncertain(done)
    alert = payments.retry_queue_alert(queue, settings.bank_retry_queue_alert())
    if alert is not None:
        from finflows import emails

        log.warning("%s", alert.subject)
        emails.send(alert, to=settings.ops_email() + settings.treasury_email(), smtp_conn_id=settings.CONN_SMTP)
    by_bank: dict[str, dict[str, Any]] = {}
    for delivered in done:
        by_bank.setdefault(delivered.pop("bank"), {"deliveries": []})["deliveries"].append(delivered)
    runs = [{"bank": b, **v} for b, v in by_bank.items()]
    if runs:
        email_treasury(*payments.summary(runs, "[finflows] bank transfer retry"))
    gave_up = [f"{d['file_name']}: {d['outcome']}" for d in done if d["outcome"] in STOPPED]
    fail_run_if_any(gave_up, len(done), "queued transfer")
    return {
        "tried": len(done),
        "delivered": sum(1 for d in done if d["outcome"] in SENT),
        "waiting": sum(n for _bank, n, _oldest in queue),
    }
