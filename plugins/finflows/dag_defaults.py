"""What every finflows DAG shares: owner, approved tags, retries, failure email.

Imported by DAG files at parse time: keep it light (no provider, pandas or client imports here).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

OWNER = "finance-data-eng"


class Tag(StrEnum):
    """The approved DAG tags; the integrity test refuses any other."""

    FINANCE = "finance"
    CASH = "cash"
    CARDS = "cards"
    BANKING = "banking"
    CHARGEBACKS = "chargebacks"
    TENURE = "tenure"
    EVENT_DRIVEN = "event-driven"
    DAILY = "daily"
    OPERATIONS = "operations"
    PII = "pii"


APPROVED_TAGS = frozenset(t.value for t in Tag)


def notify_failure(context: dict[str, Any]) -> None:
    """Task failure callback: email the operations address with the task and a link to its log.

    The SMTP notifier is imported here, when a task fails, not when the DAG file is parsed.
    """
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from finflows import settings

    SmtpNotifier(
        to=settings.ops_email(),
        smtp_conn_id=settings.CONN_SMTP,
        subject="[finflows] FAILED {{ ti.dag_id }}.{{ ti.task_id }} ({{ run_id }})",
        html_content=(
            "<p>Task <b>{{ ti.task_id }}</b> of <b>{{ ti.dag_id }}</b> failed "
            "(try {{ ti.try_number }}, run {{ run_id }}).</p>"
            "<p>Error: <code>{{ exception | e }}</code></p>"
            '<p><a href="{{ ti.log_url }}">Task log</a></p>'
        ),
    )(context)  # calling the notifier renders its templates, then sends


def default_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": notify_failure,
    }
    args.update(overrides)
    return args
