"""
### bank_reconciliation: bank return files (ACHR01 / CSV) → settled and returned payments

Every 30 minutes, 08:00–18:30 Asia/Taipei, Monday to Friday (and by hand). Per bank (mapped, at
most three at once), as configured in `include/banking/banks.yaml`:

1. list the bank's download directory for its reconciliation pattern (e.g. `REC_{YYYYMMDD}*`);
   a file already seen (`ops.file_control`: name + sha256) is skipped;
2. download, decrypt with our key and **verify the bank's signature**: unsigned, badly signed,
   signed by another key or not encrypted to us → quarantined (archive bucket,
   `bank-reconciliation/quarantine/…` + `.error.json`), alerted, never applied;
3. parse `ACHR01` (or the bank's CSV variant) and apply it in **one transaction**: each line finds
   its payment by the original presenting date and sequence (PDATE, PSEQ; in an ACHR01 the payee's
   side is PBANK/PCLNO and ours RBANK/RCLNO) and settles it (the bank's success code) or returns it
   with the clearing house's reason code and its meaning; a line that matches no payment, disagrees
   on reference, amount or account, or answers a payment already answered is recorded in
   `pay.return_line` as unmatched / mismatch / duplicate. A truncated or malformed file applies
   nothing and is quarantined naming line, field and value;
4. for a bank whose return files list only returned items, payments with no return once its
   `return_window_days` business days have passed settle.

**Alerts** (email to operations and treasury): any quarantined file, any unmatched line, a batch
whose mismatches exceed 5% of its payments, and an uploaded batch with no reconciliation after
its business day closed (`FINFLOWS_BUSINESS_DAY_CLOSE`, 18:00), once per batch.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.bank import BankReturnFileOperator
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="bank_reconciliation",
    description="Every 30 minutes 08:00-18:30 Asia/Taipei Mon-Fri (00:00-10:30 UTC): bank return files",
    schedule=ZonedCron("*/30 8-18 * * 1-5", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("bank_reconciliation"),
    tags=tags("bank_reconciliation"),
    doc_md=__doc__,
)
def bank_reconciliation():
    @task
    def choose_banks() -> list[str]:
        """Every enabled bank of the configuration."""
        from finflows.flows.banking.common import choose_banks as run

        return run(None)

    @task(trigger_rule="all_done")
    def alert(bank_ids: list[str], per_bank: list[dict]) -> dict:
        """Email what needs a person; fail the run on a quarantined file or a failed bank."""
        from finflows.flows.banking.tasks.reconciliation import reconciliation_summary as run

        return run(bank_ids, per_bank)

    bank_ids = choose_banks()
    reconcile_bank = BankReturnFileOperator.partial(
        task_id="reconcile_bank",
        map_index_template="{{ bank }}",
        max_active_tis_per_dagrun=3,
        doc_md="New return files: download, decrypt, verify, parse, apply in one transaction, archive.",
    ).expand(bank_id=bank_ids)
    alert(bank_ids, reconcile_bank.output)


bank_reconciliation()
