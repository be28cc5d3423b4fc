"""Task body of bank_payments' summary (each bank's files are ``BankPaymentFileOperator``). Imported inside tasks only."""

from __future__ import annotations

import logging
from typing import Any

from finflows import metrics
from finflows.flows.banking import payments
from finflows.flows.banking.common import email_treasury
from finflows.flows.banking.delivery import DELIVERED, Outcome
from finflows.task_support import (
    fail_run_if_any,
    nothing_upstream,
)

log = logging.getLogger(__name__)


def summarise(bank_ids: list[str], outcomes: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The treasury email; the run fails when a bank's task failed or anything needs a person."""
    nothing_upstream(bank_ids, "choose_banks")
    if isinstance(outcomes, dict):  # Airflow 3.3 hands a mapped task group's only result over unwrapped
        outcomes = [outcomes]
    runs = [o for o in outcomes if o]
    failed = sorted(set(bank_ids) - {r["bank"] for r in runs})
    subject, body = payments.summary(runs)
    if failed:
        body += "<p><b>Failed banks (see their task logs):</b> " + ", ".join(failed) + "</p>"
        subject = subject.replace(" OK:", " PROBLEMS:")
    email_treasury(subject, body)
    log.info("%s", subject)
    sent = [d for r in runs for d in r["deliveries"] if d["outcome"] == Outcome.UPLOADED]
    metrics.emit_outcomes("bank_payments", sent, len(failed), "payment_count")
    problems = [f"{r['bank']}: {p}" for r in runs for p in payments.BankRun(**r).problems]
    problems += [f"skipped {r['skipped_reason']}" for r in runs if r.get("left_pending")]
    fail_run_if_any(failed + problems, len(bank_ids), "bank")
    # a cleared try reports its run's files too (already_delivered)
    return {"banks": len(runs), "files": sum(1 for r in runs for d in r["deliveries"] if d["outcome"] in DELIVERED)}
