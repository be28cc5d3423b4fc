"""Airflow as production runs it: the api-server, scheduler, dag-processor and triggerer as
separate processes and, with the CeleryExecutor, Celery workers taking tasks from the stack's
redis. Used by ``make up EXECUTOR=celery`` and by tests/e2e/test_celery.py.

Every component gets the same settings as docker-compose and the Helm values: the metadata
database on PostgreSQL, one JWT secret (the scheduler signs each task's token, the api-server
checks it), the execution API's URL, and for Celery the broker and result backend.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack import airflow_env, stack

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class Cluster:
    port: int
    executor: str
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)  # where each log stood when this start began
    env: dict[str, str] = field(default_factory=dict)  # what every component was started with (one JWT secret)

    def worker_names(self) -> list[str]:
        return [n for n in self.procs if n.startswith("worker")]

    def log_of(self, name: str) -> str:
        """What the component logged since this cluster started it (the file keeps earlier runs)."""
        with (self.log_dir / f"{name}.log").open("rb") as f:
            f.seek(self.offsets.get(name, 0))
            return f.read().decode(errors="replace")


def environment(port: int, executor: str, database: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = airflow_env.standalone_env(port) | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": stack.airflow_db_url(database),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    }
    if executor == "celery":
        env |= stack.celery_env()
    return env | (extra or {})


def start(
    port: int,
    *,
    executor: str = "celery",
    workers: int = 2,
    database: str | None = None,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 400,
) -> Cluster:
    """Migrate the metadata database, start each component in its own process group and return
    once the scheduler, triggerer and dag-processor report healthy and every worker is ready."""
    from devstack.config import AIRFLOW_DB, AIRFLOW_PG_USER

    if airflow_env.port_in_use(port):
        raise RuntimeError(f"port {port} is in use (an Airflow still running?)")
    database = database or AIRFLOW_DB
    stack.create_database(database, AIRFLOW_PG_USER)
    env = environment(port, executor, database, extra_env)
    airflow = str(Path(sys.executable).parent / "airflow")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "db-migrate.log").open("wb") as log:
        subprocess.run([airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    cluster = Cluster(port, executor, log_dir, env=env)
    commands = {name: [airflow, name] for name in COMPONENTS}
    if executor == "celery":
        for i in range(1, workers + 1):
            # logs are files on this machine, read by the api-server: no log server per worker
            commands[f"worker{i}"] = [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--skip-serve-logs",
                "--celery-hostname",
                f"worker{i}@%h",
            ]
    try:
        for name, cmd in commands.items():
            with (log_dir / f"{name}.log").open("ab") as log:
                cluster.offsets[name] = log.tell()
                cluster.procs[name] = subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in cluster.procs.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"Airflow component(s) exited: {dead}; logs in {log_dir}")
            if _healthy(port) and all(_worker_ready(cluster, n) for n in cluster.worker_names()):
                return cluster
            time.sleep(2)
        raise RuntimeError(f"Airflow did not become healthy within {timeout:.0f} s; logs in {log_dir}")
    except BaseException:
        stop(cluster)
        raise


def _healthy(port: int) -> bool:
    try:
        return airflow_env.all_healthy(airflow_env.health(port))
    except OSError:
        return False


def _worker_ready(cluster: Cluster, name: str) -> bool:
    return " ready." in cluster.log_of(name)  # Celery's "celery@host ready." once it consumes


def tasks_given(cluster: Cluster) -> dict[str, list[dict]]:
    """Each task instance each worker was given (dag, task, run, try, id), from the workers' own logs."""
    import re

    fields = {
        "dag": r"dag_id='(\w+)'",
        "task": r"task_id='([\w.]+)'",
        "run": r"run_id='([^']+)'",
        "try": r"try_number=(\d+)",
        "id": r"ti=TaskInstance\w*\(id=UUID\('([0-9a-f-]+)'\)",
    }
    out = {}
    for w in cluster.worker_names():
        out[w] = [
            {k: (m[1] if (m := re.search(rx, line)) else None) for k, rx in fields.items()}
            for line in cluster.log_of(w).splitlines()
            if "Executing workload in Celery" in line
        ]
    return out


def restart(cluster: Cluster, name: str) -> None:
    """Start one component again (after ``kill``, or after it exited), as ``start`` started it."""
    airflow = str(Path(sys.executable).parent / "airflow")
    if name.startswith("worker"):
        cmd = [airflow, "celery", "worker", "--concurrency", "2", "--skip-serve-logs", "--celery-hostname",
               f"{name}@%h"]  # fmt: skip
    else:
        cmd = [airflow, name]
    with (cluster.log_dir / f"{name}.log").open("ab") as log:
        cluster.procs[name] = subprocess.Popen(
            cmd, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def kill(cluster: Cluster, name: str) -> None:
    """SIGKILL one component and everything it started (a machine lost mid-task)."""
    proc = cluster.procs[name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def stop(cluster: Cluster) -> None:
    """SIGTERM every component's process group; SIGKILL what is left after 30 s."""
    for proc in cluster.procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in cluster.procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in cluster.procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group: task processes a component left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while airflow_env.port_in_use(cluster.port) and time.monotonic() < deadline:
        time.sleep(0.2)
