"""No payment out of sight, none paid twice, none decided by one person (issue #38), against the real
PostgreSQL, sshd and the S3 stand-in. Each reproduction of the issue is a test here:

- a given-up batch stays on the attention list until a person acts, and is cancelled after its
  cutoff (its payments roll on) or re-queued by someone other than its maker;
- a second run never takes over a live approval request, and the maker of a batch can neither
  approve it, decide its uncertain delivery, nor release a payment their run held;
- the duplicate guard compares accounts as the bank file carries them (leading zeros);
- the database refuses the shortcuts (approval lowered, an old decision reused);
- a run whose only approver triggers it is refused before anything is batched, in words;
- the finance database restored to before a delivery: the write-once send record in the archive
  stops the payments from going twice, and the batch is on the attention list.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows.flows.banking import approval, banks, delivery, invariants, payments
from finflows.flows.banking.sent_records import SentRecords
from tests.conftest import SHIPPED_BANKS
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
TUESDAY = MONDAY + dt.timedelta(days=1)
WEDNESDAY = MONDAY + dt.timedelta(days=2)
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


def at(hh: int, mm: int, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=TAIPEI)


def records(s3_hook) -> SentRecords:
    return SentRecords(s3_hook.get_conn(), ARCHIVE, 14)


def kinds(db, cfg, now) -> dict[str, list[invariants.Finding]]:
    out: dict[str, list[invariants.Finding]] = {}
    for f in invariants.check(db, cfg, now).findings:
        out.setdefault(f.kind, []).append(f)
    return out


def retry(db, cfg, now: dt.datetime, run_id: str = "retry") -> list[dict]:
    """bank_transfer_retry's task body, as it runs each hour (the waiting queue and the given-up
    batches past their cutoff)."""
    from finflows.flows.banking import common

    done = []
    for batch_id, bank_id in payments.waiting_transfers(db, now) + payments.given_up_past_cutoff(db, cfg, now):
        with pay_transport(cfg, bank_id) as transport:
            d = payments.retry_one(
                db, cfg=cfg, batch_id=batch_id, bank_id=bank_id, now=now, run_id=run_id, transport=transport, limit=5
            )
        done.append(d.__dict__)
    assert common  # the task module's helpers import cleanly beside the flow code
    return done


def pay_transport(cfg, bank_id: str):
    import contextlib

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return contextlib.nullcontext(
        payments.Transport(
            s3_hook=S3Hook(aws_conn_id="aws_finflows"),
            sftp_hook=SFTPHook(ssh_conn_id=cfg.bank(bank_id).sftp_conn_id),
            archive_bucket=ARCHIVE,
            attempts=1,
            backoff=0.01,
        )
    )


# ---------------------------------------------------------------------------- money out of sight
def test_a_given_up_batch_stays_on_the_attention_list_and_is_cancelled_after_its_cutoff(
    clean_payments, pg, db, cfg, local_dir
):
    """Reproduction: upload directory not writable on Monday 06:00 → gave_up; before, Tuesday's and
    Wednesday's runs did nothing and nobody saw the payments."""
    upload = local_dir / "sftp" / "esun" / "upload"
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    os.chmod(upload, 0o555)
    try:
        [d] = pay.pay_bank(db, cfg, "esun", now=at(6, 0)).deliveries
    finally:
        os.chmod(upload, 0o755)
    assert d["outcome"] == "gave_up"

    found = kinds(db, cfg, at(7, 0))
    [given_up] = found["given_up"]
    assert given_up.batch_id == d["batch_id"] and "re-queues or cancels it" in given_up.next_step
    assert given_up.deadline == delivery.cutoff(cfg.bank("esun"), MONDAY)
    new = invariants.sync(db, invariants.check(db, cfg, at(7, 0)))
    assert [n["kind"] for n in new] == ["given_up"]
    assert invariants.sync(db, invariants.check(db, cfg, at(8, 0))) == []  # found again: no second alert
    mail = invariants.alert(new)
    assert mail is not None and "given up" in mail.text and d["file_name"] in mail.text

    assert retry(db, cfg, at(9, 0)) == []  # before the cutoff a person decides: nothing is retried
    # after the cutoff, bank_transfer_retry cancels it: nothing of it reached the bank, its payments roll on
    [cancelled] = retry(db, cfg, at(6, 0, TUESDAY))
    assert cancelled["outcome"] == "expired" and "cancelled" in cancelled["error"]
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "pending")
    assert "given_up" not in kinds(db, cfg, at(6, 1, TUESDAY))
    invariants.sync(db, invariants.check(db, cfg, at(6, 1, TUESDAY)))
    [row] = invariants.open_rows(db)  # still on the list, marked cleared, until a person resolves it
    assert row["kind"] == "given_up" and row["cleared_at"] is not None
    invariants.resolve(db, row["id"], by="treasurer", note="cancelled at the cutoff; paid on Tuesday")
    assert invariants.open_rows(db) == []
    assert invariants.describe([])[0].startswith("The attention list is empty")

    run = pay.pay_bank(db, cfg, "esun", now=at(6, 5, TUESDAY))  # Tuesday's run pays them
    assert [x["outcome"] for x in run.deliveries] == ["uploaded"]
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")


