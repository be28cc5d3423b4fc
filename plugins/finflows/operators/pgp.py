"""Encrypt-and-sign and decrypt-and-verify an object for any counterparty.

Both take an object (``s3://bucket/key``, or ``sftp://<ssh_conn_id>/<path>`` on a counterparty's
server) and write the result to ``s3://bucket/key``; keys come from Airflow connections through
``PgpHook`` (each pinned to a fingerprint). Decryption fails, and writes nothing, unless the
data carries a good signature from the expected key. The XCom is the destination URI: never the
data. Each reports its input and output to OpenLineage when the provider is installed.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)


def _split(uri: str, schemes: tuple[str, ...]) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    if parts.scheme not in schemes or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"{uri!r} is not {' or '.join(f'{s}://…/…' for s in schemes)}")
    return parts.scheme, parts.netloc, parts.path.lstrip("/") if parts.scheme == "s3" else parts.path


class _PgpObjectOperator(BaseOperator):
    template_fields: Sequence[str] = ("source", "dest")
    ui_color = "#e8e0f4"

    def __init__(
        self,
        *,
        source: str,
        dest: str,
        own_pgp_conn_id: str = "pgp_finflows",
        own_fingerprint: str | None = None,
        peer_pgp_conn_id: str,
        peer_fingerprint: str | None = None,
        aws_conn_id: str = "aws_finflows",
        replace: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source, self.dest = source, dest
        self.own_pgp_conn_id, self.own_fingerprint = own_pgp_conn_id, own_fingerprint
        self.peer_pgp_conn_id, self.peer_fingerprint = peer_pgp_conn_id, peer_fingerprint
        self.aws_conn_id, self.replace = aws_conn_id, replace

    def _s3(self):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def _fetch(self, local: Path) -> None:
        scheme, where, path = _split(self.source, ("s3", "sftp"))
        if scheme == "s3":
            obj = self._s3().get_key(path, bucket_name=where)
            obj.download_file(str(local))
        else:
            from airflow.providers.sftp.hooks.sftp import SFTPHook

            SFTPHook(ssh_conn_id=where).retrieve_file(path, str(local))

    def _transform(self, session, data: bytes) -> bytes:
        raise NotImplementedError

    def execute(self, context: Any) -> str:
        from finflows.hooks.pgp import PgpHook

        _scheme, bucket, key = _split(self.dest, ("s3",))
        s3 = self._s3()
        if not self.replace and s3.check_for_key(key, bucket_name=bucket):
            raise FileExistsError(f"{self.dest} exists; set replace=True to overwrite it")
        own = PgpHook(self.own_pgp_conn_id, fingerprint=self.own_fingerprint)
        peer = PgpHook(self.peer_pgp_conn_id, fingerprint=self.peer_fingerprint)
        with tempfile.TemporaryDirectory(prefix="pgp-") as tmp, own.session(peer) as session:
            local = Path(tmp) / "source"
            self._fetch(local)
            out = self._transform(session, local.read_bytes())
            s3.load_bytes(out, key=key, bucket_name=bucket, replace=self.replace)
        log.info("%s → %s (%d bytes)", self.source, self.dest, len(out))
        return self.dest

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """The source object in, the destination object out (OpenLineage dataset naming)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from finflows import lineage

        return OperatorLineage(inputs=[lineage.of_uri(self.source)], outputs=[lineage.of_uri(self.dest)])


class PgpEncryptOperator(_PgpObjectOperator):
    """Encrypt an object to a counterparty's key and sign it with ours.

    :param source: the plaintext: ``s3://bucket/key`` or ``sftp://<ssh_conn_id>/<path>`` (templated).
    :param dest: where the encrypted file goes: ``s3://bucket/key`` (templated).
    :param peer_pgp_conn_id: the counterparty's public key (``PgpHook`` connection).
    :param peer_fingerprint: the fingerprint its key must carry (else the connection's ``extra.fingerprint``).
    :param own_pgp_conn_id: our key pair, which signs (default ``pgp_finflows``).
    :param own_fingerprint: its pinned fingerprint (else the connection's ``extra.fingerprint``).
    :param aws_conn_id: the S3 connection (default ``aws_finflows``).
    :param replace: overwrite ``dest`` if it exists (default: fail, so nothing is lost).
    """

    def _transform(self, session, data: bytes) -> bytes:
        return session.encrypt_and_sign(data, to=self.peer_pgp_conn_id)


class PgpDecryptOperator(_PgpObjectOperator):
    """Decrypt an object with our key and insist on a counterparty's good signature.

    Same parameters as ``PgpEncryptOperator``; ``peer_pgp_conn_id`` is the key that must have
    signed. A missing, bad or foreign signature fails the task with ``SignatureError`` and
    nothing is written.
    """

    def _transform(self, session, data: bytes) -> bytes:
        return session.decrypt_and_verify(data, signed_by=self.peer_pgp_conn_id)
