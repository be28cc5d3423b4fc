"""bank_payments and bank_transfer_retry end to end with dag.test(): real SFTP, PGP, S3, SMTP."""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest

from finflows.formats import ach
from tests.helpers import payments as pay
from tests.helpers import tch
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def today_taipei() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Taipei")).date()


def test_daily_run_uploads_each_bank_once_and_emails_treasury(clean_payments, pg, local_dir, mailbox):
    from airflow.utils.state import DagRunState

    mega = pay.add(pg, "mega", 3, due=today_taipei(), amount=2500)
    taishin = pay.add(pg, "taishin", 2, due=today_taipei(), amount=700)
    seen = mailbox.names()
    dag = load_dag("bank_payments")

    assert dag.test().state == DagRunState.SUCCESS
    [(mega_name, mega_file)] = pay.uploaded(local_dir, "mega").items()
    [(ts_name, ts_file)] = pay.uploaded(local_dir, "taishin").items()
    assert [d["customer_number"] for d in ach.read_ach(pay.decrypt_as_bank("mega", mega_file), mega_name).details] == [
        tch.cno(r) for r in mega
    ]
    assert [r["reference"] for r in ach.read_csv(pay.decrypt_as_bank("taishin", ts_file), ts_name, "utf-8")] == taishin
    for bank in ("ctbc", "esun", "first"):
        assert pay.uploaded(local_dir, bank) == {}
    mail = mailbox.wait_for(lambda m: "bank payments OK" in m["Subject"], since=seen)
    assert (
        "2 file(s), 5 payment(s), NTD 8,900" in mail["Subject"] and mail["To"] == os.environ["FINFLOWS_TREASURY_EMAIL"]
    )
    assert mega_name in mail.get_body().get_content()

    # the same day again: no new batch, nothing uploaded twice
    assert dag.test().state == DagRunState.SUCCESS
    assert pay.uploaded(local_dir, "mega") == {mega_name: mega_file}
    assert pg.execute("SELECT count(*) FROM pay.batch").fetchone()[0] == 2
    assert pg.execute("SELECT count(*) FROM pay.transfer").fetchone()[0] == 2


def test_a_refused_payment_fails_the_run_and_the_email_names_it(clean_payments, pg, local_dir, mailbox):
    from airflow.utils.state import DagRunState

    good = pay.add(pg, "ctbc", 1, due=today_taipei())
    [bad] = pay.add(pg, "ctbc", 1, due=today_taipei(), name="張😀", ref_prefix="REFUSED")
    seen = mailbox.names()
    assert load_dag("bank_payments").test().state == DagRunState.FAILED
    assert pay.statuses(pg, [*good, bad]) == {good[0]: "uploaded", bad: "pending"}
    mail = mailbox.wait_for(lambda m: "bank payments PROBLEMS" in m["Subject"], since=seen)
    assert bad in mail.get_body().get_content()


def test_the_retry_dag_delivers_a_queued_transfer(clean_payments, pg, local_dir, mailbox, monkeypatch):
    from airflow.utils.state import DagRunState

    refs = pay.add(pg, "esun", 2, due=today_taipei())
    conn = json.loads(os.environ["AIRFLOW_CONN_SFTP_ESUN"]) | {"port": 1}  # esun's server unreachable
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ESUN", json.dumps(conn))
    monkeypatch.setenv("FINFLOWS_BANK_UPLOAD_ATTEMPTS", "1")
    assert load_dag("bank_payments").test(run_conf={"banks": ["esun"]}).state == DagRunState.FAILED
    assert pg.execute("SELECT status FROM pay.transfer_retry").fetchone()[0] == "waiting"
    assert pay.uploaded(local_dir, "esun") == {}

    monkeypatch.undo()  # the server is back
    seen = mailbox.names()
    assert load_dag("bank_transfer_retry").test(run_conf={"everything": True}).state == DagRunState.SUCCESS
    [(name, data)] = pay.uploaded(local_dir, "esun").items()
    assert [r["reference"] for r in ach.read_csv(pay.decrypt_as_bank("esun", data), name, "cp950")] == refs
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    mailbox.wait_for(lambda m: "bank transfer retry OK" in m["Subject"], since=seen)


