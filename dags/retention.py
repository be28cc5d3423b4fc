"""
### retention: records past their age leave the finance database, kept in the archive first

Daily at 02:30 Asia/Taipei, one task per kind of record (`include/retention.yaml`, validated when
loaded): **payments** settled, returned or failed more than 7 years ago (with their events and
return lines), **card_facts** (card.fact_transaction) by transaction date, 7 years, and
**health_checks** (bank health checks and connection tests), 2 years, are exported to the archive
bucket under `retention/<kind>/<run>/` (gzip CSV per table and a `manifest.json` with each file's
rows and sha256) and only then removed, in batches of `batch_size` rows, each its own short
transaction (rows a flow holds are skipped until the next run). **tenure_event_bodies**: the
stored bodies of tenure events (names, dates of birth, addresses) are emptied after 90 days; the
rows stay. Each kind's run is recorded in `ops.retention_run`.

Erasure of one person's data on request is a command, not a DAG (the id must not sit in a run's
conf): `python -m finflows.flows.retention erase payee|tenure <id> --by <who> --reason <why>`.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.schedules import ZonedCron, zone_start

KINDS = ["payments", "card_facts", "health_checks", "tenure_event_bodies"]


@dag(
    dag_id="retention",
    description="Daily 02:30 Asia/Taipei (18:30 UTC the day before): records past their age archived, then removed",
    schedule=ZonedCron("30 2 * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("retention"),
    tags=tags("retention"),
    doc_md=__doc__,
)
def retention():
    @task(map_index_template="{{ kind }}")
    def expire(kind: str) -> dict:
        """Export the kind's rows past their age to the archive bucket, then remove them."""
        from finflows.flows.retention.tasks import expire as run

        return run(kind)

    expire.expand(kind=KINDS)


retention()
