"""
### chargeback_export: chargeback data landing in S3 → CSV files → card companies' FTP servers

Chargeback records (JSON, docs/formats.md §4) arrive under `incoming/` in the chargeback bucket. Each
file is validated record by record; one CSV per card company is written (RFC 4180, UTF-8, a
header, amounts in the currency's own minor units, the ARN as text, formula-led cells
neutralised) and uploaded to that company's FTPS or FTP server as configured in
`include/chargeback_destinations.json`. **A batch never carries more than four files**: rows
beyond that go into the next batch. A message goes to the `chargeback-notifications` SNS topic
and an email to operations on success and on failure.

**Triggers**: S3 ObjectCreated for `incoming/*.json` (S3 → SQS → asset watcher), or by hand: a run
exports whatever is waiting in `incoming/`.

**Re-runs are safe**: each input is identified by name and sha256 in `ops.file_control`; each
uploaded file is recorded in `ops.delivery` and never uploaded twice; uploads are written as
`NAME.part`, size-checked, then renamed. The same input again uploads nothing.

**Bad files**: one invalid record (e.g. an ARN turned into `2.47E+22` by a spreadsheet, an
unmasked card number, an unknown currency) refuses the whole file: it is moved to `quarantine/`
with `<name>.error.json` naming record index, field and value, and nothing of it is exported.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from finflows import settings
from finflows.dag_defaults import deadline, default_args, tags
from finflows.notifiers import OperationsEmailNotifier, SnsTopicNotifier
from finflows.operators.chargeback import ChargebackExportOperator
from finflows.triggers import s3_event_asset

chargeback_inbox = s3_event_asset("chargeback_inbox", settings.chargeback_queue_url(), settings.CONN_AWS)


@dag(
    dag_id="chargeback_export",
    description="On each chargeback file landing in S3: CSVs to the card companies",
    schedule=[chargeback_inbox],
    catchup=False,
    max_active_runs=1,
    # the failure email, and the same news on the chargeback topic (as the successes go there)
    default_args=default_args(
        on_failure_callback=[
            OperationsEmailNotifier(),
            SnsTopicNotifier(
                target_arn=settings.chargeback_topic_arn(),
                subject="[finflows] chargeback_export FAILED: {{ ti.task_id }}",
                message="run {{ run_id }}: {{ exception }}",
            ),
        ]
    ),
    deadline=deadline("chargeback_export"),
    tags=tags("chargeback_export"),
    doc_md=__doc__,
)
def chargeback_export():
    @task
    def find_files() -> list[str]:
        """Every JSON file waiting under incoming/."""
        from finflows.flows.chargeback_export.tasks import find_files as run

        return run()

    @task(trigger_rule="all_done")
    def notify(keys: list[str], outcomes: list[dict]) -> dict:
        """SNS message and email with what was delivered; fails the run if any file failed."""
        from finflows.flows.chargeback_export.tasks import notify as run

        return run(keys, outcomes)

    keys = find_files()
    exported = ChargebackExportOperator.partial(
        task_id="export_file",
        map_index_template="{{ file_name }}",
        doc_md="Validate, plan batches of at most four files, upload each not yet delivered, archive.",
    ).expand(key=keys)
    notify(keys, exported.output)


chargeback_export()
