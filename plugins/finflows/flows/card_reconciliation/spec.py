"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow

SPEC = Flow(
    dags=(
        Dag(
            dag_id="card_reconciliation",
            expected_minutes=60,
            trigger="daily 09:00 America/Sao_Paulo, or by hand for a `day`",
            what="acquirer statements (FTPS `/Saida` copied into S3, + S3) → validated A0/CV/A9 → one COPY per file into `card.fact_transaction` + dimensions; daily summary and instalment matching views",
        ),
    ),
)