def test_a_given_up_batch_is_re_queued_by_a_person_who_did_not_make_it(clean_payments, pg, db, cfg, local_dir):
    upload = local_dir / "sftp" / "esun" / "upload"
    refs = pay.add(pg, "esun", 1, due=MONDAY)
    os.chmod(upload, 0o555)
    try:
        with pay_transport(cfg, "esun") as transport, _encrypt(cfg, "esun") as encrypt:
            run = payments.pay_bank(
                db, cfg=cfg, bank_id="esun", now=at(6, 0), run_id="alice-run", transport=transport,
                encrypt=encrypt, made_by="alice",
            )  # fmt: skip
    finally:
        os.chmod(upload, 0o755)
    [d] = run.deliveries
    assert d["outcome"] == "gave_up"
    invariants.sync(db, invariants.check(db, cfg, at(7, 0)))
    with pytest.raises(delivery.FourEyesRefused, match="alice made batch"):
        delivery.requeue(db, d["batch_id"], by="alice", note="rights fixed")
    with pytest.raises(delivery.DecisionRefused, match="say why"):
        delivery.requeue(db, d["batch_id"], by="bob", note=" ")
    delivery.requeue(db, d["batch_id"], by="bob", note="the bank fixed the account's rights")
    assert invariants.open_rows(db) == []  # the decision resolved its row, with who
    row = pg.execute("SELECT resolved_by, resolution FROM pay.attention").fetchone()
    assert row[0] == "bob" and "re-queued by bob" in row[1]
    event = pg.execute(
        "SELECT decided_by, detail FROM pay.batch_event WHERE batch_id = %s ORDER BY id DESC LIMIT 1", (d["batch_id"],)
    ).fetchone()
    assert event == ("bob", "re-queued by bob: the bank fixed the account's rights")
    # the queue's clock is the database's; this test runs on Monday's (the real date is later)
    pg.execute("UPDATE pay.transfer_retry SET next_attempt_at = %s", (at(8, 0),))
    [sent] = retry(db, cfg, at(9, 0))
    assert sent["outcome"] == "uploaded"
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")
    assert len(pay.uploaded(local_dir, "esun")) == 1


# ---------------------------------------------------------------------------- four eyes
def _encrypt(cfg, bank_id: str):
    from finflows.flows.banking import common

    return common.encrypter(cfg, cfg.bank(bank_id))


def _prepare(db, cfg, bank_id: str, now: dt.datetime, run_id: str, made_by: str | None):
    with pay_transport(cfg, bank_id) as transport, _encrypt(cfg, bank_id) as encrypt:
        return payments.prepare_bank(
            db, cfg=cfg, bank_id=bank_id, now=now, run_id=run_id, transport=transport, encrypt=encrypt,
            made_by=made_by,
        )  # fmt: skip


