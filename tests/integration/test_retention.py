"""Retention and erasure against the real finance database and S3: what is removed, what is kept,
and the exported files read back (gzip CSV, their sha256 as the manifest says)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def policy():
    from finflows.flows.retention import policy

    return policy.load().model_copy(update={"batch_size": 100})  # small batches: several per kind


def expire(db, s3_hook, policy, kind: str, run_id: str):
    from finflows.flows.retention import retention

    return retention.expire(db, s3_hook, ARCHIVE, policy, kind, now=NOW, run_id=run_id)


def read_back(s3_hook, manifest_uri: str) -> dict[str, list[dict]]:
    """Every file a manifest lists, checked against its sha256, as CSV rows by table."""
    manifest = json.loads(s3_hook.read_key(manifest_uri.removeprefix(f"s3://{ARCHIVE}/"), bucket_name=ARCHIVE))
    out: dict[str, list[dict]] = {}
    for f in manifest["files"]:
        data = s3_hook.get_key(f["key"], bucket_name=ARCHIVE).get()["Body"].read()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"], f["key"]
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))
        assert len(rows) == f["rows"], f["key"]
        out.setdefault(f["table"], []).extend(rows)
    return out


def test_old_finished_payments_are_archived_then_removed_and_nothing_else(clean_payments, pg, db, s3_hook, policy):
    old = pay.add(pg, "mega", 230, due=dt.date(2018, 1, 5))  # three batches of 100
    old_pending = pay.add(pg, "mega", 2, due=dt.date(2018, 1, 5))
    recent = pay.add(pg, "mega", 3, due=dt.date(2026, 11, 23))
    for refs in (old, recent):
        pg.execute("UPDATE pay.payment SET status = 'failed' WHERE reference = ANY(%s)", (refs,))
    pg.execute(
        "UPDATE pay.payment SET created_at = now() - interval '8 years' WHERE reference = ANY(%s)", (old + old_pending,)
    )
    file_id = pg.execute(
        "INSERT INTO ops.file_control (flow, file_name, sha256, status) VALUES ('bank_reconciliation', %s, %s, "
        "'SUCCESS') RETURNING id",
        (f"ret-{uuid.uuid4().hex}", "0" * 64),
    ).fetchone()[0]
    pg.execute(
        "INSERT INTO pay.return_line (file_id, bank, line, reference, payment_id, outcome, amount) "
        "SELECT %s, 'mega', 2, reference, id, 'returned', amount FROM pay.payment WHERE reference = %s",
        (file_id, old[0]),
    )

    out = expire(db, s3_hook, policy, "payments", "scheduled__retention-test-1")

    assert (out.rows_removed, out.batches) == (230 + 2 * 230 + 1, 3)  # payments, their 2 events each, 1 return line
    assert out.rows_exported == out.rows_removed
    left = {r[0] for r in pg.execute("SELECT reference FROM pay.payment")}
    assert left == set(old_pending + recent)  # in flight, or not old enough: kept
    assert pg.execute("SELECT count(*) FROM pay.return_line WHERE file_id = %s", (file_id,)).fetchone()[0] == 0
    exported: dict[str, list[dict]] = {}
    for m in out.manifests:
        for table, rows in read_back(s3_hook, m).items():
            exported.setdefault(table, []).extend(rows)
    assert sorted(r["reference"] for r in exported["pay.payment"]) == sorted(old)
    assert {r["amount"] for r in exported["pay.payment"]} == {str(1000 + i) for i in range(230)}  # as stored
    assert len(exported["pay.payment_event"]) == 2 * 230 and len(exported["pay.return_line"]) == 1
    row = pg.execute(
        "SELECT rows_exported, rows_removed, manifest FROM ops.retention_run WHERE dag_run_id = %s",
        ("scheduled__retention-test-1",),
    ).fetchone()
    assert row == (out.rows_exported, out.rows_removed, out.prefix) and out.prefix.startswith(
        f"s3://{ARCHIVE}/retention/"
    )

    again = expire(db, s3_hook, policy, "payments", "scheduled__retention-test-2")
    assert (again.rows_removed, again.prefix) == (0, None)  # nothing due any more


def test_health_checks_and_tenure_bodies_past_their_age(clean_payments, pg, db, s3_hook, policy):
    pg.execute(
        "INSERT INTO pay.health_check (bank, checked_at, ok, latency_ms, circuit) "
        "SELECT 'mega', now() - make_interval(days => d), true, 5, 'closed' FROM generate_series(700, 760) d"
    )
    pg.execute(
        "INSERT INTO pay.connection_test (bank, asked_by, ok, at) VALUES ('mega', 'admin', true, now() - interval '3 years')"
    )
    out = expire(db, s3_hook, policy, "health_checks", "scheduled__retention-test-3")
    assert pg.execute("SELECT count(*) FROM pay.health_check").fetchone()[0] == 31  # 700..730 days: under 2 years
    assert (
        pg.execute("SELECT count(*) FROM pay.connection_test WHERE at < now() - interval '2 years'").fetchone()[0] == 0
    )
    assert out.rows_removed == 30 + 1 and len(out.manifests) == 2

    tenure = str(uuid.uuid4())
    for age, mid in ((100, f"old-{tenure}"), (10, f"new-{tenure}")):
        pg.execute(
            "INSERT INTO ops.tenure_event (message_id, event_id, event_type, tenure_id, version, snapshot, status, "
            "received_at) VALUES (%s, %s, 'TenureCreated', %s, 1, %s, 'applied', now() - make_interval(days => %s))",
            (mid, str(uuid.uuid4()), tenure, json.dumps({"forename": "Ada", "surname": "Lovelace"}), age),
        )
    bodies = expire(db, s3_hook, policy, "tenure_event_bodies", "scheduled__retention-test-4")
    assert bodies.rows_removed >= 1 and bodies.rows_exported == 0  # emptied, never exported
    kept = dict(
        pg.execute("SELECT message_id, snapshot IS NOT NULL FROM ops.tenure_event WHERE tenure_id = %s", (tenure,))
    )
    assert kept == {f"old-{tenure}": False, f"new-{tenure}": True}


def test_a_payee_is_erased_on_request_amounts_kept_and_recorded_without_the_id(clean_payments, pg, db):
    from finflows.flows.retention import retention

    refs = pay.add(pg, "esun", 2, due=dt.date(2026, 11, 23), name="林美麗", memo="租金 3月")
    payee = pg.execute("SELECT payee_id FROM pay.payment WHERE reference = %s", (refs[0],)).fetchone()[0]
    with pytest.raises(retention.ErasureRefused, match="pending or batched"):
        retention.erase_payee(db, payee, requested_by="dpo", reason="request 2026-118")
    pg.execute("UPDATE pay.payment SET status = 'failed' WHERE reference = ANY(%s)", (refs,))
    with pytest.raises(retention.ErasureRefused, match="who asked for it and why"):
        retention.erase_payee(db, payee, requested_by="dpo", reason=" ")
    assert retention.erase_payee(db, payee, requested_by="dpo", reason="request 2026-118") == 1
    erased = pg.execute(
        "SELECT payee_name, payee_account, payee_id, memo, amount, reference FROM pay.payment WHERE reference = %s",
        (refs[0],),
    ).fetchone()
    assert erased == ("(erased)", "0", "ERASED", "", 1000, refs[0])
    other = pg.execute("SELECT payee_name FROM pay.payment WHERE reference = %s", (refs[1],)).fetchone()[0]
    assert other == "林美麗"  # another payee (its own id) untouched
    recorded = pg.execute(
        "SELECT kind, subject_sha256, rows_changed, requested_by FROM ops.erasure ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert recorded == ("payee", hashlib.sha256(payee.encode()).hexdigest(), 1, "dpo")
    assert payee not in json.dumps(pg.execute("SELECT * FROM ops.erasure").fetchall(), default=str)


def test_a_tenancy_is_erased_by_the_command_and_its_ids_and_dates_stay(pg, pg_dsn):
    tenure = str(uuid.uuid4())
    ref = f"{uuid.uuid4().int % 10**10:010d}"
    pg.execute(
        "INSERT INTO ifs.tenancy (payment_ref, tenure_id, rent_group, tenure_type, start_date, property_ref, "
        "short_address, address, post_code, title, forename, surname, date_of_birth, version, event_id) "
        "VALUES (%s, %s, 'HousingRevenue', 'Secure', '2020-01-01', 'P1', '1 Road', '1 Road, Town', 'AB1 2CD', "
        "'Ms', 'Ada', 'Lovelace', '1990-12-10', 3, %s)",
        (ref, tenure, str(uuid.uuid4())),
    )
    cmd = [
        sys.executable,
        "-m",
        "finflows.flows.retention",
        "erase",
        "tenure",
        tenure,
        "--by",
        "dpo",
        "--reason",
        "r-1",
    ]
    done = subprocess.run([*cmd, "--dsn", pg_dsn], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "erased: 1 row(s) changed" in done.stdout, done.stderr
    assert tenure not in done.stdout + done.stderr
    row = pg.execute(
        "SELECT title, forename, surname, date_of_birth, address, post_code, start_date, version FROM ifs.tenancy "
        "WHERE payment_ref = %s",
        (ref,),
    ).fetchone()
    assert row == (None, "(erased)", "(erased)", None, "(erased)", "(erased)", dt.date(2020, 1, 1), 3)
    pg.execute("DELETE FROM ifs.tenancy WHERE payment_ref = %s", (ref,))


def test_the_production_lifecycle_rules_are_accepted_by_s3(s3_hook):
    """deploy/s3/lifecycle.json, put on the local S3's buckets as production applies it, and read back."""
    from pathlib import Path

    rules = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "s3" / "lifecycle.json").read_text())
    client = s3_hook.get_conn()
    for setting, lifecycle in rules.items():
        if setting.startswith("_"):
            continue
        bucket = os.environ[setting]
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)  # as production
        got = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert {(r["ID"], r["Expiration"]["Days"]) for r in got} == {
            (r["ID"], r["Expiration"]["Days"]) for r in lifecycle["Rules"]
        }


