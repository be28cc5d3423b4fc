"""This flow's one declaration (``finflows.flowspec``): its DAG, the minutes it may take, the README's words, the setting it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="example_bank_fees",
            expected_minutes=30,
            trigger="daily 07:00 Europe/London",
            what="a bank's daily fee file (`fees/` in `FINFLOWS_BANK_FEES_BUCKET`) → `example.bank_fee`, archived or quarantined",
            tags=("finance", "daily"),
            status="example",
        ),
    ),
    settings=(
        Setting("BANK_FEES_BUCKET", "finflows-bank-fees", "where the bank's fee files wait (fees/)", bucket=True),
    ),
    tables=("example.bank_fee",),
)
