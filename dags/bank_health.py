"""
### bank_health: each bank's SFTP server checked every 5 minutes, with a circuit breaker

Every 5 minutes, day and night (schedule zone Asia/Taipei, the banks' own). Per bank (mapped, one
connection attempt each): log in to the bank's SFTP server and stat its
upload directory; the result and the latency go to `pay.health_check`. Each bank has a circuit
(`pay.circuit`):

* `FINFLOWS_BANK_CIRCUIT_FAILURES` (3) failed checks in a row **open** it: operations and treasury
  get an email, **bank_payments skips the bank** (saying so in its log, its summary email and a
  red run when payments were due) and bank_transfer_retry holds its queued files;
* after `FINFLOWS_BANK_CIRCUIT_HALF_OPEN_AFTER` (300 s) it is **half-open**: the next single check
  closes it (email: payments flow again) or opens it for another cool-down.

A failed check is recorded data, not a failed run (a red run every 5 minutes would bury the
alert); the run is red only when a check could not be recorded.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="bank_health",
    description="Probes each bank's SFTP every 5 minutes (Asia/Taipei time)",
    schedule=ZonedCron("*/5 * * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=4),
    # checks only (a login and a look at a directory): it runs from the first deployment on, so
    # the circuit breaker and the finance monitor know each bank from the start, not "never"
    is_paused_upon_creation=False,
    default_args=default_args(),
    deadline=deadline("bank_health"),
    tags=tags("bank_health"),
    doc_md=__doc__,
)
def bank_health():
    @task
    def choose_banks() -> list[str]:
        """Every enabled bank of the configuration."""
        from finflows.flows.banking.common import choose_banks as run

        return run(None)

    @task(map_index_template="{{ bank }}", execution_timeout=dt.timedelta(minutes=1))
    def check_bank(bank_id: str) -> dict:
        """Log in, stat the upload directory, record latency and result, move the circuit."""
        from finflows.flows.banking.tasks.health import check_bank as run

        return run(bank_id)

    @task(trigger_rule="all_done")
    def alert(bank_ids: list[str], checks: list[dict]) -> dict:
        """Email when a circuit opens or closes."""
        from finflows.flows.banking.tasks.health import health_summary as run

        return run(bank_ids, checks)

    bank_ids = choose_banks()
    alert(bank_ids, check_bank.expand(bank_id=bank_ids))


bank_health()
