"""bank_reconciliation end to end with dag.test(): a return file settles payments; a forged one alerts."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.helpers import payments as pay
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def uploaded(clean_payments, pg, db, cfg, local_dir):
    refs = pay.add(pg, "ctbc", 2, due=dt.date(2026, 11, 23))
    pay.pay_bank(db, cfg, "ctbc", now=dt.datetime(2026, 11, 22, 22, 0, tzinfo=dt.UTC))
    [batch_file] = pay.uploaded(local_dir, "ctbc")
    plain = pay.return_file(pg, cfg, batch_file, {refs[1]: "22"}, paid="00")  # CTBC lists every item
    return refs, plain


def test_a_return_file_is_applied_by_the_dag(uploaded, pg, local_dir):
    from airflow.utils.state import DagRunState

    refs, plain = uploaded
    pay.drop_return(local_dir, "ctbc", "REC_20261123_1.txt", pay.encrypt_as_bank("ctbc", plain))
    assert load_dag("bank_reconciliation").test().state == DagRunState.SUCCESS
    assert pay.statuses(pg, refs) == {refs[0]: "settled", refs[1]: "returned"}


def test_a_forged_return_file_fails_the_run_and_alerts(uploaded, pg, local_dir, mailbox):
    from airflow.utils.state import DagRunState

    refs, plain = uploaded
    forged = pay.encrypt_as_bank("ctbc", plain, signer="taishin")  # someone else's signature
    pay.drop_return(local_dir, "ctbc", "REC_20261123_1.txt", forged)
    seen = mailbox.names()
    assert load_dag("bank_reconciliation").test().state == DagRunState.FAILED
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    mail = mailbox.wait_for(lambda m: "bank reconciliation ALERT" in m["Subject"], since=seen)
    assert "REC_20261123_1.txt" in mail.get_body().get_content()
