"""Keys and certificates run out: treasury and operations hear 30 days before.

What is watched: our PGP signing key and each enabled bank's PGP key (the connections
``banks.yaml`` names, each pinned), and the TLS certificate of every FTPS counterparty (the card
acquirer's statements server, the card companies' chargeback servers). The finance daily report
lists each one that expires within ``FINFLOWS_EXPIRY_WARN_DAYS`` (30) days, and each already
expired or unreadable, under "Needs attention", naming which and when.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def warnings(
    items: Iterable[tuple[str, Callable[[], dt.datetime | None]]], now: dt.datetime, days: int = 30
) -> list[str]:
    """One sentence per item (what, how to read its expiry) that expires within ``days`` days of
    ``now``, has expired, or cannot be read; nothing for one that does not expire."""
    out = []
    for what, read in items:
        try:
            when = read()
        except Exception as e:
            out.append(f"{what}: its expiry could not be read ({type(e).__name__}: {e})")
            continue
        if when is None:
            continue
        left = when - now
        if left <= dt.timedelta(0):
            out.append(f"{what} EXPIRED on {when:%Y-%m-%d %H:%M} UTC: renew it now; nothing can use it")
        elif left <= dt.timedelta(days=days):
            out.append(f"{what} expires on {when:%Y-%m-%d %H:%M} UTC, in {left.days} day(s): renew it before then")
    return out


def watched(cfg, destinations: Path | None = None) -> list[tuple[str, Callable[[], dt.datetime | None]]]:
    """(what, reader) for every key and certificate a flow depends on (``destinations``: the
    chargeback destinations file, chargeback_export's own by default)."""
    from finflows import settings
    from finflows.flows.chargeback_export.chargeback import CONFIG
    from finflows.flows.chargeback_export.chargeback import load_config as load_destinations
    from finflows.hooks.ftp import FTPSHook
    from finflows.hooks.pgp import PgpHook

    items: list[tuple[str, Callable[[], dt.datetime | None]]] = [
        (
            f"our PGP signing key ({cfg.originator.signing_key_conn_id})",
            PgpHook(cfg.originator.signing_key_conn_id, fingerprint=cfg.originator.signing_key_fingerprint).expires,
        )
    ]
    for bank_id in cfg.enabled:
        bank = cfg.bank(bank_id)
        items.append(
            (
                f"{bank.id}'s PGP key ({bank.pgp_key_conn_id})",
                PgpHook(bank.pgp_key_conn_id, fingerprint=bank.pgp_key_fingerprint).expires,
            )
        )
    ftps = [("the card acquirer's FTPS certificate", settings.CONN_FTPS_ACQUIRER)]
    ftps += [
        (f"{company}'s FTPS certificate", d["conn_id"])
        for company, d in sorted(load_destinations(destinations or CONFIG)["destinations"].items())
        if d.get("protocol") == "ftps"
    ]
    items += [(f"{what} ({conn_id})", FTPSHook(ftp_conn_id=conn_id).certificate_expires) for what, conn_id in ftps]
    return items
