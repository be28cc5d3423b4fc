"""
### example_bank_fees: a bank's daily fee file in S3 → `example.bank_fee` (an example, not deployed)

Every file waiting under `fees/` in `FINFLOWS_BANK_FEES_BUCKET` goes through the shared inbox
lifecycle (`finflows.inbox`): loaded once, archived to `processed/`, or quarantined with a report.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from finflows.dag_defaults import default_args
from finflows.operators.file_import import FileImportOperator
from finflows.schedules import ZonedCron


@dag(
    dag_id="example_bank_fees",
    description="Daily 07:00 Europe/London: a bank's fee file loaded",
    schedule=ZonedCron("0 7 * * *", timezone="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    doc_md=__doc__,
)
def example_bank_fees():
    @task
    def find_files() -> list[str]:
        from finflows import settings
        from finflows.task_support import s3_hook

        keys = s3_hook().list_keys(settings.get("BANK_FEES_BUCKET", "finflows-bank-fees"), prefix="fees/") or []
        return sorted(k for k in keys if k != "fees/")

    FileImportOperator.partial(
        task_id="import_file", flow="examples.inbox_flow", map_index_template="{{ file_name }}"
    ).expand(key=find_files())


example_bank_fees()
