"""
### bank_transfer_retry: deliver bank files whose upload still failed after its retries

Hourly (Asia/Taipei). Each batch in `pay.transfer_retry` with status `waiting` is uploaded again
from the encrypted file archived when it was made (the same bytes, the same name, `NAME.part`
then rename; a file found already complete is not sent twice). Once the bank's cutoff on the
batch's processing date has passed, the batch is cancelled instead and its payments go back to
pending, so the next bank_payments run puts them on the next business day. After
`FINFLOWS_BANK_RETRY_LIMIT` tries a transfer is given up to a person. Treasury gets an email
whenever something was tried; the run is red when a transfer expired or was given up.

Manual run: param `everything` tries every waiting transfer now.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="bank_transfer_retry",
    description="Hourly at :15 (Asia/Taipei time): uploads that failed, retried",
    schedule=ZonedCron("15 * * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("bank_transfer_retry"),
    tags=tags("bank_transfer_retry"),
    params={"everything": Param(False, type="boolean", description="Try every waiting transfer, due or not")},
    doc_md=__doc__,
)
def bank_transfer_retry():
    @task
    def retry_transfers(**context) -> dict:
        """Deliver, cancel after the cutoff, or give up: each queued transfer once per run."""
        from finflows.flows.banking.tasks.transfer_retry import retry_transfers as run

        return run(bool(context["params"].get("everything")))

    retry_transfers()


bank_transfer_retry()
