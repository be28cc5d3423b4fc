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

import base64
import datetime as dt
import hashlib
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple

import paramiko
from airflow.providers.sftp.hooks.sftp import SFTPHook

from finflows.errors import FinflowsError
from finflows.sessions import IncompatibleServer, SessionLimitReached, session_slot
from finflows.settings import TAIPEI

__all__ = [
    "BankSFTPHook",
    "HostKeyOutsideWindow",
    "HostKeyWindow",
    "IncompatibleServer",
    "SessionLimitReached",
    "host_key_windows",
    "session_slot",
]


class HostKeyOutsideWindow(FinflowsError, paramiko.BadHostKeyException):
    """The server showed a host key the connection pins, but not for today: refused before any login."""

    def __init__(self, hostname: str, shown: paramiko.PKey, expected: paramiko.PKey, why: str) -> None:
        super().__init__(hostname, shown, expected)
        self.why = why
        self.args = (why,)

    def __str__(self) -> str:
        return self.why


class HostKeyWindow(NamedTuple):
    """One pinned host key and the days (Asia/Taipei, both included) it may be shown; None: open."""

    key: paramiko.PKey
    valid_from: dt.date | None
    valid_until: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def describe(self) -> str:
        return f"{fingerprint(self.key)} ({self.valid_from or 'always'} to {self.valid_until or 'open'})"


def _host_key_entry(entry: Any, conn_id: str) -> HostKeyWindow:
    """``"ssh-ed25519 AAAA…"`` or ``{"key": "ssh-ed25519 AAAA…", "valid_from": "YYYY-MM-DD",
    "valid_until": "YYYY-MM-DD"}``; anything else is refused naming the connection and the entry."""
    days: dict[str, Any] = entry if isinstance(entry, dict) else {}
    line = entry if isinstance(entry, str) else days.get("key")
    unknown = set(days) - {"key", "valid_from", "valid_until"}
    try:
        if not isinstance(line, str) or unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}" if unknown else "no key")
        key_type, data = line.split()[:2]
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
        start, end = (dt.date.fromisoformat(days[k]) if days.get(k) else None for k in ("valid_from", "valid_until"))
    except (ValueError, TypeError, paramiko.SSHException) as e:
        raise ValueError(
            f"connection {conn_id!r}: extra host_keys entry {str(entry)[:80]!r} is not a host key "
            f'("TYPE BASE64" or {{"key", "valid_from", "valid_until"}}): {e}'
        ) from e
    if start and end and end < start:
        raise ValueError(f"connection {conn_id!r}: host key {fingerprint(key)} ends ({end}) before it starts ({start})")
    return HostKeyWindow(key, start, end)


def host_key_windows(extra: dict[str, Any], conn_id: str) -> list[HostKeyWindow]:
    """Every host key the connection pins, with its window: ``extra.host_keys`` (a rotation's old
    and new, each with the days the bank gave) and ``extra.host_key`` (open, unless host_keys lists
    the same key with a window: the window rules)."""
    entries = extra.get("host_keys") or []
    windows = [_host_key_entry(e, conn_id) for e in ([entries] if isinstance(entries, str) else entries)]
    if extra.get("host_key"):
        single = _host_key_entry(extra["host_key"], conn_id)
        if all(single.key.asbytes() != w.key.asbytes() for w in windows):
            windows.insert(0, single)
    return windows


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
        self.shown_host_key: str | None = None  # the host key the server showed in the last session

    def host_key_windows(self) -> list[HostKeyWindow]:
        """Every pinned host key with its window (``host_key_windows``)."""
        extra = self.get_connection(self.ssh_conn_id).extra_dejson if self.ssh_conn_id else {}
        windows = host_key_windows(extra, self.ssh_conn_id or "")
        if self.host_key is not None and all(self.host_key.asbytes() != w.key.asbytes() for w in windows):
            windows.insert(0, HostKeyWindow(self.host_key, None, None))
        return windows

    def pinned_host_keys(self, day: dt.date | None = None) -> list[paramiko.PKey]:
        """The host keys pinned for ``day`` (today in Asia/Taipei): those whose window covers it."""
        day = day or dt.datetime.now(TAIPEI).date()
        return [w.key for w in self.host_key_windows() if w.covers(day)]

    def _hold_to_the_shown_key(self) -> None:
        """With several keys pinned (or one with a window), read the server's (a key exchange, no
        login) and hold the session to the pinned key it matches, if that key's window covers
        today; refuse by name a key pinned nowhere, or pinned for other days."""
        windows = self.host_key_windows()
        if len(windows) < 2 and all(w.valid_from is None and w.valid_until is None for w in windows):
            if windows:  # one key, always valid: pinned as extra host_key is (even when given in host_keys)
                self.host_key = windows[0].key
            return
        day = dt.datetime.now(TAIPEI).date()
        kinds = sorted({w.key.get_name() for w in windows})
        shown = probe_host_key(self.remote_host, self.port or 22, kinds, self.conn_timeout or 30)
        match = next((w for w in windows if w.key.asbytes() == shown.asbytes()), None)
        if match is None:
            raise paramiko.BadHostKeyException(self.remote_host, shown, windows[0].key)
        if not match.covers(day):
            raise HostKeyOutsideWindow(
                self.remote_host, shown, match.key,
                f"{self.remote_host}:{self.port} ({self.ssh_conn_id}) showed host key {match.describe()}, "
                f"which is not pinned for {day} (Asia/Taipei): refused before any login; "
                "see docs/key-rotation.md",
            )  # fmt: skip
        self.host_key = match.key

    @contextmanager
    def get_managed_conn(self) -> Iterator[Any]:
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
                self._hold_to_the_shown_key()
                client = stack.enter_context(super().get_managed_conn())
                self.shown_host_key = fingerprint(client.get_channel().get_transport().get_remote_server_key())
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
    def _asyncssh_conn(self) -> Iterator[Any]:
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


def fingerprint(key: Any) -> str:
    """A host key as OpenSSH prints it: ``ssh-ed25519 SHA256:…``."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def probe_host_key(host: str, port: int, key_types: list[str], timeout: float) -> paramiko.PKey:
    """The host key the server shows (of the pinned types), read by a key exchange without a login."""
    sock = socket.create_connection((host, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        options = transport.get_security_options()
        options.key_types = [t for t in options.key_types if t in key_types] or options.key_types
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


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