def test_a_second_run_never_takes_over_a_request_and_no_maker_approves(clean_payments, pg, db):
    """Reproduction: the scheduled run re-requested alice's batch, alice was an assignee and approved
    her own batch."""
    shipped = banks.load(SHIPPED_BANKS)
    mega = shipped.bank("mega")
    pay.add(pg, "mega", 2, due=MONDAY)
    _prepare(db, shipped, "mega", at(6, 0), "manual__alice", "alice")
    margin = dt.timedelta(minutes=30)
    mine = approval.request(db, mega, request_id="manual__alice/bank.approve/0", run_id="manual__alice",
                            now=at(6, 1), margin=margin)  # fmt: skip
    assert mine is not None and mine.makers == {"alice"}
    # the scheduled run's approve step: nothing to ask, the live request is alice's run's
    assert approval.request(db, mega, request_id="scheduled__x/bank.approve/0", run_id="scheduled__x",
                            now=at(6, 2), margin=margin) is None  # fmt: skip
    # the same task's retry asks again under its own id
    again = approval.request(db, mega, request_id="manual__alice/bank.approve/0", run_id="manual__alice",
                             now=at(6, 3), margin=margin)  # fmt: skip
    assert again is not None and [b["id"] for b in again.batches] == [b["id"] for b in mine.batches]
    assert approval.eligible(["alice", "bob", "carol"], mine.makers, "carol") == ["bob"]
    assert approval.makers(db, mine.request_id) == {"alice"}

    batch_id = mine.batches[0]["id"]
    with pytest.raises(psycopg.errors.CheckViolation, match="another request may not take it over"):
        pg.execute("UPDATE pay.batch SET approval_request = 'other/bank.approve/0' WHERE id = %s", (batch_id,))
    with pytest.raises(psycopg.errors.CheckViolation, match="alice made this batch and may not approve it"):
        approval.approve(db, mine.request_id, by="alice", at=at(7, 0), run_id="manual__alice")
    with pytest.raises(psycopg.errors.CheckViolation, match="alice made this batch and may not approve it"):
        pg.execute(
            "UPDATE pay.batch SET approval = 'approved', approval_by = 'alice', approval_at = now() WHERE id = %s",
            (batch_id,),
        )
    assert approval.approve(db, mine.request_id, by="bob", at=at(7, 0), run_id="manual__alice") == [batch_id]
    row = pg.execute("SELECT approval, approval_by, made_by FROM pay.batch WHERE id = %s", (batch_id,)).fetchone()
    assert row == ("approved", "bob", "alice")
    assert "four_eyes" not in kinds(db, shipped, at(7, 1))


def _walk(pg, batch_id: int, *changes: str) -> None:
    """The batch through these changes, one bare UPDATE each (as a psql session would)."""
    for change in changes:
        pg.execute(f"UPDATE pay.batch SET {change} WHERE id = %s", (batch_id,))


TO_UNCERTAIN = ("status = 'sending', send_step = 'part'", "send_step = 'rename'")


def test_no_maker_decides_an_uncertain_delivery_or_releases_what_their_run_held(clean_payments, pg, db, cfg):
    pay.add(pg, "esun", 1, due=MONDAY, amount=900, account="77")
    _prepare(db, cfg, "esun", at(6, 0), "manual__alice", "alice")
    [batch_id] = [r[0] for r in pg.execute("SELECT id FROM pay.batch").fetchall()]
    _walk(
        pg,
        batch_id,
        *TO_UNCERTAIN,
        "status = 'uncertain', send_step = NULL, uncertain_reason = 'test: the rename was lost'",
    )
    with pytest.raises(delivery.FourEyesRefused, match="alice made batch"):
        delivery.decide(db, batch_id, "bank_has_it", by="alice")
    with pytest.raises(psycopg.errors.CheckViolation, match="may not decide its delivery"):
        pg.execute(
            "UPDATE pay.batch SET status = 'uploaded', decision = 'bank_has_it', decided_by = 'alice', "
            "decided_at = clock_timestamp() WHERE id = %s",
            (batch_id,),
        )
    delivery.decide(db, batch_id, "bank_has_it", by="bob", note="the bank confirmed it")

    # a possible duplicate held by alice's run: alice may not release it, bob may
    [dup] = pay.add(pg, "esun", 1, due=MONDAY, amount=900, account="0000000000000077")
    _prepare(db, cfg, "esun", at(7, 0), "manual__alice2", "alice")
    assert pg.execute("SELECT held_by FROM pay.payment WHERE reference = %s", (dup,)).fetchone()[0] == "alice"
    with pytest.raises(delivery.FourEyesRefused, match="alice triggered the run that held payment"):
        payments.decide_hold(db, dup, "release", by="alice")
    with pytest.raises(psycopg.errors.CheckViolation, match="may not decide it"):
        pg.execute(
            "UPDATE pay.payment SET hold_decision = 'release', hold_decided_by = 'alice', hold_decided_at = now() "
            "WHERE reference = %s",
            (dup,),
        )
    assert payments.decide_hold(db, dup, "release", by="bob")["decided_by"] == "bob"


