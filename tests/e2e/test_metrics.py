"""Flow metrics reach a StatsD receiver through Airflow's [metrics] settings: a real UDP socket on
loopback receives what bank_payments' summary emits under dag.test()."""

from __future__ import annotations

import datetime as dt
import socket
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import payments as pay
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def statsd(monkeypatch):
    """A UDP socket standing in for the StatsD daemon; Airflow's metrics settings point at it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(sock.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")

    def received() -> dict[str, str]:
        out = {}
        while True:
            try:
                data = sock.recv(65535).decode()
            except TimeoutError:
                return out
            for line in data.splitlines():
                name, _, value = line.partition(":")
                out[name] = value

    yield received
    sock.close()


def test_bank_payments_emits_files_rows_bytes_failures_and_duration(clean_payments, pg, local_dir, statsd):
    from airflow.utils.state import DagRunState

    pay.add(pg, "mega", 3, due=dt.datetime.now(ZoneInfo("Asia/Taipei")).date())
    assert load_dag("bank_payments").test(run_conf={"banks": ["mega"]}).state == DagRunState.SUCCESS
    [(_name, data)] = pay.uploaded(local_dir, "mega").items()
    got = statsd()
    assert got["airflow.finflows.bank_payments.files"] == "1|c"
    assert got["airflow.finflows.bank_payments.rows"] == "3|c"
    assert got["airflow.finflows.bank_payments.bytes"] == f"{len(data)}|c"  # the encrypted file as sent
    assert got["airflow.finflows.bank_payments.failures"] == "0|c"
    ms, kind = got["airflow.finflows.bank_payments.duration"].split("|")
    assert kind == "ms" and float(ms) > 0
