"""Task bodies of bank_payments: each bank's due payments batched, generated, encrypted, archived and delivered. Imported inside tasks only."""

from __future__ import annotations

import logging
from dataclasses import asdict

from finflows import banks, files, metrics, payments, settings
from finflows.banking import circuit_now, email_treasury, encrypter, sftp
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
    label_mapped_task,
    nothing_upstream,
    s3_hook,
)

log = logging.getLogger(__name__)


def pay_bank(bank_id: str) -> dict:
    run_id = label_mapped_task("bank", bank_id)
    cfg = banks.load()
    bank = cfg.bank(bank_id)
    with files.connect(finance_db()) as conn, encrypter(cfg, bank) as encrypt:
        result = payments.pay_bank(
            conn,
            cfg=cfg,
            bank_id=bank_id,
            now=None,
            run_id=run_id,
            s3_hook=s3_hook(),
            sftp_hook=sftp(bank),
            encrypt=encrypt,
            archive_bucket=settings.archive_bucket(),
            attempts=settings.bank_upload_attempts(),
            backoff=settings.bank_upload_backoff(),
            circuit=circuit_now(conn, bank_id),
        )
    _lineage(bank, result)
    return asdict(result)


def _lineage(bank: banks.Bank, result: payments.BankRun) -> None:
    """The bank's payments in, each file now on the bank's server out."""
    from finflows import lineage

    delivered = [d for d in result.deliveries if d["outcome"] in ("uploaded", "already_there")]
    if not delivered:
        return
    lineage.read(finance_db(), lineage.table(settings.CONN_FINANCE_DB, "pay.payment"))
    for d in delivered:
        path = f"{bank.upload_path.rstrip('/')}/{d['file_name']}"
        lineage.wrote(sftp(bank), lineage.remote_file(bank.sftp_conn_id, path))


def summarise(bank_ids: list[str], outcomes: list[dict | None]) -> dict:
    """The treasury email; the run fails when a bank's task failed or anything needs a person."""
    nothing_upstream(bank_ids, "choose_banks")
    runs = [o for o in outcomes if o]
    failed = sorted(set(bank_ids) - {r["bank"] for r in runs})
    subject, body = payments.summary(runs)
    if failed:
        body += "<p><b>Failed banks (see their task logs):</b> " + ", ".join(failed) + "</p>"
        subject = subject.replace(" OK:", " PROBLEMS:")
    email_treasury(subject, body)
    log.info("%s", subject)
    sent = [d for r in runs for d in r["deliveries"] if d["outcome"] == "uploaded"]
    metrics.emit_outcomes("bank_payments", sent, len(failed), "payment_count")
    problems = [f"{r['bank']}: {p}" for r in runs for p in payments.BankRun(**r).problems]
    problems += [f"skipped {r['skipped_reason']}" for r in runs if r.get("left_pending")]
    fail_run_if_any(failed + problems, len(bank_ids), "bank")
    return {"banks": len(runs), "files": sum(1 for r in runs for d in r["deliveries"] if d["outcome"] == "uploaded")}
