"""history: what a day's work costs with 0, 1 and 3 years of business behind it.

A scratch database (``finflows_history`` on the local PostgreSQL, every migration applied) gets
the same "today" at each size: pending payments for every bank, today's uploaded batches with
their events, return files and health checks. Then years of business are added straight by SQL
(the state machine's triggers off while the past is written, as a restore would): per business
day and bank one batch of ``BENCH_HISTORY_PAYMENTS`` payments (the seeds' volume is 5,000; 1,000
by default here, which keeps the run under half an hour on two cores), each with its four status
events, settled or returned (1%); one return file a bank a day (a line per payment for banks whose
files list every item, returned items only for the others); one transfer per batch; a health check
every 5 minutes per bank, every day.

Each day-of-work query is timed at each size (median of ``BENCH_HISTORY_REPS``; the ones that
write run in a transaction rolled back each time, so every repetition does the same work): the
daily report, settling unreturned payments, the monitor's health, dashboard and transfers,
batching 5 banks' pending payments (duplicate check included), matching return lines, and the
file-control decision. The figure is the 3-year time against the empty database's, in one run.
Last, the retention DAG's payments step removes the oldest year (exported to the archive bucket
first) while batching runs again and again beside it: its median beside retention against quiet.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import fresh_database, scratch_dsn, write_rows  # noqa: E402
from devstack import stack  # noqa: E402

DB = "finflows_history"
PER_BANK_DAY = int(os.environ.get("BENCH_HISTORY_PAYMENTS", "1000"))
REPS = int(os.environ.get("BENCH_HISTORY_REPS", "7"))
TAIPEI = ZoneInfo("Asia/Taipei")
TODAY = dt.date(2026, 11, 30)  # a Monday
NOW = dt.datetime.combine(TODAY, dt.time(19), tzinfo=TAIPEI)
PENDING_TODAY = 200  # per bank, waiting for today's batching


def dsn() -> str:
    return scratch_dsn(DB)


def _triggers(conn, on: bool) -> None:
    for table in ("pay.payment", "pay.batch", "pay.payment_event", "pay.return_line", "pay.transfer"):
        conn.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER USER")


def add_business(conn, first: dt.date, last: dt.date, banks: list[tuple[str, bool]], per_day: int, tag: str) -> None:
    """Business days ``first``..``last`` (weekdays) of every bank, straight by SQL. ``banks``: (id,
    lists every item in its return files)."""
    ids = [b for b, _ in banks]
    listing = [b for b, every in banks if every]
    p = {"first": first, "last": last, "banks": ids, "n": per_day, "tag": tag, "listing": listing}
    _triggers(conn, on=False)
    conn.execute(
        """INSERT INTO pay.batch (bank, processing_date, batch_no, file_name, file_format, status, payment_count,
                                  total_amount, created_at, uploaded_at, approval, approval_by, approval_at)
           SELECT b, g.d::date, 1, %(tag)s || '_' || b || '_' || to_char(g.d, 'YYYYMMDD') || '.txt', 'achp01',
                  'uploaded', %(n)s, %(n)s * 1500, (g.d::date + time '06:00') AT TIME ZONE 'Asia/Taipei',
                  (g.d::date + time '06:05') AT TIME ZONE 'Asia/Taipei', 'approved', 'treasurer',
                  (g.d::date + time '06:02') AT TIME ZONE 'Asia/Taipei'
             FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS g(d),
                  unnest(%(banks)s::text[]) AS b
            WHERE extract(isodow FROM g.d) < 6""",
        p,
    )
    conn.execute(
        """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo, amount,
                                    due_date, status, batch_id, seq, value_date, return_reason, created_at)
           SELECT %(tag)s || to_char(b.processing_date, 'YYMMDD') || left(b.bank, 2) || lpad(i::text, 5, '0'),
                  b.bank, '0081005', lpad((b.id * 100000 + i)::text, 12, '0'), 'A' || lpad(i::text, 9, '0'),
                  '王小明', '貨款', 1000 + (b.id * 7919 + i) %% 50000, b.processing_date,
                  CASE WHEN i %% 100 = 0 THEN 'returned' ELSE 'settled' END, b.id, i, b.processing_date,
                  CASE WHEN i %% 100 = 0 THEN '04' END, b.created_at - interval '1 day'
             FROM pay.batch b, generate_series(1, %(n)s) AS i
            WHERE b.processing_date BETWEEN %(first)s AND %(last)s AND b.file_name LIKE %(tag)s || '\\_%%'""",
        p,
    )
    conn.execute(
        """INSERT INTO pay.payment_event (payment_id, from_status, to_status, batch_id, detail, dag_run_id, at)
           SELECT p.id, e.f, e.t, CASE WHEN e.t <> 'pending' THEN p.batch_id END,
                  CASE WHEN e.t = 'settled' AND NOT p.bank = ANY(%(listing)s)
                       THEN 'settled: no return within 2 business day(s)'
                       WHEN e.t = 'settled' THEN 'settled by the bank' END,
                  'history', p.created_at + e.after
             FROM pay.payment p CROSS JOIN LATERAL (VALUES
                  (NULL, 'pending', interval '0'), ('pending', 'batched', interval '1 day'),
                  ('batched', 'uploaded', interval '1 day 5 minutes'), ('uploaded', p.status, interval '4 days')
             ) AS e(f, t, after)
            WHERE p.value_date BETWEEN %(first)s AND %(last)s AND p.reference LIKE %(tag)s || '%%'""",
        p,
    )
    conn.execute(
        """INSERT INTO pay.transfer (batch_id, bank, file_name, remote_path, plain_sha256, cipher_sha256, bytes,
                                     payment_count, total_amount, attempts, outcome, started_at, finished_at, dag_run_id)
           SELECT id, bank, file_name, '/upload/' || file_name, repeat('0', 64), repeat('0', 64), 250 * payment_count,
                  payment_count, total_amount, 1, 'uploaded', uploaded_at - interval '1 minute', uploaded_at, 'history'
             FROM pay.batch WHERE processing_date BETWEEN %(first)s AND %(last)s AND file_name LIKE %(tag)s || '\\_%%'""",
        p,
    )
    conn.execute(
        """INSERT INTO ops.file_control (flow, file_name, sha256, status, row_count, dag_run_id, started_at, finished_at)
           SELECT 'bank_reconciliation', bank || '/' || %(tag)s || '_REC_' || to_char(processing_date, 'YYYYMMDD'),
                  repeat('0', 64), 'SUCCESS', payment_count, 'history', uploaded_at + interval '1 day',
                  uploaded_at + interval '1 day 1 minute'
             FROM pay.batch WHERE processing_date BETWEEN %(first)s AND %(last)s AND file_name LIKE %(tag)s || '\\_%%'""",
        p,
    )
    conn.execute(
        """INSERT INTO pay.return_line (file_id, bank, line, reference, payment_id, batch_id, outcome, return_reason,
                                        amount, original_date, original_seq)
           WITH m AS MATERIALIZED (
               SELECT b.id AS batch_id, f.id AS file_id FROM pay.batch b
               JOIN ops.file_control f ON f.flow = 'bank_reconciliation'
                    AND f.file_name = b.bank || '/' || %(tag)s || '_REC_' || to_char(b.processing_date, 'YYYYMMDD')
               WHERE b.processing_date BETWEEN %(first)s AND %(last)s AND b.file_name LIKE %(tag)s || '\\_%%')
           SELECT m.file_id, p.bank, p.seq, p.reference, p.id, p.batch_id, p.status, p.return_reason, p.amount,
                  p.value_date, p.seq
             FROM m JOIN pay.payment p ON p.batch_id = m.batch_id
            WHERE p.bank = ANY(%(listing)s) OR p.status = 'returned'""",
        p,
    )
    conn.execute(
        """INSERT INTO pay.health_check (bank, checked_at, ok, latency_ms, circuit, dag_run_id)
           SELECT b, t, (extract(epoch FROM t)::bigint / 300) %% 97 <> 0, 80 + (extract(epoch FROM t)::bigint / 300) %% 40,
                  'closed', 'history'
             FROM unnest(%(banks)s::text[]) AS b,
                  generate_series((%(first)s::date)::timestamptz, (%(last)s::date + 1)::timestamptz - interval '5 minutes',
                                  interval '5 minutes') AS t""",
        p,
    )
    _triggers(conn, on=True)
    conn.execute("ANALYZE")


def add_today(conn, banks: list[str]) -> None:
    """Today's own work, the same at every size: each bank's pending payments (batched by the
    benchmark, rolled back each time)."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo, amount, due_date) "
            "FROM STDIN"
        ) as copy,
    ):
        for n, b in enumerate(banks, start=1):  # a payee of one bank only: nothing looks like a duplicate
            for i in range(PENDING_TODAY):
                row = (f"T{b[:3]}{i:06d}", b, "8220015", f"9{n}{i:010d}", f"T{i:09d}", "林小華", "貨款", 500 + i, TODAY)
                copy.write_row(row)


