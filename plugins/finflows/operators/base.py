"""What our operators over one S3 object share (``FileImportOperator``, ``ChargebackExportOperator``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from finflows import settings


class S3FileOperator(BaseOperator):
    """One object of a flow's bucket, handled by the flow's code with our connections.

    The object's name goes in the context as ``file_name`` (``map_index_template="{{ file_name }}"``);
    a file the flow refuses (``files.FileRejected``: quarantined with its report) fails the task
    without retries; lineage names the object in and ``_outputs()`` out.

    :param key: the object's key (templated; usually mapped with ``expand``).
    :param bucket: its bucket (templated; default the flow's, ``default_bucket()``).
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
        postgres_conn_id: str = settings.CONN_FINANCE_DB,
        aws_conn_id: str = settings.CONN_AWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key, self.bucket = key, bucket
        self.postgres_conn_id, self.aws_conn_id = postgres_conn_id, aws_conn_id

    def default_bucket(self) -> str:
        raise NotImplementedError

    def _bucket(self) -> str:
        return self.bucket or self.default_bucket()

    def process(self, **hooks: Any) -> dict:
        """The flow's step for ``self.key`` given ``bucket``, ``run_id``, ``s3_hook``, ``pg_hook``."""
        raise NotImplementedError

    def execute(self, context: Any) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows.files import FileRejected
        from finflows.task_support import bad_input_fails_without_retry

        context["file_name"] = self.key.rsplit("/", 1)[-1]
        if any(ord(c) < 32 or ord(c) == 127 for c in self.key):
            from airflow.sdk.exceptions import AirflowFailException

            # refused by name, before anything reads it: a line break in a name breaks emails and logs
            raise AirflowFailException(
                f"s3://{self._bucket()}/{self.key!r}: the object's name holds a control character; rename it "
                "(it is left where it is, untouched)"
            )
        with bad_input_fails_without_retry(FileRejected):  # quarantined: no retry can fix the file
            return self.process(
                bucket=self._bucket(),
                run_id=context["run_id"],
                s3_hook=S3Hook(aws_conn_id=self.aws_conn_id),
                pg_hook=PostgresHook(postgres_conn_id=self.postgres_conn_id),
            )

    def _outputs(self) -> list:
        """What this run wrote (lineage datasets); nothing unless the subclass says."""
        return []

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        return OperatorLineage(inputs=[lineage.s3_object(self._bucket(), self.key)], outputs=self._outputs())
