"""make up: `airflow standalone` (UI on :8080) against the local stack, and print the login.

Airflow's simple auth manager is given one admin user whose password is generated once into
.local/airflow/simple_auth_manager_passwords.json.generated and printed here. ``start``/``stop``
are also used by the test that runs the real scheduler and triggerer (tests/e2e/test_standalone.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.config import AIRFLOW_HOME


def passwords_file(home: Path = AIRFLOW_HOME) -> Path:
    return home / "simple_auth_manager_passwords.json.generated"


def standalone_env(port: int, home: Path = AIRFLOW_HOME) -> dict[str, str]:
    return os.environ | {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(home)),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "FINFLOWS_DEADLINES": "on",  # the real scheduler runs Deadline Alerts (dag.test cannot)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
        return json.load(r)


def all_healthy(h: dict) -> bool:
    parts = [v for v in h.values() if isinstance(v, dict)]
    return bool(parts) and all(v.get("status") == "healthy" for v in parts)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(port: int, log=None, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `airflow standalone` in its own process group; return once every component is healthy."""
    if port_in_use(port):
        raise RuntimeError(f"port {port} is in use (an Airflow still running?); stop it or set FINFLOWS_API_PORT")
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.Popen(
        [airflow, "standalone"],
        env=standalone_env(port) | (extra_env or {}),
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {proc.returncode}")
        try:
            if all_healthy(health(port)):
                return proc
        except OSError:
            pass
        time.sleep(2)
    stop(proc, port)
    raise RuntimeError("airflow standalone did not become healthy within 300 s")


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen, port: int | None = None) -> None:
    """Stop every Airflow component standalone started (the whole process group), and wait until
    the api-server has let go of its port (it shuts down a few seconds after standalone exits)."""
    _killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while port is not None and port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    if port is not None and port_in_use(port):
        _killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    try:
        proc = start(port)
    except RuntimeError as e:
        print(f"[finflows] {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: stop(proc, port))
    users = json.loads(passwords_file().read_text()) if passwords_file().exists() else {}
    print(f"\n[finflows] Airflow UI: http://localhost:{port}  login: admin / {users.get('admin')}", flush=True)
    print(f"[finflows] health: {json.dumps(health(port))}\n", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc, port)


if __name__ == "__main__":
    sys.exit(main())
