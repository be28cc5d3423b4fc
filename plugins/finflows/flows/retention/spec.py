"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="retention",
            expected_minutes=120,
            trigger="daily 02:30 Asia/Taipei",
            what="records past `include/retention.yaml`'s ages (settled/returned/failed payments with their events and return lines, and card facts: 7 years; health checks and connection tests: 2 years) exported to the archive bucket under `retention/<kind>/<run>/` (gzip CSV per table + `manifest.json` with rows and sha256), the upload checked, then removed in batches of 10,000, each its own short transaction (`FOR UPDATE SKIP LOCKED`: a row a flow holds waits); tenure event bodies emptied after 90 days; every run in `ops.retention_run`. Erasure on request: `python -m finflows.flows.retention erase payee\\|tenure <id> --by <who> --reason <why>` (names, accounts, ids, addresses replaced, amounts and references kept; refused while a payee's payment is in flight; recorded in `ops.erasure` by the id's sha256). S3 lifecycle rules per bucket: `deploy/s3/lifecycle.json`",
            tags=("finance", "operations", "pii", "daily"),
        ),
    ),
    settings=(Setting("RETENTION_FILE", "{include}/retention.yaml", "the retention policy (ages per kind of record)"),),
    tables=(
        "ops.retention_run",
        "ops.erasure",
    ),
)
