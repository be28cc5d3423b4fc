"""bank_reconciliation against the real stack: the bank's return file on its SFTP server, PGP, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

import pytest

from finflows import reconciliation
from finflows.formats import ach
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


@pytest.fixture
def paid(clean_payments, pg, db, cfg, local_dir):
    """Three payments through Mega, uploaded: (references, their batch's file name)."""
    refs = pay.add(pg, "mega", 3, due=MONDAY, amount=5000)
    pay.pay_bank(db, cfg, "mega", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "mega")
    return refs, batch_file


def ach_return(pg, batch_file: str, reasons: dict | None = None, drop: int = 0) -> bytes:
    answers = pay.returns_for(pg, batch_file, reasons)
    batch = ach.Batch(MONDAY, dt.time(17, 0), "0170077", "0", "00000000", dt.date(2026, 11, 20))
    data = ach.write_achr01(batch, answers)
    return data[: len(data) - drop] if drop else data


def test_a_return_file_settles_and_returns_the_right_payments(paid, pg, db, cfg, local_dir, s3_hook):
    refs, batch_file = paid
    plain = ach_return(pg, batch_file, {refs[1]: "03"})
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    pay.drop_return(local_dir, "mega", "unrelated.txt", b"not ours to read")

    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["outcome"], out["settled"], out["returned"], out["unmatched"]) == ("applied", 2, 1, 0)
    assert out["alerts"] == []
    assert pay.statuses(pg, refs) == {refs[0]: "settled", refs[1]: "returned", refs[2]: "settled"}
    assert pg.execute("SELECT return_reason FROM pay.payment WHERE reference = %s", (refs[1],)).fetchone()[0] == "03"
    assert s3_hook.check_for_key("bank-reconciliation/mega/2026-11-23/ACHR01_017_20261123_01.txt", ARCHIVE)
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"  # the next run skips it
    assert pg.execute("SELECT count(*) FROM pay.return_line").fetchone()[0] == 3


@pytest.mark.parametrize(
    ("case", "make", "reason"),
    [
        ("bad signature", lambda plain: pay.encrypt_as_bank("mega", plain, signer="ctbc"), "signature is bad"),
        ("unsigned", lambda plain: pay.encrypt_as_bank("mega", plain, sign=False), "signature is"),
        ("wrong key", lambda plain: pay.encrypt_as_bank("mega", plain, recipient="esun"), "cannot decrypt"),
        ("truncated", None, "does not end with CRLF"),
    ],
)
def test_a_file_that_cannot_be_trusted_or_read_is_quarantined_and_applies_nothing(
    paid, pg, db, cfg, local_dir, s3_hook, case, make, reason
):
    refs, batch_file = paid
    if make is None:  # cut in the middle of the trailer
        data = pay.encrypt_as_bank("mega", ach_return(pg, batch_file, drop=100))
    else:
        data = make(ach_return(pg, batch_file))
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", data)
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["outcome"] == "quarantined" and reason in out["error"], out
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}  # nothing applied
    assert pg.execute("SELECT count(*) FROM pay.return_line").fetchone()[0] == 0
    assert pg.execute("SELECT status FROM ops.file_control WHERE flow = 'bank_reconciliation'").fetchone()[0] == "ERROR"
    q = "bank-reconciliation/quarantine/mega/ACHR01_017_20261123_01.txt"
    assert s3_hook.read_key(f"{q}.error.json", ARCHIVE)
    assert s3_hook.get_conn().get_object(Bucket=ARCHIVE, Key=q)["Body"].read() == data  # kept as received
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"  # not retried until the bank sends another file


def test_unknown_transaction_is_unmatched_and_alerts_while_the_rest_applies(paid, pg, db, cfg, local_dir):
    _refs, batch_file = paid
    answers = pay.returns_for(pg, batch_file)
    stranger = ach.Payment(9, "NOT-OURS-1", "8220901", "1", 77, "Z000000009", "", "")
    batch = ach.Batch(MONDAY, dt.time(17), "0170077", "0", "00000000", dt.date(2026, 11, 20))
    plain = ach.write_achr01(batch, [*answers, (stranger, "00", MONDAY)])
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["settled"], out["unmatched"]) == (3, 1)
    assert any("match no payment" in a for a in out["alerts"])
    assert pg.execute("SELECT reference FROM pay.return_line WHERE outcome = 'unmatched'").fetchall() == [
        ("NOT-OURS-1",)
    ]