def timed(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def batching(conn, cfg) -> None:
    """bank_payments' batching of every bank's pending payments today, rolled back (the same work
    each time it runs)."""
    from finflows.flows.banking import payments

    with conn.transaction(force_rollback=True):
        for b in cfg.banks:
            payments.make_batches(conn, cfg, b, NOW.replace(hour=6), "bench-history")


def day_of_work(conn, cfg) -> dict[str, float]:
    """Each day-of-work query, ms (median). Writers run in a transaction that is rolled back."""
    from finflows import files, monitor
    from finflows.flows.banking import daily_report, reconciliation

    ids = list(cfg.banks)
    half_open = dt.timedelta(minutes=5)
    return_window = next(b for b in cfg.banks.values() if not b.success_code)

    def rolled_back(fn: Callable[[], object]) -> Callable[[], None]:
        def go() -> None:
            with conn.transaction(force_rollback=True):
                fn()

        return go

    def matching() -> None:  # bank_reconciliation's own matching of a return line to our payment
        bank = cfg.banks[ids[0]]
        with conn.cursor() as cur:
            for seq in range(1, 101):
                line = {
                    "original_date": TODAY - dt.timedelta(days=3),
                    "original_seq": seq,
                    "reference": None,
                    "amount": 1000,
                    "account": "0",
                    "reason": "04",
                }
                reconciliation._match(cur, bank, line)

    def decision() -> None:
        with conn.cursor() as cur:
            for n in range(20):
                files.decide(files.lock_and_read(cur, "bank_reconciliation", f"mega/REC_{n}"), "0" * 64)

    return {
        "daily report (finance_daily_report's gather)": timed(
            lambda: daily_report.gather(conn, TODAY, ids, NOW, half_open)
        ),
        f"settle unreturned ({return_window.id}, every 30 min)": timed(
            rolled_back(lambda: reconciliation.settle_unreturned(conn, return_window, TODAY, "bench"))
        ),
        "monitor /health": timed(lambda: monitor.health(conn, ids, NOW, half_open)),
        "monitor dashboard (7 days)": timed(lambda: monitor.dashboard(conn, 7, NOW)),
        "monitor transfers (7 days)": timed(lambda: monitor.transfers(conn, 7, NOW)),
        f"batching {len(ids)} banks' pending payments ({PENDING_TODAY} each, duplicate check)": timed(
            lambda: batching(conn, cfg)
        ),
        "matching 100 return lines": timed(rolled_back(matching)),
        "file-control decision (20 files)": timed(rolled_back(decision)),
    }


def main() -> list[dict[str, str]]:
    import psycopg

    from finflows.flows.banking import banks

    fresh_database(DB)
    cfg = banks.load()
    bank_list = [(b.id, bool(b.success_code)) for b in cfg.banks.values()]
    at: dict[int, dict[str, float]] = {}
    sizes: dict[int, int] = {}
    with psycopg.connect(dsn(), autocommit=True) as conn:
        add_today(conn, list(cfg.banks))
        # today's morning batch, three days back (matched by the return lines), as a day of history
        add_business(conn, TODAY - dt.timedelta(days=7), TODAY - dt.timedelta(days=1), bank_list, PER_BANK_DAY, "W")
        conn.execute("ANALYZE")
        for years in (0, 1, 3):
            done = max(sizes) if sizes else 0
            for y in range(done, years):
                t0 = time.perf_counter()
                end = TODAY - dt.timedelta(days=8 + 365 * y)
                add_business(conn, end - dt.timedelta(days=364), end, bank_list, PER_BANK_DAY, f"Y{y}")
                print(f"history: year {y + 1} added in {time.perf_counter() - t0:.0f} s", flush=True)
            sizes[years] = conn.execute("SELECT count(*) FROM pay.payment").fetchone()[0]
            at[years] = day_of_work(conn, cfg)
            for name, ms in at[years].items():
                print(f"{years} year(s) ({sizes[years]:>10,} payments)  {name:<75} {ms:9.2f} ms", flush=True)
        events = conn.execute("SELECT count(*) FROM pay.payment_event").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        beside = retention_beside_batching(conn, cfg)
    stack.drop_database(DB)
    print(f"3 years: {sizes[3]:,} payments, {events:,} payment events, database {size}")
    rows = [
        {
            "figure": f"day of work at 3 years of history ({sizes[3]:,} payments, {events:,} events, {size}): {name}",
            "value": f"{at[3][name]:.1f} ms (1 year: {at[1][name]:.1f} ms)",
            "baseline": f"{at[0][name]:.1f} ms, empty history",
            "ratio": f"{at[3][name] / at[0][name]:.2f}x",
            "peak_rss": "(database)",
            "target": "≤ 1.5x the empty database",
        }
        for name in at[0]
    ]
    rows.append(
        {
            "figure": (
                f"batching beside the retention DAG removing the oldest year ({beside['removed']:,} rows: payments, "
                f"events, return lines, in {beside['batches']} batches over {beside['secs']:.0f} s)"
            ),
            "value": f"{beside['busy']:.1f} ms (median of {beside['runs']})",
            "baseline": f"{beside['quiet']:.1f} ms, quiet",
            "ratio": f"{beside['busy'] / beside['quiet']:.2f}x",
            "peak_rss": "(database)",
            "target": "≤ 1.5x a quiet run",
        }
    )
    write_rows("history", rows)
    return rows


def retention_beside_batching(conn, cfg) -> dict:
    """The retention DAG's payments step (export to the archive bucket, then remove in batches)
    run on the oldest year while bank_payments' batching runs again and again beside it; the
    batching's median beside it against its median on a quiet database."""
    import threading

    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from finflows import settings
    from finflows.flows.retention import policy, retention

    quiet = timed(lambda: batching(conn, cfg))
    rules = policy.load()
    # "now" such that the policy's age reaches back to just before the most recent two years
    now = NOW + rules.age("payments") - dt.timedelta(days=2 * 365 + 8)
    done: dict = {}

    def expire() -> None:
        t0 = time.perf_counter()
        with psycopg.connect(dsn(), autocommit=True) as own:
            out = retention.expire(
                own,
                S3Hook(aws_conn_id="aws_finflows"),
                settings.archive_bucket(),
                rules,
                "payments",
                now=now,
                run_id="bench-history",
            )
        done.update(secs=time.perf_counter() - t0, removed=out.rows_removed, batches=out.batches)

    worker = threading.Thread(target=expire)
    worker.start()
    busy = []
    while worker.is_alive():
        t0 = time.perf_counter()
        batching(conn, cfg)
        busy.append(time.perf_counter() - t0)
    worker.join()
    if not done or not busy:
        raise RuntimeError("the retention run failed or ended before one batching run")
    print(
        f"retention: {done['removed']:,} rows removed in {done['batches']} batches, {done['secs']:.0f} s; "
        f"batching beside it {statistics.median(busy) * 1000:.1f} ms (n={len(busy)}), quiet {quiet:.1f} ms",
        flush=True,
    )
    return done | {"busy": statistics.median(busy) * 1000, "quiet": quiet, "runs": len(busy)}


if __name__ == "__main__":
    main()
