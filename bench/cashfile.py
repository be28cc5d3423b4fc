"""cashfile_import: parse + validate + load a 1,000,000-line cash file, side by side with
(a) a bare ``psql \\copy`` of the same rows into tables made ``LIKE`` ours (same indexes, same
lz4 text column): the payments, the suspense rows and the file's text, in one transaction;
(b) the naive pandas way: ``read_fwf`` + ``to_sql``.

Ours is ``finflows.flows.cashfile_import.cashfile.load``: the reader validates and converts each record while COPY
streams it into ``ifs.cash_payment`` (unknown accounts spooled, then COPYed into suspense), then
the file's text. Ours and (a) run ``BENCH_REPS`` times each, interleaved, in forked children of
this one process (each child's peak RSS is its own); the ratio is of the medians. Ours also runs
on a 100,000-line file, to show memory does not grow with the file.
Targets (issue #20): ≤ 1.3x (a), ≥ 10x (b), ≤ 100 MB peak RSS and flat.
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

from bench.common import alternate, measure, median, psql_script, write_rows  # noqa: E402
from devstack import stack  # noqa: E402
from devstack.fixtures import forget_cash_files  # noqa: E402
from finflows.files import sha256_file  # noqa: E402
from finflows.formats.cashfile import LAYOUT, format_record, read_rows  # noqa: E402

LINES = int(os.environ.get("BENCH_CASHFILE_LINES", "1000000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
NAME = "CashFile19000101.dat"  # a date no real file has
SMALL = "CashFile19000102.dat"
KNOWN = 100_000  # rent accounts on file; a day's payments are spread over them
BARE = ("bench_cash_payment", "bench_cash_suspense", "bench_cash_text", "bench_cash_pandas")


def account(i: int) -> str:
    """The i-th record's rent account: one in eleven unknown (a suspense row), the others spread
    over the known accounts as a day's payments are (not a handful repeated: ten accounts
    repeated a million times made the (rent_account, paid_on) index twice as costly)."""
    return f"{9_100_000_000 + i % KNOWN}" if i % 11 == 10 else f"{9_000_000_000 + i * 7919 % KNOWN}"


VARIETY = "a week of payment dates, six methods, rents £40–£450 with arrears and refunds, 100,000 accounts"
METHODS = ("DD1", "CSH", "CHQ", "CRD", "BGC", "PO1")  # direct debit, cash, cheque, card, giro, post office


def make_file(path: Path, n: int) -> None:
    """A day's CivicaPay file as it varies: payments made over the week before (weekend takings
    arrive on Monday), six payment methods, two sources, rents in pence from £40 to £450 with a few
    arrears payments and refunds, accounts spread over 100,000 (one in eleven unknown). Seeded."""
    import random

    rng = random.Random(n)
    days = [dt.date(1900, 1, 1) - dt.timedelta(days=d) for d in range(7)]
    with path.open("w", newline="") as f:
        for i in range(n):
            pence = rng.randrange(4_000, 45_000)
            if i % 97 == 0:
                pence *= rng.randrange(2, 9)  # arrears paid at once
            if i % 1009 == 0:
                pence = -pence  # a refund
            f.write(
                format_record(
                    rent_account=account(i),
                    payment_source="CIVICAPAY" if i % 5 else "ALLPAY",
                    method=METHODS[rng.randrange(len(METHODS))],
                    amount=Decimal(pence) / 100,
                    paid_on=days[rng.randrange(7)],
                    civica_code=f"{rng.randrange(1, 20):02d}",
                )
                + "\r\n"
            )


def seed_accounts(conn) -> None:
    conn.execute(
        "INSERT INTO ifs.rent_account (payment_ref, rent_group) SELECT (9000000000 + i)::text, 'bench' "
        "FROM generate_series(0, %s) AS i ON CONFLICT DO NOTHING",
        (KNOWN - 1,),
    )


def forget_accounts(conn) -> None:
    conn.execute("DELETE FROM ifs.rent_account WHERE rent_group = 'bench'")


def bare_files(path: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """The rows ours stores, as COPY text files: payments, suspense, the file's text."""
    from finflows.formats.fixedwidth import copy_escape

    pay, sus, text = tmp / "payments.tsv", tmp / "suspense.tsv", tmp / "text.tsv"
    known = {f"{9_000_000_000 + i}" for i in range(KNOWN)}
    with path.open("rb") as f, pay.open("w") as p, sus.open("w") as s:
        for row in read_rows(f, path.name, prefix="0\t", known=known, other=lambda r: s.write(r + "\n")):
            p.write(row + "\n")
    text.write_text(f"0\t{copy_escape(path.read_text())}\n")
    return pay, sus, text


def ours(path: Path, name: str, sha256: str) -> int:
    """cashfile.load: what the flow does once the file is downloaded (the download hashes as it goes)."""
    import psycopg

    from finflows import files
    from finflows.flows.cashfile_import import cashfile

    with psycopg.connect(stack.pg_dsn()) as conn:
        decision, info = cashfile.load(conn, path, name, sha256, f"file://{path}", "bench")
    assert decision is files.Decision.NEW
    return info["records"]


def bare_copy(pay: Path, sus: Path, text: Path) -> int:
    cols = ", ".join(("file_id", "line_no", *LAYOUT.copy_columns))
    out = psql_script(
        stack.pg_dsn(),
        f"\\copy public.bench_cash_payment ({cols}) FROM '{pay}'\n"
        f"\\copy public.bench_cash_suspense ({cols}) FROM '{sus}'\n"
        f"\\copy public.bench_cash_text (file_id, body) FROM '{text}'\n"
        "SELECT (SELECT count(*) FROM public.bench_cash_payment)"
        " + (SELECT count(*) FROM public.bench_cash_suspense);\n",
    )
    return int(out.split()[-3])