# ---------------------------------------------------------------------------- duplicates on the wire
def test_the_duplicate_guard_compares_accounts_as_the_file_carries_them(clean_payments, pg, db, cfg):
    """Reproduction: 123 and 0000000000000123 are one account on the wire (ACHP01 pads it), across
    two of our banks."""
    [first] = pay.add(pg, "mega", 1, due=MONDAY, amount=5000, account="123", payee_bank="0081005")
    [second] = pay.add(pg, "ctbc", 1, due=MONDAY, amount=5000, account="0000000000000123", payee_bank="0081005")
    [other] = pay.add(pg, "ctbc", 1, due=MONDAY, amount=5000, account="1230", payee_bank="0081005")
    pay.pay_bank(db, cfg, "mega", now=at(6, 0))
    run = pay.pay_bank(db, cfg, "ctbc", now=at(6, 0))
    assert [h["reference"] for h in run.held] == [second] and run.held[0]["duplicate_of"] == first
    assert pay.statuses(pg, [second, other]) == {second: "pending", other: "uploaded"}


# ---------------------------------------------------------------------------- the database's own guard
def test_the_database_refuses_a_lowered_approval_and_an_old_decision(clean_payments, pg, db):
    shipped = banks.load(SHIPPED_BANKS)
    pay.add(pg, "mega", 1, due=MONDAY)
    _prepare(db, shipped, "mega", at(6, 0), "scheduled__1", None)
    [batch_id] = [r[0] for r in pg.execute("SELECT id FROM pay.batch").fetchall()]
    with pytest.raises(psycopg.errors.CheckViolation, match="approval required → not_required is not an allowed"):
        pg.execute("UPDATE pay.batch SET approval = 'not_required' WHERE id = %s", (batch_id,))
    with pytest.raises(psycopg.errors.CheckViolation, match="nothing is sent to a bank without approval"):
        pg.execute("UPDATE pay.batch SET status = 'sending', send_step = 'part' WHERE id = %s", (batch_id,))

    # an uncertain batch decided once (resend), uncertain again: the old decision does not let it out
    pg.execute("UPDATE pay.batch SET approval = 'requested', approval_request = 'r' WHERE id = %s", (batch_id,))
    pg.execute("UPDATE pay.batch SET approval = 'approved', approval_by = 'bob', approval_at = now() WHERE id = %s",
               (batch_id,))  # fmt: skip
    _walk(pg, batch_id, *TO_UNCERTAIN, "status = 'uncertain', send_step = NULL, uncertain_reason = 'first'")
    delivery.decide(db, batch_id, "resend", by="bob")
    first = pg.execute("SELECT decided_at FROM pay.batch WHERE id = %s", (batch_id,)).fetchone()[0]
    _walk(pg, batch_id, *TO_UNCERTAIN, "status = 'uncertain', send_step = NULL, uncertain_reason = 'second'")
    row = pg.execute("SELECT decision, decided_by, decided_at FROM pay.batch WHERE id = %s", (batch_id,)).fetchone()
    assert row == (None, None, None), "a new uncertainty keeps the last decision"
    with pytest.raises(psycopg.errors.CheckViolation, match="decision recorded since it became uncertain"):
        pg.execute("UPDATE pay.batch SET status = 'uploaded' WHERE id = %s", (batch_id,))
    with pytest.raises(psycopg.errors.CheckViolation, match="decision recorded since it became uncertain"):
        pg.execute(
            "UPDATE pay.batch SET status = 'uploaded', decision = 'bank_has_it', decided_by = 'bob', decided_at = %s "
            "WHERE id = %s",
            (first, batch_id),
        )
    history = pg.execute(
        "SELECT count(*) FROM pay.batch_event WHERE batch_id = %s AND decided_by = 'bob' AND detail LIKE 'decision%%'",
        (batch_id,),
    ).fetchone()[0]
    assert history == 1, "the first decision stays in the batch's history"


# ---------------------------------------------------------------------------- one approver
def test_a_run_triggered_by_the_only_approver_is_refused_before_anything_is_batched(clean_payments, pg, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from finflows.flows.banking import common

    [ref] = pay.add(pg, "mega", 1, due=MONDAY)
    monkeypatch.setenv("FINFLOWS_BANKS_FILE", str(SHIPPED_BANKS))
    monkeypatch.setenv("FINFLOWS_PAYMENT_APPROVERS", "treasurer")
    with pytest.raises(AirflowFailException, match=r"you \(treasurer\) are the only approver configured"):
        common.choose_banks(["mega"], "treasurer", paying=True)
    assert common.choose_banks(["mega"], "admin", paying=True) == ["mega"]
    assert common.choose_banks(["esun"], "treasurer", paying=True) == ["esun"]  # esun: approval none
    assert common.choose_banks(["mega"], "treasurer") == ["mega"]  # health and reconciliation are not refused
    assert pay.statuses(pg, [ref]) == {ref: "pending"}

    # approvers named by role: the simple auth manager's users of that role
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")  # fmt: skip
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "ann:op,ben:user,cat:op,dan:admin")
    monkeypatch.setenv("FINFLOWS_PAYMENT_APPROVERS", "role:op,dan")
    from finflows import settings

    assert settings.payment_approvers() == ["ann", "cat", "dan"]
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", "some.other.AuthManager")
    with pytest.raises(settings.ApproverConfigError, match="list the approvers' user ids"):
        settings.payment_approvers()

    mail = approval.refusal_email("mega", "expired", None, "no approver is configured …", [], asked=False)
    assert "not answered in time" not in mail.text and "nobody who may approve it could be asked" in mail.text
    assert "NOT APPROVED (nobody could be asked)" in mail.subject


