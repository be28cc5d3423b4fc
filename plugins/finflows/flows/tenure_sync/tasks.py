"""Task bodies of the tenure_sync DAG: hooks from Airflow connections around finflows.flows.tenure_sync.tenure."""

from __future__ import annotations

from typing import Any

from finflows import files, metrics, settings
from finflows.flows.tenure_sync import tenure
from finflows.seams import AwsClient
from finflows.task_support import delivered_messages, finance_db


def sqs_client() -> AwsClient:
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    return SqsHook(aws_conn_id=settings.CONN_AWS).get_conn()


def sheet_writer() -> tenure.SheetWriter:
    from finflows.google import sheets_hook

    return tenure.SheetWriter(sheets_hook(settings.CONN_GOOGLE), settings.interim_spreadsheet())


def collect(context: dict[str, Any]) -> dict[str, Any]:
    with files.connect(finance_db()) as conn:
        return tenure.collect(
            conn,
            sqs_client(),
            queue_url=settings.tenure_queue_url(),
            dlq_url=settings.tenure_dlq_url(),
            delivered=delivered_messages(context),
            run_id=context["run_id"],
        )


def apply(context: dict[str, Any]) -> dict[str, Any]:
    target = (context.get("params") or {}).get("target") or settings.tenure_target()
    sheet = None
    if "sheet" in tenure.targets_of(target):
        sheet = sheet_writer()
        sheet.ensure_protected()
    with files.connect(finance_db()) as conn:
        result = tenure.apply_pending(conn, target=target, run_id=context["run_id"], sheet=sheet)
    # events, not files: rows are the tenures applied (sheet and/or table)
    metrics.emit("tenure_sync", files=0, rows=result["applied"], nbytes=0, failures=0, seconds=metrics.run_seconds())
    return result
