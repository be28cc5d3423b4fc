"""A counterparty whose server accepts the connection and then says nothing: the transfer ends
with a timeout instead of holding the task for ever (the connection's ``timeout`` extra)."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from finflows.hooks.ftp import FTPHook, FTPSHook
from tests.helpers.servers import fails_while_frozen, sshd_sessions

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_server():
    """A TCP listener on loopback that accepts and never sends a byte (no FTP banner)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for c in accepted:
        c.close()
    server.close()


@pytest.mark.parametrize("hook_class", [FTPHook, FTPSHook], ids=["ftp", "ftps"])
def test_a_server_that_never_answers_ends_in_a_timeout(monkeypatch, silent_server, hook_class):
    kind = "ftps" if hook_class is FTPSHook else "ftp"
    conn = {"conn_type": kind, "host": "127.0.0.1", "port": silent_server, "login": "x", "password": "y"}
    monkeypatch.setenv("AIRFLOW_CONN_SILENT", json.dumps(conn | {"extra": {"timeout": 1}}))
    with pytest.raises(TimeoutError):
        hook_class(ftp_conn_id="silent").get_conn()


def test_a_bank_sftp_server_that_stalls_mid_session_ends_the_operation(monkeypatch, cfg):
    """The real sshd of the local stack, logged in, then frozen (SIGSTOP of its session processes):
    a listing that would wait for ever fails within FINFLOWS_SFTP_IDLE_TIMEOUT."""
    from finflows.flows.banking import common

    monkeypatch.setenv("FINFLOWS_SFTP_IDLE_TIMEOUT", "2")
    bank = cfg.bank("esun")
    with common.sftp(bank).get_managed_conn() as client:
        client.listdir(bank.upload_path)  # the session works
        pids = sshd_sessions("ffsftp_esun")
        assert pids, "no sshd session process of the esun account"
        fails_while_frozen(pids, lambda: client.listdir(bank.upload_path))


def test_an_ftps_server_that_stalls_mid_session_ends_the_operation(monkeypatch):
    """The real vsftpd of the local stack, logged in over TLS, then frozen (SIGSTOP of its session
    processes): a listing that would wait for ever fails within the connection's ``timeout``."""
    import os

    from devstack import stack
    from devstack.services import servers

    local = json.loads(os.environ["AIRFLOW_CONN_FTPS_ACQUIRER"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_FTPS_STALLS", json.dumps(local | {"extra": local.get("extra", {}) | {"timeout": 2}})
    )
    hook = FTPSHook(ftp_conn_id="ftps_stalls")
    listener = stack._read_pid("ftps")
    before = set(servers.descendants(listener))
    hook.list_directory("/Saida")  # logged in, the session works
    pids = [p for p in servers.descendants(listener) if p not in before]
    assert pids, "no vsftpd session process of this login"
    try:
        fails_while_frozen(pids, lambda: hook.list_directory("/Saida"))
    finally:
        hook.close_conn()
