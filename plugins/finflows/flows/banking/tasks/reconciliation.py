"""Task body of bank_reconciliation's alert (each bank's files are ``BankReturnFileOperator``). Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from finflows import files, metrics, settings
from finflows.flows.banking.common import email_treasury
from finflows.flows.banking.states import ReturnFile
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
    nothing_upstream,
)

log = logging.getLogger(__name__)


def reconciliation_summary(bank_ids: list[str], per_bank: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Alert by email on quarantined files, unmatched lines, batches over 5% mismatched, and batches
    still unreconciled after their business day; the run fails on a quarantined file or a failed bank."""
    from finflows.flows.banking import reconciliation

    nothing_upstream(bank_ids, "choose_banks")
    banks_done = [b for b in per_bank if b is not None]
    done = [o for b in banks_done for o in b["files"]]
    failed_banks = sorted(set(bank_ids) - {b["bank"] for b in banks_done})
    alerts = [a for o in done for a in o["alerts"]]
    with files.connect(finance_db()) as conn:
        alerts += reconciliation.unreconciled_batches(conn, dt.datetime.now(dt.UTC), settings.business_day_close())
    applied = [o for o in done if o["outcome"] == ReturnFile.APPLIED]
    quarantined_n = sum(o["outcome"] == ReturnFile.QUARANTINED for o in done)
    for o in applied:
        o["lines"] = o["settled"] + o["returned"] + o["unmatched"] + o["mismatch"] + o["duplicate"]
    metrics.emit_outcomes("bank_reconciliation", applied, quarantined_n + len(failed_banks), "lines")
    log.info(
        "%d file(s) applied, %d seen before, %d quarantined",
        len(applied),
        sum(o["outcome"] == ReturnFile.SEEN for o in done),
        sum(o["outcome"] == ReturnFile.QUARANTINED for o in done),
    )
    if alerts or failed_banks:
        import html

        body = "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in alerts) + "</ul>"
        if failed_banks:
            body += f"<p>Banks whose check failed (see their task logs): {', '.join(failed_banks)}</p>"
        email_treasury(f"[finflows] bank reconciliation ALERT: {len(alerts)} item(s)", body, also=settings.ops_email())
    quarantined = [f"{o['bank']}/{o['file_name']}" for o in done if o["outcome"] == ReturnFile.QUARANTINED]
    fail_run_if_any(failed_banks + quarantined, len(done) + len(failed_banks), "file")
    return {"applied": len(applied), "alerts": len(alerts)}
