"""Import one file from S3 by an inbox flow: the step cashfile_import and card_reconciliation
share, and any new inbox flow can use.

The flow's package declares how (``INBOX = finflows.inbox.Entry(…)``); the operator knows no flow
by name, as the SFTP operator leaves the protocol to its hook. For the object at ``key``, the
flow runs the one inbox lifecycle (``finflows.inbox``): download and sha256 → decide from
``ops.file_control`` (new, already done, or the same name with other content) → parse and
validate → load in one transaction → archive under ``processed/``; a bad file goes to
``quarantine/`` with a report naming file, line, field and value, nothing is loaded, and the task
fails without retries (no retry can fix a file). Mapped over the files a run found::

    FileImportOperator.partial(
        task_id="import_file", flow="cashfile_import", map_index_template="{{ file_name }}"
    ).expand(key=keys)

The XCom is the outcome (file name, status, counts, totals), never the file's data.
"""

from __future__ import annotations

from typing import Any

from finflows import inbox
from finflows.operators.base import S3FileOperator


class FileImportOperator(S3FileOperator):
    """Import one file (an S3 object) into the finance database by an inbox flow.

    :param flow: the flow: a package under ``finflows.flows`` (``cashfile_import``:
        CivicaPay cash file → ``ifs.cash_payment``, ``ifs.cash_suspense``, ``ifs.cashfile_text``,
        copy to the finance Drive folder; ``card_reconciliation``: acquirer statement →
        ``card.fact_transaction`` and its dimensions), or the dotted path of a module that
        declares ``INBOX`` (``examples.inbox_flow``).
    :param key: the object's key (templated; usually mapped with ``expand``). Its name is put in
        the context as ``file_name`` for ``map_index_template="{{ file_name }}"``.
    :param bucket: the bucket (templated; default the flow's, e.g. ``FINFLOWS_CASHFILE_BUCKET``).
        ``processed/`` and ``quarantine/`` are in the same bucket.
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection (default ``aws_finflows``).
    """

    def __init__(self, *, flow: str, **kwargs: Any) -> None:
        self.entry = inbox.entry(flow)  # a flow that declares none is refused when the DAG is parsed
        super().__init__(**kwargs)
        self.flow = flow
        self._loaded = False

    def default_bucket(self) -> str:
        return self.entry.bucket()

    def process(self, **hooks: Any) -> dict:
        outcome = inbox.run(self.entry.make(), self.key, **hooks)
        self._loaded = outcome.seen is inbox.Seen.NEW
        return outcome.as_dict()

    def _outputs(self) -> list:
        """The flow's tables when this run loaded the file (not for a file loaded before)."""
        from finflows import lineage

        tables = self.entry.tables if self._loaded else ()
        return [lineage.table(self.postgres_conn_id, t) for t in tables]
