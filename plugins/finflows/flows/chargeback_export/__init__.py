"""chargeback_export: chargeback data in S3 → at most four CSV files per batch → card companies' FTP servers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finflows.expiry import Watched


def expiring(destinations: Path | None = None, **_: Any) -> list[Watched]:
    """Each FTPS card company's certificate (``finflows.expiry.watched``); ``destinations``: the
    destinations file, this flow's own by default."""
    from finflows.flows.chargeback_export.chargeback import CONFIG, load_config
    from finflows.hooks.ftp import FTPSHook

    return [
        (f"{company}'s FTPS certificate ({d.conn_id})", FTPSHook(ftp_conn_id=d.conn_id).certificate_expires)
        for company, d in sorted(load_config(destinations or CONFIG).destinations.items())
        if d.protocol == "ftps"
    ]
