"""bank_payments against the real stack: PostgreSQL, PGP (gpg), the banks' SFTP server, S3 archive."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import asdict
from zoneinfo import ZoneInfo

import psycopg
import pytest
import time_machine

from finflows import pgp
from finflows.flows.banking import payments
from finflows.formats import ach
from tests.helpers import payments as pay
from tests.helpers import tch
from tests.helpers.payments import pay_bank as run

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)  # a business day


def taipei(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=TAIPEI)


def test_payments_reach_the_bank_encrypted_signed_and_byte_exact(clean_payments, db, pg, cfg, local_dir):
    refs = pay.add(pg, "mega", 3, due=MONDAY, name="林美玲")
    result = run(db, cfg, "mega", now=taipei(MONDAY, 6, 0))

    assert result.processing_date == "2026-11-23" and result.batches_created == 1 and result.payments_batched == 3
    [(name, cipher)] = pay.uploaded(local_dir, "mega").items()
    assert name == "ACHP01_017_20261123_001.txt"  # no .part left behind
    plain = pay.decrypt_as_bank("mega", cipher)  # decrypts with mega's key, checks our signature

    batch = pg.execute("SELECT id, created_at FROM pay.batch").fetchone()
    mega = cfg.bank("mega")
    rows = pg.execute(
        "SELECT reference, payee_bank, payee_account, amount::int, payee_id, seq FROM pay.payment ORDER BY seq"
    ).fetchall()
    expected = tch.file(  # what Mega expects, built from the clearing house's public layout, not by our writer
        "ACHP01",
        MONDAY,
        "0170000",  # SORG: Mega's head office, as banks.yaml says
        [
            tch.payment_detail(
                seq=seq,
                txid="405",
                pbank="0172026",
                pclno=os.environ["FINFLOWS_ACCOUNT_MEGA"],
                rbank=unit,
                rclno=acct,
                amount=amount,
                cid=os.environ["FINFLOWS_ACH_COMPANY_ID"],
                pid=pid,
                cno=tch.cno(ref),
                note="林美玲",
                memo="貨款",
            )
            for ref, unit, acct, amount, pid, seq in rows
        ],
        ttime=batch[1].astimezone(TAIPEI).strftime("%H%M%S"),
    )
    assert mega.sending_org == "0170000" and mega.default_txn_code == "405"
    assert plain == expected
    parsed = ach.read_ach(plain, name, "ACHP01")
    assert [d["customer_number"] for d in parsed.details] == [tch.cno(r) for r in refs]
    assert parsed.trailer["previous_business_day"] is None  # YDATE is blank in an ACHP01

    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    transfer = pg.execute(
        "SELECT outcome, attempts, payment_count, total_amount, bytes, plain_sha256, cipher_sha256 FROM pay.transfer"
    ).fetchall()
    assert transfer == [("uploaded", 1, 3, 3003, len(cipher), payments._sha(plain), payments._sha(cipher))]
    trail = pg.execute(
        "SELECT from_status, to_status, dag_run_id FROM pay.payment_event WHERE payment_id = 1 ORDER BY id"
    ).fetchall()
    assert trail == [(None, "pending", None), ("pending", "batched", "test"), ("batched", "uploaded", "test")]


def test_finance_opens_its_own_archived_copy_and_the_daily_check_proves_it(clean_payments, db, pg, cfg, s3_hook):
    """The file is encrypted to the bank and to us: the archive is finance's own record of what it
    sent. The daily report's manifest check opens each archived payment file with our key."""
    from finflows.flows.banking import common, daily_report

    pay.add(pg, "mega", 2, due=MONDAY)
    run(db, cfg, "mega", now=taipei(MONDAY, 6, 0))
    uri, plain_sha, cipher_sha = pg.execute("SELECT archive_uri, plain_sha256, cipher_sha256 FROM pay.batch").fetchone()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    archived = s3_hook.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
    with common.own_decrypter(cfg) as open_own:
        assert payments._sha(open_own(archived)) == plain_sha  # our key alone opens it
        assert pay.decrypt_as_bank("mega", archived)  # and the bank's still does
        files = [
            {
                "kind": "payment",
                "bank": "mega",
                "file_name": "f",
                "archive_uri": uri,
                "sha256": cipher_sha,
                "plain_sha256": plain_sha,
            }
        ]
        assert daily_report.verify_archive(s3_hook, files, open_own) == []
        # a copy only the bank can open (as every file was before): the check names it
        bank_only = pay.encrypt_as_bank("mega", b"x", recipient="mega")  # encrypted to the bank alone
        s3_hook.get_conn().put_object(Bucket=bucket, Key=key, Body=bank_only)
        files[0]["sha256"] = payments._sha(bank_only)
        [bad] = daily_report.verify_archive(s3_hook, files, open_own)
        assert bad.startswith("mega/f (archived copy does not open with our key")


