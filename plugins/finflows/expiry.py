"""Keys and certificates run out: treasury and operations hear 30 days before.

What is watched: our PGP signing keys and each enabled bank's PGP keys (every key of their
chains in ``banks.yaml`` that is valid now or later, each read from its connection and pinned), the
end of each chain's last window (a day no key covers would stop payments), and the TLS
certificate of every FTPS counterparty (the card acquirer's statements server, the card companies'
chargeback servers). The finance daily report lists each one that runs out within
``FINFLOWS_EXPIRY_WARN_DAYS`` (30) days, and each already expired or unreadable, under "Needs
attention", naming which key and when, and pointing to the procedure (``PROCEDURE``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finflows.flows.banking.banks import BankConfig


log = logging.getLogger(__name__)

PROCEDURE = "docs/key-rotation.md"


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
        how = f" (procedure: {PROCEDURE})" if "PGP key" in what else ""
        if left <= dt.timedelta(0):
            out.append(f"{what} EXPIRED on {when:%Y-%m-%d %H:%M} UTC: renew it now; nothing can use it{how}")
        elif left <= dt.timedelta(days=days):
            out.append(f"{what} expires on {when:%Y-%m-%d %H:%M} UTC, in {left.days} day(s): renew it before then{how}")
    return out


def window_warnings(cfg: BankConfig, today: dt.date, days: int = 30) -> list[str]:
    """A chain whose last window ends within ``days`` of ``today`` (no key staged after it): payments
    to that bank (or signed by us) stop on the day after."""
    chains = [("our PGP signing keys", cfg.originator.signing_chain)]
    chains += [(f"{b}'s PGP keys", cfg.bank(b).pgp_chain) for b in cfg.enabled]
    out = []
    for what, windows in chains:
        end = windows[-1].valid_until
        if end is not None and (end - today).days <= days:
            out.append(
                f"{what}: the last key ({windows[-1].fingerprint}) is valid until {end} and none is staged after it: "
                f"from {end + dt.timedelta(days=1)} nothing can be {'signed' if 'our' in what else 'encrypted to them'}; "
                f"stage the next key in banks.yaml (procedure: {PROCEDURE})"
            )
    return out


def watched(cfg: BankConfig, destinations: Path | None = None) -> list[tuple[str, Callable[[], dt.datetime | None]]]:
    """(what, reader) for every key and certificate a flow depends on (``destinations``: the
    chargeback destinations file, chargeback_export's own by default)."""
    from finflows import settings
    from finflows.flows.chargeback_export.chargeback import CONFIG
    from finflows.flows.chargeback_export.chargeback import load_config as load_destinations
    from finflows.hooks.ftp import FTPSHook
    from finflows.hooks.pgp import PgpHook

    today = dt.datetime.now(dt.UTC).date()
    items: list[tuple[str, Callable[[], dt.datetime | None]]] = [
        (
            f"our PGP signing key {w.fingerprint} ({w.conn_id})",
            PgpHook(w.conn_id or "", fingerprint=w.fingerprint).expires,
        )
        for w in cfg.originator.signing_chain
        if w.valid_until is None or w.valid_until >= today
    ]
    for bank_id in cfg.enabled:
        items += [
            (
                f"{bank_id}'s PGP key {w.fingerprint} ({w.conn_id})",
                PgpHook(w.conn_id or "", fingerprint=w.fingerprint).expires,
            )
            for w in cfg.bank(bank_id).pgp_chain
            if w.valid_until is None or w.valid_until >= today
        ]
    ftps = [("the card acquirer's FTPS certificate", settings.CONN_FTPS_ACQUIRER)]
    ftps += [
        (f"{company}'s FTPS certificate", d["conn_id"])
        for company, d in sorted(load_destinations(destinations or CONFIG)["destinations"].items())
        if d.get("protocol") == "ftps"
    ]
    items += [(f"{what} ({conn_id})", FTPSHook(ftp_conn_id=conn_id).certificate_expires) for what, conn_id in ftps]
    return items
