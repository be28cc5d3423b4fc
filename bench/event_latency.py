"""cashfile_import, event-driven: S3 object created → DAG run created → file imported.

The real scheduler, triggerer and dag-processor (``airflow standalone`` on a PostgreSQL metadata
database of its own), the stack's S3 → SQS notifications and the asset watcher's SQS long poll. Files land one
at a time, ``BENCH_EVENT_GAP`` seconds apart (a cash file arrives on its own, not in a burst);
per file:

* run created: the run's ``queued_at`` (Airflow's clock) minus the moment the PUT returned;
* imported: ``ops.file_control.finished_at`` (PostgreSQL's clock, the same machine) minus that moment.

Targets (issue 19): p95 ≤ 5 s to the run, ≤ 20 s to the import, over 20 files.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import write_rows  # noqa: E402
from devstack import stack, standalone  # noqa: E402
from devstack.config import AIRFLOW_PG_USER  # noqa: E402
from devstack.fixtures import forget_cash_files, seed_rent_accounts  # noqa: E402

FILES = int(os.environ.get("BENCH_EVENT_FILES", "20"))
GAP = float(os.environ.get("BENCH_EVENT_GAP", "15"))
ACCOUNTS = [f"90000000{i:02d}" for i in range(10)]


def _api(port: int, method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def _cash_file(day: dt.date, lines: int = 20) -> bytes:
    from decimal import Decimal

    from finflows.formats.cashfile import format_record

    out = []
    for i in range(lines):
        out.append(
            format_record(
                rent_account=ACCOUNTS[i % 10],
                payment_source="CIVICAPAY",
                method="DD1",
                amount=Decimal(100 + i),
                paid_on=day,
                civica_code="07",
            )
            + "\r\n"
        )
    return "".join(out).encode()


def _percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def _unpause_when_listed(port: int, token: str) -> None:
    """Wait (5 minutes at most) for the api-server to list cashfile_import, then unpause it."""
    deadline = time.monotonic() + 300
    while True:
        try:
            _api(port, "GET", "/api/v2/dags/cashfile_import", token)
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    _api(port, "PATCH", "/api/v2/dags/cashfile_import", token, {"is_paused": False})
    time.sleep(20)  # the triggerer starts the watcher's long poll


def _land_and_time(port: int, token: str, pg, s3, bucket: str, days: list[dt.date], names: list[str]):
    """Land each file GAP seconds apart; wait for all to be imported; (event → run created,
    event → imported, /health latency in ms) per file, in landing order."""
    put_at: dict[str, dt.datetime] = {}
    for day, name in zip(days, names, strict=True):
        s3.load_bytes(_cash_file(day), key=f"cashfiles/{name}", bucket_name=bucket, replace=True)
        put_at[name] = dt.datetime.now(dt.UTC)
        time.sleep(GAP)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        rows = pg.execute(
            "SELECT file_name, finished_at, dag_run_id FROM ops.file_control WHERE flow = 'cashfile_import' "
            "AND file_name = ANY(%s) AND status = 'SUCCESS'",
            (names,),
        ).fetchall()
        if len(rows) == len(names):
            break
        time.sleep(2)
    else:
        raise SystemExit(f"only {len(rows)} of {len(names)} files imported within 600 s")
    # the finance monitor's /health answers from stored state (the latest checks and
    # circuits in PostgreSQL), never by probing a bank: measured on the same api-server
    health_ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        _api(port, "GET", "/finflows/api/health", token)
        health_ms.append((time.perf_counter() - t0) * 1000)
    to_run, to_import = [], []
    for name, finished_at, run_id in sorted(rows, key=lambda r: put_at[r[0]]):
        run = _api(port, "GET", f"/api/v2/dags/cashfile_import/dagRuns/{urllib.parse.quote(run_id, safe='')}", token)
        queued = dt.datetime.fromisoformat(run["queued_at"])
        to_run.append((queued - put_at[name]).total_seconds())
        to_import.append((finished_at - put_at[name]).total_seconds())
    return to_run, to_import, health_ms


def main() -> None:
    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    os.environ.update(stack.up())
    pg = psycopg.connect(stack.pg_dsn(), autocommit=True)
    seed_rent_accounts(pg, ACCOUNTS)
    bucket = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")
    s3 = S3Hook(aws_conn_id="aws_finflows")
    days = [dt.date(1902, 1, 1) + dt.timedelta(days=i) for i in range(FILES)]  # dates no real file has
    names = [f"CashFile{d:%Y%m%d}.dat" for d in days]
    forget_cash_files(pg, names)

    port = int(os.environ.get("BENCH_AIRFLOW_PORT", "8091"))
    meta = f"airflow_bench_{os.getpid()}"  # a fresh metadata database: no foreign run, queue or deadline
    stack.create_database(meta, AIRFLOW_PG_USER)
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as tmp, open(Path(tmp) / "standalone.log", "wb") as log:
        proc = standalone.start(
            port,
            log=log,
            extra_env={
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": stack.airflow_db_url(meta),
            },
        )
        try:
            password = json.loads(standalone.passwords_file().read_text())["admin"]
            token = _api(port, "POST", "/auth/token", body={"username": "admin", "password": password})["access_token"]
            _unpause_when_listed(port, token)
            to_run, to_import, health_ms = _land_and_time(port, token, pg, s3, bucket, days, names)
        finally:
            standalone.stop(proc, port)
            stack.drop_database(meta)
    forget_cash_files(pg, names)

    def fig(values: list[float]) -> str:
        return f"p50 {_percentile(values, 50):.1f} s, p95 {_percentile(values, 95):.1f} s, max {max(values):.1f} s"

    print(f"event → run created: {fig(to_run)}\nevent → imported: {fig(to_import)}")
    print(
        "per file, in landing order (run created / imported, s): "
        + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(to_run, to_import, strict=True))
    )
    write_rows(
        "event_latency",
        [
            {
                "figure": f"cash file landing in S3 → DAG run created, {FILES} files {GAP:.0f} s apart",
                "value": fig(to_run),
                "baseline": "S3 → SQS → asset watcher (long poll), real scheduler",
                "ratio": "",
                "peak_rss": "",
                "target": "p95 ≤ 5 s",
            },
            {
                "figure": f"cash file landing in S3 → imported (file_control SUCCESS), {FILES} files",
                "value": fig(to_import),
                "baseline": "standalone: LocalExecutor, event runs side by side (max_active_runs 4)",
                "ratio": "",
                "peak_rss": "",
                "target": "p95 ≤ 20 s",
            },
            {
                "figure": "finance monitor GET /finflows/api/health (stored state), 20 calls",
                "value": f"p50 {_percentile(health_ms, 50):.0f} ms, max {max(health_ms):.0f} ms",
                "baseline": "the same api-server, after the 20 imports",
                "ratio": "",
                "peak_rss": "",
                "target": "well under 1 s",
            },
        ],
    )


if __name__ == "__main__":
    main()
