"""Keys change without a stop (issue #44), against real gpg, the local sshd, PostgreSQL and S3: a
bank rotates its PGP key mid-week with payments in flight, we rotate our signing key, and each
file names the keys that made and checked it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from finflows import pgp
from finflows.flows.banking import common, keys, reconciliation
from tests.helpers import payments as pay
from tests.helpers.decisions import at

pytestmark = pytest.mark.integration
MONDAY = dt.date(2026, 11, 23)
TUESDAY, WEDNESDAY, THURSDAY = (MONDAY + dt.timedelta(days=n) for n in (1, 2, 3))
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


@pytest.fixture(scope="module")
def new_keys() -> dict:
    """The bank's next key pair (it keeps the private part; we get the public one) and our next
    signing key (passphrase-protected, like ours)."""
    from devstack import secrets

    made = secrets.make_pgp_keys(["mega_next"]) | secrets.make_pgp_keys(["finflows"])
    return {"bank": made["mega_next"], "ours": made["finflows"]}


@pytest.fixture
def rotated(cfg, new_keys, monkeypatch):
    """mega switches to its new key on Tuesday (its old one valid to Wednesday); our new signing key
    is used from Tuesday (the old one until Wednesday): each in its own connection."""
    monkeypatch.setenv("AIRFLOW_CONN_PGP_BANK_MEGA_NEXT", json.dumps(
        {"conn_type": "pgp", "extra": {"public_key": new_keys["bank"]["public"]}}))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FINFLOWS_NEXT", json.dumps(
        {"conn_type": "pgp", "password": new_keys["ours"]["passphrase"],
         "extra": {"private_key": new_keys["ours"]["secret"]}}))  # fmt: skip
    mega, me = cfg.bank("mega"), cfg.originator
    bank_chain = [
        keys.KeyWindow(fingerprint=mega.pgp_chain[0].fingerprint, valid_until=WEDNESDAY),
        keys.KeyWindow(fingerprint=new_keys["bank"]["fingerprint"], conn_id="pgp_bank_mega_next", valid_from=TUESDAY),
    ]
    our_chain = [
        keys.KeyWindow(fingerprint=me.signing_chain[0].fingerprint, valid_until=WEDNESDAY),
        keys.KeyWindow(fingerprint=new_keys["ours"]["fingerprint"], conn_id="pgp_finflows_next", valid_from=TUESDAY),
    ]
    banks_ = dict(cfg.banks) | {"mega": mega.model_copy(update={"pgp_keys": bank_chain})}
    return cfg.model_copy(update={"banks": banks_, "originator": me.model_copy(update={"signing_keys": our_chain})})


def _open_as_bank(data: bytes, bank_secret: dict, our_public: dict) -> bytes:
    with pgp.keyring() as ring:
        ring.add(bank_secret["secret"], bank_secret["fingerprint"], "the bank's secret key")
        ring.add(our_public["public"], our_public["fingerprint"], "our public key")
        return ring.decrypt_and_verify(data, our_public["fingerprint"], None)


def _batch_keys(pg, day: dt.date) -> tuple[str, str, str]:
    return pg.execute(
        "SELECT file_name, encrypted_to, signed_with FROM pay.batch WHERE bank = 'mega' AND processing_date = %s",
        (day,),
    ).fetchone()


def test_a_bank_and_we_rotate_mid_week_with_payments_in_flight(clean_payments, pg, db, rotated, new_keys, local_dir):
    from devstack import secrets

    old_bank, old_ours = secrets.pgp_keys()["mega"], secrets.pgp_keys()["finflows"]
    pay.add(pg, "mega", 2, due=MONDAY, amount=1000)
    assert pay.pay_bank(db, rotated, "mega", now=at(6, 0)).deliveries[0]["outcome"] == "uploaded"
    pay.add(pg, "mega", 3, due=TUESDAY, amount=2000)
    assert pay.pay_bank(db, rotated, "mega", now=at(6, 0, TUESDAY)).deliveries[0]["outcome"] == "uploaded"

    monday_file, to, signed = _batch_keys(pg, MONDAY)
    assert (to, signed) == (old_bank["fingerprint"], old_ours["fingerprint"])  # made before the switch
    tuesday_file, to2, signed2 = _batch_keys(pg, TUESDAY)
    assert (to2, signed2) == (new_keys["bank"]["fingerprint"], new_keys["ours"]["fingerprint"])
    sent = pay.uploaded(local_dir, "mega")
    # the bank opens each with the key it was made for, and verifies whichever of our keys signed it
    assert _open_as_bank(sent[monday_file], old_bank, old_ours).startswith(b"BOFACHP01")
    assert _open_as_bank(sent[tuesday_file], new_keys["bank"], new_keys["ours"]).startswith(b"BOFACHP01")
    with pytest.raises(pgp.PgpError):
        _open_as_bank(sent[tuesday_file], old_bank, new_keys["ours"])  # not to the old key
    # our archived copies stay readable by us after our key rotated (retired keys stay listed)
    with common.own_decrypter(rotated) as open_own:
        for name in (monday_file, tuesday_file):
            uri = pg.execute("SELECT archive_uri FROM pay.batch WHERE file_name = %s", (name,)).fetchone()[0]
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            archived = S3Hook(aws_conn_id="aws_finflows").get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
            assert open_own(archived).startswith(b"BOFACHP01")


def _signed_by(bank_key: dict, to_ours: dict, text: bytes = b"RETURN FILE\r\n") -> bytes:
    with pgp.keyring() as ring:
        ring.add(bank_key["secret"], bank_key["fingerprint"], "the bank")
        ring.add(to_ours["public"], to_ours["fingerprint"], "us")
        return ring.encrypt_and_sign(text, to_ours["fingerprint"], bank_key["fingerprint"], None)


def test_return_files_signed_with_either_bank_key_are_taken_in_the_overlap_and_the_old_refused_after(rotated, new_keys):
    from devstack import secrets

    old_bank, old_ours = secrets.pgp_keys()["mega"], secrets.pgp_keys()["finflows"]
    with common.decrypter(rotated, rotated.bank("mega")) as open_:
        plain, signer = open_(_signed_by(old_bank, old_ours), MONDAY)
        assert (plain, signer) == (b"RETURN FILE\r\n", old_bank["fingerprint"])
        # the overlap: either key's signature; encrypted to our new key (its own passphrase) or the old
        assert open_(_signed_by(old_bank, new_keys["ours"]), TUESDAY)[1] == old_bank["fingerprint"]
        assert open_(_signed_by(new_keys["bank"], old_ours), WEDNESDAY)[1] == new_keys["bank"]["fingerprint"]
        assert open_(_signed_by(new_keys["bank"], new_keys["ours"]), THURSDAY)[1] == new_keys["bank"]["fingerprint"]
        with pytest.raises(pgp.SignatureError, match=f"expected {new_keys['bank']['fingerprint']}"):
            open_(_signed_by(old_bank, new_keys["ours"]), THURSDAY)  # the old key's window has closed
        with pytest.raises(pgp.SignatureError):
            open_(_signed_by(new_keys["bank"], old_ours), MONDAY)  # the new key before its window


def test_a_return_file_names_the_key_that_signed_it(clean_payments, pg, db, rotated, new_keys, local_dir):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    name = "ACHR01_017_20261125_01.txt"
    assert reconciliation.file_day(rotated.bank("mega"), name) == WEDNESDAY
    [ref] = pay.add(pg, "mega", 1, due=WEDNESDAY, amount=500)
    pay.pay_bank(db, rotated, "mega", now=at(6, 0, WEDNESDAY))
    [batch_file] = [r[0] for r in pg.execute("SELECT file_name FROM pay.batch").fetchall()]
    body = pay.return_file(pg, rotated, batch_file, {ref: "04"})  # mega lists returned items only
    with common.decrypter(rotated, rotated.bank("mega")) as open_:
        out = reconciliation.process_file(
            db, bank=rotated.bank("mega"), name=name, data=_signed_by(new_keys["bank"], new_keys["ours"], body),
            decrypt=open_, s3_hook=S3Hook(aws_conn_id="aws_finflows"), archive_bucket=ARCHIVE, run_id="t",
            today=THURSDAY,
        )  # fmt: skip
    assert out.outcome == "applied", out
    verified = pg.execute("SELECT verified_with FROM ops.file_control WHERE file_name = %s", (f"mega/{name}",))
    assert verified.fetchone()[0] == new_keys["bank"]["fingerprint"]


def test_a_day_after_the_last_window_is_refused_by_name_and_warned_about_before(clean_payments, pg, db, rotated):
    from finflows.flows.banking import expiry

    last = keys.KeyWindow(fingerprint=rotated.bank("mega").pgp_chain[0].fingerprint, valid_until=MONDAY)
    ending = rotated.bank("mega").model_copy(update={"pgp_keys": [last]})
    cfg = rotated.model_copy(update={"banks": dict(rotated.banks) | {"mega": ending}})
    [warning] = [w for w in expiry.window_warnings(cfg, MONDAY - dt.timedelta(days=10)) if w.startswith("mega")]
    assert "valid until 2026-11-23" in warning and "docs/key-rotation.md" in warning
    pay.add(pg, "mega", 1, due=TUESDAY, amount=700)
    with pytest.raises(keys.KeyWindowError, match="bank mega: no key is valid on 2026-11-24"):
        pay.pay_bank(db, cfg, "mega", now=at(6, 0, TUESDAY))
    assert pg.execute("SELECT count(*) FROM pay.batch WHERE archive_uri IS NOT NULL").fetchone()[0] == 0


def test_the_procedures_commands_show_check_and_export(tmp_path):
    run = [sys.executable, "-m", "finflows.flows.banking.keys"]
    shown = subprocess.run([*run, "show"], capture_output=True, text=True, check=True).stdout
    assert "bank mega:" in shown and "encrypt to" in shown
    out = tmp_path / "mega-check.pgp"
    checked = subprocess.run(
        [*run, "check", "--test-file", "mega", str(out)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    from devstack import secrets

    local = secrets.pgp_keys()
    assert b"finflows key check for mega" in _open_as_bank(out.read_bytes(), local["mega"], local["finflows"])
    exported = subprocess.run([*run, "export-ours"], capture_output=True, text=True, check=True).stdout
    assert exported.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") and "PRIVATE" not in exported


# ---------------------------------------------------------------------------- a server's host key
@pytest.fixture(scope="module")
def rotated_server():
    """The bank's SFTP server after it rotated its host key: a second OpenSSH (its defaults) serving
    the same accounts with a new ed25519 host key. Gives its port and the new key's line."""
    from devstack.services import servers
    from tests.helpers.servers import free_port, running_sshd

    port = free_port()
    key = servers.data_root() / "sshd" / "ssh_host_ed25519_key.rotated"
    for old in (key, key.with_name(key.name + ".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = " ".join(key.with_name(key.name + ".pub").read_text().split()[:2])
    config = servers.data_root() / "sshd" / "sshd_config.rotated"
    argv = servers.hardened_sshd_command(port, {"mega": ""}, config, host_key=key, extra="# OpenSSH's defaults\n")
    with running_sshd(argv, port, "rotated"):
        yield port, line


def _fingerprint(line: str) -> str:
    import base64
    import hashlib

    kind, data = line.split()[:2]
    return f"{kind} SHA256:{base64.b64encode(hashlib.sha256(base64.b64decode(data)).digest()).decode().rstrip('=')}"


def _via(cfg, monkeypatch, conn_id: str, **changes):
    """mega reached through connection ``conn_id``: the local one with ``changes`` (port, extra)."""
    local = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"])
    extra = local["extra"] | changes.pop("extra", {})
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(local | changes | {"extra": extra}))
    return cfg.model_copy(update={"banks": dict(cfg.banks) | {"mega": cfg.bank("mega").model_copy(
        update={"sftp_conn_id": conn_id})}})  # fmt: skip


def test_a_bank_rotates_its_host_key_and_both_pinned_keys_are_taken(
    rotated_server, cfg, monkeypatch, clean_payments, pg, db
):
    import paramiko

    from finflows.flows.banking import banks

    port, new_line = rotated_server
    old_line = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"])["extra"]["host_key"]
    # only the old key pinned: the rotated server is refused before any login
    only_old = _via(cfg, monkeypatch, "sftp_rot_old", port=port)
    with (
        pytest.raises(paramiko.BadHostKeyException),
        common.sftp(only_old.bank("mega"), one_attempt=True).get_managed_conn(),
    ):
        pass
    # both pinned (the change's days): the rotated server and the old one are each reached, each
    # held to the key it showed, with either SSH client
    both = {"extra": {"host_keys": [old_line, new_line]}}
    for client in (banks.SftpClient.PARAMIKO, banks.SftpClient.ASYNCSSH):
        for conn_id, changes, shown in (("sftp_rot_both", {"port": port}, new_line), ("sftp_old_both", {}, old_line)):
            c = _via(cfg, monkeypatch, conn_id, **changes, **both)
            bank = c.bank("mega").model_copy(update={"sftp_client": client})
            hook = common.sftp(bank, one_attempt=True)
            with hook.get_managed_conn() as sftp:
                assert sftp.listdir_attr("/upload") is not None
            assert hook.shown_host_key == _fingerprint(shown), (client, conn_id)
    # a key pinned nowhere is refused by name, even with several pinned
    import asyncssh

    other = " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])
    stranger = _via(cfg, monkeypatch, "sftp_rot_stranger", port=port, extra={"host_keys": [old_line, other]})
    with (
        pytest.raises(paramiko.BadHostKeyException),
        common.sftp(stranger.bank("mega"), one_attempt=True).get_managed_conn(),
    ):
        pass
    # a payment file goes to the rotated server; its batch names the host key it showed
    rotated_cfg = _via(cfg, monkeypatch, "sftp_rot_both", port=port, **both)
    pay.add(pg, "mega", 1, due=MONDAY, amount=900)
    run = pay.pay_bank(db, rotated_cfg, "mega", now=at(6, 0), sftp_hook=common.sftp(rotated_cfg.bank("mega")))
    assert run.deliveries[0]["outcome"] == "uploaded"
    assert pg.execute("SELECT host_key FROM pay.batch").fetchone()[0] == _fingerprint(new_line)


def test_host_keys_pinned_with_windows_are_taken_only_on_their_days(rotated_server, cfg, monkeypatch):
    """The bank gave the day its server switches: the old key pinned until the day before, the new
    one from that day. Each server is reached only on its key's days (either SSH client), a key
    shown outside its window is refused by name before any login, and the daily report warns while
    the last pinned key runs out."""
    import asyncssh
    import paramiko

    from finflows.flows.banking import banks, keys
    from finflows.hooks.sftp import TAIPEI, HostKeyOutsideWindow

    port, new_line = rotated_server
    old_line = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"])["extra"]["host_key"]
    today = dt.datetime.now(TAIPEI).date()

    def pinned(conn_id: str, old_until: dt.date, new_from: dt.date, **changes):
        windows = [
            {"key": old_line, "valid_until": old_until.isoformat()},
            {"key": new_line, "valid_from": new_from.isoformat()},
        ]
        return _via(cfg, monkeypatch, conn_id, **changes, extra={"host_keys": windows})

    switched = today - dt.timedelta(days=1), today  # the switch was today: the old key ended yesterday
    not_yet = today + dt.timedelta(days=1), today + dt.timedelta(days=2)  # the switch is the day after tomorrow
    cases = (
        ("sftp_win_new", {"port": port}, switched, new_line),
        ("sftp_win_old", {}, not_yet, old_line),
    )
    for client in (banks.SftpClient.PARAMIKO, banks.SftpClient.ASYNCSSH):
        for conn_id, changes, (old_until, new_from), shown in cases:
            c = pinned(conn_id, old_until, new_from, **changes)
            hook = common.sftp(c.bank("mega").model_copy(update={"sftp_client": client}), one_attempt=True)
            with hook.get_managed_conn() as sftp:
                assert sftp.listdir_attr("/upload") is not None
            assert hook.shown_host_key == _fingerprint(shown), (client, conn_id)
    # the old server after the switch, the new one before it: refused, the window named
    for conn_id, changes, window, named in (
        ("sftp_win_old_late", {}, switched, f"(always to {switched[0]})"),
        ("sftp_win_new_early", {"port": port}, not_yet, f"({not_yet[1]} to open)"),
    ):
        c = pinned(conn_id, *window, **changes)
        with (
            pytest.raises(HostKeyOutsideWindow, match=f"which is not pinned for {today}") as refused,
            common.sftp(c.bank("mega"), one_attempt=True).get_managed_conn(),
        ):
            pass
        assert named in str(refused.value)
        assert isinstance(refused.value, paramiko.BadHostKeyException)  # whoever catches a wrong host key, catches it
        # asyncssh is given only the keys pinned for today: the server's is not among them
        bank = c.bank("mega").model_copy(update={"sftp_client": banks.SftpClient.ASYNCSSH})
        with (
            pytest.raises(asyncssh.HostKeyNotVerifiable, match="not trusted"),
            common.sftp(bank, one_attempt=True).get_managed_conn(),
        ):
            pass
    # the procedure's check sees the same: nothing pinned for a day past every window
    assert keys._host_key_problems(pinned("sftp_win_check", *switched), today) == []
    # the connection's own host_key (open) given a window in host_keys: the window rules
    ending = [{"key": old_line, "valid_until": (today + dt.timedelta(days=10)).isoformat()}]
    c = _via(cfg, monkeypatch, "sftp_win_ending", extra={"host_keys": ending})
    [warning] = [w for w in keys.host_key_warnings(c, today) if w.startswith("mega")]
    assert f"pinned until {today + dt.timedelta(days=10)} and none after" in warning
    assert "docs/key-rotation.md" in warning and "sftp_win_ending" in warning
    assert keys._host_key_problems(c, today + dt.timedelta(days=11)) == [
        f"bank mega: no SFTP host key is pinned for {today + dt.timedelta(days=11)} "
        f"({_fingerprint(old_line)} (always to {today + dt.timedelta(days=10)}))"
    ]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("ssh-ed25519", "is not a host key"),
        ({"key": "ssh-ed25519 AAAA", "valid_from": "2027-02-30"}, "is not a host key"),
        ({"key": "ssh-ed25519 AAAA", "until": "2027-01-01"}, "unknown field(s) ['until']"),
        (42, "is not a host key"),
    ],
)
def test_a_host_key_entry_that_does_not_parse_is_refused_naming_the_connection(entry, words):
    from finflows.hooks.sftp import host_key_windows

    with pytest.raises(ValueError, match="connection 'sftp_x'") as refused:
        host_key_windows({"host_keys": [entry]}, "sftp_x")
    assert words in str(refused.value)


