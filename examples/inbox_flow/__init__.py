"""A fourth inbox flow, from nothing: a bank's daily fee file → ``example.bank_fee``.

All it takes, and all there is here:

- ``fees.py``: its **layout** (one table of fields for the fixed-width engine), its **load**
  (``BankFees.process``: decide and COPY in one transaction) and the few words the lifecycle
  needs (flow name, size limit, verbs);
- ``INBOX`` below: how ``FileImportOperator(flow=…)`` finds it;
- ``spec.py``: its one declaration (``finflows.flowspec``): its DAG, the minutes it may take, the
  README's row, the setting it reads (its bucket);
- ``tasks.py``: its task bodies; ``dag.py``: its **DAG file**;
- ``schema.sql``: its table (in production: a migration in ``include/sql/``).

Everything else (bounded download, sha256, the control row and its events, duplicates and
conflicts, quarantine with a report naming line, field and value, the archive, the failure email,
lineage) is the shared lifecycle's, ``finflows.inbox``. ``tests/integration/test_inbox_example.py``
runs this flow against the local stack. To ship one like it: copy the package under
``plugins/finflows/flows/<name>/`` and the DAG file into ``dags/`` (naming the package where it now
lives), put the table into a migration and run ``python -m finflows.flowspec write`` (the README's table,
Helm's and compose's environment): nothing else lists it (``tests/integration/test_new_flow.py`` does exactly that and runs the DAG, layout and
docs tests on the result).
"""

from __future__ import annotations

import importlib

from finflows import inbox


def bucket() -> str:
    """Where the fee files wait (``FINFLOWS_BANK_FEES_BUCKET``, declared in the spec: shipped, it
    reaches Helm and compose by ``python -m finflows.flowspec write``)."""
    spec = importlib.import_module(f"{__name__}.spec")  # wherever the package lives
    return str(spec.SPEC.setting("BANK_FEES_BUCKET").value())


INBOX = inbox.Entry(
    flow=f"{__name__}.fees:BankFees",  # wherever the package lives
    bucket=bucket,
    tables=importlib.import_module(f"{__name__}.spec").SPEC.tables,  # declared in its spec
)