def test_a_re_run_creates_and_uploads_nothing(clean_payments, db, pg, cfg, local_dir):
    pay.add(pg, "ctbc", 2, due=MONDAY)
    first = run(db, cfg, "ctbc", now=taipei(MONDAY, 6, 0))
    before = pay.uploaded(local_dir, "ctbc")
    second = run(db, cfg, "ctbc", now=taipei(MONDAY, 6, 5), run_id="the-next-run")

    assert first.batches_created == 1 and second.batches_created == 0 and second.deliveries == []
    assert pay.uploaded(local_dir, "ctbc") == before
    assert pg.execute("SELECT count(*) FROM pay.transfer").fetchone()[0] == 1
    assert pg.execute("SELECT count(*) FROM pay.batch").fetchone()[0] == 1


def test_a_cleared_try_sends_nothing_and_still_reports_what_its_run_delivered(clean_payments, db, pg, cfg, local_dir):
    pay.add(pg, "ctbc", 2, due=MONDAY, amount=50_250)
    pay.add(pg, "ctbc", 1, due=MONDAY, amount=491_750)
    first = run(db, cfg, "ctbc", now=taipei(MONDAY, 6, 0), run_id="scheduled__1")
    before = pay.uploaded(local_dir, "ctbc")
    cleared = run(db, cfg, "ctbc", now=taipei(MONDAY, 6, 20), run_id="scheduled__1")  # the same run, cleared

    assert pay.uploaded(local_dir, "ctbc") == before and cleared.batches_created == 0
    [d] = cleared.deliveries
    assert (d["outcome"], d["file_name"], d["payment_count"], d["total_amount"]) == (
        "already_delivered",
        first.deliveries[0]["file_name"],
        3,
        592_250,
    )
    assert "delivered by an earlier try of this run" in d["error"]
    assert payments.summary([asdict(first)])[0] == payments.summary([asdict(cleared)])[0]
    assert "1 file(s), 3 payment(s), NTD 592,250" in payments.summary([asdict(cleared)])[0]
    assert pg.execute("SELECT count(*) FROM pay.transfer").fetchone()[0] == 1


def test_two_runs_at_once_batch_each_payment_once(clean_payments, pg_dsn, pg, cfg, local_dir):
    refs = pay.add(pg, "first", 40, due=MONDAY)
    results, errors = [], []

    def one():
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                results.append(run(conn, cfg, "first", now=taipei(MONDAY, 7, 0)))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.payments_batched for r in results) == [0, 40]
    assert len(pay.uploaded(local_dir, "first")) == 1
    assert pg.execute(
        "SELECT count(DISTINCT batch_id), count(*) FROM pay.payment WHERE reference = ANY(%s)", (refs,)
    ).fetchone() == (1, 40)


@pytest.mark.parametrize("unit", ["0000000", "9990000", "8220004"])
def test_a_payment_to_a_unit_the_clearing_house_does_not_list_is_refused_and_stays_pending(
    clean_payments, db, pg, cfg, local_dir, unit
):
    good = pay.add(pg, "mega", 1, due=MONDAY)
    [bad] = pay.add(pg, "mega", 1, due=MONDAY, payee_bank=unit, ref_prefix="NOUNIT")
    result = run(db, cfg, "mega", now=taipei(MONDAY, 6, 0))
    [refused] = result.refused
    assert refused["reference"] == bad and unit in refused["error"] and "unit table" in refused["error"]
    assert pay.statuses(pg, [bad]) == {bad: "pending"} and pay.statuses(pg, good) == {good[0]: "uploaded"}
    [(name, cipher)] = pay.uploaded(local_dir, "mega").items()
    assert [d["customer_number"] for d in ach.read_ach(pay.decrypt_as_bank("mega", cipher), name).details] == [
        tch.cno(r) for r in good
    ]


