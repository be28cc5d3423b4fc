"""cashfile_import: CivicaPay cash files → the finance Drive folder and the interim finance database.

``INBOX`` is how ``FileImportOperator(flow="cashfile_import")`` finds this flow (``cashfile.CashFiles``
is its part of the inbox lifecycle, ``finflows.inbox``). Nothing heavy is imported here: DAG files
import it when they are parsed.
"""

from __future__ import annotations

from typing import Any

from finflows import inbox, settings


def import_file(key: str, **hooks: Any) -> dict[str, Any]:
    """One cash file; the finance Drive folder gets a copy (connection ``google_finflows``)."""
    from finflows.flows.cashfile_import import cashfile
    from finflows.google import DriveHook

    drive = DriveHook(gcp_conn_id=settings.CONN_GOOGLE)
    return cashfile.as_dict(
        cashfile.import_file(key, drive_hook=drive, drive_folder=settings.finance_drive_folder(), **hooks)
    )


INBOX = inbox.Entry(
    run=import_file,
    bucket=settings.cashfile_bucket,
    tables=("ifs.cash_payment", "ifs.cash_suspense", "ifs.cashfile_text"),
    loaded=("IMPORTED",),  # cashfile.Status.IMPORTED (not imported at parse time)
)
