"""
### cashfile_import: CivicaPay cash files → finance Google Drive + interim finance database

CivicaPay's SFTP client writes a `.dat` cash file (docs/formats.md §1) under `cashfiles/` in the
cash-file bucket every evening. Each file is copied to the finance Google Drive folder and
imported into the interim finance system (IFS) in one transaction: control row, raw lines,
payments, and a suspense row for every payment whose rent account IFS does not know.

**Triggers**: an S3 ObjectCreated event for `cashfiles/*.dat` (S3 → SQS → asset watcher): that
run imports the files its events name, up to four runs at once; and a daily 07:00 Europe/London
sweep that imports anything still waiting, so a lost event never loses a file. Trigger by hand at
any time: the run imports whatever is in the inbox.

**Re-runs are safe**: a file is identified by name and sha256 in `ops.file_control`. The same file
again is skipped and recorded as a duplicate (a warning); the same name with different content is
quarantined and the task fails for a human to decide.

**Bad files** (wrong length, sign, amount, impossible date, non-digit account, empty file) are moved
to `quarantine/` with `<name>.error.json` naming every bad line, field and value; nothing is loaded;
the task fails with that message. Fix the file and upload it again under `cashfiles/`.

Optional first step for sites without a managed SFTP endpoint: set `FINFLOWS_CASHFILE_SFTP_DROP`
(a directory on `sftp_civicapay`) and files there are moved into the inbox first.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, dag, task

from finflows import settings
from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.file_import import FileImportOperator
from finflows.schedules import ZonedCron, zone_start
from finflows.triggers import s3_event_asset

cashfile_events = s3_event_asset("cashfile_inbox", settings.cashfile_queue_url(), settings.CONN_AWS)


@dag(
    dag_id="cashfile_import",
    description="On each cash file landing in S3, and daily 07:00 Europe/London as a sweep",
    schedule=AssetOrTimeSchedule(timetable=ZonedCron("0 7 * * *", timezone="Europe/London"), assets=cashfile_events),
    start_date=zone_start("Europe/London"),
    catchup=False,
    # event runs take only their own files (see finflows.flows.cashfile_import.cashfile.discover) and each file is
    # imported under its own lock, so runs may overlap: a file landing while another is still
    # importing gets its run at once instead of waiting in the asset queue for the first to end
    max_active_runs=4,
    default_args=default_args(),
    deadline=deadline("cashfile_import"),
    tags=tags("cashfile_import"),
    doc_md=__doc__,
)
def cashfile_import():
    @task
    def pull_sftp_drop() -> int:
        """Move files from an SFTP drop directory into the inbox (only where configured)."""
        from finflows.flows.cashfile_import.tasks import pull_sftp_drop as run

        return run()

    @task
    def find_files(**context) -> list[str]:
        """The event's object keys plus everything waiting in the inbox."""
        from finflows.flows.cashfile_import.tasks import find_files as run

        return run(context)

    @task(trigger_rule="all_done")
    def summarise(keys: list[str], outcomes: list[dict]) -> dict:
        """One line per file and the run's totals; fails the run if any file failed."""
        from finflows.flows.cashfile_import.tasks import summarise as run

        return run(keys, outcomes)

    keys = find_files()
    pull_sftp_drop() >> keys
    imported = FileImportOperator.partial(
        task_id="import_file",
        flow="cashfile_import",
        map_index_template="{{ file_name }}",
        retries=3,
        doc_md="Checksum, decide, load in one transaction, copy to Drive, archive: each step idempotent.",
    ).expand(key=keys)
    summarise(keys, imported.output)


cashfile_import()
