"""card_reconciliation: acquirer statements (FTPS, S3) → the card dimensional model, archived, never twice.

``INBOX`` is how ``FileImportOperator(flow="card_reconciliation")`` finds this flow
(``card.Statements`` is its part of the inbox lifecycle, ``finflows.inbox``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finflows import inbox, settings
from finflows.flows.card_reconciliation.spec import SPEC

if TYPE_CHECKING:
    from finflows.expiry import Watched


INBOX = inbox.Entry(
    flow="finflows.flows.card_reconciliation.card:Statements",
    bucket=settings.statement_bucket,
    tables=SPEC.tables,  # declared in its spec
)


def expiring(**_: Any) -> list[Watched]:
    """The acquirer's FTPS certificate (``finflows.expiry.watched``)."""
    from finflows.hooks.ftp import FTPSHook

    conn_id = settings.CONN_FTPS_ACQUIRER
    return [(f"the card acquirer's FTPS certificate ({conn_id})", FTPSHook(ftp_conn_id=conn_id).certificate_expires)]
