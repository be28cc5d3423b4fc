"""BankPaymentFileOperator run as providers test their operators: ``execute(context)`` against the
real stack (PostgreSQL, gpg, the banks' OpenSSH server, S3). What reaches the bank is read by the
bank's side (its own keyring, the ACH reader over the public layout), not by our writer."""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest

from finflows.formats import ach
from tests.helpers import payments as pay
from tests.helpers import tch

pytestmark = pytest.mark.integration
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Taipei")).date()


def _operator(bank_id: str):
    from finflows.operators.bank import BankPaymentFileOperator

    return BankPaymentFileOperator(task_id="pay_bank", bank_id=bank_id, upload_attempts=1, upload_backoff=0.01)


def test_the_operator_delivers_a_banks_file_once_and_reports_its_lineage(clean_payments, pg, local_dir, s3_hook):
    refs = pay.add(pg, "mega", 2, due=_today(), amount=1500, name="林美玲")
    op = _operator("mega")
    out = op.execute({"run_id": "operator-test"})

    [(name, cipher)] = pay.uploaded(local_dir, "mega").items()
    assert [d["customer_number"] for d in ach.read_ach(pay.decrypt_as_bank("mega", cipher), name).details] == [
        tch.cno(r) for r in refs
    ]
    [delivery] = out["deliveries"]
    assert (delivery["file_name"], delivery["outcome"], delivery["payment_count"]) == (name, "uploaded", 2)
    xcom = json.dumps(out, ensure_ascii=False)  # the XCom: counts and outcomes, no payee or file data
    assert "林美玲" not in xcom and "data" not in out
    uri = pg.execute("SELECT archive_uri FROM pay.batch WHERE file_name = %s", (name,)).fetchone()[0]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert bucket == ARCHIVE and s3_hook.get_key(key, bucket_name=bucket).get()["Body"].read() == cipher
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")

    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"postgres://127.0.0.1:{os.environ['FINFLOWS_POSTGRES_PORT']}", "finance.pay.payment")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (f"file://127.0.0.1:{os.environ['FINFLOWS_SFTP_PORT']}", f"upload/{name}")
    ]

    again = _operator("mega")  # a second run of the day: nothing to batch, nothing sent twice
    assert again.execute({"run_id": "operator-test-2"})["deliveries"] == []
    assert pay.uploaded(local_dir, "mega") == {name: cipher}
    assert again.get_openlineage_facets_on_complete(None).outputs == []


def test_a_bank_that_is_not_configured_fails_at_once_without_retries(clean_payments):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="nowhere"):
        _operator("nowhere").execute({"run_id": "operator-test"})
