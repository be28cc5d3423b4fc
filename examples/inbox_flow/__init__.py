"""A fourth inbox flow, from nothing: a bank's daily fee file → ``example.bank_fee``.

All it takes, and all there is here:

- ``fees.py``: its **layout** (one table of fields for the fixed-width engine), its **load**
  (``BankFees.process``: decide and COPY in one transaction) and the few words the lifecycle
  needs (flow name, size limit, verbs);
- ``INBOX`` below: how ``FileImportOperator(flow=…)`` finds it;
- ``dag.py``: its **DAG file**;
- ``schema.sql``: its table (in production: a migration in ``include/sql/``).

Everything else (bounded download, sha256, the control row and its events, duplicates and
conflicts, quarantine with a report naming line, field and value, the archive, the failure email,
lineage) is the shared lifecycle's, ``finflows.inbox``. ``tests/integration/test_inbox_example.py``
runs this flow against the local stack. To ship one like it: move the package under
``plugins/finflows/flows/``, the DAG file into ``dags/``, the table into a migration.
"""

from __future__ import annotations

from typing import Any

from finflows import inbox, settings


def import_file(key: str, **hooks: Any) -> dict:
    from examples.inbox_flow import fees

    return fees.import_file(key, **hooks)


INBOX = inbox.Entry(
    run=import_file,
    bucket=lambda: settings.get("BANK_FEES_BUCKET", "finflows-bank-fees"),
    tables=("example.bank_fee",),
    loaded=("LOADED",),
)
