"""Throwaway credentials for the local stack, made once under .local/ and reused after.

Nothing here is ever used outside loopback; production credentials live in a secrets backend.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import asyncssh
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.config import BANKS, FTP_USERS, FTPS_USERS, KEYS, TLS

PGP = KEYS / "pgp"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)


def ssh_keys() -> dict[str, Path | str]:
    """A fixed SFTP host key and the client key every local counterparty account trusts."""
    host, client = KEYS / "sftp_host_ed25519", KEYS / "sftp_client_ed25519"
    for path in (host, client):
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            _write_private(path, key.export_private_key("openssh"))
            path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
    authorized = KEYS / "sftp_authorized_keys"
    authorized.write_bytes(client.with_suffix(".pub").read_bytes())
    host_pub = host.with_suffix(".pub").read_text().split()
    return {
        "host_key": host,
        "client_key": client,
        "authorized": authorized,
        "host_pub": f"{host_pub[0]} {host_pub[1]}",
    }


CERT_DAYS = 90  # the server certificate's life, as a public CA's; renewed when under RENEW_DAYS are left
RENEW_DAYS = 45  # more than the expiry warning's 30 days: the stack's own certificate never warns


def tls_certs() -> dict[str, Path]:
    """A local CA and a server certificate for 127.0.0.1/localhost signed by it (trustme), made
    again when missing or close to its end."""
    import trustme

    ca_p, key_p, cert_p, bundle = TLS / "ca.pem", TLS / "server.key", TLS / "server.pem", TLS / "ca-bundle.pem"
    now = dt.datetime.now(dt.UTC)
    if not cert_p.exists() or x509.load_pem_x509_certificate(
        cert_p.read_bytes()
    ).not_valid_after_utc < now + dt.timedelta(days=RENEW_DAYS):
        ca = trustme.CA(organization_name="finflows local stack")
        leaf = ca.issue_cert(
            "localhost",
            "127.0.0.1",
            common_name="localhost",
            organization_name="finflows local stack",
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + dt.timedelta(days=CERT_DAYS),
        )
        TLS.mkdir(parents=True, exist_ok=True)
        ca_p.write_bytes(ca.cert_pem.bytes())
        _write_private(key_p, leaf.private_key_pem.bytes())
        cert_p.write_bytes(leaf.cert_chain_pems[0].bytes())
    # Trust store for clients: the system's CAs plus ours (SSL_CERT_FILE).
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle.write_bytes((system.read_bytes() if system.exists() else b"") + ca_p.read_bytes())
    return {"ca": ca_p, "cert": cert_p, "key": key_p, "bundle": bundle}


def ftp_passwords(kind: str) -> Path:
    users = FTPS_USERS if kind == "ftps" else FTP_USERS
    path = KEYS / f"{kind}_passwords.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    for user in users:
        current.setdefault(user, secrets.token_urlsafe(18))
    _write_private(path, json.dumps(current, indent=1).encode())
    return path


def pgp_keys() -> dict[str, dict[str, str]]:
    """Throwaway PGP keys: ours (signing, passphrase-protected) and one per local bank (the banks'
    private keys stay here: tests and the demo play the bank with them). Ed25519/Cv25519, made once;
    a bank added to banks.yaml gets its key at the next start, the others are kept.

    Returns ``{name: {"fingerprint", "public", "secret", "passphrase"}}`` for ``finflows`` and each bank."""
    names = ("finflows", *BANKS)
    index = PGP / "keys.json"
    have = json.loads(index.read_text()) if index.exists() else {}
    if missing := [n for n in names if n not in have]:
        _write_private(index, json.dumps(have | make_pgp_keys(missing), indent=1).encode())
    return {n: k for n, k in json.loads(index.read_text()).items() if n in names}


def make_pgp_keys(names: list[str] | tuple[str, ...]) -> dict[str, dict[str, str]]:
    """New throwaway key pairs, one per name (``finflows``'s with a passphrase)."""
    import shutil
    import subprocess
    import tempfile

    import gnupg

    home = tempfile.mkdtemp(prefix="gpg-")
    try:
        gpg = gnupg.GPG(gnupghome=home)
        out = {}
        for name in names:
            passphrase = secrets.token_urlsafe(18) if name == "finflows" else ""
            spec = gpg.gen_key_input(
                key_type="EDDSA",
                key_curve="ed25519",
                key_usage="sign",
                subkey_type="ECDH",
                subkey_curve="cv25519",
                subkey_usage="encrypt",
                expire_date=0,
                name_real=f"{name} (finflows local stack, throwaway)",
                name_email=f"{name}@finflows.local",
                **({"passphrase": passphrase} if passphrase else {"no_protection": True}),
            )
            key = gpg.gen_key(spec)
            if not key.fingerprint:
                raise RuntimeError(f"gpg could not make the {name} key: {key.stderr}")
            fpr = str(key.fingerprint).upper()
            secret = gpg.export_keys(
                fpr, secret=True, passphrase=passphrase or None, expect_passphrase=bool(passphrase)
            )
            out[name] = {"fingerprint": fpr, "public": gpg.export_keys(fpr), "secret": secret, "passphrase": passphrase}
        return out
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def google_service_account(token_uri: str) -> dict:
    """A service-account key whose token endpoint is the local Google stand-in."""
    path, pub = KEYS / "google_sa.json", KEYS / "google_sa_public.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        info = {
            "type": "service_account",
            "project_id": "finflows-local",
            "private_key_id": secrets.token_hex(20),
            "private_key": key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
            "client_email": "finflows@finflows-local.iam.gserviceaccount.com",
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }
        _write_private(path, json.dumps(info).encode())
        pub.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    info = json.loads(path.read_text())
    info["token_uri"] = token_uri
    return info


def main() -> None:
    """Write every credential the stand-ins need under FINFLOWS_LOCAL (the compose `stack-secrets`
    service runs this into a shared volume; `python -m devstack up` does it for itself)."""
    import os

    google = os.environ.get("FINFLOWS_GOOGLE_TOKEN_URI", "http://google:8765/token")
    google_service_account(google)
    ssh_keys()
    tls_certs()
    ftp_passwords("ftps")
    ftp_passwords("ftp")
    pgp_keys()
    print(f"credentials written under {KEYS.parent}")


if __name__ == "__main__":
    main()
