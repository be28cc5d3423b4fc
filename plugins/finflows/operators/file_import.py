"""Import one file from S3 by a named layout: the step cashfile_import and card_reconciliation share.

For the object at ``key``: download it and take its sha256 → decide from ``ops.file_control``
(new, already imported, or the same name with other content) → parse and validate by the layout
→ load in one transaction → archive it under ``processed/``; a bad file goes to ``quarantine/``
with a report naming file, line, field and value, nothing is loaded, and the task fails without
retries (no retry can fix a file). Each step is idempotent, so a retry or a cleared task picks up
where it stopped. Mapped over the files a run found::

    FileImportOperator.partial(
        task_id="import_file", layout="civicapay-cashfile", map_index_template="{{ file_name }}"
    ).expand(key=keys)

The XCom is the outcome (file name, status, counts, totals), never the file's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseOperator

from finflows import settings


def _cashfile(key: str, run_id: str) -> dict:
    from finflows.flows.cashfile_import.tasks import import_file

    return import_file(key, run_id)


def _card_statement(key: str, run_id: str) -> dict:
    from finflows.flows.card_reconciliation.tasks import load_file

    return load_file(key, run_id)


@dataclass(frozen=True)
class Layout:
    """A named layout: the flow's importer (its bucket, tables and Drive copy are the flow's
    settings), the bucket its files are in, the tables a load writes, and the outcome statuses
    that mean this run loaded the file."""

    run: Callable[[str, str], dict]  # (key, run id) → the outcome
    bucket: Callable[[], str]
    tables: tuple[str, ...]
    loaded: tuple[str, ...]


LAYOUTS: dict[str, Layout] = {
    "civicapay-cashfile": Layout(
        _cashfile,
        settings.cashfile_bucket,
        ("ifs.cash_payment", "ifs.cash_suspense", "ifs.cashfile_text"),
        ("IMPORTED",),
    ),
    "card-statement": Layout(
        _card_statement,
        settings.statement_bucket,
        ("card.fact_transaction", "card.dim_date", "card.dim_store", "card.dim_product"),
        ("LOADED",),
    ),
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
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        super().__init__(**kwargs)
        self.layout, self.key = layout, key
        self._loaded = False

    def execute(self, context: Any) -> dict:
        context["file_name"] = self.key.rsplit("/", 1)[-1]  # for map_index_template="{{ file_name }}"
        outcome = LAYOUTS[self.layout].run(self.key, context["run_id"])
        self._loaded = outcome.get("status") in LAYOUTS[self.layout].loaded
        return outcome

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """The object in; the tables out when this run loaded it (not for a file loaded before)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        layout = LAYOUTS[self.layout]
        tables = layout.tables if self._loaded else ()
        return OperatorLineage(
            inputs=[lineage.s3_object(layout.bucket(), self.key)],
            outputs=[lineage.table(settings.CONN_FINANCE_DB, t) for t in tables],
        )
