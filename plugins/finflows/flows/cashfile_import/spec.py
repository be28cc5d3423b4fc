"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow

SPEC = Flow(
    dags=(
        Dag(
            dag_id="cashfile_import",
            expected_minutes=30,
            trigger="S3 ObjectCreated on `cashfiles/*.dat` (S3 → SQS → asset watcher) + daily 07:00 Europe/London sweep",
            what="CivicaPay cash file → finance Google Drive folder + interim finance DB (payments, suspense, raw lines)",
        ),
    ),
)
