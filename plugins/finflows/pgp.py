"""PGP for bank files with python-gnupg, in a throwaway keyring per use.

``keyring()`` makes a fresh GNUPGHOME, and removes it (and its gpg-agent) afterwards: no key
outlives the task that needed it. Keys are added with the fingerprint the bank configuration
pins; a key whose fingerprint differs is refused before anything is encrypted with it, which is
why trust in the keyring itself can be ``always``. No Airflow import here.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

log = logging.getLogger(__name__)


class PgpError(RuntimeError):
    pass


class SignatureError(PgpError):
    """Decrypted data whose signature is missing, bad, or not from the expected key."""


class Keyring:
    def __init__(self, home: str):
        import gnupg

        self.home = home
        self.gpg = gnupg.GPG(gnupghome=home)
        self.gpg.encoding = "utf-8"

    def add(self, armored: str, fingerprint: str, what: str) -> str:
        """Import a key (public, or secret with its public part) that must carry ``fingerprint``."""
        result = self.gpg.import_keys(armored)
        found = [f.upper() for f in result.fingerprints]
        if fingerprint.upper() not in found:
            shown = ", ".join(found) or "no key"
            raise PgpError(f"{what}: the key holds {shown}, the configuration pins {fingerprint}")
        return fingerprint.upper()

    def expires(self, fingerprint: str):
        """When the key (or the first of its subkeys to go) expires, as an aware datetime; None
        when neither expires."""
        import datetime as dt

        for key in self.gpg.list_keys(keys=[fingerprint]):  # a secret key's public part is listed too
            if key["fingerprint"].upper() != fingerprint.upper():
                continue
            stamps = [key.get("expires")] + [s.get("expires") for s in (key.get("subkey_info") or {}).values()]
            stamps = [int(x) for x in stamps if x]
            return dt.datetime.fromtimestamp(min(stamps), dt.UTC) if stamps else None
        raise PgpError(f"key {fingerprint} is not in this keyring")

    def encrypt_and_sign(
        self, data: bytes, recipient: str, signer: str, passphrase: str | None, also: Sequence[str] = ()
    ) -> bytes:
        """Encrypt to ``recipient`` (and every key in ``also``: each can decrypt it alone), signed."""
        result = self.gpg.encrypt(
            data,
            [recipient, *also],
            sign=signer,
            passphrase=passphrase,
            armor=False,
            always_trust=True,
            extra_args=["--compress-algo", "zlib"],
        )
        if not result.ok:
            raise PgpError(f"encryption to {recipient} signed by {signer} failed: {result.status}")
        return result.data

    def decrypt_and_verify(self, data: bytes, signer: str, passphrase: str | None) -> bytes:
        """The plaintext, only when it decrypts and carries a good signature from ``signer``."""
        result = self.gpg.decrypt(data, passphrase=passphrase, always_trust=True)
        if not result.ok:
            raise PgpError(f"cannot decrypt: {result.status or 'not an encrypted message for our key'}")
        if not result.valid:
            raise SignatureError(f"signature is {_why(result)}")
        signed_by = {(result.fingerprint or "").upper(), (result.pubkey_fingerprint or "").upper()}
        if signer.upper() not in signed_by:
            raise SignatureError(f"signed by {result.pubkey_fingerprint or result.fingerprint}, expected {signer}")
        return result.data


def _why(result) -> str:
    if result.problems:
        return "bad: " + ", ".join(p.get("status", "?") for p in result.problems)
    return "missing: the file is not signed" if not result.signature_id and not result.key_id else "not valid"


@contextmanager
def keyring() -> Iterator[Keyring]:
    home = tempfile.mkdtemp(prefix="gpg-")  # short: the agent's socket path has a length limit
    try:
        yield Keyring(home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
