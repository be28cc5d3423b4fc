"""Uploads that are never seen half-written: write NAME.part, check its size, rename to NAME."""

from __future__ import annotations

import hashlib
import io
import logging

from finflows.errors import FinflowsError

log = logging.getLogger(__name__)


class TransferError(FinflowsError, RuntimeError):
    pass


def ftp_upload_atomic(hook, directory: str, name: str, data: bytes) -> None:
    """Upload through an FTP/FTPS hook; the final name appears only once complete.

    ``NAME.part`` first (a stale one from an earlier try is replaced), its size checked, then the
    rename. A failed upload removes its ``NAME.part`` where the server still answers; the original
    error is what is raised."""
    final = f"{directory.rstrip('/')}/{name}"
    part = f"{final}.part"
    try:
        hook.store_file(part, io.BytesIO(data))
        size = hook.get_size(part)
        if size != len(data):
            raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")
        hook.rename(part, final)
    except Exception:
        _remove_quietly(hook, part)
        raise
    log.info("uploaded %s (%d bytes)", final, len(data))


def _remove_quietly(hook, path: str) -> None:
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


def sftp_size(sftp, path: str, check: str = STAT) -> int | None:
    """The size of ``path`` (None when absent), by ``stat`` or from its directory's listing.
    A server that refuses the one asked for raises ``PermissionError`` naming the path."""
    if check == LIST:
        directory, _, name = path.rpartition("/")
        for entry in sftp.listdir_attr(directory or "/"):
            if entry.filename == name:
                return entry.st_size
        return None
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None


def sftp_remote_copy(sftp, path: str, data: bytes, check: str = STAT) -> str:
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


def sftp_put_part(sftp, part: str, data: bytes, check: str = STAT) -> None:
    """Write ``data`` to ``part`` (a stale one is replaced) and check the server holds all of it:
    by ``stat``, by listing the directory, or (``trust``) by the server's acknowledgement of every
    write and of the close alone."""
    sftp.putfo(io.BytesIO(data), part, file_size=len(data), confirm=False)
    if check == TRUST:
        return
    size = sftp_size(sftp, part, check)
    if size != len(data):
        raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")


def sftp_reachable(sftp, directory: str, check: str = STAT) -> None:
    """Prove the logged-in session can see ``directory`` the way uploads will: stat it, list it,
    or (``trust``) nothing beyond the login and the SFTP subsystem."""
    if check == STAT:
        sftp.stat(directory)
    elif check == LIST:
        sftp.listdir_attr(directory)


def sftp_remove_quietly(sftp_hook, path: str) -> bool:
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
