"""A sixth bank added the way a team adds one: an entry in banks.yaml and its two connections
(its SFTP server, its PGP key), nothing else in the code, the DAGs or the database. The bank runs
its own OpenSSH server (beside the local stack's, which was started without it) and has its own
key pair; bank_payments, triggered for it by name from the trigger form's choices, pays it, and the
bank decrypts the file with its key and finds our payments in it (TCH ACHP01)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.helpers import payments as pay
from tests.helpers import tch
from tests.helpers.dags import load_dag
from tests.helpers.servers import free_port, running_sshd

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BANK = "cathay"  # 國泰世華商業銀行, clearing-house code 013
ENTRY = {
    "bank_code": "013",
    "name": "國泰世華商業銀行",
    "sftp_conn_id": "sftp_cathay",
    "upload_path": "/upload",
    "download_path": "/download",
    "file_format": "achp01",
    "encoding": "cp950",
    "payment_file_pattern": "ACHP01_{BANK}_{YYYYMMDD}_{BATCH}.txt",
    "reconciliation_file_pattern": "ACHR01_{BANK}_{YYYYMMDD}*.txt",
    "cutoff_time": "23:59",
    "sending_unit": "0130017",  # a unit of the public TCH table
    "presenting_account": "${FINFLOWS_ACCOUNT_CATHAY}",
    "pgp_key_conn_id": "pgp_bank_cathay",
    "pgp_key_fingerprint": "${FINFLOWS_PGP_FPR_CATHAY}",
    "default_txn_code": "405",
    "return_window_days": 2,
    "approval": "none",
}


@pytest.fixture(scope="module")
def cathay_server():
    """The sixth bank's own SFTP server (OpenSSH), its account provisioned as the stack's are."""
    from devstack import secrets
    from devstack.services import servers

    port = free_port()
    config = servers.data_root() / "sshd" / f"sshd_config.{BANK}"
    argv = servers.bank_sshd_command(port, {BANK: ["upload", "download"]}, secrets.ssh_keys()["authorized"], config)
    with running_sshd(argv, port, BANK):
        yield port


@pytest.fixture
def sixth_bank(cathay_server, monkeypatch, tmp_path):
    """banks.yaml with the sixth bank's entry and its connections, as a team would set them; returns
    the bank's key pair (the bank's side: its private key stays with the test)."""
    from devstack import secrets

    key = secrets.make_pgp_keys([BANK])[BANK]
    config = yaml.safe_load(Path(os.environ["FINFLOWS_BANKS_FILE"]).read_text(encoding="utf-8"))
    config["banks"][BANK] = ENTRY
    banks_file = tmp_path / "banks.yaml"
    banks_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    sftp = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"]) | {"port": cathay_server, "login": f"ffsftp_{BANK}"}
    monkeypatch.setenv("FINFLOWS_BANKS_FILE", str(banks_file))
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_CATHAY", json.dumps(sftp))
    pgp = {"conn_type": "pgp", "extra": {"public_key": key["public"], "fingerprint": key["fingerprint"]}}
    monkeypatch.setenv("AIRFLOW_CONN_PGP_BANK_CATHAY", json.dumps(pgp))
    monkeypatch.setenv("FINFLOWS_PGP_FPR_CATHAY", key["fingerprint"])
    monkeypatch.setenv("FINFLOWS_ACCOUNT_CATHAY", "0130000000017")
    return key


def test_a_sixth_bank_from_banks_yaml_and_its_connections_alone_is_paid_by_bank_payments(
    sixth_bank, clean_payments, pg, local_dir
):
    from airflow.utils.state import DagRunState

    from finflows import pgp
    from finflows.formats import ach

    upload = local_dir / "sftp" / BANK / "upload"
    for old in upload.iterdir():
        old.unlink()
    today = dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
    refs = pay.add(pg, BANK, 3, due=today, amount=1500)
    dag = load_dag("bank_payments")
    assert BANK in dag.params.get_param("banks").schema["items"]["enum"]  # the trigger form offers it
    assert dag.test(run_conf={"banks": [BANK]}).state == DagRunState.SUCCESS

    [sent] = sorted(upload.iterdir())
    [(bank, processing_date)] = pg.execute("SELECT bank, processing_date FROM pay.batch").fetchall()
    assert bank == BANK and processing_date >= today  # today, or its next business day (a weekend run)
    assert sent.name == f"ACHP01_013_{processing_date:%Y%m%d}_001.txt"  # its own bank code, its pattern
    ours = pay.bank_keys("mega")["ours"]
    with pgp.keyring() as ring:  # the bank: its own key decrypts, our signature must be good
        ring.add(sixth_bank["secret"], sixth_bank["fingerprint"], "the bank's secret key")
        ring.add(ours["public"], ours["fingerprint"], "our public key")
        plain = ring.decrypt_and_verify(sent.read_bytes(), ours["fingerprint"], None)
    details = ach.read_ach(plain, sent.name).details
    assert [d["customer_number"] for d in details] == [tch.cno(r) for r in refs]
    assert {str(d["amount"]) for d in details} == {"1500"}
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")
