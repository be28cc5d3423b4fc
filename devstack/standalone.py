"""make up: `airflow standalone` (UI on :8080) against the local stack, and print the login.

Airflow's simple auth manager is given one admin user whose password is generated once into
.local/airflow/simple_auth_manager_passwords.json.generated and printed here.
"""

from __future__ import annotations

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


def main() -> int:
    env = os.environ | {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
            AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
        ),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    port = env.get("AIRFLOW__API__PORT", "8080")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", int(port))) == 0:
            print(
                f"[finflows] port {port} is in use (an Airflow still running?); stop it or set FINFLOWS_API_PORT",
                file=sys.stderr,
            )
            return 1
    # its own process group, so that stopping `make up` stops every Airflow component it started
    proc = subprocess.Popen([airflow, "standalone"], env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(proc.pid, signal.SIGTERM))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as r:
                health = json.load(r)
            if all(v.get("status") == "healthy" for k, v in health.items() if isinstance(v, dict)):
                break
        except OSError:
            pass
        time.sleep(2)
    pw_file = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    if pw_file.exists():
        users = json.loads(pw_file.read_text())
        print(f"\n[finflows] Airflow UI: http://localhost:{port}  login: admin / {users.get('admin')}\n", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
