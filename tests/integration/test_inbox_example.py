"""The example inbox flow (``examples/inbox_flow``: a layout, a load, a DAG file and nothing more)
runs the whole shared lifecycle against the local stack: loaded once, a copy delivered again
recorded and not loaded, a bad file quarantined with its report and nothing of it kept, the
failure reaching Airflow as a refusal with its rule. Fee lines are typed here from the layout
table (8 + 3 + 11 + 10 characters), not made by the layout's writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inbox_flow"
BUCKET = "finflows-bank-fees"


def fee(account: str, code: str, cents: int, day: str, amount: str | None = None) -> str:
    """One 32-character fee line: account 1–8, fee code 9–11, amount 12–22 (sign, 7 digits, '.',
    2 digits), date 23–32 (DD/MM/YYYY)."""
    amount = amount or f"{'-' if cents < 0 else '+'}{abs(cents) // 100:07d}.{abs(cents) % 100:02d}"
    line = f"{account}{code}{amount}{day}"
    assert len(line) == 32
    return line


@pytest.fixture
def example(pg, s3_hook):
    pg.execute(EXAMPLE.joinpath("schema.sql").read_text())
    if not s3_hook.check_for_bucket(BUCKET):
        s3_hook.create_bucket(bucket_name=BUCKET)


def operator(key: str):
    from finflows.operators.file_import import FileImportOperator

    return FileImportOperator(task_id="import_file", flow="examples.inbox_flow", key=key)


def rows(pg, name: str) -> list[tuple]:
    return pg.execute(
        """SELECT f.line_no, f.account, f.fee_code, f.amount::text, f.charged_on::text FROM example.bank_fee f
             JOIN ops.file_control c ON c.id = f.file_id WHERE c.flow = 'example_bank_fees' AND c.file_name = %s
            ORDER BY f.line_no""",
        (name,),
    ).fetchall()


def test_the_example_flow_loads_once_records_a_duplicate_and_quarantines_a_bad_file(example, pg, s3_hook, unique):
    from airflow.sdk.exceptions import AirflowFailException

    from finflows import files

    name = f"fees-{unique}.txt"
    body = "\r\n".join([fee("00012345", "ATM", 250, "01/12/2026"), "", fee("00067890", "FXC", -1000, "02/12/2026")])
    s3_hook.load_bytes(body.encode(), key=f"fees/{name}", bucket_name=BUCKET, replace=True)
    op = operator(f"fees/{name}")
    out = op.execute({"run_id": "example-1"})
    assert (out["status"], out["records"]) == ("LOADED", 2)
    assert rows(pg, name) == [
        (1, "00012345", "ATM", "2.50", "2026-12-01"),
        (3, "00067890", "FXC", "-10.00", "2026-12-02"),
    ]
    assert s3_hook.check_for_key(f"processed/{name}", bucket_name=BUCKET)
    assert [d.name for d in op.get_openlineage_facets_on_complete(None).outputs] == ["finance.example.bank_fee"]

    s3_hook.load_bytes(body.encode(), key=f"fees/{name}", bucket_name=BUCKET, replace=True)  # delivered again
    again = operator(f"fees/{name}").execute({"run_id": "example-2"})
    assert (again["status"], again["records"]) == ("ALREADY_LOADED", 2) and len(rows(pg, name)) == 2
    events = pg.execute(
        "SELECT event FROM ops.file_event WHERE flow = 'example_bank_fees' AND file_name = %s ORDER BY id", (name,)
    ).fetchall()
    assert [e for (e,) in events] == ["IMPORTED", "DUPLICATE"]

    bad_name = f"fees-{unique}-bad.txt"
    bad = "\r\n".join(
        [fee("00012345", "ATM", 250, "01/12/2026"), fee("00012345", "ATM", 0, "01/12/2026", "+0000002,50")]
    )
    s3_hook.load_bytes(bad.encode(), key=f"fees/{bad_name}", bucket_name=BUCKET, replace=True)
    with pytest.raises(AirflowFailException, match=r"line 2, field amount, value '\+0000002,50'") as failed:
        operator(f"fees/{bad_name}").execute({"run_id": "example-3"})
    refusal = files.rejection_of(failed.value)
    assert refusal is not None and refusal.rule == "layout" and refusal.file_name == bad_name
    report = json.loads(s3_hook.read_key(f"quarantine/{bad_name}.error.json", bucket_name=BUCKET))
    assert report["rule"] == "layout" and (report["errors"][0]["line"], report["errors"][0]["field"]) == (2, "amount")
    assert s3_hook.read_key(f"quarantine/{bad_name}", bucket_name=BUCKET) == bad  # kept byte for byte
    assert rows(pg, bad_name) == []  # the good first line was rolled back with the file


def test_the_example_dag_file_parses_with_its_one_mapped_import():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE / "dag.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("example_bank_fees")
    assert sorted(dag.task_ids) == ["find_files", "import_file"]
