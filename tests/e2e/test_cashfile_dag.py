"""cashfile_import end to end with dag.test(): seeded files in S3 → DB rows, Drive copies, archive."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from devstack.fixtures import forget_cash_files, seed_rent_accounts
from tests.helpers.cash import KNOWN_ACCOUNTS, cash_file, random_day
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BUCKET = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")


@pytest.fixture
def cashfile_dag():
    return load_dag("cashfile_import")


@pytest.fixture
def empty_inbox(s3_hook):
    """The DAG imports everything waiting: start each run from an empty inbox."""
    keys = s3_hook.list_keys(bucket_name=BUCKET, prefix="cashfiles/") or []
    if keys:
        s3_hook.delete_objects(bucket=BUCKET, keys=keys)


def totals(pg) -> tuple[int, int, int]:
    return pg.execute("""SELECT (SELECT count(*) FROM ifs.cash_payment), (SELECT count(*) FROM ifs.cash_suspense),
                                (SELECT count(*) FROM ifs.cashfile_line)""").fetchone()


def test_dag_imports_every_waiting_file_and_a_rerun_adds_nothing(cashfile_dag, pg, s3_hook, drive, empty_inbox):
    from airflow.utils.state import DagRunState

    seed_rent_accounts(pg, KNOWN_ACCOUNTS)
    days = [random_day() for _ in range(3)]
    names = [f"CashFile{d:%Y%m%d}.dat" for d in days]
    forget_cash_files(pg, names)

    def deliver():
        for i, d in enumerate(days):
            key = f"cashfiles/CashFile{d:%Y%m%d}.dat"
            s3_hook.load_bytes(cash_file(10 + i, d, unknown=1, seed=i), key=key, bucket_name=BUCKET, replace=True)

    deliver()
    before = totals(pg)

    dr = cashfile_dag.test()
    assert dr.state == DagRunState.SUCCESS
    after = totals(pg)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (9 + 10 + 11, 3, 10 + 11 + 12)
    status = dict(pg.execute("SELECT file_name, status FROM ops.file_control WHERE file_name = ANY(%s)", (names,)))
    assert status == dict.fromkeys(names, "SUCCESS")
    for name in names:
        assert drive.exists(folder_id="finance-cashfiles", file_name=name)
        assert s3_hook.check_for_key(f"processed/{name}", bucket_name=BUCKET)

    # the same files delivered again: a second run records duplicates and loads nothing
    deliver()
    dr2 = cashfile_dag.test()
    assert dr2.state == DagRunState.SUCCESS
    assert totals(pg) == after
    dups = pg.execute(
        "SELECT count(*) FROM ops.file_event WHERE event = 'DUPLICATE' AND file_name = ANY(%s)", (names,)
    ).fetchone()[0]
    assert dups == 3


def test_a_bad_file_fails_the_run_emails_ops_and_leaves_the_good_file_imported(
    cashfile_dag, pg, s3_hook, mailbox, empty_inbox
):
    from airflow.utils.state import DagRunState

    good_day, bad_day = random_day(), random_day()
    names = [f"CashFile{good_day:%Y%m%d}.dat", f"CashFile{bad_day:%Y%m%d}.dat"]
    forget_cash_files(pg, names)
    s3_hook.load_bytes(cash_file(5, good_day), key=f"cashfiles/{names[0]}", bucket_name=BUCKET, replace=True)
    bad = cash_file(5, bad_day).replace(b"+", b"*", 1)
    s3_hook.load_bytes(bad, key=f"cashfiles/{names[1]}", bucket_name=BUCKET, replace=True)
    seen = mailbox.names()

    dr = cashfile_dag.test()
    assert dr.state == DagRunState.FAILED
    status = dict(pg.execute("SELECT file_name, status FROM ops.file_control WHERE file_name = ANY(%s)", (names,)))
    assert status == {names[0]: "SUCCESS", names[1]: "ERROR"}
    assert s3_hook.read_key(f"quarantine/{names[1]}", bucket_name=BUCKET).encode() == bad
    msg = mailbox.wait_for(lambda m: names[1] in m["Subject"], since=seen)
    # the subject names flow, file and outcome; the plain-text part says where, what and what next
    assert msg["Subject"] == f"[finflows] cashfile_import: {names[1]} REJECTED"
    body = msg.get_body(("plain",)).get_content()
    assert "line 1, field amount" in body
    assert f"Error report (every line, field and value): s3://{BUCKET}/quarantine/{names[1]}.error.json" in body
    assert "Next step: Correct the file" in body and f"/dags/cashfile_import/runs/{quote(dr.run_id, safe='')}" in body
    assert "line 1, field amount" in msg.get_body(("html",)).get_content()
