"""A second person before money moves, against the real PostgreSQL and sshd, with the shipped
banks.yaml (mega and first: approval required; taishin: above NTD 1,000,000; esun: none).

The human-in-the-loop step itself (Airflow's Required Actions, the REST API, the triggering user
refused, the scheduler's timeout) runs under the real scheduler in tests/e2e/test_standalone.py;
this module proves what the approval guarantees whoever asks: nothing unapproved leaves, exactly
the batches shown are approved, a refusal rolls the payments to the next business day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows.flows.banking import approval, banks, payments
from tests.conftest import SHIPPED_BANKS
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
TUESDAY = MONDAY + dt.timedelta(days=1)


def at(hh: int, mm: int, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=TAIPEI)


@pytest.fixture
def shipped():
    return banks.load(SHIPPED_BANKS)


def batch_of(pg, ref: str) -> dict:
    row = pg.execute(
        """SELECT b.id, b.status, b.approval, b.approval_by, b.approval_note FROM pay.batch b
           JOIN pay.payment p ON p.batch_id = b.id WHERE p.reference = %s""",
        (ref,),
    ).fetchone()
    return dict(zip(("id", "status", "approval", "by", "note"), row, strict=True)) if row else {}


def ask(db, bank, request_id: str = "run-1/bank.approve/0", now: dt.datetime | None = None):
    return approval.request(
        db,
        bank,
        request_id=request_id,
        run_id="run-1",
        now=now or at(6, 1),
        margin=dt.timedelta(minutes=30),
    )


def test_each_banks_policy_decides_which_batches_wait(clean_payments, pg, db, shipped, local_dir):
    [mega] = pay.add(pg, "mega", 1, due=MONDAY, amount=100)
    [esun] = pay.add(pg, "esun", 1, due=MONDAY, amount=5_000_000)
    [small] = pay.add(pg, "taishin", 1, due=MONDAY, amount=1_000_000)  # not above the threshold

    runs = {b: pay.pay_bank(db, shipped, b, now=at(6, 0)) for b in ("mega", "esun", "taishin")}

    assert [d["outcome"] for d in runs["mega"].deliveries] == ["awaiting_approval"]
    assert pay.uploaded(local_dir, "mega") == {}, "an unapproved file reached the bank"
    assert batch_of(pg, mega)["approval"] == "required" and batch_of(pg, mega)["status"] == "batched"
    assert any("awaiting_approval" in p for p in runs["mega"].problems)
    assert [d["outcome"] for d in runs["esun"].deliveries] == ["uploaded"]
    assert batch_of(pg, esun)["approval"] == "not_required" and "none" in batch_of(pg, esun)["note"]
    assert [d["outcome"] for d in runs["taishin"].deliveries] == ["uploaded"]
    assert "not above" in batch_of(pg, small)["note"]

    [big] = pay.add(pg, "taishin", 1, due=MONDAY, amount=1_000_001)
    again = pay.pay_bank(db, shipped, "taishin", now=at(6, 30), run_id="second")
    assert [d["outcome"] for d in again.deliveries] == ["awaiting_approval"]
    assert batch_of(pg, big)["approval"] == "required"
    assert len(pay.uploaded(local_dir, "taishin")) == 1


def test_the_database_refuses_to_send_an_unapproved_batch(clean_payments, pg, db, shipped):
    [ref] = pay.add(pg, "mega", 1, due=MONDAY)
    pay.pay_bank(db, shipped, "mega", now=at(6, 0))
    batch = batch_of(pg, ref)["id"]
    for approval_now in ("required", "requested"):
        if approval_now == "requested":
            ask(db, shipped.bank("mega"))
        with pytest.raises(psycopg.errors.CheckViolation, match="nothing is sent to a bank without approval"):
            pg.execute("UPDATE pay.batch SET status = 'sending', send_step = 'part' WHERE id = %s", (batch,))
    with pytest.raises(psycopg.errors.CheckViolation, match="names who gave it"):
        pg.execute("UPDATE pay.batch SET approval = 'approved' WHERE id = %s", (batch,))


def test_re_runs_and_the_retry_queue_never_send_an_unapproved_batch(clean_payments, pg, db, shipped, local_dir):
    [ref] = pay.add(pg, "mega", 1, due=MONDAY)
    pay.pay_bank(db, shipped, "mega", now=at(6, 0))
    batch = batch_of(pg, ref)["id"]
    assert pay.pay_bank(db, shipped, "mega", now=at(7, 0)).deliveries[0]["outcome"] == "awaiting_approval"
    assert payments.waiting_transfers(db, at(8, 0), everything=True) == []  # the retry queue does not see it
    with _transport(shipped.bank("mega")) as transport:
        d = payments.deliver_batch(
            db,
            cfg=shipped,
            bank_id="mega",
            batch_id=batch,
            run_id="retry",
            transport=transport,
            encrypt=None,
            now=at(8, 0),
            from_retry_queue=True,
        )
    assert d.outcome == "awaiting_approval"
    assert pay.uploaded(local_dir, "mega") == {}
    assert pay.statuses(pg, [ref]) == {ref: "batched"}


def _transport(bank):
    import contextlib
    import os

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return contextlib.nullcontext(
        payments.Transport(
            s3_hook=S3Hook(aws_conn_id="aws_finflows"),
            sftp_hook=SFTPHook(ssh_conn_id=bank.sftp_conn_id),
            archive_bucket=os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
            attempts=1,
        )
    )


def test_a_batch_made_after_the_last_call_is_asked_for_tomorrow_not_left_to_expire(
    clean_payments, pg, db, shipped, local_dir
):
    """At 15:10 mega's approval window (cutoff 15:30 less 30 minutes) has closed: an approval asked
    for today could only expire, so the file is made for Tuesday and asked with Tuesday's deadline
    (CI once ran the approval tests at 15:17 Taipei and waited for a question never asked)."""
    [ref] = pay.add(pg, "mega", 1, due=MONDAY, amount=100)
    pay.pay_bank(db, shipped, "mega", now=at(15, 10))
    req = ask(db, shipped.bank("mega"), now=at(15, 10))
    assert [b["processing_date"] for b in req.batches] == [TUESDAY.isoformat()]
    assert req.deadline == at(15, 0, TUESDAY).astimezone(dt.UTC)
    assert "15:00 Asia/Taipei" in req.body and batch_of(pg, ref)["approval"] == "requested"
    assert pay.uploaded(local_dir, "mega") == {}, "a file went out before its approval"


def test_an_approval_lets_exactly_the_batches_shown_go_once(clean_payments, pg, db, shipped, local_dir):
    refs = pay.add(pg, "mega", 12, due=MONDAY, amount=700)
    pg.execute("UPDATE pay.payment SET amount = 90000 WHERE reference = %s", (refs[5],))
    pay.pay_bank(db, shipped, "mega", now=at(6, 0))
    req = ask(db, shipped.bank("mega"))
    assert req.payment_count == 12 and req.total_amount == 11 * 700 + 90000
    assert len(req.largest) == 10 and req.largest[0] == {
        "reference": refs[5],
        "amount": 90000,
        "file_name": req.batches[0]["file_name"],
    }
    assert req.deadline == at(15, 0).astimezone(dt.UTC)  # mega's cutoff 15:30 less the margin
    body = req.body
    assert "NTD 97,700" in body and "15:00 Asia/Taipei" in body and refs[5] in body
    payee = pg.execute("SELECT payee_name, payee_account FROM pay.payment WHERE reference = %s", (refs[0],)).fetchone()
    assert payee[0] not in body and payee[1] not in body, "the approval shows a payee's name or account"

    [later] = pay.add(pg, "mega", 1, due=MONDAY)  # batched after the approver looked: not approved with it
    pay.pay_bank(db, shipped, "mega", now=at(6, 30))
    approved = approval.approve(db, req.request_id, by="treasurer", at=at(9, 0), run_id="run-1")
    assert approved == [b["id"] for b in req.batches]
    assert batch_of(pg, later)["approval"] == "required"

    run = pay.pay_bank(db, shipped, "mega", now=at(9, 1))
    outcomes = sorted(d["outcome"] for d in run.deliveries)
    assert outcomes == ["awaiting_approval", "uploaded"]
    assert len(pay.uploaded(local_dir, "mega")) == 1
    assert batch_of(pg, refs[0]) | {"id": 0} == {
        "id": 0,
        "status": "uploaded",
        "approval": "approved",
        "by": "treasurer",
        "note": None,
    }
    events = pg.execute(
        "SELECT detail, decided_by FROM pay.batch_event WHERE batch_id = %s AND detail LIKE 'approval%%' ORDER BY id",
        (approved[0],),
    ).fetchall()
    assert events == [("approval requested", None), ("approval approved", "treasurer")]
    assert approval.approve(db, req.request_id, by="treasurer", at=at(9, 5), run_id="run-1") == []  # once

    from finflows.flows.banking import daily_report

    report = daily_report.gather(db, MONDAY, ["mega"], at(19, 0), dt.timedelta(minutes=5))
    [line] = [a for a in report.approvals if req.batches[0]["file_name"] in a]
    assert "approved by treasurer at 2026-11-23 09:00 Asia/Taipei" in line
    assert any("waits for approval" in p for p in report.problems)  # the batch made after the approver looked


@pytest.mark.parametrize("outcome", ["rejected", "expired"])
def test_a_refusal_cancels_and_rolls_the_payments_to_the_next_business_day(
    clean_payments, pg, db, shipped, local_dir, outcome
):
    refs = pay.add(pg, "mega", 3, due=MONDAY)
    pay.pay_bank(db, shipped, "mega", now=at(6, 0))
    req = ask(db, shipped.bank("mega"))
    by = "treasurer" if outcome == "rejected" else None
    cancelled = approval.refuse(
        db, shipped.bank("mega"), req.request_id, outcome=outcome, by=by, at=at(9, 0), run_id="run-1", note="wrong"
    )
    assert [(d["outcome"], d["payment_count"]) for d in cancelled] == [(outcome, 3)]
    row = pg.execute("SELECT status, approval, approval_note FROM pay.batch WHERE id = %s", (req.batches[0]["id"],))
    assert row.fetchone() == ("cancelled", outcome, "wrong")
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "pending")
    assert {r[0] for r in pg.execute("SELECT not_before FROM pay.payment WHERE reference = ANY(%s)", (refs,))} == {
        TUESDAY
    }

    same_day = pay.pay_bank(db, shipped, "mega", now=at(10, 0))  # before the cutoff: still not today
    assert same_day.batches_created == 0 and pay.uploaded(local_dir, "mega") == {}
    next_day = pay.pay_bank(db, shipped, "mega", now=at(6, 0, TUESDAY))
    assert next_day.batches_created == 1 and next_day.deliveries[0]["outcome"] == "awaiting_approval"
    assert batch_of(pg, refs[0])["approval"] == "required"

    mail = approval.refusal_email("mega", outcome, by, "wrong", cancelled)
    assert "Nothing was uploaded" in mail.text and "Reason given: wrong" in mail.text
    assert ("rejected by treasurer" in mail.text) == (outcome == "rejected")


def test_an_approval_deadline_is_the_cutoff_less_the_margin_or_the_longest_wait(shipped):
    mega = shipped.bank("mega")
    now = at(6, 0)
    assert approval.deadline_for(mega, MONDAY, now, dt.timedelta(minutes=30), None) == at(15, 0)
    assert approval.deadline_for(mega, MONDAY, now, dt.timedelta(minutes=30), dt.timedelta(hours=2)) == at(8, 0)
    assert approval.deadline_for(mega, TUESDAY, now, dt.timedelta(0), None) == at(15, 30, TUESDAY)


def test_the_shipped_policies_parse_and_a_bad_one_is_refused():
    shipped = banks.load(SHIPPED_BANKS)
    assert {b: shipped.bank(b).needs_approval(1_000_001) for b in shipped.banks} == {
        "mega": True,
        "ctbc": True,
        "esun": False,
        "first": True,
        "taishin": True,
    }
    assert shipped.bank("taishin").needs_approval(1_000_000) is False
    import yaml

    raw = yaml.safe_load(SHIPPED_BANKS.read_text(encoding="utf-8"))
    raw["banks"]["mega"]["approval"] = "sometimes"
    with pytest.raises(banks.BankConfigError, match="bank mega, field approval"):
        banks.parse(raw)
