"""Operators for a bank's files, over the banking flow code: what goes to a bank and what comes back.

``BankPaymentFileOperator``, the ACH-generation step of bank_payments, for any bank configured in
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

``BankReturnFileOperator``, the reconciliation step of bank_reconciliation, for any bank configured in
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


class _BankOperator(BaseOperator):
    """What both take: a configured bank, the finance database, the archive."""

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
        self._sftp_conn_id = ""
        self._files: list[str] = []  # the remote files this run delivered or applied

    def _bank(self, context: Any):
        """The bank configuration and the bank; a bank not configured fails at once, without retries."""
        from finflows.flows.banking import banks
        from finflows.task_support import bad_input_fails_without_retry

        context["bank"] = self.bank_id  # the mapped task's label in the UI ("{{ bank }}")
        with bad_input_fails_without_retry(banks.BankConfigError):
            cfg = banks.load()
            bank = cfg.bank(self.bank_id)
        self._sftp_conn_id = bank.sftp_conn_id
        return cfg, bank

    def _finance_db(self):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=self.postgres_conn_id)

    def _datasets(self) -> tuple[list, list]:
        """(inputs, outputs) for lineage, given the files this run delivered or applied."""
        raise NotImplementedError

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """Nothing when this run moved no file; else the subclass's inputs and outputs."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        if not self._files:
            return OperatorLineage()
        inputs, outputs = self._datasets()
        return OperatorLineage(inputs=inputs, outputs=outputs)


class BankPaymentFileOperator(_BankOperator):
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

    template_fields: Sequence[str] = ("bank_id", "archive_bucket", "prepared", "approval")

    def __init__(
        self,
        *,
        step: str = "all",
        prepared: Any = None,
        approval: Any = None,
        upload_attempts: int | None = None,
        upload_backoff: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if step not in ("all", "prepare", "upload"):
            raise ValueError(f"step must be all, prepare or upload, not {step!r}")
        self.step, self.prepared, self.approval = step, prepared, approval
        self.upload_attempts, self.upload_backoff = upload_attempts, upload_backoff

    def execute(self, context: Any) -> dict:
        from dataclasses import asdict

        from finflows import files
        from finflows.flows.banking import common, payments
        from finflows.flows.banking.delivery import SENT

        cfg, bank = self._bank(context)
        transport = common.transport(
            bank,
            aws_conn_id=self.aws_conn_id,
            archive_bucket=self.archive_bucket,
            attempts=self.upload_attempts,
            backoff=self.upload_backoff,
        )
        args = {"cfg": cfg, "bank_id": bank.id, "now": None, "run_id": context["run_id"], "transport": transport}
        with files.connect(self._finance_db()) as conn, common.encrypter(cfg, bank) as encrypt:
            # the maker: who triggered this run (a scheduled run has none); never their approver
            maker = getattr(context.get("dag_run"), "triggering_user_name", None) or None
            circuit = common.circuit_now(conn, bank.id)
            if self.step == "all":
                result = payments.pay_bank(conn, **args, encrypt=encrypt, circuit=circuit, made_by=maker)
            elif self.step == "prepare":
                result = payments.prepare_bank(conn, **args, encrypt=encrypt, circuit=circuit, made_by=maker)
            else:
                result = self._upload(conn, payments, args, encrypt, circuit)
        common.alert_uncertain(result.deliveries)  # treasury hears at once, not after the summary
        self._files = [
            f"{bank.upload_path.rstrip('/')}/{d['file_name']}" for d in result.deliveries if d["outcome"] in SENT
        ]
        return asdict(result)

    def _upload(self, conn, payments, args: dict, encrypt, circuit):
        """The upload step: what the prepare step made and the approve step let go (only approved
        batches, or those needing no approval, can be sent: the database refuses any other)."""
        prepared = dict(self.prepared or {"bank": self.bank_id})
        result = payments.BankRun(**prepared)
        result.approval = self.approval or None
        if result.skipped_reason is not None:
            return result
        if circuit is not None and not circuit.allows_payments:  # opened since the prepare step
            result.skipped_reason = circuit.describe(settings.TAIPEI) + "; approved files stay for the next run"
            return result
        done = {d["batch_id"] for d in result.deliveries}
        result.deliveries += list((self.approval or {}).get("cancelled", []))
        result.deliveries += payments.upload_bank(conn, **args, encrypt=encrypt, exclude=done)
        return result

    def _datasets(self) -> tuple[list, list]:
        """``pay.payment`` in, each file now on the bank's server out."""
        from finflows import lineage

        return (
            [lineage.table(self.postgres_conn_id, "pay.payment")],
            [lineage.remote_file(self._sftp_conn_id, path) for path in self._files],
        )


class BankReturnFileOperator(_BankOperator):
    """Reconcile one bank's new return files against our payments.

    :param bank_id: the bank, as configured in ``include/banking/banks.yaml`` (templated; usually
        mapped with ``expand``). Its SFTP connection, download path, file pattern, format, PGP key
        connection and fingerprint all come from that configuration.
    :param postgres_conn_id: the finance database holding ``pay.payment`` (default ``postgres_finance``).
    :param aws_conn_id: the S3 connection of the archive (default ``aws_finflows``).
    :param archive_bucket: where return files and quarantined ones are kept (templated; default
        ``FINFLOWS_ARCHIVE_BUCKET``).
    """

    def execute(self, context: Any) -> dict:
        import datetime as dt
        from dataclasses import asdict

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from finflows import files
        from finflows.flows.banking import common, reconciliation
        from finflows.flows.banking.states import ReturnFile

        cfg, bank = self._bank(context)
        s3, bucket = S3Hook(aws_conn_id=self.aws_conn_id), self.archive_bucket or settings.archive_bucket()
        today = dt.datetime.now(settings.TAIPEI).date()
        sftp = common.sftp(bank)
        with (
            files.connect(self._finance_db()) as conn,
            common.decrypter(cfg, bank) as decrypt,
            sftp.get_managed_conn() as client,
        ):
            outcomes = [
                asdict(o)
                for o in reconciliation.reconcile_files(
                    conn,
                    client,
                    bank=bank,
                    decrypt=decrypt,
                    s3_hook=s3,
                    archive_bucket=bucket,
                    run_id=context["run_id"],
                    today=today,
                    host_key=sftp.shown_host_key,
                )
            ]
            settled = reconciliation.settle_unreturned(conn, bank, today, context["run_id"])
        self._files = [
            f"{bank.download_path.rstrip('/')}/{o['file_name']}" for o in outcomes if o["outcome"] == ReturnFile.APPLIED
        ]
        return {"bank": bank.id, "files": outcomes, "settled_unreturned": len(settled)}

    def _datasets(self) -> tuple[list, list]:
        """Each return file applied in, the payment tables out."""
        from finflows import lineage

        return (
            [lineage.remote_file(self._sftp_conn_id, path) for path in self._files],
            [lineage.table(self.postgres_conn_id, t) for t in ("pay.return_line", "pay.payment")],
        )
