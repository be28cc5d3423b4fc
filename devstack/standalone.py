"""make up (the components as separate processes, see devstack/cluster.py) and `airflow standalone`
(UI on :8080) against the local stack, and print the login.

Airflow's simple auth manager is given one admin user whose password is generated once into
.local/airflow/simple_auth_manager_passwords.json.generated and printed here. ``start``/``stop``
are also used by the test that runs the real scheduler and triggerer (tests/e2e/test_standalone.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devstack.airflow_env import all_healthy, health, passwords_file, port_in_use, standalone_env
from devstack.config import AIRFLOW_HOME


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


def stop(proc: subprocess.Popen, port: int | None = None, grace: float = 8) -> None:
    """Stop every Airflow component standalone started (the whole process group): SIGTERM, then
    SIGKILL whatever is left after ``grace`` seconds; wait until the api-server's port is free."""
    from devstack.services.servers import descendants

    family = descendants(proc.pid)  # some components start their own sessions: not all share the group
    _killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    _killpg(proc.pid, signal.SIGKILL)  # the group may outlive its leader (api-server workers)
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    deadline = time.monotonic() + 10
    while port is not None and port_in_use(port) and time.monotonic() < deadline:
        time.sleep(0.2)


def up_database() -> str:
    """make up's own metadata database on the stack's PostgreSQL (``airflow_up``), apart from the
    one the test suite and the demo use (``airflow``): the UI shows no test run, queued run or
    deadline of theirs. FINFLOWS_UP_DB names another database (created when missing)."""
    from devstack.config import AIRFLOW_PG_USER, AIRFLOW_UP_DB
    from devstack.stack import create_database

    name = os.environ.get("FINFLOWS_UP_DB") or AIRFLOW_UP_DB
    create_database(name, AIRFLOW_PG_USER)
    return name


def up_finance_database() -> str:
    """make up's own finance database (``finance_up``; FINFLOWS_UP_FINANCE_DB names another),
    created and migrated when missing: the tests and the demo write into ``finance``, never here,
    so the first morning's monitor shows only what the user seeded or ran."""
    from devstack import stack
    from devstack.config import FINANCE_UP_DB

    name = os.environ.get("FINFLOWS_UP_FINANCE_DB") or FINANCE_UP_DB
    stack.finance_database(name)
    return name


def login_file(home: Path = AIRFLOW_HOME) -> Path:
    return home / "login.txt"


