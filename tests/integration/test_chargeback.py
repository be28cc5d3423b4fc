"""chargeback_export against the real stack: S3, FTPS (verified TLS) and FTP servers, PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from finflows import files, inbox
from finflows.flows.chargeback_export import chargeback
from tests.helpers.chargebacks import record

pytestmark = pytest.mark.integration
BUCKET = os.environ.get("FINFLOWS_CHARGEBACK_BUCKET", "finflows-chargebacks")


@pytest.fixture
def export(s3_hook):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    def go(key: str, run_id: str = "manual__test", config: chargeback.Destinations | None = None):
        return inbox.run(
            chargeback.Chargebacks(config or chargeback.load_config()),
            key,
            bucket=BUCKET,
            run_id=run_id,
            s3_hook=s3_hook,
            pg_hook=PostgresHook(postgres_conn_id="postgres_finance"),
        )

    return go


def put(s3_hook, name: str, rows: list[dict]) -> str:
    key = f"incoming/{name}"
    s3_hook.load_bytes(json.dumps(rows).encode(), key=key, bucket_name=BUCKET, replace=True)
    return key


def rows_on(local_dir: Path, server: str, user: str, name: str) -> list[dict]:
    data = (local_dir / server / user / "inbound" / name).read_bytes()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_each_card_company_gets_its_rows_on_its_own_server(export, s3_hook, local_dir, unique, pg):
    rows = [record(i, case_id=f"{unique}-{i}") for i in range(3)]
    rows += [
        record(
            10 + i, case_id=f"{unique}-m{i}", brand="mastercard", reason_code="4853", currency="JPY", amount_minor=5000
        )
        for i in range(2)
    ]
    rows += [record(20, case_id=f"{unique}-e", brand="elo", reason_code="53", merchant="=cmd|' /C calc'!A0")]
    out = export(put(s3_hook, f"cb-{unique}.json", rows))
    assert (out.status, out.records, out.batches) == ("EXPORTED", 6, 1)
    by_brand = {d.brand: d for d in out.deliveries}
    assert set(by_brand) == {"visa", "mastercard", "elo"}
    visa = rows_on(local_dir, "ftps", "visa", by_brand["visa"].file_name)  # FTPS server
    assert [r["case_id"] for r in visa] == [f"{unique}-{i}" for i in range(3)]
    master = rows_on(local_dir, "ftps", "mastercard", by_brand["mastercard"].file_name)
    assert {r["amount"] for r in master} == {"5000"}  # JPY has no minor units
    elo = rows_on(local_dir, "ftp", "elo", by_brand["elo"].file_name)  # plain FTP server
    assert elo[0]["merchant"] == "'=cmd|' /C calc'!A0"
    assert not list((local_dir / "ftps" / "visa" / "inbound").glob("*.part"))
    delivered = pg.execute("SELECT count(*) FROM ops.delivery WHERE source_file = %s", (f"cb-{unique}.json",))
    assert delivered.fetchone()[0] == 3
    assert s3_hook.check_for_key(f"processed/cb-{unique}.json", bucket_name=BUCKET)


def test_reprocessing_the_same_input_uploads_nothing_new(export, s3_hook, local_dir, unique):
    rows = [record(i, case_id=f"{unique}-{i}") for i in range(2)]
    first = export(put(s3_hook, f"cb-{unique}.json", rows), run_id="run_1")
    before = sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir())
    again = export(put(s3_hook, f"cb-{unique}.json", rows), run_id="run_2")
    assert first.status == "EXPORTED" and again.status == "ALREADY_EXPORTED"
    # the copy delivered again reports what was delivered the first time, and uploads none of it
    assert [(d.file_name, d.uploaded) for d in again.deliveries] == [(d.file_name, False) for d in first.deliveries]
    assert sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()) == before


def test_clearing_an_export_that_succeeded_reports_what_was_delivered(export, s3_hook, local_dir, unique, pg):
    """Airflow's clear-and-rerun: the input has moved to processed/; the task says it was exported,
    with the files delivered then, uploads nothing and succeeds; an input never exported is refused."""

    rows = [record(i, case_id=f"{unique}-{i}") for i in range(3)]
    key = put(s3_hook, f"cb-{unique}.json", rows)
    first = export(key, run_id="scheduled__first")
    inbound = sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir())
    again = export(key, run_id="scheduled__first")  # the same task instance, cleared and run again
    assert (first.status, again.status) == ("EXPORTED", "ALREADY_EXPORTED")
    assert [(d.brand, d.file_name, d.rows, d.uploaded) for d in again.deliveries] == [
        (d.brand, d.file_name, d.rows, False) for d in first.deliveries
    ]
    assert (again.records, again.batches) == (3, 1)
    assert sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()) == inbound
    with pytest.raises(files.FileRejected, match=f"cb-{unique}-never.json is not in the inbox"):
        export(f"incoming/cb-{unique}-never.json", run_id="scheduled__gone")


def test_an_interrupted_export_resumes_without_uploading_a_file_twice(export, s3_hook, local_dir, unique, pg):
    rows = [
        record(i, case_id=f"{unique}-{i}", **b) for i, b in enumerate([{}, {"brand": "amex", "reason_code": "C08"}])
    ]
    key = put(s3_hook, f"cb-{unique}.json", rows)
    conf = chargeback.load_config()
    visa = conf.destinations[chargeback.Brand.VISA].model_copy(update={"conn_id": "ftps_nowhere"})
    broken = conf.model_copy(update={"destinations": conf.destinations | {chargeback.Brand.VISA: visa}})
    # amex goes first, then visa fails
    with pytest.raises(Exception, match="ftps_nowhere"):
        export(key, run_id="run_1", config=broken)
    amex = pg.execute("SELECT file_name FROM ops.delivery WHERE source_file = %s", (f"cb-{unique}.json",)).fetchall()
    assert len(amex) == 1 and "amex" in amex[0][0]
    mtime = (local_dir / "ftp" / "amex" / "inbound" / amex[0][0]).stat().st_mtime_ns
    out = export(key, run_id="run_1", config=conf)  # the retry
    assert {d.brand: d.uploaded for d in out.deliveries} == {"amex": False, "visa": True}
    assert (local_dir / "ftp" / "amex" / "inbound" / amex[0][0]).stat().st_mtime_ns == mtime


def test_an_invalid_record_quarantines_the_file_and_exports_nothing(export, s3_hook, local_dir, unique, pg):
    rows = [record(0, case_id=f"{unique}-0"), record(1, case_id=f"{unique}-1", arn="2.47E+22")]
    key = put(s3_hook, f"cb-{unique}.json", rows)
    before = {p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()}
    with pytest.raises(files.FileRejected, match=r"record 1, field arn, value '2.47E\+22'"):
        export(key)
    assert {p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()} == before
    report = json.loads(s3_hook.read_key(f"quarantine/cb-{unique}.json.error.json", bucket_name=BUCKET))
    assert report["errors"][0] | {} == {
        "line": 1,
        "field": "arn",
        "value": "2.47E+22",
        "unit": "record",
        "reason": report["errors"][0]["reason"],
    }
    status = pg.execute(
        "SELECT status FROM ops.file_control WHERE flow = 'chargeback_export' AND file_name = %s",
        (f"cb-{unique}.json",),
    ).fetchone()
    assert status == ("ERROR",)
    assert not s3_hook.check_for_key(key, bucket_name=BUCKET)


def test_same_name_with_other_content_is_quarantined_and_nothing_is_sent_again(export, s3_hook, local_dir, unique, pg):
    first = export(put(s3_hook, f"cb-{unique}.json", [record(0, case_id=f"{unique}-0")]), run_id="run_1")
    inbound = sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir())
    key = put(s3_hook, f"cb-{unique}.json", [record(1, case_id=f"{unique}-1")])  # other rows, same name
    with pytest.raises(files.FileRejected, match="already exported with different content") as e:
        export(key, run_id="run_2")
    assert first.status == "EXPORTED"
    assert sorted(p.name for p in (local_dir / "ftps" / "visa" / "inbound").iterdir()) == inbound
    assert e.value.quarantined == f"s3://{BUCKET}/quarantine/cb-{unique}.json"
    assert "card companies" in e.value.next_step
    report = json.loads(s3_hook.read_key(f"quarantine/cb-{unique}.json.error.json", bucket_name=BUCKET))
    assert report["run_id"] == "run_2" and "different content" in report["error"]
    assert pg.execute(
        "SELECT event FROM ops.file_event WHERE flow = 'chargeback_export' AND file_name = %s ORDER BY id DESC LIMIT 1",
        (f"cb-{unique}.json",),
    ).fetchone() == ("CONFLICT",)


def test_the_operator_exports_a_file_once_and_reports_each_file_it_delivered(s3_hook, local_dir, unique):
    """ChargebackExportOperator run as providers test theirs: ``execute(context)`` against vsftpd."""
    from finflows.operators.chargeback import ChargebackExportOperator

    rows = [record(0, case_id=f"{unique}-v"), record(1, case_id=f"{unique}-e", brand="elo", reason_code="53")]
    key = put(s3_hook, f"cb-{unique}.json", rows)
    op, context = ChargebackExportOperator(task_id="export_file", key=key), {"run_id": "operator-test"}
    out = op.execute(context)

    assert (out["status"], out["records"], context["file_name"]) == ("EXPORTED", 2, f"cb-{unique}.json")
    by_brand = {d["brand"]: d["file_name"] for d in out["deliveries"]}
    assert [r["case_id"] for r in rows_on(local_dir, "ftps", "visa", by_brand["visa"])] == [f"{unique}-v"]
    assert [r["case_id"] for r in rows_on(local_dir, "ftp", "elo", by_brand["elo"])] == [f"{unique}-e"]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(f"s3://{BUCKET}", key)]
    assert {(d.namespace, d.name) for d in lineage.outputs} == {
        (f"ftps://127.0.0.1:{os.environ['FINFLOWS_FTPS_PORT']}", f"inbound/{by_brand['visa']}"),
        (f"ftp://127.0.0.1:{os.environ['FINFLOWS_FTP_PORT']}", f"inbound/{by_brand['elo']}"),
    }

    again = ChargebackExportOperator(task_id="export_file", key=key)  # cleared and run again
    assert again.execute({"run_id": "operator-test"})["status"] == "ALREADY_EXPORTED"
    assert again.get_openlineage_facets_on_complete(None).outputs == []


def test_a_card_number_in_a_chargebacks_text_is_masked_in_the_csv_and_the_archived_json(
    export, s3_hook, local_dir, unique
):
    """Issue #41: reason text is free text; a card number there reaches neither the card company's
    CSV nor the JSON kept in processed/ (masked in place, the original's sha256 in its metadata)."""
    import hashlib

    rows = [record(0, case_id=f"{unique}-0", reason_text="cardholder says 4111 1111 1111 1111 is not theirs")]
    key = put(s3_hook, f"cb-{unique}.json", rows)
    original = json.dumps(rows).encode()
    out = export(key)
    [delivery] = out.deliveries
    sent = (local_dir / "ftps" / "visa" / "inbound" / delivery.file_name).read_bytes()
    archived = s3_hook.get_key(f"processed/cb-{unique}.json", bucket_name=BUCKET)
    kept = archived.get()["Body"].read()
    for copy in (sent, kept):
        assert b"4111 1111 1111 1111" not in copy and b"4111 11** **** 1111" in copy
    assert kept == original.replace(b"4111 1111 1111 1111", b"4111 11** **** 1111")
    assert archived.metadata["original-sha256"] == hashlib.sha256(original).hexdigest()
