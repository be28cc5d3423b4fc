"""finance_daily_report end to end with dag.test(): a seeded banking day, the email with its chart
in the SMTP sink, the report and manifest in the S3 archive, and a tampered archive copy caught."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from zoneinfo import ZoneInfo

import pytest

from finflows.flows.banking import health, reconciliation
from tests.helpers import payments as pay
from tests.helpers import tch
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
TAIPEI = ZoneInfo("Asia/Taipei")
DAY = dt.date(2026, 11, 23)  # a Monday
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


def at(hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=TAIPEI)


@pytest.fixture
def banking_day(clean_payments, pg, db, cfg, local_dir, monkeypatch):
    """Mega 3 × 2,500 sent, one returned, one line unmatched; Taishin 2 × 700 sent; E.SUN's 900 not
    delivered (server unreachable); First 1 payment never batched; CTBC's circuit open; Mega's checks."""
    mega = pay.add(pg, "mega", 3, due=DAY, amount=2500)
    pay.add(pg, "taishin", 2, due=DAY, amount=700)
    pay.add(pg, "esun", 1, due=DAY, amount=900)
    pay.add(pg, "first", 1, due=DAY, amount=100)
    down = json.loads(os.environ["AIRFLOW_CONN_SFTP_ESUN"]) | {"port": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_DOWN", json.dumps(down))
    for bank in ("mega", "taishin"):
        pay.pay_bank(db, cfg, bank, now=at(6))
    pay.pay_bank(db, cfg, "esun", now=at(6), sftp_conn="sftp_down")
    [batch_file] = pay.uploaded(local_dir, "mega")
    m = cfg.bank("mega")
    stranger = tch.payment_detail(
        seq=4,
        txid="405",
        pbank=m.sending_unit,
        pclno=m.presenting_account,
        rbank="0172026",
        rclno="000000000099",
        amount=1234,
        cid=cfg.originator.company_id,
        pid="X1234567",
        cno="NOSUCHPAYMENT",
    )
    plain = pay.return_file(
        pg, cfg, batch_file, {mega[1]: "22"}, paid=None, extra=[tch.return_of(stranger, seq=0, rcode="04", pdate=DAY)]
    )
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, cfg, today=DAY)
    assert out["outcome"] == "applied"
    # Mega lists only returns: its other two payments settle when the return window closes (here: at once)
    assert len(reconciliation.settle_unreturned(db, cfg.bank("mega"), DAY + dt.timedelta(days=7), "test")) == 2
    pg.execute("UPDATE pay.payment_event SET at = %s WHERE to_status = 'settled'", (at(17, 10),))
    # the day happened on DAY: the batches were made and sent at 06:00, the return came at 17:05
    pg.execute(
        "UPDATE pay.batch SET created_at = %s, uploaded_at = CASE WHEN uploaded_at IS NOT NULL THEN %s END",
        (at(6), at(6, 1)),
    )
    pg.execute("UPDATE pay.transfer SET started_at = %s, finished_at = %s", (at(6), at(6, 1)))
    pg.execute("UPDATE ops.file_control SET started_at = %s WHERE flow = 'bank_reconciliation'", (at(17, 5),))
    for minute, ok, ms in ((0, True, 40), (5, True, 60), (10, False, 10000)):
        health.record(
            db,
            health.Check("mega", ok, ms, None if ok else "timeout"),
            at(9, minute),
            "test",
            failures_to_open=3,
            half_open_after=dt.timedelta(minutes=5),
        )
    now = dt.datetime.now(dt.UTC)
    for _ in range(3):  # open now, so still open when the report runs
        health.record(
            db,
            health.Check("ctbc", False, 5, "refused"),
            now,
            "test",
            failures_to_open=3,
            half_open_after=dt.timedelta(minutes=5),
        )
    return batch_file


def test_the_report_email_has_the_days_totals_and_its_chart_and_the_day_is_archived(
    banking_day, pg, mailbox, s3_hook, local_dir
):
    from airflow.utils.state import DagRunState
    from PIL import Image

    seen = mailbox.names()
    assert load_dag("finance_daily_report").test(run_conf={"day": "2026-11-23"}).state == DagRunState.SUCCESS
    mail = mailbox.wait_for(lambda m: "finance daily report 2026-11-23" in m["Subject"], since=seen)
    assert mail["Subject"].endswith(
        "sent NTD 8,900 in 2 file(s), settled NTD 5,000, returned NTD 2,500; 4 item(s) need attention, "
        "1 on the attention list"
    )
    assert mail.get_content_type() == "multipart/related"
    body = mail.get_body(("html",)).get_content()
    chart = "finance_daily_2026-11-23.png"
    assert f'src="cid:{chart}"' in body
    [png] = [p for p in mail.iter_attachments() if p["Content-ID"] == f"<{chart}>"]
    image = Image.open(io.BytesIO(png.get_payload(decode=True)))
    assert image.format == "PNG" and image.size == (700, 320)

    def row(bank: str) -> str:
        return body.split(f"<tr><td>{bank}</td>", 1)[1].split("</tr>", 1)[0]

    r = "<td align=right>"
    # files sent, payments, NTD sent, files not sent, settled, NTD settled, returned, NTD returned, unmatched
    assert row("mega").startswith(
        f"{r}1</td>{r}3</td>{r}7,500</td>{r}0</td>{r}2</td>{r}5,000</td>{r}1</td>{r}2,500</td>{r}1</td>"
    )
    assert row("taishin").startswith(f"{r}1</td>{r}2</td>{r}1,400</td>{r}0</td>")
    assert row("esun").startswith(f"{r}0</td>{r}0</td>{r}0</td>{r}1</td>")
    assert row("esun").endswith(
        f"{r}1</td>{r}0</td><td>–</td><td>closed</td>{r}0</td>"
    )  # one transfer failure; nothing pending
    assert row("first").endswith(f"<td>closed</td>{r}1</td>")  # never batched: still pending
    assert "<td>open</td>" in row("ctbc")
    assert f"{r}1</td>{r}60</td><td>closed</td>" in row("mega")  # 1 failed check, p95 of the good ones
    for item in (
        "esun: 1 file(s) made on 2026-11-23 not delivered (NTD 900)",
        "esun: 1 transfer failures",
        "mega: 1 unmatched",
        "ctbc: circuit open",
    ):
        assert f"<li>{item}</li>" in body
    assert "Files processed: 3; archived and verified (sha256)" in body and "missing" not in body
    # esun's file that never went is still queued long past its cutoff: the attention list says so
    attention = body.split("<h3>Attention list", 1)[1].split("</ul>", 1)[0]
    assert "[past_cutoff] esun:" in attention and "nothing has cancelled it" in attention
    assert "<li>mega: 1 × 22 account closed (帳戶已結清), NTD 2,500</li>" in body

    client = s3_hook.get_conn()
    prefix = "finance-daily/2026-11-23/"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=ARCHIVE, Prefix=prefix)["Contents"]}
    assert keys == {prefix + k for k in ("report.html", chart, "totals.json", "manifest.json")}
    totals = json.loads(client.get_object(Bucket=ARCHIVE, Key=prefix + "totals.json")["Body"].read())
    assert totals["total"]["ntd_sent"] == 8900 and totals["total"]["ntd_returned"] == 2500
    manifest = json.loads(client.get_object(Bucket=ARCHIVE, Key=prefix + "manifest.json")["Body"].read())
    assert sorted((f["kind"], f["file_name"]) for f in manifest["files"]) == sorted(
        [
            ("payment", banking_day),
            ("payment", next(iter(pay.uploaded(local_dir, "taishin")))),
            ("return", "ACHR01_017_20261123_01.txt"),
        ]
    )
    # every file names its keys: the bank's it was encrypted to and ours that signed it; the bank's
    # that signed a return file
    from devstack import secrets

    local = secrets.pgp_keys()
    by_name = {f["file_name"]: f for f in manifest["files"]}
    assert (by_name[banking_day]["encrypted_to"], by_name[banking_day]["signed_with"]) == (
        local["mega"]["fingerprint"], local["finflows"]["fingerprint"])  # fmt: skip
    assert by_name["ACHR01_017_20261123_01.txt"]["signed_with"] == local["mega"]["fingerprint"]


def test_an_archived_copy_that_differs_fails_the_run_and_the_report_names_it(banking_day, pg, mailbox, s3_hook):
    from airflow.utils.state import DagRunState

    [uri] = pg.execute("SELECT archive_uri FROM pay.batch WHERE bank = 'mega'").fetchone()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3_hook.get_conn().put_object(Bucket=bucket, Key=key, Body=b"someone changed this")
    seen = mailbox.names()
    assert load_dag("finance_daily_report").test(run_conf={"day": "2026-11-23"}).state == DagRunState.FAILED
    mail = mailbox.wait_for(lambda m: "finance daily report 2026-11-23" in m["Subject"], since=seen)
    assert f"mega/{banking_day} (archived copy differs)" in mail.get_body(("html",)).get_content()
