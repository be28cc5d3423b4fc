"""Load: many inputs at once, timed, and every one accounted for exactly once.

* 50 cash files (2,000 lines each) land in the bucket together; they are discovered as the DAG
  does and imported by 4 workers at once (each file: S3 → parse → Drive copy → one transaction);
  afterwards there must be 50 control rows SUCCESS, every line once in ``ifs.cashfile_line``,
  every line once as a payment or a suspense row, and nothing left under ``cashfiles/``;
* five banks with 5,000 pending payments each are paid by 3 workers at once (as the mapped task
  runs, ``max_active_tis_per_dagrun=3``): one file per bank, 25,000 payments uploaded, each in
  exactly one batch, one transfer row per file.

Both run against the local stack (``make bench``); the bench exits non-zero if anything is
missing or doubled.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.bank_payments import DAY, add_pending, pay_now  # noqa: E402  (the payments day and helpers)
from bench.common import measure, write_rows  # noqa: E402
from devstack import stack  # noqa: E402

FILES, LINES = 50, int(os.environ.get("BENCH_LOAD_LINES", "2000"))
BANKS, PAYMENTS = ("mega", "ctbc", "esun", "first", "taishin"), 5000
CASH_BUCKET = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")


def _names() -> list[str]:
    return [f"CashFile{dt.date(1901, 1, 1) + dt.timedelta(days=i):%Y%m%d}.dat" for i in range(FILES)]


def _purge_cash(conn) -> None:
    from devstack.fixtures import forget_cash_files

    forget_cash_files(conn, _names())


def cash_files() -> dict:
    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from devstack.fixtures import seed_rent_accounts
    from finflows import inbox
    from finflows.flows.cashfile_import import cashfile
    from finflows.google import DriveHook
    from tests.helpers.cash import KNOWN_ACCOUNTS, cash_file

    s3 = S3Hook(aws_conn_id="aws_finflows")
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        seed_rent_accounts(conn, KNOWN_ACCOUNTS)
        _purge_cash(conn)
    for i, name in enumerate(_names()):  # all land before any is read
        data = cash_file(LINES, dt.date(1901, 1, 1) + dt.timedelta(days=i), unknown=LINES // 10, seed=i)
        s3.load_bytes(data, key=f"cashfiles/{name}", bucket_name=CASH_BUCKET, replace=True)

    t0 = time.perf_counter()
    keys = cashfile.discover(s3, CASH_BUCKET, [])

    def one(key: str):
        return inbox.run(
            cashfile.CashFiles(
                DriveHook(gcp_conn_id="google_finflows"),
                os.environ.get("FINFLOWS_FINANCE_DRIVE_FOLDER", "finance-cashfiles"),
            ),
            key,
            bucket=CASH_BUCKET,
            run_id="bench_load",
            s3_hook=S3Hook(aws_conn_id="aws_finflows"),
            pg_hook=PostgresHook(postgres_conn_id="postgres_finance"),
        )

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(one, keys))
    secs = time.perf_counter() - t0

    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        controls, lines, raw, rows = conn.execute(
            """SELECT count(*) FILTER (WHERE status = 'SUCCESS'), coalesce(sum(line_count), 0),
                      (SELECT count(*) FROM ifs.cashfile_line l JOIN ops.file_control c ON c.id = l.file_id
                        WHERE c.flow = 'cashfile_import' AND c.file_name = ANY(%(n)s)),
                      (SELECT count(*) FROM ifs.cash_payment p JOIN ops.file_control c ON c.id = p.file_id
                        WHERE c.flow = 'cashfile_import' AND c.file_name = ANY(%(n)s))
                    + (SELECT count(*) FROM ifs.cash_suspense s JOIN ops.file_control c ON c.id = s.file_id
                        WHERE c.flow = 'cashfile_import' AND c.file_name = ANY(%(n)s))
               FROM ops.file_control WHERE flow = 'cashfile_import' AND file_name = ANY(%(n)s)""",
            {"n": _names()},
        ).fetchone()
        _purge_cash(conn)
    left = s3.list_keys(CASH_BUCKET, prefix="cashfiles/")
    expected = FILES * LINES
    ok = (len(keys), controls, lines, raw, rows, len(left)) == (FILES, FILES, expected, expected, expected, 0)
    if not ok or any(o.status != "IMPORTED" for o in outcomes):
        raise RuntimeError(
            f"cash files not accounted for: found {len(keys)} of {FILES}, {controls} imported, "
            f"{lines} lines counted, {raw} raw lines, {rows} payment/suspense rows of {expected}, "
            f"{len(left)} left in cashfiles/"
        )
    return {"secs": secs, "lines": expected}


def banks_at_once() -> dict:
    import psycopg

    from finflows.flows.banking import banks

    cfg = banks.load()
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        add_pending(
            conn,
            (
                (f"LOAD-{b}-{i:06d}", bank, "8220015", f"{b}{i:011d}", f"A{i:09d}", "陳大文", "貨款", 1000 + i, DAY)
                for b, bank in enumerate(BANKS)
                for i in range(PAYMENTS)
            ),
        )

    def one(bank: str) -> dict:
        with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
            return {"bank": bank, "deliveries": pay_now(conn, cfg, bank, "bench_load", attempts=3).deliveries}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(one, BANKS))
    secs = time.perf_counter() - t0

    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        uploaded, in_batches, batches, transfers = conn.execute(
            """SELECT count(*) FILTER (WHERE p.status = 'uploaded'), count(DISTINCT p.id) FILTER (WHERE p.batch_id IS NOT NULL),
                      count(DISTINCT p.batch_id), (SELECT count(*) FROM pay.transfer t WHERE t.batch_id IN
                          (SELECT batch_id FROM pay.payment WHERE reference LIKE 'LOAD-%%'))
               FROM pay.payment p WHERE p.reference LIKE 'LOAD-%%'"""
        ).fetchone()
    delivered = [(r["bank"], d["file_name"]) for r in runs for d in r["deliveries"] if d["outcome"] == "uploaded"]
    missing = [f"{b}/{n}" for b, n in delivered if not (stack.LOCAL / "sftp" / b / "upload" / n).exists()]
    total = len(BANKS) * PAYMENTS
    ok = (uploaded, in_batches, batches, transfers, sorted(b for b, _ in delivered)) == (
        total,
        total,
        len(BANKS),
        len(BANKS),
        sorted(BANKS),
    )
    if not ok or missing:
        raise RuntimeError(
            f"payments not accounted for: {uploaded}/{total} uploaded, {batches} batches, "
            f"{transfers} transfers, delivered {delivered}, not on the servers {missing}"
        )
    return {"secs": secs, "payments": total}


def purge_payments() -> None:
    import psycopg

    from devstack.fixtures import forget_orphan_uploads, forget_payments

    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        forget_payments(conn, "LOAD-")
        forget_orphan_uploads(conn)


def main() -> list[dict[str, str]]:
    purge_payments()
    _, cash_rss, cash = measure(cash_files)
    _, bank_rss, bank = measure(banks_at_once)
    purge_payments()
    print(
        f"cash files : {FILES} files, {cash['lines']:,} lines in {cash['secs']:.1f} s "
        f"({cash['lines'] / cash['secs']:,.0f} lines/s), peak RSS {cash_rss:.0f} MB; each accounted for once"
    )
    print(
        f"banks      : {len(BANKS)} x {PAYMENTS:,} payments in {bank['secs']:.1f} s "
        f"({bank['payments'] / bank['secs']:,.0f} payments/s), peak RSS {bank_rss:.0f} MB; each paid once"
    )
    rows = [
        {
            "figure": f"load: {FILES} cash files ({LINES:,} lines each) landing together, 4 workers",
            "value": f"{cash['secs']:.1f} s = {cash['lines'] / cash['secs']:,.0f} lines/s",
            "baseline": "every file imported once, every line once (checked)",
            "ratio": "—",
            "peak_rss": f"{cash_rss:.0f} MB",
            "target": "all accounted for",
        },
        {
            "figure": f"load: {len(BANKS)} banks x {PAYMENTS:,} payments, 3 banks at once",
            "value": f"{bank['secs']:.1f} s = {bank['payments'] / bank['secs']:,.0f} payments/s",
            "baseline": "one file per bank, every payment in one batch (checked)",
            "ratio": "—",
            "peak_rss": f"{bank_rss:.0f} MB",
            "target": "all accounted for",
        },
    ]
    write_rows("load", rows)
    return rows


if __name__ == "__main__":
    main()