def test_a_host_key_window_that_ends_before_it_starts_is_refused():
    from finflows.hooks.sftp import host_key_windows

    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILd6/RJYTTOG+222K2ptanGJlwm9DhYlxVXC23w6LsTu"
    with pytest.raises(ValueError, match=r"ends \(2027-01-01\) before it starts \(2027-02-01\)"):
        host_key_windows({"host_keys": [{"key": line, "valid_from": "2027-02-01", "valid_until": "2027-01-01"}]}, "c")
    [only] = host_key_windows({"host_key": line, "host_keys": [{"key": line, "valid_until": "2027-01-31"}]}, "c")
    assert only.valid_until == dt.date(2027, 1, 31)  # the window rules over the same key pinned open


def test_host_key_windows_with_a_gap_or_a_long_overlap_are_named_by_the_check():
    from finflows.flows.banking import keys
    from finflows.hooks.sftp import host_key_windows

    old = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILd6/RJYTTOG+222K2ptanGJlwm9DhYlxVXC23w6LsTu"
    new = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH/3eRbNalblF55Qd6hR+ZbwkDqO/P1BEJAsBHQPkKE0"

    def problems(old_until: str, new_from: str) -> list[str]:
        entries = [{"key": old, "valid_until": old_until}, {"key": new, "valid_from": new_from}]
        return keys._host_key_gaps("bank mega", host_key_windows({"host_keys": entries}, "c"), 60)

    assert problems("2027-03-14", "2027-03-15") == []  # the switch day
    assert problems("2027-03-16", "2027-03-15") == []  # two days' overlap
    assert problems("2027-03-14", "2027-03-17") == [
        "bank mega: no SFTP host key pinned between 2027-03-14 and 2027-03-17"
    ]
    [long] = problems("2027-06-30", "2027-03-15")
    assert "overlap more than key_overlap_max_days (60)" in long
