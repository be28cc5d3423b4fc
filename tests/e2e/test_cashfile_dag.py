"""cashfile_import end to end with dag.test(): seeded files in S3 → DB rows, Drive copies, archive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cash import KNOWN_ACCOUNTS, cash_file, random_day

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BUCKET = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cashfile_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "cashfile_import.py"))
    assert not bag.import_errors
    return bag.get_dag("cashfile_import")


def totals(pg) -> tuple[int, int, int]:
    return pg.execute("""SELECT (SELECT count(*) FROM ifs.cash_payment), (SELECT count(*) FROM ifs.cash_suspense),
                                (SELECT count(*) FROM ifs.cashfile_line)""").fetchone()


def test_dag_imports_every_waiting_file_and_a_rerun_adds_nothing(cashfile_dag, pg, s3_hook, drive):
    from airflow.utils.state import DagRunState

    for ref in KNOWN_ACCOUNTS:
        pg.execute("INSERT INTO ifs.rent_account (payment_ref) VALUES (%s) ON CONFLICT DO NOTHING", (ref,))
    for key in s3_hook.list_keys(bucket_name=BUCKET, prefix="cashfiles/") or []:  # an empty inbox to start
        s3_hook.delete_objects(bucket=BUCKET, keys=[key])
    days = [random_day() for _ in range(3)]
    names = [f"CashFile{d:%Y%m%d}.dat" for d in days]
    pg.execute(
        "DELETE FROM ifs.cash_payment WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute(
        "DELETE FROM ifs.cash_suspense WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute(
        "DELETE FROM ifs.cashfile_line WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute("DELETE FROM ops.file_control WHERE file_name = ANY(%s)", (names,))
    for i, d in enumerate(days):
        s3_hook.load_bytes(
            cash_file(10 + i, d, unknown=1, seed=i),
            key=f"cashfiles/CashFile{d:%Y%m%d}.dat",
            bucket_name=BUCKET,
            replace=True,
        )
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
    for i, d in enumerate(days):
        s3_hook.load_bytes(
            cash_file(10 + i, d, unknown=1, seed=i),
            key=f"cashfiles/CashFile{d:%Y%m%d}.dat",
            bucket_name=BUCKET,
            replace=True,
        )
    dr2 = cashfile_dag.test()
    assert dr2.state == DagRunState.SUCCESS
    assert totals(pg) == after
    dups = pg.execute(
        "SELECT count(*) FROM ops.file_event WHERE event = 'DUPLICATE' AND file_name = ANY(%s)", (names,)
    ).fetchone()[0]
    assert dups == 3


def test_a_bad_file_fails_the_run_emails_ops_and_leaves_the_good_file_imported(cashfile_dag, pg, s3_hook, mailbox):
    from airflow.utils.state import DagRunState

    for key in s3_hook.list_keys(bucket_name=BUCKET, prefix="cashfiles/") or []:
        s3_hook.delete_objects(bucket=BUCKET, keys=[key])
    good_day, bad_day = random_day(), random_day()
    names = [f"CashFile{good_day:%Y%m%d}.dat", f"CashFile{bad_day:%Y%m%d}.dat"]
    pg.execute(
        "DELETE FROM ifs.cash_payment WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute(
        "DELETE FROM ifs.cash_suspense WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute(
        "DELETE FROM ifs.cashfile_line WHERE file_id IN (SELECT id FROM ops.file_control WHERE file_name = ANY(%s))",
        (names,),
    )
    pg.execute("DELETE FROM ops.file_control WHERE file_name = ANY(%s)", (names,))
    s3_hook.load_bytes(cash_file(5, good_day), key=f"cashfiles/{names[0]}", bucket_name=BUCKET, replace=True)
    bad = cash_file(5, bad_day).replace(b"+", b"*", 1)
    s3_hook.load_bytes(bad, key=f"cashfiles/{names[1]}", bucket_name=BUCKET, replace=True)
    seen = mailbox.names()

    dr = cashfile_dag.test()
    assert dr.state == DagRunState.FAILED
    status = dict(pg.execute("SELECT file_name, status FROM ops.file_control WHERE file_name = ANY(%s)", (names,)))
    assert status == {names[0]: "SUCCESS", names[1]: "ERROR"}
    assert s3_hook.read_key(f"quarantine/{names[1]}", bucket_name=BUCKET).encode() == bad
    msg = mailbox.wait_for(lambda m: "cashfile_import.import_file" in m["Subject"], since=seen)
    assert msg["Subject"].startswith("[finflows] FAILED cashfile_import.import_file (manual__")
    body = msg.get_body(("html",)).get_content()
    assert "line 1, field amount" in body and names[1] in body
