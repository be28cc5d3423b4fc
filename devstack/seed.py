"""The sample data of include/samples/ put where each flow finds it, for a first look in `make up`
(asked at its prompt, or ``SEED=yes``) and for `make demo`: rent accounts for the cash files,
two cash files waiting in the cash-file bucket, a card statement on the acquirer's FTPS server,
and pending payments for mega and esun due today. Repeatable: what an earlier seed or demo made
from these samples is forgotten first. Local stack only (the stand-ins' buckets and folders)."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from devstack.config import LOCAL
from devstack.fixtures import (
    forget_cash_files,
    forget_orphan_uploads,
    forget_payments,
    forget_statement,
    seed_rent_accounts,
)

SAMPLES = Path(__file__).resolve().parents[1] / "include" / "samples"
RENT_ACCOUNTS = [f"90000000{i:02d}" for i in range(10)]  # the accounts the sample cash files pay
CASH_FILES = ("CashFile20260105.dat", "CashFile20260106.dat")  # the samples' names once normalised
STATEMENT = SAMPLES / "card" / "EXTRATO_UNICA_123456789_20261120_1"


def cash_files(pg, s3_client) -> list[Path]:
    """Rent accounts, and the sample cash files in the cash-file bucket's inbox."""
    seed_rent_accounts(pg, RENT_ACCOUNTS)
    forget_cash_files(pg, list(CASH_FILES))
    files = sorted((SAMPLES / "cashfile").glob("*.dat"))
    for f in files:
        s3_client.put_object(
            Bucket=os.environ["FINFLOWS_CASHFILE_BUCKET"], Key=f"cashfiles/{f.name}", Body=f.read_bytes()
        )
    return files


def statement(pg) -> Path:
    """The sample statement on the acquirer's FTPS server, where card_reconciliation fetches it."""
    forget_statement(pg, STATEMENT.name)
    target = LOCAL / "ftps" / "acquirer" / "Saida" / STATEMENT.name
    target.write_bytes(STATEMENT.read_bytes())
    return target


def payments(pg, day: dt.date | None = None) -> list[dict]:
    """The sample payments (references DEMO-…), pending and due ``day`` (today in Taipei)."""
    day = day or dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
    for bank, name in forget_payments(pg, "DEMO-"):
        (LOCAL / "sftp" / bank / "upload" / name).unlink(missing_ok=True)
    forget_orphan_uploads(pg)  # e.g. left by `make test`
    rows = list(csv.DictReader((SAMPLES / "banking" / "payments.csv").open(encoding="utf-8")))
    for r in rows:
        pg.execute(
            """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                        txn_code, amount, due_date) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)""",
            (
                r["reference"],
                r["bank"],
                r["payee_bank"],
                r["payee_account"],
                r["payee_id"],
                r["payee_name"],
                r["memo"],
                r["txn_code"] or None,
                int(r["amount"]),
                day,
            ),
        )
    return rows


def sample_data(pg, s3_client) -> list[str]:
    """Everything above; returns what there is to try, a line each."""
    files = cash_files(pg, s3_client)
    statement(pg)
    rows = payments(pg)
    banks = sorted({r["bank"] for r in rows})
    return [
        f"cashfile_import: {len(files)} sample cash file(s) wait in the bucket; unpause the DAG and its asset "
        "watcher triggers a run (rent accounts are seeded, so they load as payments, not suspense)",
        f"card_reconciliation: {STATEMENT.name} waits on the acquirer's FTPS server; trigger the DAG",
        f"bank_payments: {len(rows)} pending payment(s) for {' and '.join(banks)} due today; trigger the DAG with "
        "banks [all] and approve mega's file as treasurer in Required Actions",
    ]


def wanted(interactive: bool) -> bool:
    """``SEED=yes|no`` decides; otherwise ask on a terminal, and do nothing without one."""
    choice = os.environ.get("SEED", "").strip().lower()
    if choice in ("yes", "y", "1", "true"):
        return True
    if choice in ("no", "n", "0", "false") or not interactive:
        return False
    answer = input("[finflows] put the sample data where the flows find it (cash files, a statement, payments)? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
