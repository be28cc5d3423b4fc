"""The three questions a person decides, staged in the finance database as the flows leave them: a
batch given up by the retry queue, an uncertain delivery, a payment held as a possible duplicate;
each made or held by a named user's run (the maker, who may not decide it)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from zoneinfo import ZoneInfo

from tests.helpers import payments as pay

TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


def at(hh: int, mm: int, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=TAIPEI)


@contextlib.contextmanager
def _transport(cfg, bank: str):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    from finflows.flows.banking import common, payments

    with common.encrypter(cfg, cfg.bank(bank)) as encrypt:
        yield (
            payments.Transport(
                s3_hook=S3Hook(aws_conn_id="aws_finflows"),
                sftp_hook=SFTPHook(ssh_conn_id=cfg.bank(bank).sftp_conn_id),
                archive_bucket=ARCHIVE,
                attempts=1,
                backoff=0.01,
            ),
            encrypt,
        )


def prepare(db, cfg, bank: str, now: dt.datetime, run_id: str, made_by: str | None):
    from finflows.flows.banking import payments

    with _transport(cfg, bank) as (transport, encrypt):
        return payments.prepare_bank(db, cfg=cfg, bank_id=bank, now=now, run_id=run_id, transport=transport,
                                     encrypt=encrypt, made_by=made_by)  # fmt: skip


def given_up(pg, db, cfg, local_dir, bank: str, maker: str) -> tuple[int, list[str]]:
    """A batch whose upload the bank's server refused (directory not writable): given up to a person."""
    from finflows.flows.banking import payments

    upload = local_dir / "sftp" / bank / "upload"
    refs = pay.add(pg, bank, 2, due=MONDAY, amount=1100)
    os.chmod(upload, 0o555)
    try:
        with _transport(cfg, bank) as (transport, encrypt):
            run = payments.pay_bank(db, cfg=cfg, bank_id=bank, now=at(6, 0), run_id=f"manual__{maker}",
                                    transport=transport, encrypt=encrypt, made_by=maker)  # fmt: skip
    finally:
        os.chmod(upload, 0o755)
    [d] = run.deliveries
    assert d["outcome"] == "gave_up"
    return d["batch_id"], refs


def uncertain(pg, db, cfg, bank: str, maker: str | None) -> int:
    """A batch whose rename answer was lost: uncertain (one bare UPDATE per step, as the flow moves it)."""
    pay.add(pg, bank, 3, due=MONDAY, amount=2000)
    prepare(db, cfg, bank, at(6, 0), f"manual__{maker}", maker)
    [batch_id] = pg.execute("SELECT id FROM pay.batch WHERE bank = %s", (bank,)).fetchone()
    for change in ("status = 'sending', send_step = 'part'", "send_step = 'rename'",
                   "status = 'uncertain', send_step = NULL, uncertain_reason = 'test: the rename answer was lost'"):  # fmt: skip
        pg.execute(f"UPDATE pay.batch SET {change} WHERE id = %s", (batch_id,))
    return batch_id


def held(pg, db, cfg, bank: str, maker: str) -> str:
    """A payment the maker's run held: same account (leading zeros aside) and amount as one batched."""
    pay.add(pg, bank, 1, due=MONDAY, amount=4321, account="000099998888")
    prepare(db, cfg, bank, at(6, 0), "scheduled__a", None)
    [dup] = pay.add(pg, bank, 1, due=MONDAY, amount=4321, account="99998888")
    prepare(db, cfg, bank, at(6, 10), f"manual__{maker}", maker)
    assert pg.execute("SELECT held_by FROM pay.payment WHERE reference = %s", (dup,)).fetchone()[0] == maker
    return dup
