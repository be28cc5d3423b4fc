"""Uploads that are never seen half-written: write NAME.part, check its size, rename to NAME."""

from __future__ import annotations

import hashlib
import io
import logging

log = logging.getLogger(__name__)


class TransferError(RuntimeError):
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


# What a path on an SFTP server holds, compared with the bytes we mean to deliver.
ABSENT, OURS, OTHER = "absent", "ours", "other"


def sftp_remote_copy(sftp, path: str, data: bytes) -> str:
    """``absent``, ``ours`` (same size and, where the server lets us read it back, the same sha256)
    or ``other``, over an open paramiko ``SFTPClient``. A server that refuses ``stat`` raises
    (nothing can be told); one that refuses reading is judged by size alone."""
    try:
        size = sftp.stat(path).st_size
    except FileNotFoundError:
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


def sftp_put_part(sftp, part: str, data: bytes) -> None:
    """Write ``data`` to ``part`` (a stale one is replaced) and check the server holds all of it."""
    sftp.putfo(io.BytesIO(data), part, file_size=len(data), confirm=False)
    size = sftp.stat(part).st_size
    if size != len(data):
        raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")


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
