"""Keys and certificates run out: read from the real keys (gpg) and the real FTPS server (vsftpd),
warned about 30 days ahead, naming which one and when."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from finflows import expiry, pgp
from finflows.hooks.ftp import FTPSHook
from finflows.hooks.pgp import PgpHook

pytestmark = pytest.mark.integration


@pytest.fixture
def soon_key(monkeypatch):
    """A counterparty's key whose encryption subkey expires in 5 days (the primary in 20): made
    with the gpg command line, given to Airflow as a pgp connection."""
    with pgp.keyring() as ring:
        gpg = ["gpg", "--homedir", ring.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        subprocess.run(
            [*gpg, "--quick-gen-key", "soon <soon@example.invalid>", "ed25519", "sign", "20d"],
            check=True,
            capture_output=True,
        )
        [key] = ring.gpg.list_keys()
        fpr = key["fingerprint"]
        subprocess.run([*gpg, "--quick-add-key", fpr, "cv25519", "encr", "5d"], check=True, capture_output=True)
        public = ring.gpg.export_keys(fpr)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PGP_SOON", json.dumps({"conn_type": "pgp", "extra": {"public_key": public, "fingerprint": fpr}})
    )
    return fpr


def test_a_key_whose_subkey_expires_soon_is_named_with_its_date(soon_key):
    now = dt.datetime.now(dt.UTC)
    when = PgpHook("pgp_soon").expires()
    assert dt.timedelta(days=4, hours=23) < when - now <= dt.timedelta(days=5, minutes=5)  # the subkey, not the primary
    [warning] = expiry.warnings([("mega's PGP key (pgp_soon)", PgpHook("pgp_soon").expires)], now)
    assert warning.startswith(f"mega's PGP key (pgp_soon) expires on {when:%Y-%m-%d %H:%M} UTC, in 4 day(s)")
    assert expiry.warnings([("k", PgpHook("pgp_soon").expires)], now, days=3) == []
    [gone] = expiry.warnings([("k", PgpHook("pgp_soon").expires)], now + dt.timedelta(days=6))
    assert "EXPIRED" in gone


def test_the_ftps_certificate_is_read_from_the_real_server(local_dir):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((local_dir / "tls" / "server.pem").read_bytes())
    assert FTPSHook(ftp_conn_id="ftps_acquirer").certificate_expires() == cert.not_valid_after_utc.replace(
        microsecond=0
    )


def test_every_watched_key_and_certificate_is_read_and_warned_about_in_time(cfg, local_dir):
    from cryptography import x509

    items = expiry.watched(cfg=cfg)
    names = [what for what, _ in items]
    assert names[0].startswith(f"our PGP signing key {cfg.originator.signing_key_fingerprint} (pgp_finflows)")
    assert f"mega's PGP key {cfg.bank('mega').pgp_key_fingerprint} (pgp_bank_mega)" in names
    assert "the card acquirer's FTPS certificate (ftps_acquirer)" in names
    assert "visa's FTPS certificate (ftps_visa)" in names and not any("elo" in n for n in names)  # plain FTP
    now = dt.datetime.now(dt.UTC)
    assert expiry.warnings(items, now) == []  # the stack's keys do not expire; its certificate has 90 days
    ends = x509.load_pem_x509_certificate((local_dir / "tls" / "server.pem").read_bytes()).not_valid_after_utc
    late = expiry.warnings(items, ends - dt.timedelta(days=10))
    assert len(late) == 3 and all("FTPS certificate" in w and "in 10 day(s)" in w for w in late)


def test_an_unreadable_key_is_a_warning_not_silence(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PGP_BROKEN", json.dumps({"conn_type": "pgp", "extra": {"fingerprint": "AB" * 20}}))
    [w] = expiry.warnings([("first's PGP key (pgp_broken)", PgpHook("pgp_broken").expires)], dt.datetime.now(dt.UTC))
    assert "could not be read" in w and "neither public_key nor private_key" in w
