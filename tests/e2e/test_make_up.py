"""`make up` as an operator meets it: the login printed last (and kept in a file), and SIGTERM
stops every Airflow process it started, without hanging."""

from __future__ import annotations

import contextlib
import json
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
_TEST_FIELDS = ("connection_id", "conn_type", "description", "host", "login", "schema", "port", "password", "extra")


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


def _api(port: int, path: str, body: dict | None = None) -> dict:
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
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode(),
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def test_make_up_prints_the_login_last_shows_no_test_run_and_stops_cleanly_on_sigterm(local_dir, tmp_path):
    import psycopg

    from devstack import stack
    from devstack.config import AIRFLOW_DB
    from tests.helpers.dags import load_dag

    load_dag("bank_health").test()  # a run in the test suite's metadata database
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == stack.airflow_db_url(AIRFLOW_DB)
    assert _runs_in(AIRFLOW_DB) > 0
    up_db, up_finance = f"airflow_up_test_{os.getpid()}", f"finance_up_test_{os.getpid()}"
    stack.drop_database(up_db)
    stack.drop_database(up_finance)
    port = _free_port()
    out = tmp_path / "make-up.out"
    env = os.environ | {
        "AIRFLOW__API__PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FINFLOWS_UP_DB": up_db,
        "FINFLOWS_UP_FINANCE_DB": up_finance,
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
        assert f"metadata database: PostgreSQL {up_db}, finance database: {up_finance}" in text
        # ...and its own finance database: the monitor shows none of the suite's files, runs or failures
        conn = _api(port, "/api/v2/connections/postgres_finance")
        assert conn["schema"] == up_finance, conn
        with psycopg.connect(stack.pg_dsn(up_finance)) as f:
            assert f.execute("SELECT count(*) FROM ops.file_control").fetchone()[0] == 0
        flows = _api(port, "/finflows/api/dashboard")
        assert all(not f.get("failures") for f in flows.get("flows", [])), flows
        # (bank_health and treasury_decisions start unpaused everywhere: their own scheduled runs are the only ones)
        assert _runs_in(up_db, "NOT (dag_id IN ('bank_health', 'treasury_decisions') AND run_type = 'scheduled')") == 0
        # a new user finds the local connections in Admin → Connections (make up's own database)
        assert "local connections are in Admin → Connections" in text
        assert "no sample data put in place (SEED=yes make up does" in text  # no terminal: not asked, not seeded
        listed = {c["connection_id"] for c in _api(port, "/api/v2/connections?limit=200")["connections"]}
        assert {"postgres_finance", "sftp_mega", "pgp_finflows", "ftps_acquirer", "aws_finflows"} <= listed
        # Admin → Connections → Test, on every row, with the body Airflow 3.3.2's list sends: each field
        # as the list shows it, blanks as "", and port Number(row.port), which is 0 for no port
        failed = {}
        for cid in sorted(listed):
            row = _api(port, f"/api/v2/connections/{cid}")
            body = {k: row.get(k) or "" for k in _TEST_FIELDS} | {"port": int(row.get("port") or 0)}
            body["extra"] = row.get("extra") or "{}"
            result = _api(port, "/api/v2/connections/test", body)
            if result["status"] is not True:
                failed[cid] = result["message"]
            assert "***" not in json.dumps({k: v for k, v in row.items() if k not in ("password", "extra")}), row
        assert failed == {}, failed
        started = servers.descendants(proc.pid)
        assert len(started) >= 4, "scheduler, triggerer, dag-processor and api-server under make up"

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert "the local stack was up before make up: left running" in out.read_text()
        print(f"make up stopped {len(started)} processes in {time.monotonic() - t0:.1f}s after SIGTERM")
        deadline = time.monotonic() + 60  # a killed process takes a moment to be gone
        while (left := [p for p in started if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], f"still running after SIGTERM: {left}"
        assert not standalone.port_in_use(port)
        # Airflow's metadata lives in PostgreSQL only: no SQLite file anywhere under .local
        assert [p for p in local_dir.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")] == []
    finally:
        if proc.poll() is None:  # a failed assertion: make up still stops what it started (its own sessions too)
            family = servers.descendants(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        stack.drop_database(up_db)
        stack.drop_database(up_finance)
