"""
### bank_payments: pending payments → Taiwan ACH (ACHP01, Big5) or CSV → PGP → each bank's SFTP

Daily at 06:00 Asia/Taipei, or by hand (param `banks`: some banks only). Per bank (mapped, at most
three banks at once), configured in `include/banking/banks.yaml`:

1. **Prepare** (`prepare`): pending payments due by the processing date (today before the bank's
   cutoff on a business day, else the next business day) become batches of at most 5,000 payments
   and 10 MB (one transaction, row locks); a payee name Big5 cannot hold is refused with the
   payment named and stays pending, a possible duplicate is held for a person. Each batch's file
   is generated once (`ACHP01` byte-exact: 250-byte records, CRLF, ROC dates, whole NTD, trailer
   count and total; or the bank's CSV), encrypted to the bank's key and to ours (finance can open
   its archived copy), signed with ours (fingerprints pinned) and archived with its sha256.
   Nothing is sent.
2. **Approve** (`approve`, Browse → Required Actions): a second person, one of
   `FINFLOWS_PAYMENT_APPROVERS` and never the user who triggered the run, sees per bank the files,
   counts, totals, the ten largest payments (reference and amount) and held duplicates, and
   approves or rejects (with a reason) by the bank's cutoff less `FINFLOWS_APPROVAL_MARGIN_MINUTES`.
   Rejected or unanswered: nothing is uploaded, the files are cancelled, their payments wait for
   the next business day, treasury is emailed. A bank's `approval` in `banks.yaml` may be
   `required` (default), `{above: N}` or `none` (then the step returns at once).
3. **Upload** (`upload`), only approved files (the database refuses any other): `NAME.part`,
   remote size checked, renamed, each step recorded before it is taken (at most once; an outcome
   nobody can prove is *uncertain*: never resent, treasury alerted and decides in the finance
   monitor); audited in `pay.transfer`. Still failing → `pay.transfer_retry`, worked off hourly
   by `bank_transfer_retry` (which sends approved files only).

**Re-runs are safe**: payments move pending → batched → uploaded under row locks, so a second run
on the same day finds nothing to batch and nothing left to upload. The summary email goes to
treasury; the run is red when a bank failed, a payment was refused or a transfer was queued.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task, task_group

from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.approval import PaymentApprovalOperator
from finflows.operators.bank import BankPaymentFileOperator
from finflows.schedules import ZonedCron, zone_start
from finflows.settings import ALL_BANKS, configured_bank_ids

BANK_IDS = configured_bank_ids()  # the trigger form offers the configured banks only


@dag(
    dag_id="bank_payments",
    description="Daily 06:00 Asia/Taipei (22:00 UTC the day before): payment files to each bank",
    schedule=ZonedCron("0 6 * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("bank_payments"),
    tags=tags("bank_payments"),
    params={
        "banks": Param(
            [ALL_BANKS],
            type="array",
            title="Banks to pay",
            # examples: the trigger form's pick list; items.enum: anything else is refused
            examples=[ALL_BANKS, *BANK_IDS],
            items={"type": "string", **({"enum": [ALL_BANKS, *BANK_IDS]} if BANK_IDS else {})},
            minItems=1,
            uniqueItems=True,
            description=f"'{ALL_BANKS}' pays every enabled bank of include/banking/banks.yaml; or pick banks. "
            "An empty choice is refused: paying every bank is chosen, never the default of an empty field.",
        )
    },
    doc_md=__doc__,
)
def bank_payments():
    @task
    def choose_banks(**context) -> list[str]:
        """The enabled banks of the configuration, or those the run asked for; refused at once when
        nobody but the triggering user could approve the files."""
        from finflows.flows.banking.common import choose_banks as run

        who = getattr(context["dag_run"], "triggering_user_name", None)
        return run(context["params"].get("banks"), who, paying=True)

    @task(trigger_rule="all_done")
    def summarise(bank_ids: list[str], outcomes: list[dict]) -> dict:
        """Email treasury the batches; fail the run if anything needs a person."""
        from finflows.flows.banking.tasks.payments import summarise as run

        return run(bank_ids, outcomes)

    @task_group(group_id="bank")
    def per_bank(bank_id: str):
        """One bank at a time, independently of the others: prepare → approve → upload."""
        prepare = BankPaymentFileOperator(
            task_id="prepare",
            step="prepare",
            bank_id=bank_id,
            map_index_template="{{ bank }}",
            max_active_tis_per_dagrun=3,
            doc_md="Batch what is due; generate, encrypt and archive each new batch. Nothing is sent.",
        )
        approve = PaymentApprovalOperator(
            task_id="approve",
            bank_id=bank_id,
            # the task's own field, rendered before it waits: Required Actions shows the bank, not "0"
            map_index_template="{{ task.bank_id }}",
            doc_md="A second person approves or rejects the bank's files (Browse → Required Actions).",
        )
        upload = BankPaymentFileOperator(
            task_id="upload",
            step="upload",
            bank_id=bank_id,
            prepared=prepare.output,
            approval=approve.output,
            map_index_template="{{ bank }}",
            max_active_tis_per_dagrun=3,
            doc_md="Upload the approved files, each at most once.",
        )
        prepare >> approve >> upload
        return upload.output

    bank_ids = choose_banks()
    summarise(bank_ids, per_bank.expand(bank_id=bank_ids))


bank_payments()
