"""PGP keys from Airflow connections, pinned by fingerprint, in a throwaway keyring per use.

There is no provider hook for OpenPGP. ``PgpHook`` reads one key from one connection: a
counterparty's public key, or our own key pair and its passphrase. Every key is pinned: the
fingerprint given to the hook (from configuration such as ``banks.yaml``) or, failing that, the
connection's ``extra.fingerprint``; a key that does not carry it is refused before anything is
encrypted with it or trusted to have signed. The keyring lives in a temporary GNUPGHOME that is
removed, with its gpg-agent, when the ``session`` ends: no key outlives the task that used it.

Connection of type ``pgp`` ("OpenPGP key" in the Connections form: ``finflows.provider``), or any
type with this extra::

    extra = {"public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----…",   # a counterparty
             "private_key": "-----BEGIN PGP PRIVATE KEY BLOCK-----…", # ours: with its public part
             "fingerprint": "40 hex digits"}                          # optional: the pin
    password = the private key's passphrase (ours only)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook

from finflows import pgp


class PgpHook(BaseHook):
    """One PGP key from an Airflow connection.

    :param pgp_conn_id: the connection holding the key (``extra.public_key`` or ``extra.private_key``).
    :param fingerprint: the fingerprint the key must carry; defaults to ``extra.fingerprint``.
        Without either the hook refuses to use the key.
    """

    conn_name_attr = "pgp_conn_id"
    default_conn_name = "pgp_finflows"
    conn_type = "pgp"
    hook_name = "OpenPGP key"

    def __init__(self, pgp_conn_id: str = default_conn_name, *, fingerprint: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pgp_conn_id = pgp_conn_id
        self._fingerprint = fingerprint

    def key(self) -> tuple[str, str, str | None]:
        """(armored key, pinned fingerprint, passphrase) from the connection."""
        conn = self.get_connection(self.pgp_conn_id)
        extra = {k.removeprefix("extra__pgp__"): v for k, v in conn.extra_dejson.items() if v}  # form or JSON
        armored = extra.get("private_key") or extra.get("public_key")
        if not armored:
            raise pgp.PgpError(f"connection {self.pgp_conn_id}: extra holds neither public_key nor private_key")
        try:
            armored = pgp.rearmor(armored)  # a key pasted into a single-line field lost its line breaks
        except pgp.PgpError as e:
            raise pgp.PgpError(f"connection {self.pgp_conn_id}: {e}") from None
        fingerprint = self._fingerprint or extra.get("fingerprint")
        if not fingerprint:
            raise pgp.PgpError(
                f"connection {self.pgp_conn_id}: no fingerprint to pin the key to "
                "(give one to the hook or set extra.fingerprint)"
            )
        return armored, fingerprint, conn.password

    @contextmanager
    def session(self, *others: PgpHook) -> Iterator[PgpSession]:
        """A throwaway keyring holding this key and ``others``' (each checked against its pin)."""
        with pgp.keyring() as ring:
            armored, fingerprint, passphrase = self.key()
            pinned = {self.pgp_conn_id: ring.add(armored, fingerprint, f"connection {self.pgp_conn_id}")}
            for other in others:
                other_armored, other_fingerprint, _ = other.key()
                pinned[other.pgp_conn_id] = ring.add(
                    other_armored, other_fingerprint, f"connection {other.pgp_conn_id}"
                )
            yield PgpSession(ring, pinned, self.pgp_conn_id, passphrase)

    def expires(self) -> dt.datetime | None:
        """When this connection's key expires (the first of its subkeys to go), or None."""
        with self.session() as s:
            return s.ring.expires(s.fingerprint(self.pgp_conn_id))

    def test_connection(self) -> tuple[bool, str]:
        try:
            with self.session() as s:
                return True, f"key {s.fingerprint(self.pgp_conn_id)} loaded and matches its pin"
        except Exception as e:  # the UI's Test button shows the reason
            return False, str(e)


@dataclass
class PgpSession:
    """The keys of one ``PgpHook.session``: encrypt to a peer and sign as ourselves, or decrypt as
    ourselves and insist on a peer's signature. Peers are named by their connection id."""

    ring: pgp.Keyring
    pinned: dict[str, str]  # connection id → fingerprint
    own: str
    passphrase: str | None

    def fingerprint(self, conn_id: str) -> str:
        return self.pinned[conn_id]

    def encrypt_and_sign(self, data: bytes, to: str, *, copy_to_self: bool = False) -> bytes:
        """Encrypted to ``to`` and signed by us; ``copy_to_self``: our own key can open it too (the
        archived copy of what we sent stays readable by finance)."""
        also = [self.pinned[self.own]] if copy_to_self else []
        return self.ring.encrypt_and_sign(data, self.pinned[to], self.pinned[self.own], self.passphrase, also)

    def decrypt_and_verify(self, data: bytes, signed_by: str) -> bytes:
        return self.ring.decrypt_and_verify(data, self.pinned[signed_by], self.passphrase)
