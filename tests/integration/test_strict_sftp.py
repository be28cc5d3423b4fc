"""A bank whose OpenSSH is hardened as security guides say, and whose upload account may neither
stat nor list: OpenSSH's own sshd configured exactly so (``KexAlgorithms curve25519-sha256``,
``Ciphers chacha20-poly1305@openssh.com``, ed25519 host key only; ``internal-sftp -P`` refusing
requests), beside the local stack's, serving the same accounts and chroots.

Paramiko (the SFTP provider's client) cannot reach it; ``sftp_client: asyncssh`` does, with the host
key still pinned; ``upload_check`` says how each bank lets an upload be checked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest

from finflows.flows.banking import banks, common, health
from tests.helpers import payments as pay
from tests.helpers.servers import fails_while_frozen, free_port, running_sshd

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
AT_6 = dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI)
# account → the sftp-server requests its hardened server refuses
ACCOUNTS = {"mega": "", "esun": "stat,lstat,fstat", "taishin": "stat,lstat,fstat,opendir,readdir"}


@pytest.fixture(scope="module")
def hardened():
    """The hardened sshd, its port and process; stopped (with its sessions) afterwards."""
    from devstack.services import servers

    port = free_port()
    config = servers.data_root() / "sshd" / "sshd_config.hardened"
    with running_sshd(servers.hardened_sshd_command(port, ACCOUNTS, config), port, "hardened") as proc:
        yield port, proc


@pytest.fixture
def strict(hardened, monkeypatch, cfg):
    """The configuration with mega, esun and taishin reached on the hardened server (connections
    ``sftp_hard_<bank>``: the local ones with its port); returns ``make(bank, **fields)``."""
    port, _ = hardened
    for bank in ACCOUNTS:
        local = json.loads(os.environ[f"AIRFLOW_CONN_SFTP_{bank.upper()}"])
        monkeypatch.setenv(f"AIRFLOW_CONN_SFTP_HARD_{bank.upper()}", json.dumps(local | {"port": port}))

    def make(bank: str, **fields) -> banks.BankConfig:
        changed = cfg.bank(bank).model_copy(
            update={"sftp_conn_id": f"sftp_hard_{bank}", "sftp_client": banks.SftpClient.ASYNCSSH} | fields
        )
        return cfg.model_copy(update={"banks": {**cfg.banks, bank: changed}})

    return make


def _login(bank: banks.Bank) -> None:
    with common.sftp(bank, one_attempt=True).get_managed_conn():
        pass


def _pay(db, config: banks.BankConfig, bank: str, **kw):
    return pay.pay_bank(db, config, bank, now=AT_6, sftp_hook=common.sftp(config.bank(bank)), **kw)


def test_paramiko_cannot_reach_it_and_the_error_says_what_to_set(strict):
    config = strict("mega", sftp_client=banks.SftpClient.PARAMIKO)
    from finflows.sessions import IncompatibleServer

    with pytest.raises(IncompatibleServer, match=r"share no algorithm .*`sftp_client: asyncssh`"):
        _login(config.bank("mega"))


def test_asyncssh_pays_and_reconciles_a_bank_whose_openssh_is_hardened(strict, clean_payments, pg, db, local_dir):
    """The whole path through the hardened server: upload (stat-checked), the bank decrypts it; its
    ACHR01 return read back from the download folder and applied."""
    config = strict("mega")
    refs = pay.add(pg, "mega", 3, due=MONDAY, amount=5000)
    [d] = _pay(db, config, "mega").deliveries
    assert d["outcome"] == "uploaded", d
    [(name, data)] = pay.uploaded(local_dir, "mega").items()
    assert b"ACHP01" in pay.decrypt_as_bank("mega", data)

    plain = pay.return_file(pg, config, name, {refs[0]: "04"})
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, config, today=MONDAY)
    assert (out["outcome"], out["returned"]) == ("applied", 1), out
    assert pay.statuses(pg, refs)[refs[0]] == "returned"


def test_the_host_key_stays_pinned(strict, monkeypatch):
    """Another host key in the connection, or none, and nothing is sent."""
    import asyncssh

    config = strict("mega")
    local = json.loads(os.environ["AIRFLOW_CONN_SFTP_HARD_MEGA"])
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SFTP_HARD_MEGA", json.dumps(local | {"extra": local["extra"] | {"host_key": other}})
    )
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        _login(config.bank("mega"))
    no_pin = {k: v for k, v in local["extra"].items() if k != "host_key"}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_HARD_MEGA", json.dumps(local | {"extra": no_pin}))
    with pytest.raises(ValueError, match="pins no host key"):
        _login(config.bank("mega"))


def test_where_stat_is_refused_a_stat_check_is_given_up_at_once_naming_path_and_setting(
    strict, clean_payments, pg, db, local_dir
):
    config = strict("esun")  # upload_check stat (the default) against a server refusing stat
    pay.add(pg, "esun", 2, due=MONDAY)
    [d] = _pay(db, config, "esun", attempts=3).deliveries
    assert d["outcome"] == "gave_up" and d["attempts"] == 1, d
    assert "permission denied by esun's server to look for /upload/ESUN_PAY_20261123_001.csv" in d["error"]
    assert "upload_check stat" in d["error"] and "stat, list or trust" in d["error"]
    assert pay.uploaded(local_dir, "esun") == {}  # nothing written: the look came first
    assert pg.execute("SELECT status FROM pay.transfer_retry").fetchone()[0] == "gave_up"


def test_where_stat_is_refused_the_listing_checks_the_upload(strict, clean_payments, pg, db, local_dir):
    config = strict("esun", upload_check=banks.UploadCheck.LIST)
    pay.add(pg, "esun", 2, due=MONDAY)
    [d] = _pay(db, config, "esun").deliveries
    assert d["outcome"] == "uploaded", d
    [(name, data)] = pay.uploaded(local_dir, "esun").items()
    assert name == "ESUN_PAY_20261123_001.csv" and len(data) == d["bytes"]
    pay.decrypt_as_bank("esun", data)
    # run again: already delivered, nothing is written again
    again = _pay(db, config, "esun").deliveries
    assert [x["outcome"] for x in again] == ["already_delivered"] and pay.uploaded(local_dir, "esun") == {name: data}
    assert health.probe(common.sftp(config.bank("esun")), config.bank("esun")).ok


def test_where_neither_is_allowed_the_acknowledged_writes_are_trusted(strict, clean_payments, pg, db, local_dir):
    config = strict("taishin", upload_check=banks.UploadCheck.TRUST)
    pay.add(pg, "taishin", 2, due=MONDAY)
    [d] = _pay(db, config, "taishin").deliveries
    assert d["outcome"] == "uploaded", d
    [data] = pay.uploaded(local_dir, "taishin").values()
    pay.decrypt_as_bank("taishin", data)
    assert health.probe(common.sftp(config.bank("taishin")), config.bank("taishin")).ok
    # the list check is refused there: the probe says so
    listing = strict("taishin", upload_check=banks.UploadCheck.LIST)
    check = health.probe(common.sftp(listing.bank("taishin")), listing.bank("taishin"))
    assert not check.ok and "PermissionError" in check.error and "/upload" in check.error


def test_trusting_never_sends_twice_when_the_final_name_is_taken(strict, clean_payments, pg, db, local_dir):
    """A server that shows nothing: a file already under our final name (an earlier delivery whose
    record was lost, or the bank's) makes the rename fail, and a person decides; nothing is replaced."""
    config = strict("taishin", upload_check=banks.UploadCheck.TRUST)
    pay.add(pg, "taishin", 2, due=MONDAY)
    final = local_dir / "sftp" / "taishin" / "upload" / "TS_PAY_20261123_001.csv"
    final.write_bytes(b"already here")
    [d] = _pay(db, config, "taishin", attempts=2).deliveries
    assert d["outcome"] == "uncertain", d
    assert "see neither name" in d["error"]
    assert final.read_bytes() == b"already here"
    assert pg.execute("SELECT status FROM pay.batch").fetchone()[0] == "uncertain"


def test_a_hardened_server_that_stalls_ends_the_call_within_the_idle_timeout(strict, hardened, monkeypatch):
    from devstack.services import servers

    monkeypatch.setenv("FINFLOWS_SFTP_IDLE_TIMEOUT", "2")
    _, proc = hardened
    config = strict("mega")
    bank = config.bank("mega")
    with common.sftp(bank).get_managed_conn() as client:
        client.listdir(bank.upload_path)  # the session works
        pids = servers.descendants(proc.pid)
        assert pids, "no session process of the hardened sshd"
        fails_while_frozen(pids, lambda: client.listdir(bank.upload_path), TimeoutError)
