"""
### card_reconciliation: acquirer card statements (FTPS + S3) → dimensional model in PostgreSQL

Statements (`EXTRATO_UNICA_<establishment>_<YYYYMMDD>_<seq>`, docs/formats.md §2: A0 header, CV
details, A9 trailer, Latin-1, 400 characters a record) are collected from the acquirer's FTPS
server (`FINFLOWS_STATEMENT_FTPS_DIR`, default `/Saida`) into `statements/` in the statement
bucket, so S3 holds every original, and from that prefix directly. One mapped task per file.

**Per file, one transaction**: every record validated (trailer count, contiguous sequence numbers,
every field in its domain; card numbers only as BIN + last four), COPY straight into
`card.fact_transaction` keyed by (file, record sequence), dimensions upserted (date, store,
product, brand, capture channel), control row with counts and totals. The original then moves to
`processed/`; a bad file to `quarantine/` with `<name>.error.json` naming line, field and value.

**Reconciliation**: `card.v_daily_summary` (per day, store and brand: sales, gross, discount,
net), `card.v_instalment_match` (forecast vs settlement per instalment NSU) and
`card.v_instalment_exceptions` (unmatched, amount mismatches, overdue).

**Schedule**: daily 09:00 America/Sao_Paulo. **By hand**: trigger with `day` (YYYY-MM-DD) to take
only that day's statements; without it, everything waiting. An FTPS outage fails
`fetch_from_ftps` after its retries; the statements already in S3 are still loaded.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.operators.file_import import FileImportOperator
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="card_reconciliation",
    description="Daily 09:00 America/Sao_Paulo (12:00 UTC): card statements loaded",
    schedule=ZonedCron("0 9 * * *", timezone="America/Sao_Paulo"),
    start_date=zone_start("America/Sao_Paulo"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("card_reconciliation"),
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Only statements of this day (YYYY-MM-DD); empty: everything waiting.",
        )
    },
    tags=tags("card_reconciliation"),
    doc_md=__doc__,
)
def card_reconciliation():
    @task
    def fetch_from_ftps(params: dict | None = None) -> list[str]:
        """Copy into S3 each statement on the acquirer's FTPS server not yet in S3 or the control table."""
        from finflows.flows.card_reconciliation.tasks import fetch_from_ftps as run

        return run((params or {}).get("day"))

    @task(trigger_rule="all_done")
    def find_files(params: dict | None = None) -> list[str]:
        """Every statement waiting under statements/ (runs even when FTPS is down)."""
        from finflows.flows.card_reconciliation.tasks import find_files as run

        return run((params or {}).get("day"))

    @task(trigger_rule="all_done")
    def summarise(keys: list[str], outcomes: list[dict]) -> dict:
        """Log the daily summary per store and brand; fail the run if any statement failed."""
        from finflows.flows.card_reconciliation.tasks import summarise as run

        return run(keys, outcomes)

    keys = find_files()
    fetch_from_ftps() >> keys
    loaded = FileImportOperator.partial(
        task_id="load_file",
        flow="card_reconciliation",
        map_index_template="{{ file_name }}",
        doc_md="Validate and load one statement in one transaction; archive or quarantine it.",
    ).expand(key=keys)
    summarise(keys, loaded.output)


card_reconciliation()
