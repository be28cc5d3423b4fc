"""PGP for bank files with python-gnupg, in a throwaway keyring per use.

``keyring()`` makes a fresh GNUPGHOME, and removes it (and its gpg-agent) afterwards: no key
outlives the task that needed it. Keys are added with the fingerprint the bank configuration
pins; a key whose fingerprint differs is refused before anything is encrypted with it, which is
why trust in the keyring itself can be ``always``. No Airflow import here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from finflows.errors import FinflowsError

log = logging.getLogger(__name__)


class PgpError(FinflowsError, RuntimeError):
    pass


class SignatureError(PgpError):
    """Decrypted data whose signature is missing, bad, or not from the expected key."""


_ARMOR = re.compile(r"-----BEGIN PGP ([A-Z ]+?)-----(.*?)-----END PGP \1-----", re.S)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_CHECKSUM = re.compile(r"=[A-Za-z0-9+/]{4}")


def rearmor(text: str) -> str:
    """An ASCII-armoured key as gpg reads it, also when a single-line form field turned its line
    breaks into spaces (the body is base64, so its lines can be rebuilt: a blank line after the
    header, 64 characters a line, the ``=CRC`` line, the footer). A key with its line breaks is
    returned as it is; one that lost them and carries armour headers (``Comment: …``) is refused:
    they cannot be told from the body."""
    match = _ARMOR.search(text)
    if not match or "\n" in match.group(2).strip():
        return text
    kind, tokens = match.group(1), match.group(2).split()
    checksum = [t for t in tokens if _CHECKSUM.fullmatch(t)]
    body = [t for t in tokens if not _CHECKSUM.fullmatch(t)]
    if len(checksum) > 1 or not all(_BASE64.fullmatch(t) for t in body):
        raise PgpError(
            "the key lost its line breaks (pasted into a single-line field) and holds armour headers: "
            "paste it into the key field of the OpenPGP key connection, which keeps them"
        )
    joined = "".join(body)
    lines = [joined[i : i + 64] for i in range(0, len(joined), 64)]
    return "\n".join([f"-----BEGIN PGP {kind}-----", "", *lines, *checksum, f"-----END PGP {kind}-----", ""])


class Keyring:
    def __init__(self, home: str):
        import gnupg

        self.home = home
        self.last_signer: str | None = None  # the key whose good signature the last decryption carried
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

    def expires(self, fingerprint: str) -> dt.datetime | None:
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
        return bytes(result.data)

    def decrypt_and_verify(
        self, data: bytes, signer: str | Sequence[str], passphrase: str | None, limit: int | None = None
    ) -> bytes:
        """The plaintext, only when it decrypts completely and carries a good signature from
        ``signer`` (or one of several: a key rotation's overlap; ``last_signer`` says which). gpg streams it to a file in this keyring's directory and stops at ``limit``
        bytes (``--max-output``; default ``FINFLOWS_PGP_PLAINTEXT_MAX_BYTES``): a compression bomb
        costs a few MB of memory and ``limit`` of disk, then is refused. Any gpg failure is an error,
        never an empty "verified" plaintext. The three ways a counterparty's file is not what we
        expect get three reasons: not encrypted, not signed, signed by another key."""
        import os

        from finflows import settings

        limit = limit or settings.pgp_plaintext_max_bytes()
        fd, source = tempfile.mkstemp(dir=self.home, suffix=".in")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target = f"{source[:-3]}.out"
        try:
            result = self.gpg.decrypt_file(
                source,
                passphrase=passphrase,
                always_trust=True,
                output=target,
                extra_args=["--max-output", str(limit)],
            )
            size = os.path.getsize(target) if os.path.exists(target) else 0
            if "exceeded --max-output" in (result.stderr or "") or size >= limit:
                raise PgpError(
                    f"the plaintext is over the limit of {limit:,} bytes (FINFLOWS_PGP_PLAINTEXT_MAX_BYTES): "
                    "a compression bomb, or a file far larger than any the counterparty sends"
                )
            if (
                not result.ok
                and result.status in ("signature valid", "signature bad")
                and "ENC_TO" not in (result.stderr or "")
            ):
                raise PgpError("the file is signed but not encrypted: we only take files encrypted to our key")
            if not result.ok:
                raise PgpError(f"cannot decrypt: {result.status or 'not an encrypted message for our key'}")
            if not result.valid and "NO_PUBKEY" in (result.stderr or ""):
                raise SignatureError(f"signed by another key ({result.key_id}), expected {signer}")
            if not result.valid:
                raise SignatureError(f"signature is {_why(result)}")
            if result.returncode != 0:  # python-gnupg can call a cut-short decryption "ok"
                raise PgpError(f"gpg failed (exit {result.returncode}) while decrypting: {_last_error(result)}")
            signed_by = {(result.fingerprint or "").upper(), (result.pubkey_fingerprint or "").upper()}
            signers = [signer] if isinstance(signer, str) else list(signer)
            good = [s.upper() for s in signers if s.upper() in signed_by]
            if not good:
                raise SignatureError(
                    f"signed by another key ({result.pubkey_fingerprint or result.fingerprint}), "
                    f"expected {' or '.join(signers)}"
                )
            self.last_signer = good[0]
            with open(target, "rb") as f:
                return f.read()
        finally:
            for path in (source, target):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def _last_error(result: Any) -> str:
    lines = [ln for ln in (result.stderr or "").splitlines() if ln.startswith("gpg:")]
    return lines[-1].removeprefix("gpg: ") if lines else "no message"


def _why(result: Any) -> str:
    status = result.stderr or ""
    if not any(f"[GNUPG:] {tag}" in status for tag in ("NEWSIG", "GOODSIG", "BADSIG", "ERRSIG", "EXPSIG")):
        return "missing: the file is not signed"
    if result.problems:
        return "bad: " + ", ".join(p.get("status", "?") for p in result.problems)
    return "not valid"


@contextlib.contextmanager
def keyring() -> Iterator[Keyring]:
    home = tempfile.mkdtemp(prefix="gpg-")  # short: the agent's socket path has a length limit
    try:
        yield Keyring(home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