def baseline_pandas(path: Path, indexed: bool) -> int:
    """read_fwf + to_sql: into a table made ``LIKE ifs.cash_payment`` (its keys and indexes; the
    line numbers the key needs added as a column), or into a table pandas creates (no index)."""
    import pandas as pd
    import sqlalchemy

    df = pd.read_fwf(
        path, colspecs=[(0, 10), (10, 30), (30, 33), (33, 43), (43, 53), (53, 55)], names=list(LAYOUT.names), dtype=str
    )
    df["amount"] = df["amount"].astype(float)
    df["paid_on"] = pd.to_datetime(df["paid_on"], format="%d/%m/%Y")
    engine = sqlalchemy.create_engine(stack.pg_dsn().replace("postgresql://", "postgresql+psycopg://"))
    if indexed:
        df.insert(0, "line_no", range(1, len(df) + 1))
        df.insert(0, "file_id", 0)
    df.to_sql("bench_cash_pandas" if indexed else "bench_cash_baseline", engine, if_exists="append", index=False)
    return len(df)


def reset(conn) -> None:
    forget_cash_files(conn, [NAME, SMALL])
    for table in BARE:
        conn.execute(f"TRUNCATE public.{table}")
    conn.execute("DROP TABLE IF EXISTS public.bench_cash_baseline")
    conn.execute("VACUUM ifs.cash_payment, ifs.cash_suspense, ifs.cashfile_text")  # no dead rows for the next run


def main() -> list[dict[str, str]]:
    import psycopg

    with tempfile.TemporaryDirectory() as tmp_name, psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        tmp = Path(tmp_name)
        path, small = tmp / NAME, tmp / SMALL
        make_file(path, LINES)
        make_file(small, max(LINES // 10, 1))
        pay, sus, text = bare_files(path, tmp)
        big_sha = sha256_file(path)
        print(f"{LINES:,} lines, {path.stat().st_size / 1e6:.0f} MB; {REPS} runs each, interleaved")
        seed_accounts(conn)
        for table, like in zip(
            BARE, ("ifs.cash_payment", "ifs.cash_suspense", "ifs.cashfile_text", "ifs.cash_payment"), strict=True
        ):
            conn.execute(f"DROP TABLE IF EXISTS public.{table}")
            conn.execute(f"CREATE TABLE public.{table} (LIKE {like} INCLUDING ALL)")
        try:
            reset(conn)
            _t, rss_small, n0 = measure(lambda: ours(small, SMALL, sha256_file(small)))
            reset(conn)
            runs = alternate(
                {"ours": lambda: ours(path, NAME, big_sha), "copy": lambda: bare_copy(pay, sus, text)},
                REPS,
                lambda: reset(conn),
            )
            t_base, rss_base, n2 = measure(lambda: baseline_pandas(path, indexed=True))
            t_bare, _rss, n3 = measure(lambda: baseline_pandas(path, indexed=False))
        finally:
            reset(conn)
            for table in BARE:
                conn.execute(f"DROP TABLE IF EXISTS public.{table}")
            forget_accounts(conn)
    assert n0 == max(LINES // 10, 1)
    assert n2 == n3 == LINES
    assert all(r[2] == LINES for r in runs["ours"] + runs["copy"])
    t_ours, t_copy = median([r[0] for r in runs["ours"]]), median([r[0] for r in runs["copy"]])
    rss_ours = max(r[1] for r in runs["ours"])
    print(
        "finflows   :",
        ", ".join(f"{r[0]:.2f} s" for r in runs["ours"]),
        f"peak RSS {rss_ours:.0f} MB ({LINES // 10:,} lines: {rss_small:.0f} MB)",
    )
    print("psql \\copy :", ", ".join(f"{r[0]:.2f} s" for r in runs["copy"]))
    print(f"pandas     : {t_base:.1f} s, peak RSS {rss_base:.0f} MB; into a table with no index {t_bare:.1f} s")
    print(f"ratios     : {t_ours / t_copy:.2f}x the time of psql \\copy; {t_base / t_ours:.1f}x faster than pandas")
    rows = [
        {
            "figure": f"cash file import vs bare COPY, {LINES:,} lines ({VARIETY})",
            "value": f"{t_ours:.2f} s = {LINES / t_ours:,.0f} rows/s (median of {REPS})",
            "baseline": f"psql \\copy of the same rows and text, same tables and indexes: {t_copy:.2f} s",
            "ratio": f"{t_ours / t_copy:.2f}x the time",
            "peak_rss": f"{rss_ours:.0f} MB ({rss_small:.0f} MB at {LINES // 10:,})",
            "target": "≤ 1.1x (issue #29), ≤ 100 MB and flat",
        },
        {
            "figure": f"cash file import vs pandas, {LINES:,} lines ({VARIETY})",
            "value": f"{LINES / t_ours:,.0f} rows/s",
            "baseline": f"read_fwf + to_sql into a table LIKE ifs.cash_payment: {LINES / t_base:,.0f} rows/s "
            f"(RSS {rss_base:.0f} MB); into a table with no index: {LINES / t_bare:,.0f} rows/s "
            f"({t_bare / t_ours:.1f}x)",
            "ratio": f"{t_base / t_ours:.1f}x",
            "peak_rss": f"{rss_ours:.0f} MB",
            "target": "≥ 10x",
        },
    ]
    write_rows("cashfile", rows)
    return rows


if __name__ == "__main__":
    main()
