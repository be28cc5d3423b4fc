"""bank_payments: a 5,000-payment batch generated, encrypted and uploaded.

* generation: ``ach.write_achp01`` over 5,000 payments, repeated, in records/s (target ≥ 200,000);
* PGP: python-gnupg encrypting to the bank's key and signing with ours, beside the ``gpg`` command
  line doing the same to the same plaintext in the same keyring, alternating, median of each
  (target: within 1.3x of the command line);
* the whole bank step as the DAG runs it (``payments.pay_bank``: batch 5,000 pending payments from
  PostgreSQL under row locks, generate, encrypt, archive to S3, upload by SFTP and record), timed
  once, in a forked child for its peak RSS.

Runs against the local stack with its throwaway keys (``make bench``).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import measure, write_rows  # noqa: E402
from devstack import secrets, stack  # noqa: E402
from finflows import pgp  # noqa: E402
from finflows.flows.banking import banks, payments  # noqa: E402
from finflows.flows.banking import common as banking  # noqa: E402
from finflows.formats import ach  # noqa: E402

COUNT = 5000
REPEAT = int(os.environ.get("BENCH_ACH_REPEAT", "40"))
PGP_RUNS = int(os.environ.get("BENCH_PGP_RUNS", "9"))
BANK = "mega"
DAY = dt.date(2026, 11, 23)


def batch_payments() -> tuple[ach.Batch, list[ach.Payment]]:
    batch = ach.Batch(DAY, dt.time(6, 0), "0172026", "0100000000000001", "12345675")
    names = ["陳大文", "林小華", "ＡＢＣ貿易股份有限公司", "王美麗", "ACME TRADING CO LTD"]
    return batch, [
        ach.Payment(
            i, f"BENCH-{i:07d}", "8220015", f"{i:012d}", 1000 + i % 50000, f"A{i:09d}", names[i % 5], "貨款", "405"
        )
        for i in range(1, COUNT + 1)
    ]


def generation() -> tuple[float, bytes]:
    batch, pays = batch_payments()
    ach.write_achp01(batch, pays)  # warm
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        data = ach.write_achp01(batch, pays)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), data  # the median: this machine is shared and noisy


def pgp_side_by_side(plain: bytes) -> tuple[float, float, int, int]:
    keys = secrets.pgp_keys()
    ours, bank = keys["finflows"], keys[BANK]
    ours_t, cli_t = [], []
    with pgp.keyring() as ring, tempfile.TemporaryDirectory() as tmp:
        signer = ring.add(ours["secret"], ours["fingerprint"], "ours")
        recipient = ring.add(bank["public"], bank["fingerprint"], BANK)
        src, out = Path(tmp) / "plain.txt", Path(tmp) / "plain.txt.gpg"
        src.write_bytes(plain)
        cli = [
            "gpg",
            "--homedir",
            ring.home,
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            "--trust-model",
            "always",
            "--compress-algo",
            "zlib",
            "-r",
            recipient,
            "-u",
            signer,
            "--sign",
            "--encrypt",
            "-o",
            str(out),
            str(src),
        ]
        ring.encrypt_and_sign(plain, recipient, signer, ours["passphrase"])  # warm the agent
        for _ in range(PGP_RUNS):
            t0 = time.perf_counter()
            cipher = ring.encrypt_and_sign(plain, recipient, signer, ours["passphrase"])
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run(cli, input=ours["passphrase"].encode(), check=True, capture_output=True)
            cli_t.append(time.perf_counter() - t0)
        return statistics.median(ours_t), statistics.median(cli_t), len(cipher), out.stat().st_size


def add_pending(conn, rows) -> None:
    """Pending payments by COPY: rows of (reference, bank, payee_bank, payee_account, payee_id,
    payee_name, memo, amount, due_date)."""
    with conn.cursor().copy(
        "COPY pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo, amount, "
        "due_date) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def pay_now(conn, cfg, bank: str, run_id: str, attempts: int = 1) -> payments.BankRun:
    """One bank's bank_payments steps at 06:00 on DAY, with the hooks and keys the DAG tasks use:
    prepare (batch, generate, encrypt, archive), the approve step answered by a second person
    where the bank asks for one (a batch made by the run is never approved by its maker), upload."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from finflows import settings
    from finflows.flows.banking import approval

    now = dt.datetime.combine(DAY, dt.time(6), tzinfo=payments.TAIPEI)
    transport = payments.Transport(
        s3_hook=S3Hook(aws_conn_id="aws_finflows"),
        sftp_hook=banking.sftp(cfg.bank(bank)),
        archive_bucket=os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
        attempts=attempts,
        backoff=1,
    )
    with banking.encrypter(cfg, cfg.bank(bank)) as encrypt:
        run = payments.prepare_bank(
            conn, cfg=cfg, bank_id=bank, now=now, run_id=run_id, transport=transport, encrypt=encrypt
        )
        req = approval.request(
            conn, cfg.bank(bank), request_id=f"{run_id}/approve", run_id=run_id, now=now,
            margin=settings.approval_margin(),
        )  # fmt: skip
        if req is not None:
            approval.approve(conn, req.request_id, by="bench-approver", at=now, run_id=run_id)
        run.deliveries = payments.upload_bank(
            conn, cfg=cfg, bank_id=bank, now=now, run_id=run_id, transport=transport, encrypt=encrypt
        )
    return run


