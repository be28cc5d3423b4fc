"""chargeback_export end to end with dag.test(): S3 input → FTPS/FTP files, SNS message, email."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers.chargebacks import record
from tests.helpers.dags import load_dag

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BUCKET = os.environ.get("FINFLOWS_CHARGEBACK_BUCKET", "finflows-chargebacks")


@pytest.fixture
def chargeback_dag(s3_hook):
    keys = s3_hook.list_keys(bucket_name=BUCKET, prefix="incoming/") or []
    if keys:  # the DAG exports everything waiting: start from an empty inbox
        s3_hook.delete_objects(bucket=BUCKET, keys=keys)
    return load_dag("chargeback_export")


def test_export_to_two_card_companies_with_notifications(
    chargeback_dag, s3_hook, local_dir, mailbox, drain_queue, unique
):
    from airflow.utils.state import DagRunState

    audit = os.environ["FINFLOWS_CHARGEBACK_AUDIT_QUEUE_URL"]
    drain_queue(audit, wait=0)
    rows = [record(i, case_id=f"{unique}-v{i}") for i in range(3)]
    rows += [record(9, case_id=f"{unique}-m", brand="mastercard", reason_code="4853")]
    s3_hook.load_bytes(json.dumps(rows).encode(), key=f"incoming/cb-{unique}.json", bucket_name=BUCKET)
    seen = mailbox.names()

    assert chargeback_dag.test().state == DagRunState.SUCCESS
    visa = list((local_dir / "ftps" / "visa" / "inbound").glob(f"chargebacks_visa_cb-{unique}_*_b01.csv"))
    master = list((local_dir / "ftps" / "mastercard" / "inbound").glob(f"chargebacks_mastercard_cb-{unique}_*_b01.csv"))
    assert len(visa) == len(master) == 1
    assert visa[0].read_bytes().count(b"\r\n") == 4 and master[0].read_bytes().count(b"\r\n") == 2
    sns = [json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"] for m in drain_queue(audit, wait=3)]
    assert any(visa[0].name in str(m) and master[0].name in str(m) for m in sns), sns
    mail = mailbox.wait_for(lambda m: "chargeback_export OK" in m["Subject"], since=seen)
    assert "2 file(s) delivered" in mail["Subject"]

    # the same input again: nothing new is uploaded
    s3_hook.load_bytes(json.dumps(rows).encode(), key=f"incoming/cb-{unique}.json", bucket_name=BUCKET, replace=True)
    before = sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir())
    assert chargeback_dag.test().state == DagRunState.SUCCESS
    assert sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()) == before


def test_a_refused_file_fails_the_run_and_notifies_by_sns_and_email(
    chargeback_dag, s3_hook, mailbox, drain_queue, unique, caplog
):
    from airflow.utils.state import DagRunState

    audit = os.environ["FINFLOWS_CHARGEBACK_AUDIT_QUEUE_URL"]
    drain_queue(audit, wait=0)
    bad = [record(0, case_id=f"{unique}-0", masked_card="4000000000000002")]  # a full card number
    s3_hook.load_bytes(json.dumps(bad).encode(), key=f"incoming/cb-{unique}.json", bucket_name=BUCKET)
    seen = mailbox.names()
    with caplog.at_level("ERROR", logger="finflows.failure"):
        assert chargeback_dag.test().state == DagRunState.FAILED
    # the failed task's log ends with the email's words: the file, what was wrong, the next step
    said = [r.getMessage() for r in caplog.records if r.name == "finflows.failure"]
    assert any(f"cb-{unique}.json REJECTED" in m and "Next step:" in m for m in said), said
    sns = [m["Body"] for m in drain_queue(audit, wait=3)]
    # the failure callback's message (SnsTopicNotifier: "run <run id>: <error>"), naming the field
    assert any(b.startswith("run manual__") and "rejected and quarantined" in b and "masked_card" in b for b in sns), (
        sns
    )
    # the failure callback's email (OperationsEmailNotifier) names the file and what happened to it
    mailbox.wait_for(lambda m: m["Subject"] == f"[finflows] chargeback_export: cb-{unique}.json REJECTED", since=seen)
    assert s3_hook.check_for_key(f"quarantine/cb-{unique}.json", bucket_name=BUCKET)
    assert "4000000000000002" not in json.dumps(sns)  # the full number never reaches a notification
