"""cashfile_import: CivicaPay cash files → the finance Drive folder and the interim finance database.

``INBOX`` is how ``FileImportOperator(flow="cashfile_import")`` finds this flow (``cashfile.CashFiles``
is its part of the inbox lifecycle, ``finflows.inbox``). Nothing heavy is imported here: DAG files
import it when they are parsed.
"""

from __future__ import annotations

from finflows import inbox, settings
from finflows.flows.cashfile_import.spec import SPEC

INBOX = inbox.Entry(
    flow="finflows.flows.cashfile_import.cashfile:CashFiles",  # with the finance Drive folder (google_finflows)
    bucket=settings.cashfile_bucket,
    tables=SPEC.tables,  # declared in its spec
)
