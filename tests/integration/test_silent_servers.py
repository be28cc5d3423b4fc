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


# ---------------------------------------------------------------------------- the timeout means what it says
IDLE = 15  # seconds: the idle timeout these tests set
ENOUGH = 5  # a new login and one command for the clean-up, on a busy machine


def _freeze_once_written(path, pids_of, frozen: dict) -> threading.Thread:
    """A thread that stops the server's session processes (SIGSTOP) as soon as ``path`` holds bytes:
    the server stalls in the middle of the upload, with our file open."""
    import os
    import signal
    import time

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 0:
                frozen["pids"] = pids_of()
                for pid in frozen["pids"]:
                    os.kill(pid, signal.SIGSTOP)
                frozen["at"] = time.monotonic()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _thaw(frozen: dict) -> None:
    import contextlib
    import os
    import signal

    for pid in frozen.get("pids", []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _upload_while_frozen(hook, bank, part: str, on_disk, frozen: dict) -> None:
    """Log in, then upload far more than the channel's window while the server is frozen mid-way."""
    from finflows.transfer import sftp_put_part

    with hook.get_managed_conn() as sftp:
        sftp.listdir(bank.upload_path)  # the session works
        _freeze_once_written(on_disk, lambda: sshd_sessions("ffsftp_esun"), frozen)
        sftp_put_part(sftp, part, bytes(512 << 20))


@pytest.mark.parametrize("client", ["paramiko", "asyncssh"])
def test_a_stalled_sftp_upload_is_given_up_within_the_idle_timeout_cleanup_included(
    monkeypatch, cfg, local_dir, client
):
    """The real sshd frozen mid-upload (our .part open and half written): the upload fails, the
    session is closed and the .part removed over a new session, all within the idle timeout and a
    few seconds. Before, paramiko waited the timeout again for the file's close (twice the timeout),
    asyncssh for the close and then ten more seconds for the session's."""
    import time

    from finflows.flows.banking import common
    from finflows.flows.banking.banks import SftpClient
    from finflows.transfer import sftp_remove_quietly

    monkeypatch.setenv("FINFLOWS_SFTP_IDLE_TIMEOUT", str(IDLE))
    bank = cfg.bank("esun").model_copy(update={"sftp_client": SftpClient(client)})
    hook = common.sftp(bank)
    part = f"{bank.upload_path.rstrip('/')}/STALLED_{client}.csv.part"
    on_disk = local_dir / "sftp" / "esun" / "upload" / f"STALLED_{client}.csv.part"
    frozen: dict = {}
    try:
        with pytest.raises((TimeoutError, EOFError, OSError)):
            _upload_while_frozen(hook, bank, part, on_disk, frozen)
        assert frozen.get("pids"), "the server was not frozen mid-upload"
        gave_up = time.monotonic() - frozen["at"]
        assert sftp_remove_quietly(hook, part), "the clean-up over a new session failed"
        done = time.monotonic() - frozen["at"]
    finally:
        _thaw(frozen)
    assert not on_disk.exists(), "the half-written .part was left behind"
    assert gave_up < IDLE + ENOUGH, f"gave up {gave_up:.1f} s after the server stalled (idle timeout {IDLE} s)"
    assert done < IDLE + 2 * ENOUGH, f"clean-up done {done:.1f} s after the stall (idle timeout {IDLE} s)"


def test_a_stalled_ftps_upload_is_given_up_within_the_timeout_cleanup_included(monkeypatch, local_dir):
    """vsftpd frozen mid-upload over TLS: the attempt fails within the connection's timeout and the
    clean-up goes over a new session. Before, the DELETE was sent on the hung control connection
    first (the timeout again), then a QUIT on it (again)."""
    import os
    import time

    from devstack import stack
    from devstack.services import servers
    from finflows.transfer import ftp_upload_atomic

    local = json.loads(os.environ["AIRFLOW_CONN_FTPS_VISA"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_FTPS_VISA_STALLS", json.dumps(local | {"extra": local.get("extra", {}) | {"timeout": IDLE}})
    )
    hook = FTPSHook(ftp_conn_id="ftps_visa_stalls")
    listener = stack._read_pid("ftps")
    before = set(servers.descendants(listener))
    hook.list_directory("/inbound")  # logged in: the session works
    ours = [p for p in servers.descendants(listener) if p not in before]
    on_disk = local_dir / "ftps" / "visa" / "inbound" / "STALLED.csv.part"
    frozen: dict = {}
    try:
        _freeze_once_written(on_disk, lambda: [p for p in servers.descendants(listener) if p not in before] or ours,
                             frozen)  # fmt: skip
        with pytest.raises((TimeoutError, EOFError, OSError)):
            ftp_upload_atomic(hook, "/inbound", "STALLED.csv", bytes(512 << 20))
        done = time.monotonic() - frozen["at"]
    finally:
        _thaw(frozen)
        hook.close_conn()
    assert frozen.get("pids"), "the server was not frozen mid-upload"
    assert not on_disk.exists(), "the half-written .part was left behind"
    assert done < IDLE + 2 * ENOUGH, f"given up and cleaned up {done:.1f} s after the stall (timeout {IDLE} s)"
