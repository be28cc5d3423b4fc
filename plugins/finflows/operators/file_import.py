"""Import one file from S3 by a named layout: the step cashfile_import and card_reconciliation share.

For the object at ``key``: download it and take its sha256 → decide from ``ops.file_control``
(new, already imported, or the same name with other content) → parse and validate by the layout
→ load in one transaction → archive it under ``processed/``; a bad file goes to ``quarantine/``
with a report naming file, line, field and value, nothing is loaded, and the task fails without
retries (no retry can fix a file). Each step is idempotent, so a retry or a cleared task picks up
where it stopped. Mapped over the files a run found::

    FileImportOperator.partial(task_id="import_file", layout="civicapay-cashfile").expand(key=keys)

The XCom is the outcome (file name, status, counts, totals), never the file's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseOperator


def _cashfile(key: str) -> dict:
    from finflows.cashfile_tasks import import_file

    return import_file(key)


def _card_statement(key: str) -> dict:
    from finflows.card_tasks import load_file

    return load_file(key)


# layout name → the flow's importer (its bucket, tables and Drive copy are the flow's settings)
IMPORTERS: dict[str, Callable[[str], dict]] = {
    "civicapay-cashfile": _cashfile,
    "card-statement": _card_statement,
}


class FileImportOperator(BaseOperator):
    """Import one file (an S3 object) into the finance database by a named layout.

    :param layout: ``civicapay-cashfile`` (CivicaPay cash file → ``ifs.cash_payment``,
        ``ifs.cash_suspense``, ``ifs.cashfile_text``, copy to the finance Drive folder) or
        ``card-statement`` (acquirer statement → ``card.fact_transaction`` and its dimensions).
    :param key: the object's key in the layout's bucket (templated; usually mapped with ``expand``).
    """

    template_fields: Sequence[str] = ("key",)
    ui_color = "#e0f0e8"

    def __init__(self, *, layout: str, key: str, **kwargs: Any) -> None:
        if layout not in IMPORTERS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(IMPORTERS)}")
        super().__init__(**kwargs)
        self.layout, self.key = layout, key

    def execute(self, context: Any) -> dict:
        return IMPORTERS[self.layout](self.key)
