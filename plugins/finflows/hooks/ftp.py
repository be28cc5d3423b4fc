"""FTP and FTPS hooks that work against the servers card companies and acquirers run.

The provider's ``FTPSHook`` uses ``ftplib.FTP_TLS``, which opens each data connection with a new
TLS session. vsftpd (and other servers) require the data connection to reuse the control
connection's session (``require_ssl_reuse=YES``, vsftpd's default) and answer ``522 SSL
connection failed: session reuse required``. ``FTPSHook`` here passes the control connection's
session when it wraps the data socket: it works over TLS 1.3 and 1.2. It also sets the port per
connection (the provider sets it on the ``FTP_TLS`` class, for every connection in the process).

Both hooks close quietly: the provider's ``close_conn`` sends QUIT on a connection that may be
dead, and its ``EOFError`` (or an ``AttributeError`` when the connection never opened) replaced
the real error in logs, failure emails and the control table. Here the original error always
survives a close in a ``finally``.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import logging
import socket
import ssl
from typing import Any

from airflow.providers.ftp.hooks.ftp import FTPHook as ProviderFTPHook

log = logging.getLogger(__name__)


class _SessionReuseFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 (ftplib's spelling)
    """``FTP_TLS`` whose data connections resume the control connection's TLS session."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 (FTP_TLS: the data channel is wrapped below)
        if self._prot_p:  # type: ignore[attr-defined]  # ftplib's own flag: PROT P was sent
            assert isinstance(self.sock, ssl.SSLSocket)  # the control connection: TLS since AUTH TLS
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


class _QuietClose:
    conn: ftplib.FTP | None

    def close_conn(self) -> None:
        """Close without ever raising: QUIT when the server still answers, else drop the socket."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (OSError, EOFError, ftplib.Error) as e:
            log.debug("closing the FTP connection: %s", e)
            conn.close()

    def drop_conn(self) -> None:
        """Drop the session without a word to the server: after it stopped answering (a timeout),
        a QUIT or any other command would wait the whole timeout again. The next call connects anew."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


DEFAULT_TIMEOUT = 60.0  # seconds: connect and every read of the control and data connections


def _passive(extra: dict[str, Any]) -> bool:
    """The ``passive`` extra (default true); "false" from a connection URI is false."""
    value = extra.get("passive", True)
    return value.strip().lower() not in ("false", "0", "no", "off") if isinstance(value, str) else bool(value)


def _host(params: Any) -> str:
    if not params.host:
        raise ValueError(f"connection {params.conn_id} has no host")
    return str(params.host)


def _timeout(extra: dict[str, Any]) -> float:
    """The connection's ``timeout`` extra (seconds), else 60: a server that stops answering ends the
    transfer with ``TimeoutError`` instead of holding the task for ever."""
    return float(extra.get("timeout") or DEFAULT_TIMEOUT)


class FTPHook(_QuietClose, ProviderFTPHook):
    """The provider's ``FTPHook`` with a close that never hides the error that ended the work, and a
    timeout (extra ``timeout``, seconds, default 60) on every socket operation."""

    def get_conn(self) -> ftplib.FTP:
        if self.conn is None:
            params = self.get_connection(self.ftp_conn_id)
            extra = params.extra_dejson
            ftp = ftplib.FTP(encoding=extra.get("encoding") or "utf-8", timeout=_timeout(extra))  # noqa: S321
            try:
                ftp.connect(_host(params), params.port or 21)
                ftp.login(params.login or "", params.password or "")
                ftp.set_pasv(_passive(extra))
            except BaseException:
                ftp.close()
                raise
            self.conn = ftp
        return self.conn


class FTPSHook(_QuietClose, ProviderFTPHook):
    """Explicit FTPS (AUTH TLS, PROT P) with TLS session reuse on data connections and the server's
    certificate verified against the system's trust store (``SSL_CERT_FILE`` for a private CA).

    Same connection fields as the provider's FTPS connection: host, port, login, password, extra
    ``passive`` (default true), ``encoding`` and ``timeout`` (seconds, default 60)."""

    conn_type = "ftps"
    hook_name = "FTPS (TLS session reuse)"
    ftp_class: type[ftplib.FTP_TLS] = _SessionReuseFTP_TLS

    def certificate_expires(self) -> dt.datetime:
        """When the server's TLS certificate (as verified on the control connection) expires."""
        try:
            sock = self.get_conn().sock
            assert isinstance(sock, ssl.SSLSocket)  # FTPS: the control connection is TLS
            not_after = (sock.getpeercert() or {}).get("notAfter")
        finally:
            self.close_conn()
        assert isinstance(not_after, str)  # a verified certificate has one
        return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)

    def tls_context(self) -> ssl.SSLContext:
        """The TLS settings: the system's defaults, which verify the certificate and the host name."""
        return ssl.create_default_context()

    def get_conn(self) -> ftplib.FTP:
        if self.conn is None:
            params = self.get_connection(self.ftp_conn_id)
            extra = params.extra_dejson
            self.encoding = extra.get("encoding")
            ftp = self.ftp_class(context=self.tls_context(), encoding=self.encoding or "utf-8", timeout=_timeout(extra))
            try:
                ftp.connect(_host(params), params.port or 21)
                ftp.auth()
                ftp.login(params.login or "", params.password or "")
                ftp.prot_p()
                ftp.set_pasv(_passive(extra))
            except BaseException:
                ftp.close()
                raise
            self.conn = ftp
        return self.conn
