"""Uploads that are never seen half-written: write NAME.part, check its size, rename to NAME."""

from __future__ import annotations

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


class RemoteConflict(TransferError):
    """The final name already holds a different file: a person must look; retrying cannot help."""


def sftp_upload_atomic(sftp, directory: str, name: str, data: bytes) -> str:
    """Upload over an open paramiko ``SFTPClient`` (``SFTPHook.get_managed_conn()``): ``NAME.part``,
    size check, rename. Returns ``uploaded``, or ``already_there`` when an earlier try completed
    (same name, same size) and only its bookkeeping was lost."""
    final = f"{directory.rstrip('/')}/{name}"
    part = f"{final}.part"
    try:
        size = sftp.stat(final).st_size
    except FileNotFoundError:
        pass
    else:
        if size == len(data):
            log.info("%s is already there (%d bytes): not uploaded again", final, size)
            return "already_there"
        raise RemoteConflict(f"{final} already exists with {size} bytes; ours has {len(data)}")
    sftp.putfo(io.BytesIO(data), part, file_size=len(data), confirm=False)
    size = sftp.stat(part).st_size
    if size != len(data):
        sftp.remove(part)
        raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")
    sftp.rename(part, final)
    log.info("uploaded %s (%d bytes)", final, len(data))
    return "uploaded"