def import_connections(env: dict[str, str]) -> list[str]:
    """The local stack's connections (its ``AIRFLOW_CONN_*`` variables) stored in make up's own
    metadata database too, so Admin → Connections lists them for a new user to inspect, edit and
    test (the variables still win when a task reads one: the same values either way). Returns the
    ids imported."""
    import tempfile

    conns = {
        k.removeprefix("AIRFLOW_CONN_").lower(): json.loads(v)
        for k, v in env.items()
        if k.startswith("AIRFLOW_CONN_") and v.lstrip().startswith("{")
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=AIRFLOW_HOME, delete=True) as f:
        os.chmod(f.name, 0o600)  # passwords of the throwaway local accounts: still not world-readable
        json.dump(conns, f)
        f.flush()
        subprocess.run(
            [airflow, "connections", "import", "--overwrite", f.name],
            env=env,
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
    return sorted(conns)


def seed_if_wanted(finance_db: str) -> list[str]:
    """The sample data where the flows find it (``devstack.seed``), asked on a terminal or chosen
    with SEED=yes|no; the lines say what there is to try, or how to get it."""
    from devstack import seed, stack

    if not seed.wanted(sys.stdin.isatty()):
        return [
            "no sample data put in place (SEED=yes make up does: cash files and a statement waiting,"
            " payments for two banks, rent accounts)"
        ]
    import psycopg

    with psycopg.connect(stack.pg_dsn(finance_db), autocommit=True) as pg:
        return [f"to try: {line}" for line in seed.sample_data(pg, stack._aws_client("s3"))]


class _Stop(Exception):
    pass


def _raise_stop(*_args) -> None:
    raise _Stop  # unwinds the main thread out of proc.wait(): the finally below stops Airflow once


def main() -> int:
    """make up: the components as production runs them, each its own process (api-server,
    scheduler, dag-processor, triggerer; with EXECUTOR=celery also WORKERS Celery workers on the
    stack's redis), on make up's own metadata and finance databases; the login is printed last.
    Stops what it started on Ctrl-C or SIGTERM: Airflow, and the local stack unless the stack was
    up before (FINFLOWS_STACK_WAS_UP=yes, set by the Makefile)."""
    executor = os.environ.get("EXECUTOR", "local").strip().lower() or "local"
    if executor not in ("local", "celery"):
        print(f"[finflows] EXECUTOR={executor!r} is not one of: local, celery", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        return _run(executor)
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        _stop_stack_unless_it_was_up()


def _stop_stack_unless_it_was_up() -> None:
    from devstack import stack

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the clean-up short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.environ.get("FINFLOWS_STACK_WAS_UP", "yes") != "no":
        print("[finflows] the local stack was up before make up: left running (make stack-down stops it)", flush=True)
        return
    stack.down()
    left = stack.verify_down()
    print(f"[finflows] local stack stopped{'; still running: ' + ', '.join(left) if left else ''}", flush=True)


def _run(executor: str) -> int:
    from devstack import cluster, stack

    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    workers = int(os.environ.get("WORKERS", "2"))
    log_dir = AIRFLOW_HOME.parent / "logs" / "airflow"
    parts = ", ".join([*cluster.COMPONENTS, *([f"{workers} Celery worker(s)"] if executor == "celery" else [])])
    print(f"[finflows] starting Airflow ({parts}; {executor} executor); logs in {log_dir}/", flush=True)
    db, finance = up_database(), up_finance_database()
    own = {"AIRFLOW_CONN_POSTGRES_FINANCE": stack.finance_connection(finance)}
    try:
        c = cluster.start(port, executor=executor, workers=workers, database=db, log_dir=log_dir, extra_env=own)
    except RuntimeError as e:
        print(f"[finflows] {e}", file=sys.stderr)
        return 1
    try:
        _announce(port, executor, db, finance, own)
        while not (dead := {n: p.returncode for n, p in c.procs.items() if p.poll() is not None}):
            time.sleep(1)
        print(f"[finflows] {', '.join(dead)} exited ({dead}); stopping the rest; logs in {log_dir}/", file=sys.stderr)
        return 1
    finally:
        cluster.stop(c)


def _announce(port: int, executor: str, db: str, finance: str, own: dict[str, str]) -> None:
    from devstack import cluster

    users = json.loads(passwords_file().read_text()) if passwords_file().exists() else {}
    login = (
        f"Airflow UI: http://localhost:{port}  login: admin / {users.get('admin')}"
        f"  (payment approver: treasurer / {users.get('treasurer')})"
    )
    login_file().write_text(login + "\n")
    login_file().chmod(0o600)
    print(f"[finflows] health: {json.dumps(health(port))}", flush=True)
    imported = import_connections(cluster.environment(port, executor, db, own))
    print(
        f"[finflows] {len(imported)} local connections are in Admin → Connections (the Test button is on);"
        " bank_health runs every 5 minutes from the start, so the finance monitor shows each bank",
        flush=True,
    )
    for line in seed_if_wanted(finance):
        print(f"[finflows] {line}", flush=True)
    print(
        f"[finflows] metadata database: PostgreSQL {db}, finance database: {finance}"
        " (make up's own; the tests and the demo use others)",
        flush=True,
    )
    print(
        "[finflows] the finance monitor (Browse → Finance monitor) is the treasurer's start page: today in"
        " Asia/Taipei, each decision waiting in Browse → Required Actions",
        flush=True,
    )
    print(f"\n[finflows] {login}\n[finflows] (also in {login_file()}; Ctrl-C or SIGTERM stops it)\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
