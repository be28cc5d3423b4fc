"""SFTP over asyncssh for a bank whose server allows only modern algorithms, in paramiko's shape.

Security guides tell banks to allow only ``curve25519-sha256`` key exchange and the
``chacha20-poly1305@openssh.com`` cipher with an ed25519 host key. Paramiko (the SFTP provider's
client) offers neither the RFC name of that key exchange nor that cipher, so such a server refuses
it (``no acceptable kex algorithm``). asyncssh, which the SFTP provider's async hook already uses,
speaks both; this module opens an asyncssh session from the same Airflow connection (``host``,
``port``, ``login``, ``key_file`` or ``private_key``, and the pinned ``host_key``: required here)
and offers the handful of calls finflows makes on a paramiko ``SFTPClient`` (``stat``,
``listdir``, ``listdir_attr``, ``open`` for reading, ``putfo``, ``rename``, ``remove``), so the
delivery and reconciliation code is the same whichever library speaks.

Every call is bounded by the idle timeout (a server that stops answering ends the call with
``TimeoutError``), and the server's refusals become the ``OSError`` subclasses paramiko raises
(``FileNotFoundError``, ``PermissionError``), naming the path.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

WRITE_CHUNK = 1 << 16
# asyncssh narrates every channel at INFO; a task log wants our lines and asyncssh's warnings
logging.getLogger("asyncssh").setLevel(logging.WARNING)


class RemoteAttrs(NamedTuple):
    """What finflows reads of a remote file: paramiko's attribute names."""

    filename: str
    st_size: int | None
    st_mtime: int | None


class _Loop:
    """One event loop on its own thread, for the session's lifetime; calls wait for their result."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.stalled: str | None = None  # what timed out: the session is not waited on again
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asyncssh-sftp", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], what: str, path: str | None = None, timeout: float | None = None) -> Any:
        import asyncssh

        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout or self.idle_timeout)

        if self.stalled is not None:  # the server stopped answering earlier in this session
            if asyncio.iscoroutine(coro):
                coro.close()
            raise TimeoutError(f"{what}: not tried, the server stopped answering ({self.stalled})")
        try:
            return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result()
        except TimeoutError:
            self.stalled = f"{what} waited {timeout or self.idle_timeout:g} s"
            raise TimeoutError(
                f"{what}{f' {path}' if path else ''}: no answer from the server within {timeout or self.idle_timeout:g} s"
            ) from None
        except asyncssh.SFTPNoSuchFile as e:
            raise FileNotFoundError(errno.ENOENT, f"{what}: {e.reason or 'no such file'}", path) from None
        except asyncssh.SFTPPermissionDenied as e:
            raise PermissionError(errno.EACCES, f"{what}: {e.reason or 'permission denied'}", path) from None
        except asyncssh.SFTPError as e:
            raise OSError(errno.EIO, f"{what}: {e.reason or type(e).__name__}", path) from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        if not self.thread.is_alive():
            self.loop.close()


class RemoteFile:
    """A remote file open for reading."""

    def __init__(self, loop: _Loop, handle: Any, path: str) -> None:
        self._loop, self._handle, self.path = loop, handle, path

    def read(self, size: int = -1) -> bytes:
        return bytes(self._loop.run(self._handle.read(size), "read", self.path))

    def prefetch(self, *_: Any) -> None:
        """paramiko's read-ahead; asyncssh reads large sizes in parallel by itself."""

    def close(self) -> None:
        if self._loop.stalled is None:  # a stalled session is not waited on again (the read's error stands)
            self._loop.run(self._handle.close(), "close", self.path)

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StrictSFTPClient:
    """The calls finflows makes on a paramiko ``SFTPClient``, over an open asyncssh SFTP client."""

    def __init__(self, loop: _Loop, sftp: Any) -> None:
        self._loop, self._sftp = loop, sftp

    def stat(self, path: str) -> RemoteAttrs:
        attrs = self._loop.run(self._sftp.stat(path), "stat", path)
        return RemoteAttrs(path.rsplit("/", 1)[-1], attrs.size, attrs.mtime)

    def listdir_attr(self, path: str) -> list[RemoteAttrs]:
        names = self._loop.run(self._sftp.readdir(path), "list", path)
        return [RemoteAttrs(n.filename, n.attrs.size, n.attrs.mtime) for n in names if n.filename not in (".", "..")]

    def listdir(self, path: str) -> list[str]:
        return [a.filename for a in self.listdir_attr(path)]

    def open(self, path: str, mode: str = "rb") -> RemoteFile:
        if mode != "rb":
            raise ValueError("only reading is offered here; writes go through putfo")
        return RemoteFile(self._loop, self._loop.run(self._sftp.open(path, "rb"), "open", path), path)

    def putfo(self, fo: Any, path: str, file_size: int | None = None, confirm: bool = False) -> RemoteAttrs:
        """Write ``fo`` to ``path`` (replacing it); every write and the close are acknowledged by the
        server or raise. ``confirm`` (a stat afterwards) is the caller's choice, as in paramiko."""
        handle = self._loop.run(self._sftp.open(path, "wb"), "open for writing", path)
        written = 0
        try:
            while chunk := fo.read(WRITE_CHUNK):
                self._loop.run(handle.write(chunk, written), "write", path)
                written += len(chunk)
        finally:
            if self._loop.stalled is None:  # else the write's own timeout is the error, not a second wait
                self._loop.run(handle.close(), "close", path)
        return self.stat(path) if confirm else RemoteAttrs(path.rsplit("/", 1)[-1], written, None)

    def rename(self, old: str, new: str) -> None:
        self._loop.run(self._sftp.rename(old, new), f"rename to {new}", old)

    def remove(self, path: str) -> None:
        self._loop.run(self._sftp.remove(path), "remove", path)


