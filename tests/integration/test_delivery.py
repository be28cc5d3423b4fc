"""The delivery state machine's edges against the real sshd and PostgreSQL: an uncertain batch
waits for a person, the person's decision is recorded, a different file under our name is never
taken for ours, and the database refuses every shortcut."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows.flows.banking import delivery, payments
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)


def at(hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(MONDAY, dt.time(hh, mm), tzinfo=TAIPEI)


class Dropped(ConnectionResetError):
    pass


@pytest.fixture
def drop_after(monkeypatch):
    """The connection drops right after the step named: the worker raises there (it is not killed)."""

    def arm(step: str) -> None:
        def boom(name: str) -> None:
            if name == step:
                raise Dropped(f"connection reset after {step}")

        monkeypatch.setattr(delivery, "at_step", boom)

    yield arm
    monkeypatch.setattr(delivery, "at_step", None)


def upload_dir(local_dir):
    return local_dir / "sftp" / "mega" / "upload"


def make_uncertain(db, pg, cfg, local_dir, drop_after, *, bank_got_it: bool) -> int:
    """The rename lands, the connection drops before its commit, and the file is gone before the
    next try: taken by the bank, or (``bank_got_it`` False) our .part removed by its clean-up before
    the rename reached it."""
    pay.add(pg, "mega", 2, due=MONDAY, amount=4200)
    drop_after("renamed" if bank_got_it else "rename_committed")
    with pytest.raises(Dropped):
        pay.pay_bank(db, cfg, "mega", now=at(6, 0))
    delivery.at_step = None
    for p in upload_dir(local_dir).iterdir():
        p.unlink()
    again = pay.pay_bank(db, cfg, "mega", now=at(6, 5))
    [d] = again.deliveries
    assert d["outcome"] == "uncertain" and "the bank may have taken it" in d["error"]
    return d["batch_id"]


def test_an_uncertain_batch_is_reported_every_run_and_never_resent(clean_payments, db, pg, cfg, local_dir, drop_after):
    batch_id = make_uncertain(db, pg, cfg, local_dir, drop_after, bank_got_it=True)
    for _ in range(2):
        run = pay.pay_bank(db, cfg, "mega", now=at(7, 0))
        assert [d["outcome"] for d in run.deliveries] == ["uncertain"]
        assert any("uncertain" in p for p in run.problems)
    assert list(upload_dir(local_dir).iterdir()) == []
    subject, _ = payments.summary([dataclasses.asdict(run)])
    assert "PROBLEMS" in subject
    [u] = delivery.uncertain_batches(db)
    assert (u["batch_id"], u["payment_count"], u["total_amount"]) == (batch_id, 2, 8400)
    # the cutoff passes: an uncertain batch is not cancelled either (its payments may be paid)
    d = pay.pay_bank(db, cfg, "mega", now=at(16, 0)).deliveries[0]
    assert d["outcome"] == "uncertain" and pg.execute("SELECT status FROM pay.batch").fetchone()[0] == "uncertain"


def test_the_bank_has_it_is_recorded_with_who_and_when(clean_payments, db, pg, cfg, local_dir, drop_after):
    batch_id = make_uncertain(db, pg, cfg, local_dir, drop_after, bank_got_it=True)
    out = delivery.decide(db, batch_id, "bank_has_it", by="treasurer-b", note="mega ticket 1234")
    assert out["decided_by"] == "treasurer-b"
    status, decision, by, when, note = pg.execute(
        "SELECT status, decision, decided_by, decided_at, decision_note FROM pay.batch"
    ).fetchone()
    assert (status, decision, by, note) == ("uploaded", "bank_has_it", "treasurer-b", "mega ticket 1234")
    assert abs(when - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert set(pg.execute("SELECT DISTINCT status FROM pay.payment").fetchall()) == {("uploaded",)}
    assert pg.execute("SELECT outcome FROM pay.transfer ORDER BY id").fetchall() == [("uncertain",), ("confirmed",)]
    trail = pg.execute("SELECT from_status, to_status, decided_by FROM pay.batch_event ORDER BY id").fetchall()
    assert trail[-1] == ("uncertain", "uploaded", "treasurer-b")
    with pytest.raises(delivery.DecisionRefused, match="is uploaded, not uncertain"):
        delivery.decide(db, batch_id, "resend", by="treasurer-c")


def test_resend_sends_the_archived_file_once(clean_payments, db, pg, cfg, local_dir, drop_after):
    batch_id = make_uncertain(db, pg, cfg, local_dir, drop_after, bank_got_it=False)
    archived = pg.execute("SELECT cipher_sha256 FROM pay.batch").fetchone()[0]
    delivery.decide(db, batch_id, "resend", by="treasurer-b", note="mega has no such file")
    [(bid, bank)] = payments.waiting_transfers(db, at(7, 0), everything=True)
    from tests.integration.test_bank_payments import retry

    assert retry(db, cfg, bid, bank, at(7, 0)).outcome == "uploaded"
    [cipher] = pay.uploaded(local_dir, "mega").values()
    assert payments._sha(cipher) == archived
    assert retry(db, cfg, bid, bank, at(7, 5)).outcome == "skipped"  # and never again
    assert pg.execute("SELECT status, decided_by FROM pay.batch").fetchone() == ("uploaded", "treasurer-b")


def test_a_decision_is_refused_for_a_batch_that_waits_for_none(clean_payments, db, pg, cfg):
    pay.add(pg, "mega", 1, due=MONDAY)
    run = pay.pay_bank(db, cfg, "mega", now=at(6, 0))
    batch_id = run.deliveries[0]["batch_id"]
    with pytest.raises(delivery.DecisionRefused, match="not uncertain"):
        delivery.decide(db, batch_id, "resend", by="treasurer-b")
    with pytest.raises(delivery.DecisionRefused, match="must be one of"):
        delivery.decide(db, batch_id, "maybe", by="treasurer-b")
    with pytest.raises(LookupError):
        delivery.decide(db, 999999, "resend", by="treasurer-b")


def test_a_different_file_under_our_name_is_a_conflict_never_ours(clean_payments, db, pg, cfg, local_dir):
    """Same name, same size, other bytes: not 'already there'; a person must look."""
    pay.add(pg, "mega", 1, due=MONDAY)
    made = payments.make_batches(db, cfg, "mega", at(6, 0), "test")
    assert made.batches_created == 1
    name = pg.execute("SELECT file_name FROM pay.batch").fetchone()[0]
    from finflows.flows.banking import common

    with common.encrypter(cfg, cfg.bank("mega")) as encrypt:
        transport = payments.Transport(s3_hook=_s3(), sftp_hook=None, archive_bucket="finflows-archive")
        data, _ = payments.prepare_file(db, transport, cfg, cfg.bank("mega"), 1, encrypt)
    (upload_dir(local_dir) / name).write_bytes(bytes(b ^ 0xFF for b in data))  # same size, other content
    run = pay.pay_bank(db, cfg, "mega", now=at(6, 5))
    [d] = run.deliveries
    assert d["outcome"] == "uncertain" and "holds a different file" in d["error"]
    assert (upload_dir(local_dir) / name).read_bytes() != data  # theirs, untouched
    assert pg.execute("SELECT DISTINCT status FROM pay.payment").fetchall() == [("batched",)]


def _s3():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_finflows")


@pytest.mark.parametrize(
    ("setup", "change", "message"),
    [
        (
            "status = 'uncertain'",
            "status = 'uploaded'",
            "leaves that state only by a decision recorded since it became uncertain",
        ),
        ("status = 'sending', send_step = 'rename'", "status = 'cancelled', send_step = NULL", "needs proof"),
        ("status = 'sending', send_step = 'rename'", "send_step = 'part'", "cannot go back to writing a part"),
        ("status = 'uploaded'", "status = 'batched'", "uploaded → batched is not an allowed transition"),
    ],
)
def test_the_database_refuses_every_shortcut(clean_payments, pg, cfg, setup, change, message):
    pay.add(pg, "mega", 1, due=MONDAY)
    payments.make_batches(pg, cfg, "mega", at(6, 0), "test")
    with pg.transaction():
        pg.execute("ALTER TABLE pay.batch DISABLE TRIGGER USER")
        pg.execute(f"UPDATE pay.batch SET {setup}")
        pg.execute("ALTER TABLE pay.batch ENABLE TRIGGER USER")
    with pytest.raises(psycopg.errors.CheckViolation, match=message):
        pg.execute(f"UPDATE pay.batch SET {change}")


def test_the_uncertain_alert_says_what_is_known_and_how_to_decide():
    deliveries = [
        {"outcome": "uploaded", "file_name": "A.txt"},
        {
            "outcome": "uncertain",
            "batch_id": 7,
            "file_name": "ACHP01_017_20261123_001.txt",
            "payment_count": 2,
            "total_amount": 8400,
            "bytes": 443,
            "error": "neither NAME nor NAME.part is on the server: the bank may have taken it",
        },
    ]
    mail = delivery.uncertain_alert(deliveries, "https://airflow.example")
    assert mail.subject == "[finflows] UNCERTAIN bank delivery, treasury must decide: ACHP01_017_20261123_001.txt"
    assert "Batch 7 ACHP01_017_20261123_001.txt: 2 payment(s), NTD 8,400, 443 bytes" in mail.text
    assert "/finflows/api/batches/<id>/decision" in mail.text and "https://airflow.example/finflows/api/ui" in mail.text
    assert delivery.uncertain_alert(deliveries[:1]) is None


def test_a_refused_permission_is_named_and_given_up_at_once_not_retried(clean_payments, pg, db, cfg, local_dir):
    """A directory the bank's SFTP account may not write to: no retry can change that. The error
    names the operation and the path; the batch is given up to a person after one try."""
    import os

    upload = local_dir / "sftp" / "esun" / "upload"
    pay.add(pg, "esun", 2, due=MONDAY)
    os.chmod(upload, 0o555)  # the account (not root) may list and read, not write
    try:
        run = pay.pay_bank(db, cfg, "esun", now=at(6, 0), attempts=3)
    finally:
        os.chmod(upload, 0o755)
    [d] = run.deliveries
    assert d["outcome"] == "gave_up" and d["attempts"] == 1, d
    assert "permission denied by esun's server to write and check /upload/ESUN_PAY_20261123_001.csv.part" in d["error"]
    assert pg.execute("SELECT status FROM pay.transfer_retry").fetchone()[0] == "gave_up"
    assert pg.execute("SELECT status FROM pay.batch").fetchone()[0] == "queued"  # nothing reached the bank
    assert any("gave_up" in p for p in run.problems)