def test_a_mismatched_amount_over_five_percent_of_a_batch_alerts(paid, pg, db, cfg, local_dir):
    refs, batch_file = paid
    answers = pay.returns_for(pg, batch_file)
    p, reason, day = answers[0]
    answers[0] = (ach.Payment(**(p.__dict__ | {"amount": p.amount + 1})), reason, day)
    batch = ach.Batch(MONDAY, dt.time(17), "0170077", "0", "00000000", dt.date(2026, 11, 20))
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt",
                    pay.encrypt_as_bank("mega", ach.write_achr01(batch, answers)))  # fmt: skip
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["settled"], out["mismatch"]) == (2, 1)
    assert any("1 of 3 payment(s) mismatched (33%)" in a for a in out["alerts"]), out["alerts"]
    assert pay.statuses(pg, refs)[refs[0]] == "uploaded"  # a mismatch settles nothing


def test_a_duplicate_file_changes_nothing(paid, pg, db, cfg, local_dir):
    refs, batch_file = paid
    data = pay.encrypt_as_bank("mega", ach_return(pg, batch_file))
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", data)
    pay.reconcile(db, cfg, today=MONDAY)
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_02.txt", data)  # the bank sends it again, renamed
    outs = {o["file_name"]: o for o in pay.reconcile(db, cfg, today=MONDAY)}
    assert outs["ACHR01_017_20261123_01.txt"]["outcome"] == "seen"
    assert outs["ACHR01_017_20261123_02.txt"]["duplicate"] == 3 and outs["ACHR01_017_20261123_02.txt"]["settled"] == 0
    assert set(pay.statuses(pg, refs).values()) == {"settled"}
    assert pg.execute("SELECT count(*) FROM pay.payment_event WHERE to_status = 'settled'").fetchone()[0] == 3


def test_csv_return_file(clean_payments, pg, db, cfg, local_dir):
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "esun", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "esun")
    plain = ach.write_return_csv(pay.returns_for(pg, batch_file, {refs[0]: "04"}), "cp950")
    pay.drop_return(local_dir, "esun", "ESUN_REC_20261123.csv", pay.encrypt_as_bank("esun", plain))
    [out] = pay.reconcile(db, cfg, "esun", today=MONDAY)
    assert (out["settled"], out["returned"]) == (1, 1)
    assert pay.statuses(pg, refs) == {refs[0]: "returned", refs[1]: "settled"}


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-1500", "15OO"])
def test_a_csv_return_line_without_a_real_amount_quarantines_the_file(clean_payments, pg, db, cfg, local_dir, amount):
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "esun", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "esun")
    good = ach.write_return_csv(pay.returns_for(pg, batch_file), "cp950").decode("cp950").split("\r\n")
    cells = good[2].split(",")
    cells[ach.RETURN_CSV_COLUMNS.index("amount")] = amount
    plain = "\r\n".join([*good[:2], ",".join(cells), *good[3:]]).encode("cp950")
    pay.drop_return(local_dir, "esun", "ESUN_REC_20261123.csv", pay.encrypt_as_bank("esun", plain))
    [out] = pay.reconcile(db, cfg, "esun", today=MONDAY)
    assert out["outcome"] == "quarantined" and f"line 3, field amount, value '{amount}'" in out["error"]
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}  # nothing applied, not even the good line


def test_an_uploaded_batch_without_reconciliation_alerts_once_after_the_day_closes(paid, db):
    _refs, batch_file = paid
    before_close = dt.datetime.combine(MONDAY, dt.time(17, 59), tzinfo=TAIPEI)
    after_close = dt.datetime.combine(MONDAY, dt.time(18, 0), tzinfo=TAIPEI)
    assert reconciliation.unreconciled_batches(db, before_close, dt.time(18)) == []
    [alert] = reconciliation.unreconciled_batches(db, after_close, dt.time(18))
    assert batch_file in alert
    assert reconciliation.unreconciled_batches(db, after_close + dt.timedelta(hours=1), dt.time(18)) == []