def test_a_retry_queue_over_its_limit_alerts_operations_and_treasury(clean_payments, pg, mailbox, monkeypatch):
    from airflow.utils.state import DagRunState

    conn = json.loads(os.environ["AIRFLOW_CONN_SFTP_ESUN"]) | {"port": 1}  # esun's server unreachable throughout
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ESUN", json.dumps(conn))
    monkeypatch.setenv("FINFLOWS_BANK_UPLOAD_ATTEMPTS", "1")
    pay.add(pg, "esun", 2, due=today_taipei())
    assert load_dag("bank_payments").test(run_conf={"banks": ["esun"]}).state == DagRunState.FAILED
    assert pg.execute("SELECT count(*) FROM pay.transfer_retry WHERE status = 'waiting'").fetchone()[0] == 1

    seen = mailbox.names()
    monkeypatch.setenv("FINFLOWS_BANK_RETRY_QUEUE_ALERT", "1")  # one waiting: at the limit, no alert
    load_dag("bank_transfer_retry").test(run_conf={"everything": True})
    assert not [m for m in mailbox.messages(since=seen) if "retry queue" in m["Subject"]]

    monkeypatch.setenv("FINFLOWS_BANK_RETRY_QUEUE_ALERT", "0")
    load_dag("bank_transfer_retry").test(run_conf={"everything": True})
    alert = mailbox.wait_for(lambda m: "retry queue" in m["Subject"], since=seen)
    assert alert["Subject"] == "[finflows] bank transfer retry queue: 1 waiting (alert above 0)"
    assert set(alert["To"].split(", ")) == set(os.environ["FINFLOWS_OPS_EMAIL"].split(",")) | set(
        os.environ["FINFLOWS_TREASURY_EMAIL"].split(",")
    )
    body = alert.get_body(("plain",)).get_content()
    assert "esun: 1 waiting, the oldest since " in body and "Next step:" in body


def test_smtp_down_leaves_the_payments_delivered_and_the_treasury_email_is_retried(
    clean_payments, pg, local_dir, mailbox, monkeypatch
):
    """The SMTP server is down when the summary is sent: the files are already delivered (once);
    the summary task fails and Airflow retries it; when SMTP is back the email goes out and the
    run ends green."""
    import threading
    import time

    from airflow.utils.state import DagRunState

    from devstack import stack

    monkeypatch.setenv("FINFLOWS_RETRY_DELAY", "2")  # read when the DAG file is parsed
    refs = pay.add(pg, "taishin", 2, due=today_taipei())
    stack.stop_service("smtp")
    restarted = threading.Event()

    def bring_smtp_back() -> None:  # once the summary has failed against the dead server
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and not pg.execute("SELECT count(*) FROM pay.transfer WHERE outcome = 'uploaded'").fetchone()[0]
        ):
            time.sleep(0.2)
        time.sleep(3)
        stack.start_service("smtp", stack.material())
        restarted.set()

    seen = mailbox.names()
    helper = threading.Thread(target=bring_smtp_back)
    helper.start()
    try:
        run = load_dag("bank_payments").test(run_conf={"banks": ["taishin"]})
    finally:
        helper.join()
        stack.start_service("smtp", stack.material())
    assert restarted.is_set() and run.state == DagRunState.SUCCESS
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["summarise"] >= 2 and tries["bank.prepare"] == tries["bank.upload"] == 1  # only the email was retried
    assert len(pay.uploaded(local_dir, "taishin")) == 1 and set(pay.statuses(pg, refs).values()) == {"uploaded"}
    assert pg.execute("SELECT count(*) FROM pay.transfer").fetchone()[0] == 1
    mailbox.wait_for(lambda m: "bank payments OK" in m["Subject"], since=seen)
