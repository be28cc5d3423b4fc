"""A bank's SFTP session allowance, kept across every caller at once, counted at the real sshd.

bank_payments' uploads, the retry queue, reconciliation's downloads, bank_health's probes and the
monitor's test-connection all take their hook from ``banking.sftp(bank)``. The sessions are
counted on the server's side: the established TCP connections of OpenSSH's listening port, read
from /proc/net/tcp while the callers run, not from our own bookkeeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from finflows.flows.banking import banks, health
from finflows.flows.banking.common import sftp
from finflows.hooks.sftp import SessionLimitReached, session_slot
from finflows.task_support import finance_db

pytestmark = pytest.mark.integration


def sftp_port() -> int:
    return int(json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"])["port"])


def established(port: int) -> int:
    """Server-side established connections on ``port`` (state 01 in /proc/net/tcp{,6}), each
    counted once by its address pair: the kernel writes these tables in pieces, and a busy table
    read while it changes can show one connection twice (seen once in a full fresh-clone run)."""
    seen = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                local, remote, state = line.split()[1:4]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                    seen.add((table, local, remote))
    return len(seen)


def test_every_caller_of_one_bank_shares_its_session_allowance():
    bank = banks.load().bank("mega").model_copy(update={"sftp_sessions": 2})
    port = sftp_port()
    baseline = established(port)
    peak, done, errors = [0], threading.Event(), []

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], established(port) - baseline)
            time.sleep(0.01)

    def download_session():  # what reconciliation and the retry queue do: a session held a while
        with sftp(bank).get_managed_conn() as client:
            client.listdir(bank.download_path)
            time.sleep(1.5)

    def probe():  # bank_health and the monitor's test-connection
        check = health.probe(sftp(bank, one_attempt=True), bank)
        if not check.ok:
            raise AssertionError(check.error)

    def run(fn):
        try:
            fn()
        except Exception as e:  # collected: an assertion in a thread would not fail the test
            errors.append(repr(e))

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=run, args=(fn,)) for fn in [download_session] * 4 + [probe] * 3]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    done.set()
    sampler.join()
    assert errors == []
    assert not any(w.is_alive() for w in workers)
    assert peak[0] == 2, f"at most the bank's 2 sessions at once, and both used; the server saw {peak[0]}"


def test_a_caller_that_dies_gives_its_session_back():
    key = f"sftp:test-{os.getpid()}"
    code = (
        "import sys, time\n"
        "from finflows.hooks.sftp import session_slot\n"
        "from finflows.task_support import finance_db\n"
        f"with session_slot(lambda: finance_db().get_conn(), {key!r}, 1, wait=60):\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "holding"
        with (
            pytest.raises(SessionLimitReached, match=rf"{key}: all 1 sessions allowed were in use for 1 s"),
            session_slot(lambda: finance_db().get_conn(), key, 1, wait=1),
        ):
            pass
    finally:
        holder.kill()  # a worker killed mid-transfer: no cleanup code runs
        holder.wait()
    with session_slot(lambda: finance_db().get_conn(), key, 1, wait=120) as slot:
        assert slot == 0