def test_card_facts_past_seven_years_are_archived_then_removed(pg, db, s3_hook, policy, unique):
    """A statement loaded as the card flow loads it, its sales eight years old: its facts leave,
    a recent statement's stay."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from finflows import inbox
    from finflows.flows.card_reconciliation import card
    from tests.helpers.statements import detail, name, statement

    bucket = os.environ.get("FINFLOWS_STATEMENT_BUCKET", "finflows-card-statements")
    old_day = (NOW - dt.timedelta(days=8 * 365)).date()
    old_name, new_name = name(unique, day=old_day), name(unique, seq=2)
    old = statement([detail(i + 2, txn_date=old_day, entry_date=old_day) for i in range(3)], old_day)
    for fname, body in ((old_name, old), (new_name, statement(2))):
        s3_hook.load_bytes(body, key=f"statements/{fname}", bucket_name=bucket, replace=True)
        inbox.run(
            card.Statements(),
            f"statements/{fname}",
            bucket=bucket,
            run_id="manual__test",
            s3_hook=s3_hook,
            pg_hook=PostgresHook(postgres_conn_id="postgres_finance"),
        )

    def facts(fname: str) -> int:
        return pg.execute(
            "SELECT count(*) FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id "
            "WHERE c.flow = 'card_reconciliation' AND c.file_name = %s",
            (fname,),
        ).fetchone()[0]

    assert (facts(old_name), facts(new_name)) == (3, 2)
    out = expire(db, s3_hook, policy, "card_facts", f"scheduled__retention-{unique}")
    assert (facts(old_name), facts(new_name)) == (0, 2)
    exported = [r for m in out.manifests for r in read_back(s3_hook, m)["card.fact_transaction"]]
    assert {r["txn_date"] for r in exported} >= {old_day.isoformat()} and out.rows_removed >= 3
    assert all(len(r["card_last4"]) == 4 and len(r["card_bin"]) == 6 for r in exported)  # as stored: never more
