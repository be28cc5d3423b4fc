"""cashfile_import: parse + validate + load 1,000,000 lines, beside a naive pandas baseline.

Ours: finflows.cashfile.load (streaming reader → COPY into staging → payments/suspense/raw lines,
one transaction). Baseline: ``pandas.read_fwf`` + ``DataFrame.to_sql`` of the same file into a
scratch table. Both run in forked children of this one process, one after the other, against
the local PostgreSQL; each child's peak RSS is its own. Targets: ≥ 10x throughput, < 200 MB.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import measure, write_rows  # noqa: E402
from devstack import stack  # noqa: E402
from devstack.fixtures import forget_cash_files, seed_rent_accounts  # noqa: E402
from finflows.formats.cashfile import format_record  # noqa: E402

LINES = int(os.environ.get("BENCH_CASHFILE_LINES", "1000000"))
NAME = "CashFile19000101.dat"  # a date no real file has


def make_file(path: Path, n: int) -> None:
    accounts = [f"90000000{i:02d}" for i in range(10)] + ["9999999999"]
    day = dt.date(1900, 1, 1)
    with path.open("w", newline="") as f:
        for i in range(n):
            f.write(
                format_record(
                    rent_account=accounts[i % 11],
                    payment_source="CIVICAPAY",
                    method="DD1",
                    amount=Decimal(i % 100000) / 100,
                    paid_on=day,
                    civica_code="07",
                )
                + "\r\n"
            )


def purge(conn) -> None:
    with conn.transaction():
        forget_cash_files(conn, [NAME])
        conn.execute("DROP TABLE IF EXISTS public.bench_cash_baseline")


def ours(path: Path) -> int:
    import psycopg

    from finflows import cashfile, files

    with psycopg.connect(stack.pg_dsn()) as conn:
        decision, info = cashfile.load(conn, path, NAME, files.sha256_file(path), f"file://{path}", "bench")
    assert decision is files.Decision.NEW
    return info["records"]


def baseline(path: Path) -> int:
    import pandas as pd
    import sqlalchemy

    df = pd.read_fwf(
        path,
        colspecs=[(0, 10), (10, 30), (30, 33), (33, 43), (43, 53), (53, 55)],
        names=["rent_account", "payment_source", "method", "amount", "paid_on", "civica_code"],
        dtype=str,
    )
    df["amount"] = df["amount"].astype(float)
    df["paid_on"] = pd.to_datetime(df["paid_on"], format="%d/%m/%Y")
    engine = sqlalchemy.create_engine(stack.pg_dsn().replace("postgresql://", "postgresql+psycopg://"))
    df.to_sql("bench_cash_baseline", engine, if_exists="append", index=False)
    return len(df)


def main() -> list[dict[str, str]]:
    import psycopg

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / NAME
        make_file(path, LINES)
        print(f"{LINES:,} lines, {path.stat().st_size / 1e6:.0f} MB")
        with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
            purge(conn)
            seed_rent_accounts(conn, [f"90000000{i:02d}" for i in range(10)])
            t_ours, rss_ours, n1 = measure(lambda: ours(path))
            t_base, rss_base, n2 = measure(lambda: baseline(path))
            purge(conn)
    assert n1 == n2 == LINES
    r_ours, r_base = LINES / t_ours, LINES / t_base
    print(f"finflows  : {t_ours:6.1f} s  {r_ours:10,.0f} rows/s  peak RSS {rss_ours:6.0f} MB")
    print(f"pandas    : {t_base:6.1f} s  {r_base:10,.0f} rows/s  peak RSS {rss_base:6.0f} MB")
    print(f"ratio     : {r_ours / r_base:.1f}x throughput")
    rows = [
        {
            "figure": f"cash file parse+validate+load, {LINES:,} lines",
            "value": f"{r_ours:,.0f} rows/s",
            "baseline": f"read_fwf + to_sql {r_base:,.0f} rows/s (RSS {rss_base:.0f} MB)",
            "ratio": f"{r_ours / r_base:.1f}x",
            "peak_rss": f"{rss_ours:.0f} MB",
            "target": "≥ 10x, < 200 MB",
        }
    ]
    write_rows("cashfile", rows)
    return rows


if __name__ == "__main__":
    main()
