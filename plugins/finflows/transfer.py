"""Uploads that are never seen half-written: write NAME.part, check its size, rename to NAME."""

from __future__ import annotations

import hashlib
import io
import logging

from finflows.errors import FinflowsError
from finflows.seams import FtpHook, Sftp, SftpHook

log = logging.getLogger(__name__)


class TransferError(FinflowsError, RuntimeError):
    pass


def ftp_size(hook: FtpHook, path: str, check: str = "size") -> int | None:
    """The size of ``path`` on an FTP(S) server: by ``SIZE``, or (``list``) from its directory's
    ``LIST`` (the Unix ``ls -l`` form every server we meet sends); None when the listing lacks it.
    A server that refuses ``SIZE`` raises a :class:`TransferError` that says which ``upload_check``
    fits it."""
    import ftplib

    if check == "list":
        directory, _, name = path.rpartition("/")
        lines: list[str] = []
        hook.get_conn().retrlines(f"LIST {directory or '/'}", lines.append)
        for line in lines:
            fields = line.split(None, 8)
            if len(fields) == 9 and fields[8] == name:
                if not fields[4].isdigit():
                    raise TransferError(f"{directory}: the listing's line for {name} has no size we can read")
                return int(fields[4])
        return None
    try:
        return hook.get_size(path)
    except ftplib.error_perm as e:
        raise TransferError(
            f"{path}: the server refused SIZE ({str(e).strip()}); if it never allows it, set this destination's "
            "upload_check to list (its directory listing) or trust"
        ) from e


def ftp_upload_atomic(
    hook: FtpHook, directory: str, name: str, data: bytes, check: str = "size", *, rename: bool = True
) -> None:
    """Upload through an FTP/FTPS hook; the final name appears only once complete.

    ``NAME.part`` first (a stale one from an earlier try is replaced), its size checked (``check``:
    by ``SIZE``, by the directory listing, or ``trust``: the server's 226 for the transfer alone),
    then the rename. A server that denies renaming (``rename`` False) takes the file under its final
    name at once, as such servers expect (they hold a file back until its transfer completes); a
    failed or short upload is then removed under that name. A failed upload removes its ``NAME.part`` where the server still answers; the original
    error is what is raised. A session that stopped answering (a timeout) is dropped at once and
    the clean-up goes over a new one: nothing waits on the stalled session a second time, so the
    whole attempt gives up within the connection's timeout plus a new login."""
    final = f"{directory.rstrip('/')}/{name}"
    part = f"{final}.part" if rename else final
    try:
        hook.store_file(part, io.BytesIO(data))
        if check != TRUST:
            size = ftp_size(hook, part, check)
            if size != len(data):
                raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")
        if rename:
            hook.rename(part, final)
    except Exception as e:
        if isinstance(e, TimeoutError) and hasattr(hook, "drop_conn"):
            hook.drop_conn()
        _remove_quietly(hook, part)
        raise
    log.info("uploaded %s (%d bytes)", final, len(data))


def _remove_quietly(hook: FtpHook, path: str) -> None:
    """Remove a partial upload, on a new connection if the server dropped ours (vsftpd ends the
    session after a refused TLS data connection). Never raises."""
    for attempt in (1, 2):
        try:
            hook.delete_file(path)
            log.info("removed the partial %s", path)
            return
        except Exception as e:
            if attempt == 2:
                log.warning("could not remove %s after a failed upload: %s", path, e or type(e).__name__)
            else:
                hook.close_conn()  # the next call connects again


# What a path on an SFTP server holds, compared with the bytes we mean to deliver; ``unknown`` where
# the server lets us see neither a stat nor a listing (upload_check ``trust``).
ABSENT, OURS, OTHER, UNKNOWN = "absent", "ours", "other", "unknown"
# How a bank's server lets us look at what we wrote (banks.yaml ``upload_check``).
STAT, LIST, TRUST = "stat", "list", "trust"


def sftp_size(sftp: Sftp, path: str, check: str = STAT) -> int | None:
    """The size of ``path`` (None when absent), by ``stat`` or from its directory's listing.
    A server that refuses the one asked for raises ``PermissionError`` naming the path."""
    if check == LIST:
        directory, _, name = path.rpartition("/")
        for entry in sftp.listdir_attr(directory or "/"):
            if entry.filename == name:
                return _size(entry.st_size)
        return None
    try:
        return _size(sftp.stat(path).st_size)
    except FileNotFoundError:
        return None


def _size(value: object) -> int | None:
    """A listed size as an int; None where the server gave none (as before: not proven there)."""
    return None if value is None else int(str(value))


def sftp_remote_copy(sftp: Sftp, path: str, data: bytes, check: str = STAT) -> str:
    """``absent``, ``ours`` (same size and, where the server lets us read it back, the same sha256)
    or ``other``, over an open SFTP client (paramiko's, or ``finflows.hooks.asyncssh_sftp``);
    ``unknown`` when ``check`` is ``trust``. A server that refuses the stat or the listing raises
    (nothing can be told); one that refuses reading is judged by size alone."""
    if check == TRUST:
        return UNKNOWN
    size = sftp_size(sftp, path, check)
    if size is None:
        return ABSENT
    if size != len(data):
        return OTHER
    try:
        digest = hashlib.sha256()
        with sftp.open(path, "rb") as f:
            f.prefetch(size)
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except PermissionError:
        log.info("%s: the server does not let us read it back; judged by its size (%d bytes)", path, size)
        return OURS
    return OURS if digest.hexdigest() == hashlib.sha256(data).hexdigest() else OTHER


def sftp_put_part(sftp: Sftp, part: str, data: bytes, check: str = STAT) -> None:
    """Write ``data`` to ``part`` (a stale one is replaced) and check the server holds all of it:
    by ``stat``, by listing the directory, or (``trust``) by the server's acknowledgement of every
    write and of the close alone."""
    sftp.putfo(io.BytesIO(data), part, file_size=len(data), confirm=False)
    if check == TRUST:
        return
    size = sftp_size(sftp, part, check)
    if size != len(data):
        raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")


def sftp_reachable(sftp: Sftp, directory: str, check: str = STAT) -> None:
    """Prove the logged-in session can see ``directory`` the way uploads will: stat it, list it,
    or (``trust``) nothing beyond the login and the SFTP subsystem."""
    if check == STAT:
        sftp.stat(directory)
    elif check == LIST:
        sftp.listdir_attr(directory)


def sftp_remove_quietly(sftp_hook: SftpHook, path: str) -> bool:
    """Remove ``path`` on a new connection (ours may be the one that broke); True when it is gone
    (removed now, or not there). Never raises."""
    try:
        with sftp_hook.get_managed_conn() as sftp:
            try:
                sftp.remove(path)
                log.info("removed %s", path)
            except FileNotFoundError:
                pass
            return True
    except Exception as e:
        log.warning("could not remove %s: %s", path, e or type(e).__name__)
        return False