def test_csv_bank_gets_its_variant_in_its_encoding(clean_payments, db, pg, cfg, local_dir):
    refs = pay.add(pg, "taishin", 2, due=MONDAY, name="Zoë 陳 😀")  # taishin takes UTF-8 CSV
    run(db, cfg, "taishin", now=taipei(MONDAY, 6, 0))
    [(name, cipher)] = pay.uploaded(local_dir, "taishin").items()
    rows = ach.read_csv(pay.decrypt_as_bank("taishin", cipher), name, "utf-8")
    assert name == "TS_PAY_20261123_001.csv"
    assert [(r["reference"], r["payee_name"], r["processing_date"]) for r in rows] == [
        (ref, "Zoë 陳 😀", "2026-11-23") for ref in refs
    ]


def test_a_name_big5_cannot_hold_is_refused_by_name_and_stays_pending(clean_payments, db, pg, cfg, local_dir):
    good = pay.add(pg, "esun", 2, due=MONDAY)
    bad = pay.add(pg, "esun", 1, due=MONDAY, name="王😀明", ref_prefix="EMOJI")  # esun: CSV in cp950
    long = pay.add(pg, "mega", 1, due=MONDAY, name="A" * 39 + "王", ref_prefix="STRADDLE")
    pay.add(pg, "mega", 1, due=MONDAY)

    esun = run(db, cfg, "esun", now=taipei(MONDAY, 6, 0))
    mega = run(db, cfg, "mega", now=taipei(MONDAY, 6, 0))
    assert [r["reference"] for r in esun.refused] == bad and "cannot be encoded in cp950" in esun.refused[0]["error"]
    assert [r["reference"] for r in mega.refused] == long and "41 bytes" in mega.refused[0]["error"]
    assert pay.statuses(pg, bad + long) == {bad[0]: "pending", long[0]: "pending"}
    assert set(pay.statuses(pg, good).values()) == {"uploaded"}
    assert any("refused" in p for p in mega.problems)


def test_batches_are_split_by_count_and_numbered(clean_payments, db, pg, cfg, local_dir):
    small = cfg.model_copy(update={"originator": cfg.originator.model_copy(update={"max_payments_per_batch": 4})})
    pay.add(pg, "mega", 10, due=MONDAY)
    result = run(db, small, "mega", now=taipei(MONDAY, 6, 0))
    uploaded = pay.uploaded(local_dir, "mega")
    assert result.batches_created == 3 and sorted(uploaded) == [f"ACHP01_017_20261123_00{n}.txt" for n in (1, 2, 3)]
    counts = [len(ach.read_ach(pay.decrypt_as_bank("mega", uploaded[n]), n).details) for n in sorted(uploaded)]
    assert counts == [4, 4, 2]


# ---------------------------------------------------------------------------- cutoff (wall clock moved)
def as_shipped(cfg, bank_id: str):
    """The suite's configuration with the bank asking a second person, as the shipped banks.yaml has it."""
    bank = cfg.bank(bank_id).model_copy(update={"approval": "required"})
    return cfg.model_copy(update={"banks": {**cfg.banks, bank_id: bank}})


@pytest.mark.parametrize(
    ("bank", "now", "due", "taken", "processing"),
    [
        ("ctbc", taipei(MONDAY, 14, 59), MONDAY, True, "2026-11-23"),  # before ctbc's 15:30 cutoff less 30 min
        # ctbc asks a second person: an approval asked after 15:00 could only expire unanswered,
        # so the batch is made for Tuesday (and approved for it) instead
        ("ctbc", taipei(MONDAY, 15, 1), MONDAY, True, "2026-11-24"),
        ("ctbc", taipei(MONDAY, 15, 31), MONDAY, True, "2026-11-24"),  # after the cutoff: Tuesday
        ("esun", taipei(MONDAY, 14, 29), MONDAY, True, "2026-11-23"),  # no approval: up to the 14:30 cutoff
        ("esun", taipei(MONDAY, 14, 31), MONDAY, True, "2026-11-24"),
        ("ctbc", taipei(MONDAY, 14, 59), MONDAY + dt.timedelta(days=1), False, "2026-11-23"),  # due tomorrow: waits
        ("ctbc", taipei(dt.date(2026, 11, 27), 16, 0), dt.date(2026, 11, 30), True, "2026-11-30"),  # Friday late
        ("ctbc", taipei(dt.date(2026, 11, 21), 10, 0), dt.date(2026, 11, 21), True, "2026-11-23"),  # Saturday
        (
            "ctbc",
            taipei(dt.date(2026, 12, 24), 15, 45),
            dt.date(2026, 12, 24),
            True,
            "2026-12-28",
        ),  # Christmas Day is a holiday
    ],
)
def test_cutoff_and_business_days(clean_payments, db, pg, cfg, bank, now, due, taken, processing):
    cfg = as_shipped(cfg, "ctbc")  # esun stays approval: none, as shipped
    refs = pay.add(pg, bank, 1, due=due)
    with time_machine.travel(now, tick=False):
        result = payments.make_batches(db, cfg, bank, None, "test")  # None: the (moved) wall clock
    assert result.processing_date == processing
    assert pay.statuses(pg, refs)[refs[0]] == ("batched" if taken else "pending")