def host_key_line(hook: Any) -> str:
    """The pinned host key (``type base64``) of an ``SSHHook``; a connection without one is refused."""
    if hook.host_key is None:
        raise ValueError(
            f"connection {hook.ssh_conn_id!r} pins no host key (extra host_key): a bank's server is "
            "only reached with its host key pinned"
        )
    return f"{hook.host_key.get_name()} {hook.host_key.get_base64()}"


def host_key_lines(hook: Any) -> list[str]:
    """Every pinned host key of the hook's connection (``type base64``); none pinned is refused."""
    if not hasattr(hook, "pinned_host_keys"):
        return [host_key_line(hook)]
    pinned = hook.pinned_host_keys()  # those whose window covers today
    if not pinned:
        if not hook.host_key_windows():
            host_key_line(hook)  # none pinned at all: refused in its words
        raise ValueError(
            f"connection {hook.ssh_conn_id!r} pins no host key for today (Asia/Taipei): "
            + "; ".join(w.describe() for w in hook.host_key_windows())
            + " (docs/key-rotation.md)"
        )
    return [f"{k.get_name()} {k.get_base64()}" for k in pinned]


def paramiko_key(key: Any) -> Any:
    """An asyncssh public key as paramiko's (for one fingerprint format)."""

    import paramiko

    algorithm = key.get_algorithm()
    return paramiko.PKey.from_type_string(
        algorithm if isinstance(algorithm, str) else algorithm.decode(), key.public_data
    )


@contextmanager
def session(hook: Any, *, idle_timeout: float) -> Iterator[StrictSFTPClient]:
    """An asyncssh SFTP session to the server of ``hook`` (an ``SSHHook``: its connection's host,
    port, login, key and pinned host key), closed on leaving."""
    import asyncssh

    options: dict[str, Any] = {
        "username": hook.username,
        # every pinned host key (extra host_key and host_keys: a rotation's old and new), nothing else
        "known_hosts": ([asyncssh.import_public_key(line) for line in host_key_lines(hook)], [], []),
        "config": [],  # nothing from ~/.ssh/config: the connection says everything
        "agent_path": None,
        "connect_timeout": hook.conn_timeout or 30,
        "login_timeout": idle_timeout,
        "keepalive_interval": max(1, idle_timeout / 4),
        "keepalive_count_max": 4,
    }
    extra = hook.get_connection(hook.ssh_conn_id).extra_dejson if hook.ssh_conn_id else {}
    if extra.get("private_key"):
        key = asyncssh.import_private_key(
            extra["private_key"], extra.get("private_key_passphrase") or extra.get("passphrase") or None
        )
        options["client_keys"] = [key]
    elif hook.key_file:
        options["client_keys"] = [hook.key_file]
    else:
        options["client_keys"] = None
    if hook.password:
        options["password"] = hook.password
    loop = _Loop(idle_timeout)
    conn = sftp = None
    try:
        conn = loop.run(
            asyncssh.connect(hook.remote_host, hook.port or 22, **options),
            f"connect to {hook.remote_host}:{hook.port or 22}",
            timeout=(hook.conn_timeout or 30) + idle_timeout,
        )
        sftp = loop.run(conn.start_sftp_client(), "start the sftp subsystem")
        shown = conn.get_server_host_key()
        if shown is not None and hasattr(hook, "shown_host_key"):
            from finflows.hooks.sftp import fingerprint

            hook.shown_host_key = fingerprint(paramiko_key(shown))
        yield StrictSFTPClient(loop, sftp)
    finally:
        _end(loop, conn, sftp)


def _end(loop: _Loop, conn: Any, sftp: Any) -> None:
    """Close the session; a stalled one is aborted (it would not answer a close), never waited on."""

    async def close() -> None:  # asyncssh's objects are used on their own loop's thread only
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def abort() -> None:
        if conn is not None:
            conn.abort()

    stalled, loop.stalled = loop.stalled, None
    try:
        loop.run(abort() if stalled else close(), "close the session", timeout=10)
    except (TimeoutError, OSError):
        pass
    finally:
        loop.close()
