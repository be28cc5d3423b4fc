"""Uploads that are never seen half-written: write NAME.part, check its size, rename to NAME."""

from __future__ import annotations

import io
import logging

log = logging.getLogger(__name__)


class TransferError(RuntimeError):
    pass


def ftp_upload_atomic(hook, directory: str, name: str, data: bytes) -> None:
    """Upload through an Airflow FTPHook/FTPSHook; the final name appears only once complete."""
    final = f"{directory.rstrip('/')}/{name}"
    part = f"{final}.part"
    hook.store_file(part, io.BytesIO(data))
    size = hook.get_size(part)
    if size != len(data):
        hook.delete_file(part)
        raise TransferError(f"{part}: server holds {size} bytes after upload, expected {len(data)}")
    hook.rename(part, final)
    log.info("uploaded %s (%d bytes)", final, len(data))
