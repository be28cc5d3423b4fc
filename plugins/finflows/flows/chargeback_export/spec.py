"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow

SPEC = Flow(
    dags=(
        Dag(
            dag_id="chargeback_export",
            expected_minutes=30,
            trigger="S3 ObjectCreated on `incoming/*.json` (S3 → SQS → asset watcher), or by hand",
            what="chargeback JSON → one CSV per card company, ≤ 4 files a batch → FTPS/FTP (`.part`, size check, rename) → SNS + email",
        ),
    ),
)
