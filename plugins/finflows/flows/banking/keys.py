"""PGP keys with validity windows: a bank's keys and our signing keys rotate without a stop.

A key chain is a list of windows (``fingerprint``, ``conn_id``, ``valid_from``, ``valid_until``;
days, Asia/Taipei, both included; an open end is unbounded). ``banks.yaml`` gives one per bank
(``pgp_keys``) and one for us (``originator.signing_keys``); without a list, the single pinned key
(``pgp_key_fingerprint`` / ``signing_key_fingerprint``) is a chain of one window that never ends.

Rules, checked when the configuration is loaded (``check``): fingerprints are unique; windows are
in order of ``valid_from`` with no gap between one and the next (a day no key covers would stop
payments); two windows overlap at most ``key_overlap_max_days``; a window ends no earlier than it
starts.

Which key, when:

- a payment file is **encrypted to** the bank's key valid on its processing date and **signed
  with** our key valid then; during an overlap, the newer window (the later ``valid_from``: the
  day the bank said to switch) wins;
- a return file's signature is **accepted from any** of the bank's keys valid on the file's date;
- our archived copy is also encrypted to our own key of that day, and **every** key of our chain
  (retired ones too) may open an archive: a retired key stays listed until the archive's
  retention has passed;
- a day outside every window is refused by name (``KeyWindowError``).

No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from finflows.errors import FinflowsError
from finflows.settings import TAIPEI

if TYPE_CHECKING:
    from finflows.flows.banking.banks import BankConfig


Fingerprint = Annotated[str, Field(pattern=r"^[0-9A-F]{40}$", description="40 hex digits, upper case")]


class KeyWindowError(FinflowsError, ValueError):
    """No key of a chain is valid on the day asked, or a chain breaks its rules."""


class KeyWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: Fingerprint
    conn_id: str | None = None  # the connection holding it; the chain's default connection when absent
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def describe(self) -> str:
        return f"{self.fingerprint} ({self.valid_from or 'always'} to {self.valid_until or 'open'})"


def chain(windows: list[KeyWindow] | None, fingerprint: str, conn_id: str) -> tuple[KeyWindow, ...]:
    """The key chain: the configured windows (each with its connection), or the one pinned key."""
    if not windows:
        return (KeyWindow(fingerprint=fingerprint, conn_id=conn_id),)
    return tuple(w if w.conn_id else w.model_copy(update={"conn_id": conn_id}) for w in windows)


def check(windows: tuple[KeyWindow, ...], owner: str, max_overlap_days: int) -> list[str]:
    """What breaks the chain's rules, in words naming the owner (empty: none)."""
    problems = []
    fps = [w.fingerprint for w in windows]
    problems += [f"{owner}: key {fp} is listed twice" for fp in sorted({f for f in fps if fps.count(f) > 1})]
    for w in windows:
        if w.valid_from and w.valid_until and w.valid_until < w.valid_from:
            problems.append(f"{owner}: key {w.describe()} ends before it starts")
    ordered = sorted(windows, key=lambda w: w.valid_from or dt.date.min)
    if list(ordered) != list(windows):
        problems.append(f"{owner}: list the keys in the order of valid_from")
    for a, b in itertools.pairwise(ordered):
        if a.valid_until is None:
            problems.append(
                f"{owner}: key {a.describe()} never ends, yet {b.fingerprint} follows it: give it valid_until"
            )
            continue
        start = b.valid_from or dt.date.min
        if start > a.valid_until + dt.timedelta(days=1):
            problems.append(f"{owner}: no key between {a.valid_until} and {start} ({a.fingerprint} → {b.fingerprint})")
        overlap = (a.valid_until - start).days + 1
        if overlap > max_overlap_days:
            problems.append(
                f"{owner}: keys {a.fingerprint} and {b.fingerprint} overlap {overlap} days, more than "
                f"key_overlap_max_days ({max_overlap_days})"
            )
    return problems


def _outside(windows: tuple[KeyWindow, ...], owner: str, day: dt.date) -> KeyWindowError:
    listed = "; ".join(w.describe() for w in windows)
    return KeyWindowError(f"{owner}: no key is valid on {day} (keys: {listed}): stage the next key in banks.yaml")