def test_the_last_call_is_the_cutoff_less_the_approval_margin_where_a_person_approves(cfg):
    assert payments.last_call(cfg.bank("esun"), dt.timedelta(minutes=30)) == dt.time(14, 30)  # approval: none
    ctbc = as_shipped(cfg, "ctbc").bank("ctbc")
    assert payments.last_call(ctbc, dt.timedelta(minutes=30)) == dt.time(15, 0)
    assert payments.last_call(ctbc, dt.timedelta(minutes=45)) == dt.time(14, 45)


# ---------------------------------------------------------------------------- transfer failures
@pytest.fixture
def sftp_down(monkeypatch):
    """A bank SFTP connection to a port nothing listens on."""
    conn = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"]) | {"port": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_DOWN", json.dumps(conn))
    return "sftp_down"


def retry(db, cfg, batch_id: int, bank: str, now: dt.datetime, circuit=None):
    """One retry-queue attempt as bank_transfer_retry makes it, against the working server."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return payments.retry_one(
        db,
        cfg=cfg,
        batch_id=batch_id,
        bank_id=bank,
        now=now,
        run_id="retry",
        transport=payments.Transport(
            s3_hook=S3Hook(aws_conn_id="aws_finflows"),
            sftp_hook=SFTPHook(ssh_conn_id=cfg.bank(bank).sftp_conn_id),
            # a queued batch is read back from the URI its row records; the bucket holds the send records
            archive_bucket=os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
            attempts=1,
            backoff=0.01,
        ),
        limit=5,
        circuit=circuit,
    )


def queued_at(pg, when: dt.datetime) -> None:
    """The queue's clock is the database's; these tests run on Monday's clock (the real date may be
    later): put the queued entry where Monday's run would have put it."""
    pg.execute("UPDATE pay.transfer_retry SET enqueued_at = %s, next_attempt_at = %s", (when, when))


def test_a_failed_transfer_is_queued_and_the_retry_delivers_it(clean_payments, db, pg, cfg, local_dir, sftp_down):
    refs = pay.add(pg, "mega", 2, due=MONDAY)
    result = run(db, cfg, "mega", now=taipei(MONDAY, 6, 0), sftp_conn=sftp_down, attempts=2)
    [d] = result.deliveries
    assert d["outcome"] == "queued" and d["attempts"] == 2 and "queued" in result.problems[0]
    assert pay.uploaded(local_dir, "mega") == {}
    assert set(pay.statuses(pg, refs).values()) == {"batched"}
    assert pg.execute("SELECT status FROM pay.batch").fetchone()[0] == "queued"
    assert pg.execute("SELECT outcome, attempts FROM pay.transfer").fetchall() == [("failed", 2)]
    assert pg.execute("SELECT status FROM pay.transfer_retry").fetchone()[0] == "waiting"
    archived = pg.execute("SELECT cipher_sha256 FROM pay.batch").fetchone()[0]
    queued_at(pg, taipei(MONDAY, 6, 1))
    assert payments.waiting_transfers(db, taipei(MONDAY, 6, 0)) == []  # not due before it was queued

    [(batch_id, bank)] = payments.waiting_transfers(db, taipei(MONDAY, 7, 0))
    retried = retry(db, cfg, batch_id, bank, taipei(MONDAY, 7, 0))
    assert retried.outcome == "uploaded"
    [(name, cipher)] = pay.uploaded(local_dir, "mega").items()
    assert payments._sha(cipher) == archived  # the same bytes that were made and archived the first time
    assert len(ach.read_ach(pay.decrypt_as_bank("mega", cipher), name).details) == 2
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    assert pg.execute("SELECT status, attempts FROM pay.transfer_retry").fetchone() == ("delivered", 1)
    assert pg.execute("SELECT outcome FROM pay.transfer ORDER BY id").fetchall() == [("failed",), ("uploaded",)]
    assert payments.waiting_transfers(db, taipei(MONDAY, 8, 0), everything=True) == []