# ---------------------------------------------------------------------------- a restore
def _dump(pg_dsn: str, path) -> None:
    from devstack.chaos import dump

    dump(path)


def _restore(pg, pg_dsn: str, path) -> None:
    """The finance database's payment schema back to the dump, as a restore would leave it (the
    chaos day's own restore: rows and sequences of then, the owner's triggers off meanwhile)."""
    from devstack.chaos import restore

    restore(pg, path)


@pytest.mark.parametrize("dumped", ["payments pending", "batch made"])
def test_a_restored_finance_database_never_sends_a_payment_twice(
    clean_payments, pg, db, pg_dsn, cfg, local_dir, s3_hook, tmp_path, dumped
):
    refs = pay.add(pg, "esun", 3, due=MONDAY)
    if dumped == "batch made":
        _prepare(db, cfg, "esun", at(6, 0), "scheduled__mon", None)
    _dump(pg_dsn, tmp_path / "finance.dump")

    first = pay.pay_bank(db, cfg, "esun", now=at(6, 1))
    assert [x["outcome"] for x in first.deliveries] == ["uploaded"]
    [(name, sent)] = pay.uploaded(local_dir, "esun").items()
    references = sorted(payments_in(pay.decrypt_as_bank("esun", sent), cfg.bank("esun").encoding))
    assert references == sorted(refs)
    (local_dir / "sftp" / "esun" / "upload" / name).unlink()  # the bank took it
    [record] = records(s3_hook).records("esun", MONDAY)
    assert record.file_name == name and record.references == frozenset(refs)

    _restore(pg, pg_dsn, tmp_path / "finance.dump")
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "pending" if dumped == "payments pending" else "batched")

    again = pay.pay_bank(db, cfg, "esun", now=at(9, 0), run_id="after-restore")
    [stopped] = again.deliveries
    assert stopped["outcome"] == "uncertain", stopped
    assert "sent according to the archive record" in stopped["error"] and name in stopped["error"]
    assert retry(db, cfg, at(10, 0)) == []
    assert pay.uploaded(local_dir, "esun") == {}, "a payment reached the bank twice"
    assert pay.pay_bank(db, cfg, "esun", now=at(11, 0), run_id="later").deliveries[0]["outcome"] == "uncertain"
    assert pay.uploaded(local_dir, "esun") == {}

    invariants.sync(db, invariants.check(db, cfg, at(11, 1)))
    [row] = invariants.open_rows(db)
    assert row["kind"] == "sent_record" and "sent according to the archive record" in row["what"]
    full = invariants.check(db, cfg, at(11, 2), everything=True, records=records(s3_hook), s3_hook=s3_hook)
    assert "send_record_known" not in {f.kind for f in full.findings}  # the uncertain batch accounts for it

    delivery.decide(db, stopped["batch_id"], "bank_has_it", by="treasurer", note="the bank confirmed the file")
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")
    assert invariants.open_rows(db) == []
    full = invariants.check(db, cfg, at(11, 3), everything=True, records=records(s3_hook), s3_hook=s3_hook)
    assert full.findings == []


