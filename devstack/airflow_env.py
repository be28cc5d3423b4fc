"""The Airflow processes' environment and probes, shared by ``devstack.standalone`` (one
``airflow standalone``) and ``devstack.cluster`` (each component its own process): neither imports
the other."""

from __future__ import annotations

import json
import os
import socket
import sys
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
        # admin runs things; treasurer is the second person who approves payment batches
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,treasurer:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(home)),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # the Connections form's Test button (off by default in Airflow 3; production decides)
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "FINFLOWS_DEADLINES": "on",  # the real scheduler runs Deadline Alerts (dag.test cannot)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def health(port: int) -> dict:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=60
    ) as r:  # a busy machine answers late
        return json.load(r)


def all_healthy(h: dict) -> bool:
    parts = [v for v in h.values() if isinstance(v, dict)]
    return bool(parts) and all(v.get("status") == "healthy" for v in parts)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
