"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="card_reconciliation",
            expected_minutes=60,
            trigger="daily 09:00 America/Sao_Paulo, or by hand for a `day`",
            what="acquirer statements (FTPS `/Saida` copied into S3, + S3) → validated A0/CV/A9 → one COPY per file into `card.fact_transaction` + dimensions; daily summary and instalment matching views",
            tags=("finance", "cards", "daily"),
        ),
    ),
    settings=(
        Setting(
            "STATEMENT_BUCKET", "finflows-card-statements", "where card statements arrive (statements/)", bucket=True
        ),
        Setting("STATEMENT_FTPS_DIR", "/Saida", "where the acquirer leaves statements on its FTPS server"),
        Setting("STATEMENT_MAX_BYTES", str(1 << 30), "the largest statement taken (the largest seen is about 400 MB)"),
    ),
    tables=(
        "card.fact_transaction",
        "card.dim_date",
        "card.dim_store",
        "card.dim_product",
    ),
)
