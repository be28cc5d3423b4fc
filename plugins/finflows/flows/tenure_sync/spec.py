"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow

SPEC = Flow(
    dags=(
        Dag(
            dag_id="tenure_sync",
            expected_minutes=15,
            trigger="tenure events on SQS (asset watcher) + hourly sweep (Europe/London) for waiting events",
            what="tenure create/update events → interim finance spreadsheet (tab per rent group, upsert by Payment Ref, protected) and/or `ifs.tenancy`; poison → DLQ",
        ),
    ),
)
