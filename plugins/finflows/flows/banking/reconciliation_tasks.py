"""Task bodies of bank_reconciliation: each bank's return files matched to payments; alerts. Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict

from finflows import files, metrics, settings
from finflows.flows.banking import banks, payments
from finflows.flows.banking.common import decrypter, email_treasury, sftp
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
    label_mapped_task,
    nothing_upstream,
    s3_hook,
)

log = logging.getLogger(__name__)


def reconcile_bank(bank_id: str) -> dict:
    from finflows.flows.banking import reconciliation

    run_id = label_mapped_task("bank", bank_id)
    cfg = banks.load()
    bank = cfg.bank(bank_id)
    hook = sftp(bank)
    outcomes = []
    today = dt.datetime.now(payments.TAIPEI).date()
    with files.connect(finance_db()) as conn, decrypter(cfg, bank) as decrypt, hook.get_managed_conn() as client:
        names = reconciliation.candidates(client, bank)
        log.info(
            "%s: %d file(s) match %s in %s", bank_id, len(names), bank.reconciliation_file_pattern, bank.download_path
        )
        for name in names:
            with client.open(f"{bank.download_path.rstrip('/')}/{name}", "rb") as f:
                data = f.read()
            out = reconciliation.process_file(
                conn,
                bank=bank,
                name=name,
                data=data,
                decrypt=decrypt,
                s3_hook=s3_hook(),
                archive_bucket=settings.archive_bucket(),
                run_id=run_id,
                today=today,
            )
            outcomes.append(asdict(out))
        settled = reconciliation.settle_unreturned(conn, bank, today, run_id)
    return {"bank": bank_id, "files": outcomes, "settled_unreturned": len(settled)}


def reconciliation_summary(bank_ids: list[str], per_bank: list[dict | None]) -> dict:
    """Alert by email on quarantined files, unmatched lines, batches over 5% mismatched, and batches
    still unreconciled after their business day; the run fails on a quarantined file or a failed bank."""
    from finflows.flows.banking import reconciliation

    nothing_upstream(bank_ids, "choose_banks")
    per_bank = [b for b in per_bank if b]
    done = [o for b in per_bank for o in b["files"]]
    failed_banks = sorted(set(bank_ids) - {b["bank"] for b in per_bank})
    alerts = [a for o in done for a in o["alerts"]]
    with files.connect(finance_db()) as conn:
        alerts += reconciliation.unreconciled_batches(conn, dt.datetime.now(dt.UTC), settings.business_day_close())
    applied = [o for o in done if o["outcome"] == "applied"]
    quarantined_n = sum(o["outcome"] == "quarantined" for o in done)
    for o in applied:
        o["lines"] = o["settled"] + o["returned"] + o["unmatched"] + o["mismatch"] + o["duplicate"]
    metrics.emit_outcomes("bank_reconciliation", applied, quarantined_n + len(failed_banks), "lines")
    log.info(
        "%d file(s) applied, %d seen before, %d quarantined",
        len(applied),
        sum(o["outcome"] == "seen" for o in done),
        sum(o["outcome"] == "quarantined" for o in done),
    )
    if alerts or failed_banks:
        import html

        body = "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in alerts) + "</ul>"
        if failed_banks:
            body += f"<p>Banks whose check failed (see their task logs): {', '.join(failed_banks)}</p>"
        email_treasury(f"[finflows] bank reconciliation ALERT: {len(alerts)} item(s)", body, also=settings.ops_email())
    quarantined = [f"{o['bank']}/{o['file_name']}" for o in done if o["outcome"] == "quarantined"]
    fail_run_if_any(failed_banks + quarantined, len(done) + len(failed_banks), "file")
    return {"applied": len(applied), "alerts": len(alerts)}
