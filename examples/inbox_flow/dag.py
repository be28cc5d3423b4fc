"""
### example_bank_fees: a bank's daily fee file in S3 → `example.bank_fee` (an example, not deployed)

Every file waiting under `fees/` in `FINFLOWS_BANK_FEES_BUCKET` goes through the shared inbox
lifecycle (`finflows.inbox`): loaded once, archived to `processed/`, or quarantined with a report
naming line, field and value, and the failure email says so. **Schedule**: daily 07:00
Europe/London (07:00 UTC in winter, 06:00 UTC in summer), or by hand.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.file_import import FileImportOperator
from finflows.schedules import ZonedCron, zone_start

FLOW = "examples.inbox_flow"  # where its package lives (here and in find_files): finflows.flows.<name> once shipped


@dag(
    dag_id="example_bank_fees",
    description="Daily 07:00 Europe/London: a bank's fee file loaded",
    schedule=ZonedCron("0 7 * * *", timezone="Europe/London"),
    start_date=zone_start("Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("example_bank_fees"),
    tags=tags("example_bank_fees", FLOW),
    doc_md=__doc__,
)
def example_bank_fees():
    @task
    def find_files() -> list[str]:
        """Every fee file waiting under fees/."""
        from examples.inbox_flow.tasks import find_files as run

        return run()

    FileImportOperator.partial(task_id="import_file", flow=FLOW, map_index_template="{{ file_name }}").expand(
        key=find_files()
    )


example_bank_fees()
