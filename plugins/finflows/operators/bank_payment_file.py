"""One bank's payment files: its due payments → batches → ACHP01 or CSV → encrypted and signed → archived → uploaded.

The ACH-generation step of bank_payments, usable from any DAG for any bank configured in
``include/banking/banks.yaml``::

    BankPaymentFileOperator.partial(task_id="pay_bank", map_index_template="{{ bank }}").expand(bank_id=banks)

For the bank, in this order, each step safe to repeat:

1. **Batch** (one transaction, the bank's lock, row locks): pending payments due by the
   processing date (today before the bank's cutoff on a business day, else the next business
   day) become batches within the bank's payment and byte limits. A payee name Big5 cannot hold
   is refused with the payment named and stays pending.
2. **Generate, encrypt, archive**, once per batch under the batch's lock: the file in the bank's
   format (``ACHP01`` byte-exact, Big5, or the bank's CSV), encrypted to the bank's key and signed
   with ours through ``PgpHook`` (both fingerprints pinned), kept in ``archive_bucket`` with the
   sha256 of plaintext and ciphertext. The plaintext exists only in this process's memory: never
   in S3, XCom or a log.
3. **Upload** the archived bytes to the bank's SFTP (``NAME.part``, size checked, renamed), retried
   with exponential backoff; audited in ``pay.transfer``. Still failing: queued in
   ``pay.transfer_retry`` for ``bank_transfer_retry``, and the batch keeps its archived file.

While the bank's circuit (``bank_health``) is open nothing is batched or sent, and the result
says how many payments stay pending. A re-run finds nothing pending and nothing left to upload.
The XCom is the bank's run (batches, counts, totals, each delivery's outcome), never file data.
Lineage: ``pay.payment`` in, each file delivered to the bank's server out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from finflows import settings

log = logging.getLogger(__name__)


class BankPaymentFileOperator(BaseOperator):
    """Generate, encrypt, sign, archive and upload one bank's payment files.

    :param bank_id: the bank, as configured in ``include/banking/banks.yaml`` (templated; usually
        mapped with ``expand``). Its format, SFTP connection, PGP key connection and fingerprint,
        cutoff and batch limits all come from that configuration.
    :param postgres_conn_id: the finance database holding ``pay.payment`` (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection of the archive (default ``aws_finflows``).
    :param archive_bucket: where encrypted files are kept (templated; default ``FINFLOWS_ARCHIVE_BUCKET``).
    :param upload_attempts: tries per upload before the batch is queued for retry (default
        ``FINFLOWS_BANK_UPLOAD_ATTEMPTS``).
    :param upload_backoff: seconds before the second try, doubling after (default
        ``FINFLOWS_BANK_UPLOAD_BACKOFF``).
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
        upload_attempts: int | None = None,
        upload_backoff: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bank_id = bank_id
        self.postgres_conn_id, self.aws_conn_id = postgres_conn_id, aws_conn_id
        self.archive_bucket = archive_bucket
        self.upload_attempts, self.upload_backoff = upload_attempts, upload_backoff
        self._delivered: list[str] = []

    def execute(self, context: Any) -> dict:
        from dataclasses import asdict

        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows import files
        from finflows.flows.banking import banks, payments
        from finflows.flows.banking import common as banking
        from finflows.task_support import bad_input_fails_without_retry

        context["bank"] = self.bank_id  # the mapped task's label in the UI
        with bad_input_fails_without_retry(banks.BankConfigError):
            cfg = banks.load()
            bank = cfg.bank(self.bank_id)
        transport = banking.transport(
            bank,
            aws_conn_id=self.aws_conn_id,
            archive_bucket=self.archive_bucket,
            attempts=self.upload_attempts,
            backoff=self.upload_backoff,
        )
        pg = PostgresHook(postgres_conn_id=self.postgres_conn_id)
        with files.connect(pg) as conn, banking.encrypter(cfg, bank) as encrypt:
            result = payments.pay_bank(
                conn,
                cfg=cfg,
                bank_id=bank.id,
                now=None,
                run_id=context["run_id"],
                transport=transport,
                encrypt=encrypt,
                circuit=banking.circuit_now(conn, bank.id),
            )
        self._delivered = [
            f"{bank.upload_path.rstrip('/')}/{d['file_name']}"
            for d in result.deliveries
            if d["outcome"] in ("uploaded", "already_there")
        ]
        self._sftp_conn_id = bank.sftp_conn_id
        return asdict(result)

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """``pay.payment`` in and each file now on the bank's server out, when any was delivered."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        if not self._delivered:
            return OperatorLineage()
        return OperatorLineage(
            inputs=[lineage.table(self.postgres_conn_id, "pay.payment")],
            outputs=[lineage.remote_file(self._sftp_conn_id, path) for path in self._delivered],
        )
