"""Task bodies of the cashfile_import DAG: hooks from Airflow connections around finflows.cashfile."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from finflows import cashfile, settings

log = logging.getLogger(__name__)


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=settings.CONN_AWS)


def pull_sftp_drop() -> int:
    drop = settings.get("CASHFILE_SFTP_DROP", "")
    if not drop:
        log.info("no SFTP drop configured (FINFLOWS_CASHFILE_SFTP_DROP); files arrive in S3 directly")
        return 0
    from airflow.providers.amazon.aws.transfers.sftp_to_s3 import SFTPToS3Operator
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    sftp = SFTPHook(ssh_conn_id=settings.CONN_SFTP_CIVICAPAY)
    moved = 0
    for name in sorted(sftp.list_directory(drop)):
        if not name.lower().endswith(".dat"):
            continue
        SFTPToS3Operator(
            task_id=f"sftp_to_s3_{moved}",
            sftp_conn_id=settings.CONN_SFTP_CIVICAPAY,
            aws_conn_id=settings.CONN_AWS,
            sftp_path=f"{drop}/{name}",
            s3_bucket=settings.cashfile_bucket(),
            s3_key=f"{cashfile.INBOX}{name}",
        ).execute({})
        sftp.delete_file(f"{drop}/{name}")  # only after the object is in S3
        moved += 1
    log.info("moved %d file(s) from sftp:%s into the inbox", moved, drop)
    return moved


def find_files(context: dict[str, Any]) -> list[str]:
    event_keys: list[str] = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload") or {}
            for message in payload.get("message_batch", []):
                event_keys += cashfile.keys_from_message(message.get("Body", ""))
    keys = cashfile.discover(_s3(), settings.cashfile_bucket(), event_keys)
    log.info("%d cash file(s) waiting: %s", len(keys), ", ".join(keys) or "none")
    return keys


def import_file(key: str, context: dict[str, Any]) -> dict:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from finflows.google import DriveHook

    get_current_context()["cash_file"] = key.rsplit("/", 1)[-1]  # names the mapped task instance in the UI
    try:
        outcome = cashfile.import_file(
            key,
            bucket=settings.cashfile_bucket(),
            run_id=context["run_id"],
            s3_hook=_s3(),
            pg_hook=PostgresHook(postgres_conn_id=settings.CONN_FINANCE_DB),
            drive_hook=DriveHook(gcp_conn_id=settings.CONN_GOOGLE),
            drive_folder=settings.finance_drive_folder(),
        )
    except cashfile.CashFileRejected as e:
        raise AirflowFailException(str(e)) from None  # bad input: retrying cannot help
    return cashfile.as_dict(outcome)


def summarise(keys: list[str], outcomes: list[dict | None]) -> dict:
    """Totals of the run. A file whose import failed has no outcome; if any did, the run fails
    (after logging what did succeed) so the DAG run is red and the failure email names it."""
    from airflow.sdk.exceptions import AirflowFailException

    done = [o for o in outcomes if o]
    total = sum((Decimal(o["total"]) for o in done if o["status"] == "IMPORTED"), Decimal(0))
    summary = {
        "files": len(done),
        "imported": sum(o["status"] == "IMPORTED" for o in done),
        "duplicates": sum(o["status"] == "DUPLICATE" for o in done),
        "payments": sum(o["payments"] for o in done if o["status"] == "IMPORTED"),
        "suspense": sum(o["suspense"] for o in done if o["status"] == "IMPORTED"),
        "total": str(total),
        "failed": len(keys) - len(done),
    }
    for o in done:
        log.info(
            "%-16s %-24s %6d payments %4d suspense total %s",
            o["status"],
            o["file_name"],
            o["payments"],
            o["suspense"],
            o["total"],
        )
    log.info("cashfile_import: %s", summary)
    if summary["failed"]:
        failed = sorted(set(keys) - {o["key"] for o in done})
        raise AirflowFailException(f"{summary['failed']} of {len(keys)} cash file(s) failed: {', '.join(failed)}")
    return summary
