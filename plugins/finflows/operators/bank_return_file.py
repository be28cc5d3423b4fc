"""One bank's return files: listed on its SFTP → decrypted and verified → parsed → matched → applied.

The reconciliation step of bank_reconciliation, usable from any DAG for any bank configured in
``include/banking/banks.yaml``::

    BankReturnFileOperator.partial(task_id="reconcile_bank", map_index_template="{{ bank }}").expand(bank_id=banks)

For each file in the bank's download directory that matches its ``reconciliation_file_pattern``:
a file seen before (same name and sha256) is skipped; otherwise it is decrypted with our key and
must carry the bank's good signature (``PgpHook``, fingerprint pinned), is parsed (``ACHR01``
by the public TCH layout, or the bank's CSV), and its lines are matched to our payments and
applied in one transaction (settled, returned; unmatched, mismatched and duplicate lines are
counted and alerted), then archived in ``archive_bucket``. A file that fails decryption, the
signature or the layout is quarantined in the archive bucket beside a report naming line, field
and value, and nothing of it is applied. Uploaded payments past the bank's return window with no
return are settled. The XCom is the per-file outcome, never file data. Lineage: each file applied
in, ``pay.return_line`` and ``pay.payment`` out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from finflows import settings

log = logging.getLogger(__name__)


class BankReturnFileOperator(BaseOperator):
    """Reconcile one bank's new return files against our payments.

    :param bank_id: the bank, as configured in ``include/banking/banks.yaml`` (templated; usually
        mapped with ``expand``). Its SFTP connection, download path, file pattern, format, PGP key
        connection and fingerprint all come from that configuration.
    :param postgres_conn_id: the finance database holding ``pay.payment`` (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection of the archive (default ``aws_finflows``).
    :param archive_bucket: where return files and quarantined ones are kept (templated; default
        ``FINFLOWS_ARCHIVE_BUCKET``).
    """

    template_fields: Sequence[str] = ("bank_id", "archive_bucket")
    ui_color = "#f4ecd8"

    def __init__(
        self,
        *,
        bank_id: str,
        postgres_conn_id: str = settings.CONN_FINANCE_DB,
        aws_conn_id: str = settings.CONN_AWS,
        archive_bucket: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bank_id = bank_id
        self.postgres_conn_id, self.aws_conn_id = postgres_conn_id, aws_conn_id
        self.archive_bucket = archive_bucket
        self._applied: list[str] = []

    def execute(self, context: Any) -> dict:
        import datetime as dt
        from dataclasses import asdict

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows import files
        from finflows.flows.banking import banks, common, payments, reconciliation
        from finflows.task_support import bad_input_fails_without_retry

        context["bank"] = self.bank_id  # the mapped task's label in the UI
        with bad_input_fails_without_retry(banks.BankConfigError):
            cfg = banks.load()
            bank = cfg.bank(self.bank_id)
        s3, bucket = S3Hook(aws_conn_id=self.aws_conn_id), self.archive_bucket or settings.archive_bucket()
        today = dt.datetime.now(payments.TAIPEI).date()
        outcomes = []
        pg = PostgresHook(postgres_conn_id=self.postgres_conn_id)
        with (
            files.connect(pg) as conn,
            common.decrypter(cfg, bank) as decrypt,
            common.sftp(bank).get_managed_conn() as client,
        ):
            names = reconciliation.candidates(client, bank)
            log.info(
                "%s: %d file(s) match %s in %s",
                bank.id,
                len(names),
                bank.reconciliation_file_pattern,
                bank.download_path,
            )
            for name in names:
                with client.open(f"{bank.download_path.rstrip('/')}/{name}", "rb") as f:
                    data = f.read()
                out = reconciliation.process_file(
                    conn,
                    bank=bank,
                    name=name,
                    data=data,
                    decrypt=decrypt,
                    s3_hook=s3,
                    archive_bucket=bucket,
                    run_id=context["run_id"],
                    today=today,
                )
                outcomes.append(asdict(out))
            settled = reconciliation.settle_unreturned(conn, bank, today, context["run_id"])
        self._sftp_conn_id = bank.sftp_conn_id
        self._applied = [
            f"{bank.download_path.rstrip('/')}/{o['file_name']}" for o in outcomes if o["outcome"] == "applied"
        ]
        return {"bank": bank.id, "files": outcomes, "settled_unreturned": len(settled)}

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """Each return file applied in; the payment tables out, when any was applied."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        if not self._applied:
            return OperatorLineage()
        return OperatorLineage(
            inputs=[lineage.remote_file(self._sftp_conn_id, path) for path in self._applied],
            outputs=[lineage.table(self.postgres_conn_id, t) for t in ("pay.return_line", "pay.payment")],
        )