def payments_in(plain: bytes, encoding: str) -> set[str]:
    """The payment references a bank reads in a CSV file we sent: the column its header names."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(plain.decode(encoding))))
    return {r["reference"] for r in rows}


def test_a_restore_is_found_by_the_invariant_check_before_any_run(clean_payments, pg, db, pg_dsn, cfg, s3_hook,
                                                                   tmp_path):  # fmt: skip
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    _dump(pg_dsn, tmp_path / "finance.dump")
    pay.pay_bank(db, cfg, "esun", now=at(6, 1))
    _restore(pg, pg_dsn, tmp_path / "finance.dump")
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "pending")
    found = invariants.check(db, cfg, at(6, 30), everything=True, records=records(s3_hook), s3_hook=s3_hook)
    [f] = [f for f in found.findings if f.kind == "send_record_known"]
    assert "no batch of that name" in f.what and "restored" in f.what

    from tests.conftest import REPO

    env = os.environ | {"PYTHONPATH": f"{REPO / 'plugins'}:{REPO}"}
    cli = [sys.executable, "-m", "finflows.flows.banking.invariants", "check"]
    # the test's Monday lies further back than the default window from the real date: counted, as
    # the check counts, in Taipei (from 16:00 UTC Taipei is a day ahead, and the window missed Monday)
    days = str((dt.datetime.now(TAIPEI).date() - MONDAY).days + 1)
    out = subprocess.run([*cli, "--all", "--days", days], check=False, capture_output=True, text=True, timeout=300,
                         env=env, cwd=REPO)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "FOUND [send_record_known]" in out.stdout and "checked archive_opens" in out.stdout
    assert [r["kind"] for r in invariants.open_rows(db)] == ["send_record_known"]
    quiet = subprocess.run([*cli, "--no-sync"], check=False, capture_output=True, text=True, timeout=300, env=env,
                           cwd=REPO)  # fmt: skip
    assert quiet.returncode == 0, quiet.stdout  # the cheap checks alone see nothing wrong in the database


# ---------------------------------------------------------------------------- where a person sees it
def test_bank_health_checks_the_invariants_every_run_and_alerts_a_new_row_once(
    clean_payments, pg, db, cfg, local_dir, mailbox
):
    """bank_health's summary task body: the cheap invariants, the attention list kept, a new row
    emailed to treasury and operations once (not on every five-minute run)."""
    from finflows.flows.banking.tasks import health as health_tasks

    upload = local_dir / "sftp" / "esun" / "upload"
    pay.add(pg, "esun", 1, due=MONDAY, amount=2300)
    os.chmod(upload, 0o555)
    try:
        [d] = pay.pay_bank(db, cfg, "esun", now=at(6, 0)).deliveries
    finally:
        os.chmod(upload, 0o755)
    assert d["outcome"] == "gave_up"
    check = {"bank": "esun", "ok": True, "transition": None, "error": None, "circuit": "closed"}
    seen = mailbox.names()
    first = health_tasks.health_summary(["esun"], [check])
    assert first["attention"]["new"] >= 1 and first["attention"]["open"] >= 1
    mail = mailbox.wait_for(lambda m: "[finflows] ATTENTION" in m["Subject"], since=seen, timeout=60)
    text = mail.get_body(("plain",)).get_content()
    assert d["file_name"] in text and "re-queues or cancels it" in text and "NTD 2,300" in text
    payee = pg.execute("SELECT payee_name, payee_account FROM pay.payment").fetchone()
    assert payee[0] not in text and payee[1] not in text, "the alert names a payee"
    seen = mailbox.names()
    again = health_tasks.health_summary(["esun"], [check])
    assert again["attention"]["new"] == 0 and again["attention"]["open"] == first["attention"]["open"]
    import time

    time.sleep(2)
    assert not [m for m in mailbox.messages(seen) if "ATTENTION" in m["Subject"]], "alerted twice"


def test_the_daily_report_lists_the_attention_list_and_says_when_it_is_empty():
    from finflows.flows.banking import daily_report

    archive = {"files": 0, "verified": 0, "missing": [], "prefix": "s3://a/b/"}
    empty = daily_report.Report(MONDAY, [daily_report.BankDay("mega")], attention=invariants.describe([]))
    subject, body = daily_report.render(empty, "chart.png", archive)
    assert subject.endswith("all clear") and "The attention list is empty" in body
    row = {"kind": "given_up", "what": "esun: F.csv (1 payment(s), NTD 900) was given up", "next_step": "re-queue it",
           "deadline": at(15, 0), "raised_at": at(6, 0), "cleared_at": None}  # fmt: skip
    full = daily_report.Report(MONDAY, [daily_report.BankDay("mega")], attention=invariants.describe([row]))
    subject, body = daily_report.render(full, "chart.png", archive)
    assert subject.endswith("0 item(s) need attention, 1 on the attention list")
    assert "[given_up] esun: F.csv (1 payment(s), NTD 900) was given up Next: re-queue it; by 2026-11-23 15:00" in body
