"""`make up`'s sample data (devstack/seed.py, also what `make demo` starts from): each flow finds
its input where it looks for it, and seeding twice leaves one copy of everything."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.integration


def test_the_sample_data_lands_where_each_flow_looks_and_seeding_again_adds_nothing(pg, s3_hook, local_dir):
    from devstack import seed, stack
    from devstack.fixtures import forget_payments, forget_statement

    bucket = os.environ["FINFLOWS_CASHFILE_BUCKET"]
    client = stack._aws_client("s3")
    try:
        seed.sample_data(pg, client)
        said = seed.sample_data(pg, client)  # again: repeatable
        assert any(line.startswith("bank_payments: ") and "esun and mega" in line for line in said), said
        inbox = {k.rsplit("/", 1)[1] for k in s3_hook.list_keys(bucket_name=bucket, prefix="cashfiles/") or []}
        assert {f.name for f in (seed.SAMPLES / "cashfile").glob("*.dat")} <= inbox
        assert (
            local_dir / "ftps" / "acquirer" / "Saida" / seed.STATEMENT.name
        ).read_bytes() == seed.STATEMENT.read_bytes()
        today = dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
        pending = pg.execute(
            "SELECT bank, count(*) FROM pay.payment WHERE reference LIKE 'DEMO-%%' AND status = 'pending' "
            "AND due_date = %s GROUP BY bank ORDER BY bank",
            (today,),
        ).fetchall()
        assert pending == [("esun", 2), ("mega", 4)]  # include/samples/banking/payments.csv, once
        known = pg.execute(
            "SELECT count(*) FROM ifs.rent_account WHERE payment_ref = ANY(%s)", (seed.RENT_ACCOUNTS,)
        ).fetchone()[0]
        assert known == len(seed.RENT_ACCOUNTS)
    finally:  # the suite's other tests find an empty inbox and no pending sample payment
        for f in (seed.SAMPLES / "cashfile").glob("*.dat"):
            client.delete_object(Bucket=bucket, Key=f"cashfiles/{f.name}")
        (local_dir / "ftps" / "acquirer" / "Saida" / seed.STATEMENT.name).unlink(missing_ok=True)
        forget_statement(pg, seed.STATEMENT.name)
        forget_payments(pg, "DEMO-")


def test_make_up_seeds_only_when_asked(monkeypatch):
    from devstack import seed

    monkeypatch.delenv("SEED", raising=False)
    assert seed.wanted(interactive=False) is False  # no terminal, no question: nothing is put in place
    monkeypatch.setenv("SEED", "yes")
    assert seed.wanted(interactive=False) is True
    monkeypatch.setenv("SEED", "no")
    assert seed.wanted(interactive=True) is False  # never asks when told