def for_sending(windows: tuple[KeyWindow, ...], owner: str, day: dt.date) -> KeyWindow:
    """The key to encrypt to (or sign with) on ``day``: of those valid then, the newest."""
    valid = [w for w in windows if w.covers(day)]
    if not valid:
        raise _outside(windows, owner, day)
    return max(valid, key=lambda w: w.valid_from or dt.date.min)


def for_verifying(windows: tuple[KeyWindow, ...], owner: str, day: dt.date) -> tuple[KeyWindow, ...]:
    """Every key whose signature is accepted on ``day``."""
    valid = tuple(w for w in windows if w.covers(day))
    if not valid:
        raise _outside(windows, owner, day)
    return valid


# ---------------------------------------------------------------------------- the procedure's commands
USAGE = """python -m finflows.flows.banking.keys show | check [--day YYYY-MM-DD] [--test-file BANK OUT] | export-ours [FINGERPRINT]

show         every key chain of banks.yaml: each key's window, and which key encrypts, signs and verifies today;
             each bank's SFTP host keys and their windows
check        load every key that is valid today or later from its connection, pinned, and every bank's SFTP
             host keys, one pinned for the day (exit 1 if one fails);
             --test-file BANK OUT also writes a test file for BANK, encrypted to its key of --day (default today)
             and signed with ours, for the bank to decrypt with the key it gave us
export-ours  our public key(s) (ASCII-armoured), for the banks: the one valid today, or FINGERPRINT's
The procedure: docs/key-rotation.md"""


def _chains(cfg: BankConfig) -> list[tuple[str, tuple[KeyWindow, ...]]]:
    return [("our signing keys", cfg.originator.signing_chain)] + [
        (f"bank {b}", cfg.bank(b).pgp_chain) for b in cfg.enabled
    ]


def _show(cfg: BankConfig, day: dt.date) -> list[str]:
    lines = []
    for owner, windows in _chains(cfg):
        lines.append(f"{owner}:")
        lines += [f"  {w.describe()} in connection {w.conn_id}" for w in windows]
        try:
            sending = for_sending(windows, owner, day).fingerprint
            verifying = ", ".join(w.fingerprint for w in for_verifying(windows, owner, day))
            lines.append(
                f"  on {day}: {'signs' if owner.startswith('our') else 'encrypt to'} {sending}; accepted: {verifying}"
            )
        except KeyWindowError as e:
            lines.append(f"  on {day}: {e}")
    for b, pinned in host_key_chains(cfg):
        lines.append(f"bank {b} SFTP host keys:")
        lines += [f"  {h.describe()}{'' if h.covers(day) else f' (not pinned on {day})'}" for h in pinned]
    return lines


def bank_host_keys(cfg: BankConfig, bank_id: str) -> list[Any]:
    """The bank's SFTP connection's pinned host keys with their windows; a connection whose host
    keys do not parse raises naming it."""
    from airflow.sdk import BaseHook

    from finflows.hooks.sftp import host_key_windows

    conn_id = cfg.bank(bank_id).sftp_conn_id
    return host_key_windows(BaseHook.get_connection(conn_id).extra_dejson, conn_id)


def host_key_chains(cfg: BankConfig) -> list[tuple[str, list[Any]]]:
    """(bank, ``bank_host_keys``) for every enabled bank."""
    return [(b, bank_host_keys(cfg, b)) for b in cfg.enabled]


def _host_key_problems(cfg: BankConfig, day: dt.date) -> list[str]:
    problems = []
    for b in cfg.enabled:
        try:
            windows = bank_host_keys(cfg, b)
        except Exception as e:
            problems.append(f"bank {b}: SFTP host keys: {e}")
            continue
        if not any(w.covers(day) for w in windows):
            listed = "; ".join(w.describe() for w in windows) or "none pinned"
            problems.append(f"bank {b}: no SFTP host key is pinned for {day} ({listed})")
        problems += _host_key_gaps(f"bank {b}", windows, cfg.originator.key_overlap_max_days)
    return problems


def _host_key_gaps(owner: str, windows: list[Any], max_overlap_days: int) -> list[str]:
    """A day between two host key windows that no key covers, or an overlap longer than allowed."""
    out = []
    ordered = sorted(windows, key=lambda w: w.valid_from or dt.date.min)
    for a, b in itertools.pairwise(ordered):
        if a.valid_until is None or (b.valid_until is None and b.valid_from is None):
            continue  # an open key covers every day after it
        start = b.valid_from or dt.date.min
        if start > a.valid_until + dt.timedelta(days=1):
            out.append(f"{owner}: no SFTP host key pinned between {a.valid_until} and {start}")
        elif (a.valid_until - start).days + 1 > max_overlap_days:
            out.append(
                f"{owner}: SFTP host keys {a.describe()} and {b.describe()} overlap more than "
                f"key_overlap_max_days ({max_overlap_days})"
            )
    return out


