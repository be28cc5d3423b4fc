"""Export one chargeback file to the card companies: the step chargeback_export maps over its files.

For the JSON object at ``key``: download it and take its sha256 → decide from ``ops.file_control``
(new, exported before, or the same name with other content, which is quarantined) → validate
every record (a card number must already be masked; a brand needs a destination) → plan batches
of at most four CSV files (one per brand, at most ``max_rows_per_file`` rows) → upload each file
not yet in ``ops.delivery`` to its card company's FTP or FTPS server (``NAME.part``, size check,
rename) → archive the input under ``processed/``. A bad file is quarantined with its report and
the task fails without retries. Mapped over the files a run found::

    ChargebackExportOperator.partial(task_id="export_file", map_index_template="{{ file_name }}").expand(key=keys)

The XCom is the outcome (status, counts, each delivery's file name and rows), never record data.
Lineage: the object in, each file delivered out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from finflows import settings


class ChargebackExportOperator(BaseOperator):
    """Turn one chargeback file into CSV files on the card companies' servers.

    :param key: the object's key (templated; usually mapped with ``expand``). Its name is put in
        the context as ``file_name`` for ``map_index_template="{{ file_name }}"``.
    :param bucket: the bucket (templated; default ``FINFLOWS_CHARGEBACK_BUCKET``).
    :param destinations: the destinations file (card brand → FTP/FTPS connection, directory and
        protocol; default ``include/chargeback_destinations.json``).
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection (default ``aws_finflows``).
    """

    template_fields: Sequence[str] = ("key", "bucket")
    ui_color = "#e0f0e8"

    def __init__(
        self,
        *,
        key: str,
        bucket: str | None = None,
        destinations: str | None = None,
        postgres_conn_id: str = settings.CONN_FINANCE_DB,
        aws_conn_id: str = settings.CONN_AWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key, self.bucket, self.destinations = key, bucket, destinations
        self.postgres_conn_id, self.aws_conn_id = postgres_conn_id, aws_conn_id
        self._uploaded: list[tuple[str, str, str]] = []  # (conn id, protocol, path) delivered by this run

    def _bucket(self) -> str:
        return self.bucket or settings.chargeback_bucket()

    def execute(self, context: Any) -> dict:
        from pathlib import Path

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows.flows.chargeback_export import chargeback
        from finflows.task_support import bad_input_fails_without_retry

        context["file_name"] = self.key.rsplit("/", 1)[-1]
        config = chargeback.load_config(Path(self.destinations)) if self.destinations else chargeback.load_config()
        with bad_input_fails_without_retry(chargeback.ChargebackRejected):
            outcome = chargeback.export_file(
                self.key,
                bucket=self._bucket(),
                run_id=context["run_id"],
                s3_hook=S3Hook(aws_conn_id=self.aws_conn_id),
                pg_hook=PostgresHook(postgres_conn_id=self.postgres_conn_id),
                config=config,
            )
        dests = config["destinations"]
        self._uploaded = [
            (
                dests[d.brand]["conn_id"],
                dests[d.brand]["protocol"],
                f"{dests[d.brand]['directory'].rstrip('/')}/{d.file_name}",
            )
            for d in outcome.deliveries
            if d.uploaded
        ]
        return chargeback.as_dict(outcome)

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """The object in; each file this run delivered out (none for a file exported before)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        return OperatorLineage(
            inputs=[lineage.s3_object(self._bucket(), self.key)],
            outputs=[lineage.ftp_file(conn_id, path, protocol) for conn_id, protocol, path in self._uploaded],
        )
