"""card_reconciliation: parse + validate + load the largest statement the layout allows
(999,999 records), beside
(a) slicing every field into pandas and validating with ``DataFrame.apply``, and
(b) ``psql \\copy`` of the same rows into the same fact table (its indexes, whatever rows it holds).

Both run in a scratch database made fresh with every migration (``bench.common.fresh_database``):
the figures depend neither on what the test suite left in the stack's database (a statement of
150,000 records per run, which made the fact table's indexes larger than shared_buffers) nor on
an earlier benchmark.

Ours and (b) run ``BENCH_REPS`` times each, interleaved, in forked children of this one process
(each child's peak RSS is its own); the ratio is of the medians. Ours also runs at a tenth of
the size, to show its memory does not grow with the file. Targets (issue #20): ≤ 1.3x (b);
≥ 10x (a); ≤ 100 MB peak RSS, flat. The baseline (a) does not load at all: the comparison
favours it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import RESULTS, alternate, fresh_database, measure, median, scratch_dsn, write_rows  # noqa: E402
from devstack import stack  # noqa: E402
from finflows.files import sha256_file  # noqa: E402
from finflows.formats.card_statement import (  # noqa: E402
    BRANDS,
    CAPTURE_CHANNELS,
    COPY_COLUMNS,
    DETAIL,
    ENTRY_TYPES,
    PRODUCT_CODES,
    PRODUCT_TYPES,
    StatementStats,
    format_header,
    format_trailer,
    read_statement,
)
from tests.helpers.statements import detail  # noqa: E402

# the layout's sequence numbers have 6 digits: a file holds at most 999,999 records, header and
# trailer included, so the "1,000,000-record" benchmark file is the largest the format allows
RECORDS = int(os.environ.get("BENCH_CARD_RECORDS", "999997"))
DAY = dt.date(1900, 1, 1)  # no real statement has it
REPS = int(os.environ.get("BENCH_REPS", "3"))
DB = "finflows_bench_card"
BASELINE_FILE_ID = 0  # the bare COPY's rows: no control row has id 0


def name_for(n: int) -> str:
    return f"EXTRATO_UNICA_0_19000101_{n}"


VARIETY = os.environ.get("BENCH_CARD_VARIETY", "realistic")  # realistic | templates (the old file)
STORES = int(os.environ.get("BENCH_CARD_STORES", "1000"))  # distinct stores in the realistic file, 1 to 1,000,000
SPAN_DAYS = 62  # sale dates over two months, entry dates up to 60 days later


def _templates(varied: bool) -> list[str]:
    """997 detail records: amounts, entry types, brands, products and capture channels varying."""
    out = []
    brands, channels, codes = list(BRANDS), list(CAPTURE_CHANNELS), list(PRODUCT_CODES)
    for i in range(997):
        gross = Decimal(1000 + i * 37) / 100
        values = detail(
            2,
            amount=str(gross),
            txn_date=DAY + dt.timedelta(days=i % 28),
            entry_type=str(i % 3),
            brand=brands[i % len(brands)] if varied else ("001", "002", "007")[i % 3],
            capture_channel=channels[i % len(channels)] if varied else "25"[i % 2],
            store_id=f"0000000000{i % 50:05d}",
        )
        if varied:
            values |= {"product_type": "CDV"[i % 3], "product_code": codes[i % len(codes)]}
        out.append(DETAIL.format({"record_type": "CV", **values}))
    return out


def make_file(path: Path, n: int, variety: str = VARIETY, stores: int = STORES) -> None:
    """n detail records. ``templates``: 997 templates, 28 dates, 50 stores (caches love it).
    ``realistic``: as a large merchant's statement varies: a time per sale anywhere in the day,
    sale dates over two months and entry dates up to 60 days after, ``stores`` distinct stores,
    every brand, product and capture channel, unique NSUs and authorisation codes, every field
    filled (order code, original due date, origin NSU, the receivable operation's number,
    sequence, type and amount); amounts from 997 templates. Seeded: the same file every run."""
    import random

    if n + 2 > 999_999:
        raise ValueError("a statement holds at most 999,999 records (6-digit sequence numbers)")
    templates = _templates(varied=variety == "realistic")
    rng = random.Random(n)
    days = [(DAY + dt.timedelta(days=d)).strftime("%Y%m%d") for d in range(SPAN_DAYS + 61)]
    times = [f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}" for t in range(86_400)]
    with path.open("w", encoding="latin-1", newline="") as f:
        f.write(format_header(DAY) + "\r\n")
        for i in range(n):
            seq = i + 2
            if variety == "templates":
                t = templates[i % 997]
                f.write(f"{t[:17]}{seq:012d}{t[29:110]}{seq:012d}{t[122:390]}{seq:06d}{t[396:]}\r\n")
                continue
            t = templates[rng.randrange(997)]
            sale = rng.randrange(SPAN_DAYS)
            due = days[sale + 1 + rng.randrange(60)]
            f.write(
                f"CV{rng.randrange(stores):015d}{seq:012d}{days[sale]}{times[rng.randrange(86_400)]}{t[43]}"
                f"{due}{t[52:110]}{seq:012d}{t[122:175]}A{seq:011d}{t[187:272]}"
                # every field filled, as acquirers fill them: an order code, the original due date, the
                # origin NSU and the receivable operation (number, sequence, type, amount)
                f"{f'PED-{rng.randrange(10**12):012d}/{seq}':<30}{t[302:337]}{due}{t[345:347]}"
                f"{rng.randrange(10**6):06d}{t[353:356]}{rng.randrange(10**20):020d}{rng.randrange(1, 13):02d}"
                f"{'CGPRAFEU'[rng.randrange(8)]}{t[65:76]}{seq:06d}{t[396:]}\r\n"
            )
        f.write(format_trailer(n + 2) + "\r\n")


def describe() -> str:
    if VARIETY == "templates":
        return "997 templates, 28 dates, 50 stores"
    return (
        f"a time per sale over the day, sale dates over {SPAN_DAYS} days, {STORES:,} stores, every brand, product "
        "and capture channel, unique NSUs and authorisation codes, every field filled"
    )


def dsn() -> str:
    return scratch_dsn(DB)


def purge(conn, names: list[str]) -> None:
    """Remove what ours and the bare COPY loaded (the dimensions stay, as in production)."""
    with conn.transaction():
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM ops.file_control WHERE flow = 'card_reconciliation' AND file_name = ANY(%s)", (names,)
            ).fetchall()
        ]
        conn.execute("DELETE FROM card.fact_transaction WHERE file_id = ANY(%s)", ([*ids, BASELINE_FILE_ID],))
        conn.execute("DELETE FROM ops.file_event WHERE flow = 'card_reconciliation' AND file_name = ANY(%s)", (names,))
        conn.execute("DELETE FROM ops.file_control WHERE id = ANY(%s)", (ids,))
    conn.execute("VACUUM card.fact_transaction")  # no dead rows for the next run


def ours(path: Path, name: str, sha256: str) -> int:
    """card.load: what the flow does once the file is downloaded (the download hashes as it goes)."""
    import psycopg

    from finflows import files
    from finflows.flows.card_reconciliation import card

    with psycopg.connect(dsn(), autocommit=True) as conn:
        decision, info = card.load(conn, path, name, sha256, f"file://{path}", "bench")
    assert decision is files.Decision.NEW
    return info["records"]


def baseline_pandas(path: Path) -> int:
    """Slice every field into pandas columns, then validate each row with apply (no load)."""
    import pandas as pd

    with path.open(encoding="latin-1") as f:
        lines = pd.Series([line.rstrip("\r\n") for line in f][1:-1])
    df = pd.DataFrame({fl.name: lines.str.slice(fl.slice.start, fl.slice.stop) for fl in DETAIL.fields})
    digits = [fl.name for fl in DETAIL.fields if type(fl.codec).__name__ in ("Digits", "ImpliedDecimal")]

    def validate(row) -> bool:
        for col in digits:
            if not row[col].isdigit():
                raise ValueError(f"{col}: {row[col]!r}")
        for col in ("txn_date", "entry_date"):
            dt.datetime.strptime(row[col], "%Y%m%d")
        dt.datetime.strptime(row["txn_time"], "%H%M%S")
        if row["brand"] not in BRANDS or row["entry_type"] not in ENTRY_TYPES:
            raise ValueError("domain")
        if row["product_type"] not in PRODUCT_TYPES or row["capture_channel"] not in CAPTURE_CHANNELS:
            raise ValueError("domain")
        if "*" not in row["card"]:
            raise ValueError("card")
        return True

    ok = df.apply(validate, axis=1)
    for col in ("gross", "discount", "net"):
        df[col] = df[col].astype("int64") / 100
    return int(ok.sum())


def psql_copy(rows_file: Path) -> int:
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    cols = ", ".join(("file_id", *COPY_COLUMNS))
    out = subprocess.run(
        [
            psql,
            dsn(),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"\\copy card.fact_transaction ({cols}) FROM '{rows_file}'",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.split()[-1])


def main() -> list[dict[str, str]]:
    import psycopg

    small = max(RECORDS // 10, 1)
    names = [name_for(1), name_for(2)]
    with tempfile.TemporaryDirectory() as tmp:
        big_path, small_path, rows_file = Path(tmp) / name_for(1), Path(tmp) / name_for(2), Path(tmp) / "rows.tsv"
        t0 = time.perf_counter()
        make_file(big_path, RECORDS)
        make_file(small_path, small)
        print(
            f"{RECORDS:,} records, {big_path.stat().st_size / 1e6:.0f} MB (made in {time.perf_counter() - t0:.0f} s; "
            f"variety: {describe()}); {REPS} runs each, interleaved"
        )
        big_sha = sha256_file(big_path)
        with rows_file.open("w") as out, big_path.open("rb") as f:
            for row in read_statement(f, big_path.name, StatementStats()):
                out.write(f"{BASELINE_FILE_ID}\t{row}\n")
        fresh_database(DB)
        with psycopg.connect(dsn(), autocommit=True) as conn:
            try:
                purge(conn, names)
                _t_small, rss_small, n0 = measure(lambda: ours(small_path, name_for(2), sha256_file(small_path)))
                purge(conn, names)
                runs = alternate(
                    {"ours": lambda: ours(big_path, name_for(1), big_sha), "copy": lambda: psql_copy(rows_file)},
                    REPS,
                    lambda: purge(conn, names),
                )
                t_base, rss_base, n2 = measure(lambda: baseline_pandas(big_path))
            finally:
                purge(conn, names)
        stack.drop_database(DB)
    assert n2 == RECORDS
    assert n0 == small
    assert all(r[2] == RECORDS for r in runs["ours"] + runs["copy"])
    t_ours, t_copy = median([r[0] for r in runs["ours"]]), median([r[0] for r in runs["copy"]])
    rss_ours = max(r[1] for r in runs["ours"])
    r_ours, r_base = RECORDS / t_ours, RECORDS / t_base
    print(
        "finflows   :",
        ", ".join(f"{r[0]:.2f} s" for r in runs["ours"]),
        f"peak RSS {rss_ours:.0f} MB ({small:,} records: {rss_small:.0f} MB)",
    )
    print("psql \\copy :", ", ".join(f"{r[0]:.2f} s" for r in runs["copy"]))
    print(f"pandas     : {t_base:6.1f} s  {r_base:10,.0f} rows/s  peak RSS {rss_base:6.0f} MB (no load)")
    print(f"ratios     : {r_ours / r_base:.1f}x pandas; {t_ours / t_copy:.2f}x the time of psql \\copy")
    rows = [
        {
            "figure": f"card statement parse+validate+load, {RECORDS + 2:,} records ({describe()})",
            "value": f"{r_ours:,.0f} rows/s",
            "baseline": f"pandas slice + apply validation, no load: {r_base:,.0f} rows/s (RSS {rss_base:.0f} MB)",
            "ratio": f"{r_ours / r_base:.1f}x",
            "peak_rss": f"{rss_ours:.0f} MB ({rss_small:.0f} MB at {small:,})",
            "target": "≥ 10x, ≤ 100 MB and flat",
        },
        {
            "figure": f"card statement load vs bare COPY, {RECORDS + 2:,} records ({describe()})",
            "value": f"{t_ours:.2f} s (parse + validate + load, median of {REPS})",
            "baseline": f"psql \\copy of the same rows into the same table: {t_copy:.2f} s",
            "ratio": f"{t_ours / t_copy:.2f}x the time",
            "peak_rss": f"{rss_ours:.0f} MB",
            # the 1.1x target is the realistic file's; a million stores is the memory stress (its
            # loader writes a million dimension rows the bare COPY does not)
            "target": "≤ 1.1x (issue #29)" if STORES <= 1000 else "— (memory stress; ≤ 100 MB above)",
        },
    ]
    # the other store counts' rows stay (BENCH_CARD_STORES=1000000 makes the many-stores pair)
    kept = [r for r in _stored() if f" {STORES:,} stores" not in r["figure"]]
    write_rows("card_statement", kept + rows)
    return rows


def _stored() -> list[dict[str, str]]:
    import json

    path = RESULTS / "card_statement.json"
    return json.loads(path.read_text()) if path.exists() else []


if __name__ == "__main__":
    main()
