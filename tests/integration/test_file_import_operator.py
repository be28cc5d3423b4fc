"""FileImportOperator run as providers test their operators: ``execute(context)`` against the real
stack (S3, the Drive stand-in, PostgreSQL), with input files built by the test helpers from the
layouts, not by our readers."""

from __future__ import annotations

import os

import pytest

from devstack.fixtures import forget_cash_files, seed_rent_accounts
from tests.helpers.cash import KNOWN_ACCOUNTS, cash_file, random_day
from tests.helpers.statements import detail, name, statement_lines

pytestmark = pytest.mark.integration
CASH = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")
STATEMENTS = os.environ.get("FINFLOWS_STATEMENT_BUCKET", "finflows-card-statements")


def _operator(flow: str, key: str):
    from finflows.operators.file_import import FileImportOperator

    return FileImportOperator(task_id="import_file", flow=flow, key=key)


def test_a_cash_file_is_imported_once_and_its_lineage_names_the_object_and_tables(s3_hook, pg):
    seed_rent_accounts(pg, KNOWN_ACCOUNTS)
    day = random_day()
    fname = f"CashFile{day:%Y%m%d}.dat"
    forget_cash_files(pg, [fname])
    key = f"cashfiles/{fname}"
    s3_hook.load_bytes(cash_file(4, day, unknown=1), key=key, bucket_name=CASH, replace=True)
    op, context = _operator("cashfile_import", key), {"run_id": "operator-test"}

    out = op.execute(context)
    # four records, the first for an account finance does not know: three payments, one in suspense
    assert (out["file_name"], out["status"], out["payments"], out["suspense"]) == (fname, "IMPORTED", 3, 1)
    assert context["file_name"] == fname  # what map_index_template="{{ file_name }}" shows
    row = pg.execute(
        "SELECT status, row_count FROM ops.file_control WHERE flow = 'cashfile_import' AND file_name = %s", (fname,)
    ).fetchone()
    assert row == ("SUCCESS", 4)
    assert s3_hook.check_for_key(f"processed/{fname}", bucket_name=CASH)
    lineage = op.get_openlineage_facets_on_complete(None)
    pg_ns = f"postgres://127.0.0.1:{os.environ['FINFLOWS_POSTGRES_PORT']}"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(f"s3://{CASH}", key)]
    assert {(d.namespace, d.name) for d in lineage.outputs} == {
        (pg_ns, f"finance.ifs.{t}") for t in ("cash_payment", "cash_suspense", "cashfile_text")
    }

    s3_hook.load_bytes(cash_file(4, day, unknown=1), key=key, bucket_name=CASH, replace=True)  # delivered again
    again = _operator("cashfile_import", key)
    assert again.execute({"run_id": "operator-test-2"})["status"] == "DUPLICATE"
    assert again.get_openlineage_facets_on_complete(None).outputs == []  # nothing written by that run


def test_a_bad_statement_fails_the_task_without_retries_and_loads_nothing(s3_hook, pg, unique):
    from airflow.sdk.exceptions import AirflowFailException

    fname = name(unique)
    lines = statement_lines([detail(2), detail(3)])
    lines[2] = lines[2][:44] + "20261131" + lines[2][52:]  # 31 November
    s3_hook.load_bytes(
        "".join(x + "\r\n" for x in lines).encode("latin-1"), key=f"statements/{fname}", bucket_name=STATEMENTS
    )
    with pytest.raises(AirflowFailException, match="line 3, field entry_date, value '20261131'"):
        _operator("card_reconciliation", f"statements/{fname}").execute({"run_id": "operator-test"})
    assert s3_hook.check_for_key(f"quarantine/{fname}", bucket_name=STATEMENTS)
    assert not pg.execute(
        "SELECT count(*) FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id WHERE c.file_name = %s",
        (fname,),
    ).fetchone()[0]


def test_a_flow_that_declares_no_inbox_is_refused_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match=r"flow 'csv': no module finflows\.flows\.csv"):
        _operator("csv", "x")
    # a real flow package, but not an inbox flow: it says what is missing
    with pytest.raises(ValueError, match=r"flow 'tenure_sync': finflows.flows.tenure_sync declares no INBOX"):
        _operator("tenure_sync", "x")


def test_an_object_whose_name_holds_a_control_character_is_refused_by_name_and_left_untouched(s3_hook, pg):
    from airflow.sdk.exceptions import AirflowFailException

    day = random_day()
    key = f"cashfiles/CashFile{day:%Y%m%d}\rBcc.dat"  # a carriage return (the local S3 refuses a \n in a key)
    s3_hook.load_bytes(cash_file(2, day), key=key, bucket_name=CASH, replace=True)
    try:
        with pytest.raises(AirflowFailException, match="control character"):
            _operator("cashfile_import", key).execute({"run_id": "operator-test"})
        assert s3_hook.check_for_key(key, bucket_name=CASH)  # nothing moved, nothing loaded
        assert not pg.execute(
            "SELECT 1 FROM ops.file_control WHERE flow = 'cashfile_import' AND file_name LIKE %s", ("%Bcc%",)
        ).fetchone()
    finally:
        s3_hook.get_conn().delete_object(Bucket=CASH, Key=key)  # one by one: no control character in XML
