"""
### treasury_decisions: every money decision a person makes, as an Airflow Required Action

Every 10 minutes (Asia/Taipei) it asks what waits for a person and has not been asked yet, one
**Required Action** (Browse → Required Actions) per question:

* an **uncertain delivery** (the bank may or may not have the file): *The bank has it* / *Resend*;
* a payment **held as a possible duplicate**: *Release: not a duplicate* / *Cancel the payment*;
* a batch the retry queue **gave up** on, before its cutoff: *Re-queue* / *Cancel the batch*;
* any other row of the **attention list**: *Resolved*, saying how.

Each says what is known, the amounts and the deadline in Asia/Taipei, and is assigned to
`FINFLOWS_PAYMENT_APPROVERS` less the batch's maker (or the user whose run held the payment): four
eyes, refused by Airflow, the code and the database alike. The answer, who and when are kept on
the batch or payment; a question unanswered for 4 hours is asked again as a new entry. The finance
monitor's API decides the same questions for scripts, with the same rules: an answer given there
closes the Required Action's question as decided elsewhere.

The approval of payment files before they are sent stays in bank_payments (its approve step).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.decision import LABEL, MoneyDecisionOperator
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="treasury_decisions",
    description="Asks treasury every money decision as a Required Action, every 10 minutes (Asia/Taipei time)",
    schedule=ZonedCron("*/10 * * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    # a run lives while its questions wait (up to 4 hours); new questions are asked by the next runs
    max_active_runs=30,
    # it only asks: from the first deployment on, so nothing waits unseen for someone to unpause it
    is_paused_upon_creation=False,
    default_args=default_args(),
    deadline=deadline("treasury_decisions"),
    tags=tags("treasury_decisions"),
    doc_md=__doc__,
)
def treasury_decisions():
    @task(execution_timeout=dt.timedelta(minutes=2))
    def ask(run_id: str | None = None) -> list[dict]:
        """What waits for a person and no live run asks yet: the questions of this run."""
        from finflows.flows.banking.tasks.decisions import ask as run

        return run(run_id or "")

    MoneyDecisionOperator.partial(task_id="decide", map_index_template=LABEL).expand(question=ask())


treasury_decisions()
