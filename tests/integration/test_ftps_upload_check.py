"""A card company's FTPS server that denies SIZE or renaming (ProFTPD and Pure-FTPd can be set so; here the
real vsftpd with ``cmds_denied=SIZE``): each destination says how its server lets us check an
upload (``upload_check`` in include/chargeback_destinations.json), as each bank's SFTP does. With
``size`` such a server fails every try in words that name the fix; with ``list`` the size comes
from its directory listing; with ``trust`` from the transfer's own 226. Nothing half-written stays."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from finflows.hooks.ftp import FTPSHook
from finflows.transfer import TransferError, ftp_upload_atomic
from tests.helpers.servers import free_port

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def vsftpd_denying(commands: str) -> Iterator[int]:
    """A second vsftpd with the stack's FTPS configuration (accounts, TLS, session reuse) that
    answers the given commands with 550, on a port of its own."""
    from devstack.config import LOCAL
    from devstack.services import servers

    port = free_port()
    conf = LOCAL / "run" / "vsftpd-ftps" / "vsftpd.conf"
    proc = subprocess.Popen(
        [servers.VSFTPD, str(conf), f"-olisten_port={port}", f"-ocmds_denied={commands}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    if s.recv(64).startswith(b"220"):
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port
    finally:
        for pid in reversed(servers.descendants(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def visa_denying_size(monkeypatch, local_dir):
    with vsftpd_denying("SIZE") as port:
        local = json.loads(os.environ["AIRFLOW_CONN_FTPS_VISA"])
        monkeypatch.setenv("AIRFLOW_CONN_FTPS_NO_SIZE", json.dumps(local | {"port": port}))
        inbox = local_dir / "ftps" / "visa" / "inbound"
        yield FTPSHook(ftp_conn_id="ftps_no_size"), inbox


def test_a_server_that_denies_size_fails_with_the_fix_named_and_leaves_nothing(visa_denying_size, unique):
    hook, inbox = visa_denying_size
    name = f"cb-{unique}.csv"
    try:
        with pytest.raises(TransferError, match=r"refused SIZE .*set this destination's upload_check to list"):
            ftp_upload_atomic(hook, "/inbound", name, b"case_id\n1\n", check="size")
    finally:
        hook.close_conn()
    assert not (inbox / name).exists() and not (inbox / f"{name}.part").exists()


@pytest.mark.parametrize("check", ["list", "trust"])
def test_a_server_that_denies_size_takes_the_file_once_with_its_upload_check(visa_denying_size, unique, check):
    hook, inbox = visa_denying_size
    name = f"cb-{unique}-{check}.csv"
    data = b"case_id,amount\n" + b"".join(b"%d,100\n" % i for i in range(2000))
    try:
        ftp_upload_atomic(hook, "/inbound", name, data, check=check)
    finally:
        hook.close_conn()
    assert (inbox / name).read_bytes() == data and not (inbox / f"{name}.part").exists()
    (inbox / name).unlink()


def test_a_server_that_denies_rename_takes_the_file_under_its_final_name(monkeypatch, local_dir, unique):
    """RNFR/RNTO denied (vsftpd cmds_denied): with ``rename: false`` the file goes under its final
    name and is checked there; with the default the rename's refusal fails the upload and no
    ``.part`` stays behind."""
    import ftplib

    with vsftpd_denying("RNFR,RNTO") as port:
        local = json.loads(os.environ["AIRFLOW_CONN_FTPS_VISA"])
        monkeypatch.setenv("AIRFLOW_CONN_FTPS_NO_RENAME", json.dumps(local | {"port": port}))
        hook = FTPSHook(ftp_conn_id="ftps_no_rename")
        inbox = local_dir / "ftps" / "visa" / "inbound"
        name = f"cb-{unique}-direct.csv"
        try:
            with pytest.raises(ftplib.error_perm, match="550"):
                ftp_upload_atomic(hook, "/inbound", name, b"case_id\n1\n")
            assert not (inbox / name).exists() and not (inbox / f"{name}.part").exists()
            ftp_upload_atomic(hook, "/inbound", name, b"case_id\n1\n", check="list", rename=False)
        finally:
            hook.close_conn()
        assert (inbox / name).read_bytes() == b"case_id\n1\n" and not (inbox / f"{name}.part").exists()
        (inbox / name).unlink()


def test_each_destination_says_its_upload_check_and_a_wrong_one_is_refused(tmp_path):
    from finflows.flows.chargeback_export import chargeback

    shipped = chargeback.load_config()
    assert {d.upload_check for d in shipped.destinations.values()} <= {"size", "list", "trust"}
    assert all(d.rename is True for d in shipped.destinations.values())  # the local vsftpd allows it
    raw = json.loads(chargeback.CONFIG.read_text())
    raw["destinations"]["visa"]["upload_check"] = "stat"
    bad = tmp_path / "destinations.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="destinations visa upload_check"):
        chargeback.load_config(bad)
