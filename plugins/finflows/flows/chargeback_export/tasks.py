"""Task bodies of the chargeback_export DAG: hooks from Airflow connections around finflows.flows.chargeback_export.chargeback."""

from __future__ import annotations

import logging
from typing import Any

from finflows import files, metrics, settings
from finflows.flows.chargeback_export import chargeback
from finflows.flows.chargeback_export.chargeback import Status
from finflows.task_support import (
    fail_run_if_any,
    failed_keys,
    finance_db,
    s3_hook,
)

log = logging.getLogger(__name__)


def find_files() -> list[str]:
    from airflow.sdk import get_current_context

    bucket = settings.chargeback_bucket()
    with files.connect(finance_db()) as conn:  # a cleared run lists again what it exported before
        before = files.processed_by_run(conn, chargeback.FLOW, get_current_context()["run_id"], bucket)
    keys = sorted(set(chargeback.discover(s3_hook(), bucket)) | set(before))
    log.info("%d chargeback file(s) waiting: %s", len(keys), ", ".join(keys) or "none")
    return keys


def publish(subject: str, body: str) -> None:
    """The SNS topic message and the email, both: the seed's notification on success and failure."""
    import html

    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from finflows.emails import header_safe

    subject = header_safe(subject)  # S3 key names in it are chosen by whoever uploads the file
    sns: Any = SnsHook  # the provider leaves its __init__ untyped
    sns(aws_conn_id=settings.CONN_AWS).publish_to_target(
        target_arn=settings.chargeback_topic_arn(), message=body, subject=subject[:100]
    )
    with SmtpHook(smtp_conn_id=settings.CONN_SMTP) as smtp:
        smtp.send_email_smtp(to=settings.ops_email(), subject=subject, html_content=f"<pre>{html.escape(body)}</pre>")


def notify(keys: list[str], outcomes: list[dict[str, Any] | None]) -> dict[str, Any]:
    done = [o for o in outcomes if o]
    failed = failed_keys(keys, outcomes)
    subject, body = chargeback.summary_message(done, failed)
    if keys:
        publish(subject, body)
    log.info("%s\n%s", subject, body)
    metrics.emit_outcomes(
        "chargeback_export", [o for o in done if o["status"] == Status.EXPORTED], len(failed), "records"
    )
    fail_run_if_any(failed, len(keys), "chargeback file")
    return {"files": len(done), "delivered": sum(d["uploaded"] for o in done for d in o["deliveries"])}
