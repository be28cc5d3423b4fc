"""
### tenure_sync: tenure create/update events → interim finance spreadsheet and/or database

On each tenure event (the queue watched by an asset), and hourly on the hour Europe/London as a
sweep of whatever the events missed. Tenure events from Manage My Home (SNS → the `tenure-events`
SQS queue; schema and examples in `include/tenure/`) become rows of the interim finance spreadsheet: one tab per rent group,
columns A:M, upserted by **Payment Ref**, which comes from the finance accounts table
(`ifs.rent_account`), not from the event.

**Target** (`FINFLOWS_TENURE_TARGET`, or the `target` param of a manual run): `sheet` (today),
`both` (while finance checks the table against the sheet), `database` (`ifs.tenancy` only, once
the spreadsheet is phased out, as the seed plans).

**Triggers**: messages on the queue (asset watcher; a run handles everything that arrived), and an
hourly sweep that retries events still waiting for their rent account.

**Safe to repeat**: events are stored before they leave the queue; per tenure only a newer version
changes anything (duplicates and out-of-order events are recorded as `stale`); the sheet is written
in one request per run, inside the database transaction's lifetime, and upserts by Payment Ref.
The spreadsheet's tabs are protected by the flow: only its service account edits them.

**Poison messages** (not JSON, wrong shape, unknown rent group) go to `tenure-events-dlq` with the
reason as a message attribute and in `ops.tenure_event`. Events waiting for a rent account are in
`ops.tenure_event` with status `pending`.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, Param, dag, task

from finflows import settings
from finflows.dag_defaults import deadline, default_args, tags
from finflows.schedules import ZonedCron, zone_start
from finflows.triggers import sqs_asset

# tenure events carry tenants' names, dates of birth and addresses: their bodies are kept in the
# archive bucket, not in the asset event (which every Viewer of the Airflow UI can read), any card
# number typed into their text masked
tenure_events = sqs_asset(
    "tenure_events",
    settings.tenure_queue_url(),
    settings.CONN_AWS,
    park=f"s3://{settings.archive_bucket()}/tenure-events/inbox/",
    mask="finflows.formats.tenure.mask_body",  # no card number kept in the archive
)


@dag(
    dag_id="tenure_sync",
    description="On each tenure event, and hourly (Europe/London time) as a sweep",
    schedule=AssetOrTimeSchedule(timetable=ZonedCron("0 * * * *", timezone="Europe/London"), assets=tenure_events),
    start_date=zone_start("Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("tenure_sync"),
    params={
        "target": Param(
            None,
            type=["null", "string"],
            enum=[None, "sheet", "database", "both"],
            description="Override FINFLOWS_TENURE_TARGET for this run.",
        )
    },
    tags=tags("tenure_sync"),
    doc_md=__doc__,
)
def tenure_sync():
    @task
    def collect(**context) -> dict:
        """Store every message as an event (poison → dead-letter queue), then delete it from the queue."""
        from finflows.flows.tenure_sync.tasks import collect as run

        return run(context)

    @task
    def apply(**context) -> dict:
        """Newest pending version per tenure → sheet and/or table; older or repeated → stale."""
        from finflows.flows.tenure_sync.tasks import apply as run

        return run(context)

    collect() >> apply()


tenure_sync()
