"""
### bank_payments: pending payments → Taiwan ACH (ACHP01, Big5) or CSV → PGP → each bank's SFTP

Daily at 06:00 Asia/Taipei, or by hand (param `banks`: some banks only). Per bank (mapped, at most
three banks at once), configured in `include/banking/banks.yaml`:

1. **Batch** (one transaction, row locks): pending payments due by the processing date (today
   before the bank's cutoff on a business day, else the next business day) become batches of at
   most 5,000 payments and 10 MB. A payee name Big5 cannot hold, or one too long for its 40
   bytes, is refused with the payment named and stays pending; nothing is replaced with `?`.
2. **Generate, encrypt, archive** once per batch: `ACHP01` byte-exact (250-byte records, CRLF,
   ROC dates, whole NTD, trailer count and total) or the bank's CSV variant; encrypted to the
   bank's key (and to ours, so finance can open its archived copy) and signed with ours
   (python-gnupg, a throwaway keyring per task, fingerprints pinned in the configuration); kept in
   the archive bucket with its sha256.
3. **Deliver at most once** with SFTPHook: `NAME.part`, remote size checked, renamed, each step
   recorded before it is taken; retried with exponential backoff before the rename; an outcome
   nobody can prove is *uncertain*: never resent, treasury alerted and decides in the finance
   monitor; audited in `pay.transfer`. Still failing → `pay.transfer_retry`, worked off hourly by
   `bank_transfer_retry`.

**Re-runs are safe**: payments move pending → batched → uploaded under row locks, so a second run
on the same day finds nothing to batch and nothing left to upload. The summary email goes to
treasury; the run is red when a bank failed, a payment was refused or a transfer was queued.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from finflows.dag_defaults import Tag, deadline, default_args
from finflows.operators.bank import BankPaymentFileOperator
from finflows.settings import configured_bank_ids

BANK_IDS = configured_bank_ids()  # the trigger form offers the configured banks only


@dag(
    dag_id="bank_payments",
    description="Daily 06:00 Asia/Taipei (22:00 UTC the day before): payment files to each bank",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("bank_payments"),
    tags=[Tag.FINANCE, Tag.BANKING, Tag.DAILY, Tag.PII],
    params={
        "banks": Param(
            [],
            type="array",
            items={"type": "string", **({"enum": BANK_IDS} if BANK_IDS else {})},
            uniqueItems=True,
            description="Only these banks (from include/banking/banks.yaml); empty: every enabled bank",
        )
    },
    doc_md=__doc__,
)
def bank_payments():
    @task
    def choose_banks(**context) -> list[str]:
        """The enabled banks of the configuration, or those the run asked for."""
        from finflows.flows.banking.common import choose_banks as run

        return run(context["params"].get("banks"))

    @task(trigger_rule="all_done")
    def summarise(bank_ids: list[str], outcomes: list[dict]) -> dict:
        """Email treasury the batches; fail the run if anything needs a person."""
        from finflows.flows.banking.payments_tasks import summarise as run

        return run(bank_ids, outcomes)

    bank_ids = choose_banks()
    pay_bank = BankPaymentFileOperator.partial(
        task_id="pay_bank",
        map_index_template="{{ bank }}",
        max_active_tis_per_dagrun=3,
        doc_md="Batch what is due, then generate, encrypt, archive and upload every batch not yet delivered.",
    ).expand(bank_id=bank_ids)
    summarise(bank_ids, pay_bank.output)


bank_payments()
