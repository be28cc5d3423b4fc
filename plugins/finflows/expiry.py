"""Keys and certificates run out: treasury and operations hear 30 days before.

Each flow declares what it depends on that runs out, as ``expiring(**context)`` in its package
(``finflows.flows.<flow>``); ``watched`` finds them by name, so this module imports no flow. What is
watched today: our PGP signing keys and each enabled bank's PGP keys (every key of their
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
from typing import Any, TypeAlias

log = logging.getLogger(__name__)

PROCEDURE = "docs/key-rotation.md"
Watched: TypeAlias = tuple[str, Callable[[], dt.datetime | None]]  # (what, how to read when it expires)


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


def watched(**context: Any) -> list[Watched]:
    """(what, reader) for every key and certificate a flow depends on: each flow package's
    ``expiring(**context)`` (``cfg``: the banks' configuration, when the caller has it loaded)."""
    import importlib
    import pkgutil

    import finflows.flows

    items: list[Watched] = []
    for found in sorted(pkgutil.iter_modules(finflows.flows.__path__), key=lambda m: m.name):
        declared = getattr(importlib.import_module(f"finflows.flows.{found.name}"), "expiring", None)
        if declared is not None:
            items += declared(**context)
    return items
