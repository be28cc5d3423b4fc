"""card_reconciliation: acquirer statements (FTPS, S3) → the card dimensional model, archived, never twice.

``INBOX`` is how ``FileImportOperator(flow="card_reconciliation")`` finds this flow
(``card.Statements`` is its part of the inbox lifecycle, ``finflows.inbox``).
"""

from __future__ import annotations

from typing import Any

from finflows import inbox, settings


def import_file(key: str, **hooks: Any) -> dict[str, Any]:
    from finflows.flows.card_reconciliation import card

    return card.as_dict(card.import_file(key, **hooks))


INBOX = inbox.Entry(
    run=import_file,
    bucket=settings.statement_bucket,
    tables=("card.fact_transaction", "card.dim_date", "card.dim_store", "card.dim_product"),
    loaded=("LOADED",),
)
