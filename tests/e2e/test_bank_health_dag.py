"""bank_health and bank_payments with dag.test() while the real SFTP server is stopped, then back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import payments as pay
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_circuit_opens_payments_skip_the_bank_and_a_good_check_closes_it(
    clean_payments, pg, local_dir, mailbox, sftp_server, monkeypatch
):
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("FINFLOWS_BANK_CIRCUIT_HALF_OPEN_AFTER", "0")  # the next check after opening decides
    refs = pay.add(pg, "mega", 2, due=dt.datetime.now(ZoneInfo("Asia/Taipei")).date())
    health = load_dag("bank_health")
    sftp_server.stop()
    seen = mailbox.names()
    for _ in range(3):  # a failed check is recorded, not a failed run
        assert health.test().state == DagRunState.SUCCESS
    opened = mailbox.wait_for(lambda m: "bank circuit:" in m["Subject"], since=seen)
    assert "mega opened" in opened["Subject"] and "bank_payments skips this bank" in opened.get_body().get_content()
    assert pg.execute("SELECT count(*) FROM pay.health_check WHERE bank = 'mega' AND NOT ok").fetchone()[0] == 3
    assert pg.execute("SELECT state FROM pay.circuit WHERE bank = 'mega'").fetchone()[0] == "open"

    seen = mailbox.names()
    assert load_dag("bank_payments").test(run_conf={"banks": ["mega"]}).state == DagRunState.FAILED
    assert set(pay.statuses(pg, refs).values()) == {"pending"}
    summary = mailbox.wait_for(lambda m: "bank payments PROBLEMS" in m["Subject"], since=seen)
    body = summary.get_body().get_content()
    assert "Banks skipped" in body and "mega: circuit" in body and "2 payment(s) due" in body

    sftp_server.start()
    seen = mailbox.names()
    assert health.test().state == DagRunState.SUCCESS
    closed = mailbox.wait_for(lambda m: "bank circuit:" in m["Subject"], since=seen)
    assert "mega closed" in closed["Subject"]
    assert load_dag("bank_payments").test(run_conf={"banks": ["mega"]}).state == DagRunState.SUCCESS
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"} and len(pay.uploaded(local_dir, "mega")) == 1
