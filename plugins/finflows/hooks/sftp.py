"""A bank's SFTP sessions, never more at once than the bank allows, across every DAG and process.

Banks allow a few concurrent SFTP sessions per customer (5 is common; ``sftp_sessions`` in
``banks.yaml``); a sixth login is refused or, worse, counted against us. bank_payments, the retry
queue, reconciliation, the health checks and the monitor's test-connection all open sessions to the
same bank, from different DAGs, workers and the api-server, so the limit is kept where they all
meet: the finance database. Each session holds one of the bank's numbered PostgreSQL advisory
locks on a connection of its own for as long as it is open; a process that dies loses its
connection and with it the lock, so a crashed worker never holds a slot.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from typing import Any

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook

from finflows.sessions import IncompatibleServer, SessionLimitReached, session_slot

__all__ = ["BankSFTPHook", "IncompatibleServer", "SessionLimitReached", "session_slot"]


class BankSFTPHook(SFTPHook):
    """``SFTPHook`` whose sessions (``get_managed_conn``) count against the bank's limit.

    :param session_key: the name the bank's slots share, e.g. ``sftp:mega``.
    :param session_limit: concurrent sessions the bank allows.
    :param limiter: returns a new connection to the database that keeps the slots (psycopg).
    :param session_wait: seconds to wait for a free slot before ``SessionLimitReached``.
    """

    def __init__(
        self,
        *args: Any,
        session_key: str,
        session_limit: int,
        limiter: Callable[[], Any],
        session_wait: float = 900,
        idle_timeout: float | None = None,
        ssh_library: str = "paramiko",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.session_key, self.session_limit = session_key, session_limit
        self.limiter, self.session_wait = limiter, session_wait
        self.idle_timeout = idle_timeout
        self.ssh_library = ssh_library  # "paramiko" or "asyncssh" (banks.yaml sftp_client)
        self._strict: Any = None  # the open asyncssh session's client, shared by nested uses

    @contextmanager
    def get_managed_conn(self):
        if self.ssh_library == "asyncssh":
            with self._asyncssh_conn() as client:
                yield client
            return
        if self.get_conn_count():  # nested use shares the session (and the slot) already open
            with super().get_managed_conn() as client:
                yield client
            return
        with ExitStack() as stack:
            stack.enter_context(
                session_slot(self.limiter, self.session_key, self.session_limit, wait=self.session_wait)
            )
            try:
                client = stack.enter_context(super().get_managed_conn())
            except paramiko.ssh_exception.IncompatiblePeer as e:
                raise IncompatibleServer(
                    f"{self.remote_host}:{self.port} ({self.ssh_conn_id}) and paramiko share no algorithm ({e}); "
                    "a server that allows only curve25519-sha256 or chacha20-poly1305 is reached with "
                    "`sftp_client: asyncssh` in the bank's banks.yaml entry"
                ) from e
            if self.idle_timeout:  # a server that stops answering mid-listing or mid-transfer ends the wait
                client.get_channel().settimeout(self.idle_timeout)
                _end_session_on_first_stall(client.get_channel())
            yield client

    @contextmanager
    def _asyncssh_conn(self):
        """The same, through asyncssh (``finflows.hooks.asyncssh_sftp``)."""
        from finflows.hooks import asyncssh_sftp

        if self._strict is not None:  # nested use shares the session (and the slot) already open
            yield self._strict
            return
        with (
            session_slot(self.limiter, self.session_key, self.session_limit, wait=self.session_wait),
            asyncssh_sftp.session(self, idle_timeout=self.idle_timeout or 120) as client,
        ):
            self._strict = client
            try:
                yield client
            finally:
                self._strict = None


def _end_session_on_first_stall(channel: Any) -> None:
    """The first wait of the SFTP channel that runs out its timeout closes the SSH transport, so
    that what follows on this session (closing a file handle, the client's own close) fails at
    once instead of waiting the idle timeout again: paramiko applies the timeout to each wait, and
    a stalled upload used to wait twice before giving up. The clean-up a caller does afterwards
    (removing a ``.part``) goes over a new session."""

    transport = channel.get_transport()
    for name in ("recv", "send"):
        wait = getattr(channel, name)

        def bounded(*args: Any, _wait: Any = wait, _name: str = name) -> Any:
            try:
                return _wait(*args)
            except TimeoutError:
                transport.close()  # every later wait on this session ends at once
                raise

        setattr(channel, name, bounded)