def test_a_queued_batch_past_its_cutoff_is_cancelled_and_its_payments_roll(
    clean_payments, db, pg, cfg, local_dir, sftp_down
):
    refs = pay.add(pg, "mega", 2, due=MONDAY)
    run(db, cfg, "mega", now=taipei(MONDAY, 6, 0), sftp_conn=sftp_down)
    queued_at(pg, taipei(MONDAY, 6, 1))
    [(batch_id, bank)] = payments.waiting_transfers(db, taipei(MONDAY, 16, 0))
    d = retry(db, cfg, batch_id, bank, taipei(MONDAY, 16, 0))
    assert d.outcome == "expired" and pay.uploaded(local_dir, "mega") == {}
    assert set(pay.statuses(pg, refs).values()) == {"pending"}
    assert pg.execute("SELECT status FROM pay.batch").fetchone()[0] == "cancelled"

    again = run(db, cfg, "mega", now=taipei(MONDAY, 16, 5))  # the next run: Tuesday's batch
    assert again.processing_date == "2026-11-24" and again.payments_batched == 2
    assert sorted(pay.uploaded(local_dir, "mega")) == ["ACHP01_017_20261124_001.txt"]


def test_a_file_already_complete_on_the_server_is_not_sent_twice(clean_payments, db, pg, cfg, local_dir):
    """The upload finished but its bookkeeping was lost: the next try finds it and records it."""
    pay.add(pg, "mega", 1, due=MONDAY)
    run(db, cfg, "mega", now=taipei(MONDAY, 6, 0))
    [name] = pay.uploaded(local_dir, "mega")
    mtime = (local_dir / "sftp" / "mega" / "upload" / name).stat().st_mtime_ns
    with db.transaction():  # forget the delivery, as if the commit after the rename had been lost
        db.execute("SELECT set_config('finflows.reason', 'test', true)")
        db.execute("DELETE FROM pay.transfer")
        db.execute("ALTER TABLE pay.batch DISABLE TRIGGER USER")
        db.execute("UPDATE pay.batch SET status = 'sending', send_step = 'rename', uploaded_at = NULL")
        db.execute("ALTER TABLE pay.batch ENABLE TRIGGER USER")
        db.execute("ALTER TABLE pay.payment DISABLE TRIGGER USER")
        db.execute("UPDATE pay.payment SET status = 'batched'")
        db.execute("ALTER TABLE pay.payment ENABLE TRIGGER USER")
    result = run(db, cfg, "mega", now=taipei(MONDAY, 6, 30))
    assert [d["outcome"] for d in result.deliveries] == ["already_there"]
    assert (local_dir / "sftp" / "mega" / "upload" / name).stat().st_mtime_ns == mtime
    assert pg.execute("SELECT status FROM pay.payment").fetchone()[0] == "uploaded"


def test_the_state_machine_refuses_a_skipped_step(clean_payments, pg):
    [ref] = pay.add(pg, "mega", 1, due=MONDAY)
    with pytest.raises(psycopg.errors.CheckViolation, match=r"pending → settled is not an allowed transition"):
        pg.execute("UPDATE pay.payment SET status = 'settled' WHERE reference = %s", (ref,))


def test_a_key_whose_fingerprint_is_not_the_pinned_one_is_refused(cfg):
    from tests.helpers.payments import bank_keys

    with pgp.keyring() as ring, pytest.raises(pgp.PgpError, match="the configuration pins"):
        ring.add(bank_keys("ctbc")["bank"]["public"], cfg.bank("mega").pgp_key_fingerprint, "connection pgp_bank_mega")
