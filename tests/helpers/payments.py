"""Payments for tests: rows in pay.payment, the bank side's keys, files on the banks' SFTP."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from pathlib import Path

_n = itertools.count(1)


def clean(pg) -> None:
    """No payment state from an earlier test: each run pays every bank's pending payments."""
    pg.execute("TRUNCATE pay.payment_event, pay.transfer, pay.transfer_retry, pay.payment, pay.batch RESTART IDENTITY")


def add(pg, bank: str, count: int = 1, *, due: dt.date, name: str = "王小明", amount: int | None = None,
        memo: str = "貨款", payee_bank: str = "8220901", ref_prefix: str | None = None) -> list[str]:  # fmt: skip
    """Insert ``count`` pending payments; returns their references (unique per call)."""
    prefix = ref_prefix or f"P{uuid.uuid4().hex[:8].upper()}"
    refs = []
    with pg.cursor() as cur:
        for i in range(count):
            ref = f"{prefix}-{i:05d}"
            cur.execute(
                """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                            amount, due_date)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (ref, bank, payee_bank, f"{next(_n):012d}", f"A{i:09d}", name, memo,
                 amount if amount is not None else 1000 + i, due),
            )  # fmt: skip
            refs.append(ref)
    return refs


def statuses(pg, refs: list[str]) -> dict[str, str]:
    rows = pg.execute("SELECT reference, status FROM pay.payment WHERE reference = ANY(%s)", (refs,)).fetchall()
    return dict(rows)


def bank_keys(bank: str) -> dict:
    from devstack import secrets

    keys = secrets.pgp_keys()
    return {"bank": keys[bank], "ours": keys["finflows"]}


def decrypt_as_bank(bank: str, data: bytes) -> bytes:
    """What the bank does: decrypt with its key, and insist on our good signature."""
    from finflows import pgp

    keys = bank_keys(bank)
    with pgp.keyring() as ring:
        ring.add(keys["bank"]["secret"], keys["bank"]["fingerprint"], f"{bank} secret key")
        ring.add(keys["ours"]["public"], keys["ours"]["fingerprint"], "our public key")
        return ring.decrypt_and_verify(data, keys["ours"]["fingerprint"], None)


def uploaded(local_dir: Path, bank: str) -> dict[str, bytes]:
    """Files in the bank's SFTP upload directory, by name."""
    return {p.name: p.read_bytes() for p in sorted((local_dir / "sftp" / bank / "upload").iterdir())}


def clear_uploads(local_dir: Path) -> None:
    from devstack.config import BANKS

    for bank in BANKS:
        for p in (local_dir / "sftp" / bank / "upload").iterdir():
            p.unlink()
