"""`make up` as an operator meets it: the login printed last (and kept in a file), and SIGTERM
stops every Airflow process it started, without hanging."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack import standalone
from devstack.services import servers

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _runs_in(db: str, where: str = "true") -> int:
    import psycopg

    from devstack import stack

    url = stack.airflow_db_url(db).replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(url) as c:
        return c.execute(f"SELECT count(*) FROM dag_run WHERE {where}").fetchone()[0]


def _api(port: int, path: str) -> dict:
    import json
    import urllib.request

    password = json.loads(standalone.passwords_file().read_text())["admin"]
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        token = json.load(r)["access_token"]
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def test_make_up_prints_the_login_last_shows_no_test_run_and_stops_cleanly_on_sigterm(local_dir, tmp_path):
    from devstack import stack
    from devstack.config import AIRFLOW_DB
    from tests.helpers.dags import load_dag

    load_dag("bank_health").test()  # a run in the test suite's metadata database
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == stack.airflow_db_url(AIRFLOW_DB)
    assert _runs_in(AIRFLOW_DB) > 0
    up_db = f"airflow_up_test_{os.getpid()}"
    stack.drop_database(up_db)
    port = _free_port()
    out = tmp_path / "make-up.out"
    env = os.environ | {
        "AIRFLOW__API__PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FINFLOWS_UP_DB": up_db,
    }
    env.pop("SEED", None)
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.standalone"],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 400
        while "login: admin / " not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()[-3000:]
            time.sleep(2)
        text = out.read_text()
        assert f"Airflow UI: http://localhost:{port}  login: admin / " in text, text[-3000:]
        last = [line for line in text.splitlines() if line.strip()][-2:]
        assert "login: admin / " in last[0] and "SIGTERM stops it" in last[1]  # nothing scrolls it away
        assert standalone.login_file().read_text().strip() == last[0].removeprefix("[finflows] ")
        # make up's own metadata database: none of the suite's runs is there to show, queue or alert
        assert f"metadata database: PostgreSQL {up_db}" in text
        # (bank_health starts unpaused everywhere: its own scheduled checks are the only runs there)
        assert _runs_in(up_db, "NOT (dag_id = 'bank_health' AND run_type = 'scheduled')") == 0
        # a new user finds the local connections in Admin → Connections (make up's own database)
        assert "local connections are in Admin → Connections" in text
        assert "no sample data put in place (SEED=yes make up does" in text  # no terminal: not asked, not seeded
        listed = {c["connection_id"] for c in _api(port, "/api/v2/connections?limit=200")["connections"]}
        assert {"postgres_finance", "sftp_mega", "pgp_finflows", "ftps_acquirer", "aws_finflows"} <= listed
        started = servers.descendants(proc.pid)
        assert len(started) >= 4, "scheduler, triggerer, dag-processor and api-server under make up"

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        print(f"make up stopped {len(started)} processes in {time.monotonic() - t0:.1f}s after SIGTERM")
        deadline = time.monotonic() + 60  # a killed process takes a moment to be gone
        while (left := [p for p in started if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], f"still running after SIGTERM: {left}"
        assert not standalone.port_in_use(port)
        # Airflow's metadata lives in PostgreSQL only: no SQLite file anywhere under .local
        assert [p for p in local_dir.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")] == []
    finally:
        if proc.poll() is None:
            proc.kill()
        stack.drop_database(up_db)
