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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finflows import settings
from finflows.operators.base import S3FileOperator


def _cashfile(key: str, **hooks: Any) -> dict:
    """CivicaPay cash file: the flow's Drive folder gets a copy (connection ``google_finflows``)."""
    from finflows.flows.cashfile_import import cashfile
    from finflows.google import DriveHook

    drive = DriveHook(gcp_conn_id=settings.CONN_GOOGLE)
    return cashfile.as_dict(
        cashfile.import_file(key, drive_hook=drive, drive_folder=settings.finance_drive_folder(), **hooks)
    )


def _card_statement(key: str, **hooks: Any) -> dict:
    from finflows.flows.card_reconciliation import card

    return card.as_dict(card.import_file(key, **hooks))


@dataclass(frozen=True)
class Layout:
    """A named layout: the flow's import of one file (``key``, ``bucket``, ``run_id``, ``s3_hook``,
    ``pg_hook`` → its outcome), the bucket its files are in by default, the tables a load writes,
    and the outcome statuses that mean this run loaded the file."""

    run: Callable[..., dict]
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


class FileImportOperator(S3FileOperator):
    """Import one file (an S3 object) into the finance database by a named layout.

    :param layout: ``civicapay-cashfile`` (CivicaPay cash file → ``ifs.cash_payment``,
        ``ifs.cash_suspense``, ``ifs.cashfile_text``, copy to the finance Drive folder) or
        ``card-statement`` (acquirer statement → ``card.fact_transaction`` and its dimensions).
    :param key: the object's key (templated; usually mapped with ``expand``). Its name is put in
        the context as ``file_name`` for ``map_index_template="{{ file_name }}"``.
    :param bucket: the bucket (templated; default the layout's: ``FINFLOWS_CASHFILE_BUCKET`` or
        ``FINFLOWS_STATEMENT_BUCKET``). ``processed/`` and ``quarantine/`` are in the same bucket.
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection (default ``aws_finflows``).
    """

    def __init__(self, *, layout: str, **kwargs: Any) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        super().__init__(**kwargs)
        self.layout = layout
        self._loaded = False

    def default_bucket(self) -> str:
        return LAYOUTS[self.layout].bucket()

    def process(self, **hooks: Any) -> dict:
        layout = LAYOUTS[self.layout]
        outcome = layout.run(self.key, **hooks)
        self._loaded = outcome.get("status") in layout.loaded
        return outcome

    def _outputs(self) -> list:
        """The layout's tables when this run loaded the file (not for a file loaded before)."""
        from finflows import lineage

        tables = LAYOUTS[self.layout].tables if self._loaded else ()
        return [lineage.table(self.postgres_conn_id, t) for t in tables]