def host_key_warnings(cfg: BankConfig, today: dt.date, days: int = 30) -> list[str]:
    """A bank whose every pinned host key stops being valid within ``days`` of ``today``: from the
    day after, its server is refused; the bank's next key must be pinned first."""
    out = []
    for b, windows in host_key_chains(cfg):
        ends = [w.valid_until for w in windows]
        if windows and None not in ends and (max(ends) - today).days <= days:
            end = max(ends)
            out.append(
                f"{b}'s SFTP host key(s) are pinned until {end} and none after: from {end + dt.timedelta(days=1)} "
                f"its server is refused; pin the bank's next host key in {cfg.bank(b).sftp_conn_id} "
                "(procedure: docs/key-rotation.md)"
            )
    return out


def _check(cfg: BankConfig, day: dt.date) -> list[str]:
    """Every key valid on ``day`` or later, loaded from its connection and held to its pin; every
    bank's SFTP host keys parsed, one pinned for ``day``."""
    from finflows import pgp
    from finflows.hooks.pgp import PgpHook

    problems = _host_key_problems(cfg, day)
    with pgp.keyring() as ring:
        for owner, windows in _chains(cfg):
            for w in windows:
                if w.valid_until is not None and w.valid_until < day:
                    continue  # retired: kept listed for the archive, not needed to send
                try:
                    armored, fingerprint, _ = PgpHook(w.conn_id or "", fingerprint=w.fingerprint).key()
                    ring.add(armored, fingerprint, f"{owner}: connection {w.conn_id}")
                except Exception as e:
                    problems.append(f"{owner}: key {w.fingerprint} (connection {w.conn_id}): {e}")
    return problems


def _test_file(cfg: BankConfig, bank_id: str, day: dt.date, out: str) -> str:
    from pathlib import Path

    from finflows.flows.banking import common

    text = f"finflows key check for {bank_id}, {day}: if you can read this, our files reach you.\r\n".encode()
    with common.encrypter(cfg, cfg.bank(bank_id)) as seal:
        cipher, used = seal(text, day)
    Path(out).write_bytes(cipher)
    return f"{out}: encrypted to {used['encrypted_to']}, signed with {used['signed_with']}"


def _export_ours(cfg: BankConfig, fingerprint: str | None, day: dt.date) -> str:
    from finflows import pgp
    from finflows.hooks.pgp import PgpHook

    w = next((k for k in cfg.originator.signing_chain if k.fingerprint == fingerprint), None) if fingerprint else None
    w = w or for_sending(cfg.originator.signing_chain, "our signing keys", day)
    armored, pinned, _ = PgpHook(w.conn_id or "", fingerprint=w.fingerprint).key()
    with pgp.keyring() as ring:
        ring.add(armored, pinned, f"connection {w.conn_id}")
        return str(ring.gpg.export_keys(pinned))  # the public part only


def main(argv: list[str] | None = None) -> int:
    import sys

    from finflows.flows.banking import banks

    args = list(sys.argv[1:] if argv is None else argv)
    day = dt.datetime.now(TAIPEI).date()
    if "--day" in args:
        i = args.index("--day")
        day = dt.date.fromisoformat(args[i + 1])
        del args[i : i + 2]
    cfg = banks.load()
    if args[:1] == ["show"]:
        sys.stdout.write("\n".join(_show(cfg, day)) + "\n")
        return 0
    if args[:1] == ["check"]:
        problems = _check(cfg, day)
        ok = "every key valid from today on loads from its connection and matches its pin"
        sys.stdout.write(("\n".join(problems) or ok) + "\n")
        if "--test-file" in args:
            i = args.index("--test-file")
            sys.stdout.write(_test_file(cfg, args[i + 1], day, args[i + 2]) + "\n")
        return 1 if problems else 0
    if args[:1] == ["export-ours"]:
        sys.stdout.write(_export_ours(cfg, args[1] if len(args) > 1 else None, day) + "\n")
        return 0
    sys.stderr.write(USAGE + "\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
