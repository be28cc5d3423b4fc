"""Task bodies of the card_reconciliation DAG: hooks from Airflow connections around finflows.flows.card_reconciliation.card."""

from __future__ import annotations

import logging
from typing import Any

from finflows import files, metrics, settings
from finflows.flows.card_reconciliation import card
from finflows.flows.card_reconciliation.card import Status
from finflows.task_support import (
    fail_run_if_any,
    failed_keys,
    failed_tasks,
    finance_db,
    s3_hook,
)

log = logging.getLogger(__name__)


def fetch_from_ftps(day: str | None) -> list[str]:
    from airflow.sdk import get_current_context

    from finflows.hooks.ftp import FTPSHook

    hook = FTPSHook(ftp_conn_id=settings.CONN_FTPS_ACQUIRER)
    try:
        with files.connect(finance_db()) as conn:
            return card.fetch_from_ftps(
                hook,
                settings.statement_ftps_dir(),
                s3_hook(),
                settings.statement_bucket(),
                conn,
                day,
                run_id=get_current_context()["run_id"],
            )
    finally:
        hook.close_conn()


def find_files(day: str | None) -> list[str]:
    from airflow.sdk import get_current_context

    bucket = settings.statement_bucket()
    with files.connect(finance_db()) as conn:  # a cleared run lists again what it loaded before
        before = files.processed_by_run(conn, card.FLOW, get_current_context()["run_id"], bucket)
    keys = sorted(set(card.discover(s3_hook(), bucket, day)) | set(before))
    log.info("%d statement(s) waiting in S3: %s", len(keys), ", ".join(keys) or "none")
    return keys


def summarise(keys: list[str], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Log the daily summary of what loaded; fail the run if any statement failed."""
    done = [o for o in outcomes if o]
    days = sorted({card.statement_day(o["file_name"]) for o in done})
    with files.connect(finance_db()) as conn:
        rows = card.daily_summary(conn, days) if days else []
    for day, store, brand, sales, instalments, gross, discount, net in rows:
        log.info(
            "%s store %s %-10s %5d sales %5d instalments gross %12s discount %10s net %12s",
            day,
            store,
            brand,
            sales,
            instalments,
            gross,
            discount,
            net,
        )
    failed = failed_keys(keys, outcomes)
    metrics.emit_outcomes(
        "card_reconciliation", [o for o in done if o["status"] == Status.LOADED], len(failed), "records"
    )
    fail_run_if_any(failed, len(keys), "statement")
    if failed_tasks(["fetch_from_ftps"]):
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"the FTPS server could not be read: its new statements were not collected "
            f"({len(done)} statement(s) already in S3 were loaded)"
        )
    return {"loaded": len(done), "days": days, "summary_rows": len(rows)}
