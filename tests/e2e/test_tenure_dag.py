"""tenure_sync end to end with dag.test(): queue → sheet rows and table rows, poison → DLQ."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.helpers.dags import load_dag
from tests.helpers.tenure import event, payment_ref

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def tenure_dag():
    return load_dag("tenure_sync")


def test_events_become_sheet_rows_and_table_rows(tenure_dag, pg, sqs_client, sheets, drain_queue):
    from airflow.utils.state import DagRunState

    queue, dlq = os.environ["FINFLOWS_TENURE_QUEUE_URL"], os.environ["FINFLOWS_TENURE_DLQ_URL"]
    drain_queue(dlq, wait=0)
    tids = [str(uuid.uuid4()) for _ in range(3)]
    refs = [payment_ref() for _ in tids]
    for tid, ref in zip(tids, refs, strict=True):
        pg.execute("INSERT INTO ifs.rent_account (payment_ref, tenure_id) VALUES (%s, %s)", (ref, tid))
    bodies = [
        event(tids[0], 1),
        event(tids[0], 2, surname="Updated"),
        event(tids[1], 1, rent_group="TravelGenFund"),
        event(tids[2], 1),
        "not json at all",
    ]
    for b in bodies:
        sqs_client.send_message(QueueUrl=queue, MessageBody=b if isinstance(b, str) else json.dumps(b))

    run = tenure_dag.test(run_conf={"target": "both"})
    assert run.state == DagRunState.SUCCESS
    sheet = os.environ["FINFLOWS_INTERIM_SPREADSHEET"]
    revenue = {r[0]: r for r in sheets.get_values(sheet, "HousingRevenue!A:M") if r}
    assert revenue[refs[0]][11] == "Updated" and refs[2] in revenue
    assert refs[1] in {r[0] for r in sheets.get_values(sheet, "TravelGenFund!A:A") if r}
    table = dict(
        pg.execute("SELECT payment_ref, version FROM ifs.tenancy WHERE payment_ref = ANY(%s)", (refs,)).fetchall()
    )
    assert table == {refs[0]: 2, refs[1]: 1, refs[2]: 1}
    assert [m["Body"] for m in drain_queue(dlq, wait=2)] == ["not json at all"]

    # again, with nothing new: nothing changes and the run still succeeds
    assert tenure_dag.test(run_conf={"target": "both"}).state == DagRunState.SUCCESS
    assert (
        dict(pg.execute("SELECT payment_ref, version FROM ifs.tenancy WHERE payment_ref = ANY(%s)", (refs,)).fetchall())
        == table
    )
