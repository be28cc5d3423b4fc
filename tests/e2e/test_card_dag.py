"""card_reconciliation end to end with dag.test(): FTPS + S3 statements → facts, views; an FTPS outage."""

from __future__ import annotations

import io
import json
import os

import pytest

from tests.helpers.dags import load_dag
from tests.helpers.statements import empty_inboxes, name, statement

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BUCKET = os.environ.get("FINFLOWS_STATEMENT_BUCKET", "finflows-card-statements")


@pytest.fixture
def card_dag(s3_hook):
    empty_inboxes(s3_hook, BUCKET)  # the DAG loads everything waiting: start from empty inboxes
    return load_dag("card_reconciliation")


def loaded(pg, names: list[str]) -> dict[str, int]:
    return dict(
        pg.execute(
            "SELECT file_name, row_count FROM ops.file_control WHERE flow = 'card_reconciliation' "
            "AND status = 'SUCCESS' AND file_name = ANY(%s)",
            (names,),
        ).fetchall()
    )


def test_statements_from_ftps_and_s3_are_loaded_once(card_dag, ftps_hook, s3_hook, pg, unique):
    from airflow.utils.state import DagRunState

    on_ftps, in_s3 = name(unique, seq=1), name(unique, seq=2)
    ftps_hook("acquirer").store_file(f"/Saida/{on_ftps}", io.BytesIO(statement(4)))
    s3_hook.load_bytes(statement(2), key=f"statements/{in_s3}", bucket_name=BUCKET)

    assert card_dag.test().state == DagRunState.SUCCESS
    assert loaded(pg, [on_ftps, in_s3]) == {on_ftps: 4, in_s3: 2}
    assert s3_hook.check_for_key(f"processed/{on_ftps}", bucket_name=BUCKET)
    assert card_dag.test().state == DagRunState.SUCCESS  # again: nothing new
    count = pg.execute(
        "SELECT count(*) FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id "
        "WHERE c.file_name = ANY(%s)",
        ([on_ftps, in_s3],),
    ).fetchone()[0]
    assert count == 6


def test_an_ftps_outage_fails_the_run_but_s3_statements_still_load(card_dag, s3_hook, pg, unique, monkeypatch, mailbox):
    from airflow.utils.state import DagRunState

    monkeypatch.setenv(
        "AIRFLOW_CONN_FTPS_ACQUIRER",
        json.dumps({"conn_type": "ftps", "host": "127.0.0.1", "port": 1, "login": "acquirer", "password": "x"}),
    )
    card_dag.task_dict["fetch_from_ftps"].retries = 0  # its retries are the production setting; skip the wait here
    in_s3 = name(unique, seq=3)
    s3_hook.load_bytes(statement(1), key=f"statements/{in_s3}", bucket_name=BUCKET)
    seen = mailbox.names()

    run = card_dag.test()
    assert run.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["fetch_from_ftps"] == "failed" and states["find_files"] == "success"
    assert states["summarise"] == "failed", "the leaf turns the run red: FTPS statements were not collected"
    assert loaded(pg, [in_s3]) == {in_s3: 1}
    mailbox.wait_for(lambda m: "card_reconciliation.fetch_from_ftps" in m["Subject"], since=seen)
