"""Our PGP keys and the banks' run out: what of them the daily report warns about (through
``finflows.expiry``: ``expiring`` is banking's declaration, ``window_warnings`` the chains' ends)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from finflows.expiry import PROCEDURE, Watched

if TYPE_CHECKING:
    from finflows.flows.banking.banks import BankConfig


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


def keys(cfg: BankConfig) -> list[Watched]:
    """Our signing keys and each enabled bank's keys, every one valid now or later, each read from
    its connection (pinned)."""
    from finflows.hooks.pgp import PgpHook

    today = dt.datetime.now(dt.UTC).date()
    items: list[Watched] = [
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
    return items
