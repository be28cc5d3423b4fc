"""Lineage as a lineage backend receives it: each DAG run by ``airflow dags test`` in its own
process with OpenLineage's file transport, and the emitted events read back. Each of our
operators reports through ``get_openlineage_facets_on_complete`` (datasets named by
``finflows.lineage``, as the providers' operators name theirs)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import payments as pay
from tests.helpers.cash import cash_file, random_day
from tests.helpers.dags import DAGS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")
CASH = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")


def lineage_of(dag_id: str, tmp_path: Path, dags_folder: Path = DAGS, logical_date: str | None = None) -> dict:
    """{task id: (inputs, outputs)} of the COMPLETE events of one ``airflow dags test`` run,
    each dataset as (namespace, name)."""
    events = tmp_path / "openlineage.jsonl"
    env = os.environ | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "finflows-test",
    }
    cmd = [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id]
    done = subprocess.run(
        cmd + ([logical_date] if logical_date else []),
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out: dict[str, tuple[set, set]] = {}
    for line in events.read_text().splitlines():
        e = json.loads(line)
        if e["eventType"] != "COMPLETE" or e["job"]["name"] == dag_id:
            continue
        ins, outs = out.setdefault(e["job"]["name"].removeprefix(f"{dag_id}."), (set(), set()))
        ins |= {(d["namespace"], d["name"]) for d in e.get("inputs", [])}
        outs |= {(d["namespace"], d["name"]) for d in e.get("outputs", [])}
    return out


def test_the_pgp_operators_report_the_object_in_and_the_object_out(s3_hook, tmp_path, unique):
    day = dt.date(2031, 1, 1) + dt.timedelta(days=sum(map(ord, unique)) % 3000)
    key = f"partners/acme/in/{day:%Y%m%d}.csv.pgp"
    s3_hook.load_bytes(pay.encrypt_as_bank("mega", b"partner data\n"), key=key, bucket_name=ARCHIVE, replace=True)
    got = lineage_of("example_partner_exchange", tmp_path, DAGS / "examples", f"{day}T06:00:00+00:00")
    plain, reply = f"partners/acme/plain/{day:%Y%m%d}.csv", f"partners/acme/out/{day:%Y%m%d}.reply.pgp"
    assert got["decrypt_and_verify"] == ({(f"s3://{ARCHIVE}", key)}, {(f"s3://{ARCHIVE}", plain)})
    assert got["encrypt_reply"] == ({(f"s3://{ARCHIVE}", plain)}, {(f"s3://{ARCHIVE}", reply)})


def test_cashfile_import_reports_the_object_in_and_the_tables_out(s3_hook, tmp_path):
    for k in s3_hook.list_keys(bucket_name=CASH, prefix="cashfiles/") or []:
        s3_hook.delete_objects(bucket=CASH, keys=[k])
    day = random_day()
    key = f"cashfiles/CashFile{day:%Y%m%d}.dat"
    s3_hook.load_bytes(cash_file(4, day, unknown=1), key=key, bucket_name=CASH, replace=True)
    ins, outs = lineage_of("cashfile_import", tmp_path)["import_file"]
    assert (f"s3://{CASH}", key) in ins
    pg = f"postgres://127.0.0.1:{os.environ['FINFLOWS_POSTGRES_PORT']}"
    assert {(pg, f"finance.ifs.{t}") for t in ("cash_payment", "cash_suspense", "cashfile_text")} <= outs


def test_bank_payments_reports_the_payments_table_in_and_the_remote_file_out(clean_payments, pg, local_dir, tmp_path):
    from zoneinfo import ZoneInfo

    pay.add(pg, "mega", 2, due=dt.datetime.now(ZoneInfo("Asia/Taipei")).date(), amount=1200)
    ins, outs = lineage_of("bank_payments", tmp_path)["bank.upload"]
    [name] = pay.uploaded(local_dir, "mega")
    assert ins == {(f"postgres://127.0.0.1:{os.environ['FINFLOWS_POSTGRES_PORT']}", "finance.pay.payment")}
    assert outs == {(f"file://127.0.0.1:{os.environ['FINFLOWS_SFTP_PORT']}", f"upload/{name}")}