def whole_step() -> dict:
    """payments.pay_bank over 5,000 pending payments, as the DAG task runs it."""
    import psycopg

    cfg = banks.load()
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        add_pending(
            conn,
            (
                (f"BENCH-{i:07d}", BANK, "8220015", f"{i:012d}", f"A{i:09d}", "陳大文", "貨款", 1000 + i, DAY)
                for i in range(1, COUNT + 1)
            ),
        )
        t0 = time.perf_counter()
        run = pay_now(conn, cfg, BANK, "bench")
        secs = time.perf_counter() - t0
    [d] = run.deliveries
    if d["outcome"] != "uploaded" or d["payment_count"] != COUNT:
        raise RuntimeError(f"the benchmark batch was not delivered whole: {d}")
    return {"secs": secs, "file": d["file_name"]}


def purge() -> list[str]:
    import psycopg

    from devstack.fixtures import forget_payments

    with psycopg.connect(stack.pg_dsn(), autocommit=True) as conn:
        removed = forget_payments(conn, "BENCH-")
    for bank, name in removed:
        (stack.LOCAL / "sftp" / bank / "upload" / name).unlink(missing_ok=True)
    return [n for _, n in removed]


def main() -> list[dict[str, str]]:
    per_batch, plain = generation()
    rate = COUNT / per_batch
    t_ours, t_cli, n_ours, n_cli = pgp_side_by_side(plain)
    purge()
    _, step_rss, step = measure(whole_step)
    purge()
    print(
        f"generate   : {per_batch * 1000:6.1f} ms per {COUNT:,}-payment file ({len(plain):,} bytes) = {rate:,.0f} records/s"
    )
    print(
        f"PGP        : python-gnupg {t_ours * 1000:.0f} ms ({n_ours:,} bytes), gpg CLI {t_cli * 1000:.0f} ms "
        f"({n_cli:,} bytes): {t_ours / t_cli:.2f}x"
    )
    print(
        f"whole step : {step['secs']:.1f} s for {COUNT:,} payments ({COUNT / step['secs']:,.0f} payments/s), "
        f"peak RSS {step_rss:.0f} MB"
    )
    rows = [
        {
            "figure": f"ACHP01 generation, {COUNT:,}-payment batch (Big5, byte-exact), median of {REPEAT}",
            "value": f"{rate:,.0f} records/s",
            "baseline": "target 200,000 records/s",
            "ratio": f"{rate / 200_000:.2f}x the target",
            "peak_rss": "(in process)",
            "target": "≥ 200,000 records/s",
        },
        {
            "figure": f"PGP encrypt + sign of that file ({len(plain) / 1e6:.2f} MB), median of {PGP_RUNS}",
            "value": f"python-gnupg {t_ours * 1000:.0f} ms",
            "baseline": f"gpg command line, same keys and plaintext: {t_cli * 1000:.0f} ms",
            "ratio": f"{t_ours / t_cli:.2f}x the time",
            "peak_rss": "(gpg subprocess)",
            "target": "≤ 1.3x",
        },
        {
            "figure": f"bank_payments steps for one bank, {COUNT:,} payments (batch, generate, PGP, S3, approval by a second person, SFTP, audit)",
            "value": f"{step['secs']:.1f} s = {COUNT / step['secs']:,.0f} payments/s",
            "baseline": "—",
            "ratio": "—",
            "peak_rss": f"{step_rss:.0f} MB",
            "target": "—",
        },
    ]
    write_rows("bank_payments", rows)
    return rows


if __name__ == "__main__":
    main()
