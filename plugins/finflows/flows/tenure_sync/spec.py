"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="tenure_sync",
            expected_minutes=15,
            trigger="tenure events on SQS (asset watcher) + hourly sweep (Europe/London) for waiting events",
            what="tenure create/update events → interim finance spreadsheet (tab per rent group, upsert by Payment Ref, protected) and/or `ifs.tenancy`; poison → DLQ",
            tags=("finance", "tenure", "event-driven", "pii"),
        ),
    ),
    settings=(
        Setting(
            "TENURE_QUEUE_URL",
            "https://sqs.eu-west-2.amazonaws.com/123456789012/tenure-events",
            "the SQS queue of tenure events",
            compose="http://aws:5000/123456789012/tenure-events",
        ),
        Setting(
            "TENURE_DLQ_URL",
            "https://sqs.eu-west-2.amazonaws.com/123456789012/tenure-events-dlq",
            "its dead-letter queue",
            compose="http://aws:5000/123456789012/tenure-events-dlq",
        ),
        Setting("INTERIM_SPREADSHEET", "interim-finance-accounts", "the interim finance spreadsheet's name"),
        Setting("TENURE_TARGET", "sheet", "where events go: sheet (today), both (while finance checks), database"),
    ),
    tables=(
        "ops.tenure_event",
        "ops.tenure_sync_state",
        "ifs.tenancy",
    ),
)
