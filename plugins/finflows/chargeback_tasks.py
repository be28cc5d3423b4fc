"""Task bodies of the chargeback_export DAG: hooks from Airflow connections around finflows.chargeback."""

from __future__ import annotations

import logging
from typing import Any

from finflows import chargeback, settings
from finflows.dag_defaults import notify_failure

log = logging.getLogger(__name__)


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=settings.CONN_AWS)


def find_files() -> list[str]:
    keys = chargeback.discover(_s3(), settings.chargeback_bucket())
    log.info("%d chargeback file(s) waiting: %s", len(keys), ", ".join(keys) or "none")
    return keys


def export_file(key: str) -> dict:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    context = get_current_context()
    context["chargeback_file"] = key.rsplit("/", 1)[-1]  # names the mapped task instance in the UI
    try:
        outcome = chargeback.export_file(
            key,
            bucket=settings.chargeback_bucket(),
            run_id=context["run_id"],
            s3_hook=_s3(),
            pg_hook=PostgresHook(postgres_conn_id=settings.CONN_FINANCE_DB),
        )
    except chargeback.ChargebackRejected as e:
        raise AirflowFailException(str(e)) from None
    return chargeback.as_dict(outcome)


def publish(subject: str, body: str) -> None:
    """The SNS topic message and the email, both: the seed's notification on success and failure."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    SnsHook(aws_conn_id=settings.CONN_AWS).publish_to_target(
        target_arn=settings.chargeback_topic_arn(), message=body, subject=subject[:100]
    )
    with SmtpHook(smtp_conn_id=settings.CONN_SMTP) as smtp:
        smtp.send_email_smtp(to=settings.ops_email(), subject=subject, html_content=f"<pre>{body}</pre>")


def notify(keys: list[str], outcomes: list[dict | None]) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    done = [o for o in outcomes if o]
    failed = sorted(set(keys) - {o["key"] for o in done})
    subject, body = chargeback.summary_message(done, failed)
    if keys:
        publish(subject, body)
    log.info("%s\n%s", subject, body)
    if failed:
        raise AirflowFailException(f"{len(failed)} of {len(keys)} chargeback file(s) failed: {', '.join(failed)}")
    return {"files": len(done), "delivered": sum(d["uploaded"] for o in done for d in o["deliveries"])}


def notify_task_failure(context: dict[str, Any]) -> None:
    """Failure callback: the SNS message as well as the usual failure email."""
    notify_failure(context)
    ti = context["ti"]
    publish(
        f"[finflows] chargeback_export FAILED: {ti.task_id}", f"run {context['run_id']}: {context.get('exception')}"
    )
