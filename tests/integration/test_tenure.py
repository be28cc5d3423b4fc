"""tenure_sync against the real stack: SQS (+ dead-letter queue), Sheets stand-in through the
Google client, PostgreSQL. Each test uses its own tenures and payment references."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

import pytest

from finflows import files
from finflows.flows.tenure_sync import tenure
from tests.helpers.tenure import event, payment_ref

pytestmark = pytest.mark.integration
SPREADSHEET = os.environ.get("FINFLOWS_INTERIM_SPREADSHEET", "interim-finance-accounts")


@pytest.fixture
def queues(drain_queue):
    q, dlq = os.environ["FINFLOWS_TENURE_QUEUE_URL"], os.environ["FINFLOWS_TENURE_DLQ_URL"]
    drain_queue(q, wait=0)
    drain_queue(dlq, wait=0)
    return q, dlq


@pytest.fixture
def conn():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    with files.connect(PostgresHook(postgres_conn_id="postgres_finance")) as c:
        yield c


@pytest.fixture
def sync(sqs_client, sheets, queues, conn):
    """One tenure_sync run: collect from the queue, then apply to the target."""
    q, dlq = queues
    writer = tenure.SheetWriter(sheets, SPREADSHEET)

    def run(target: str = "both") -> tuple[dict, dict]:
        got = tenure.collect(conn, sqs_client, queue_url=q, dlq_url=dlq, delivered=[], run_id="manual__test")
        if target != "database":
            writer.ensure_protected()
        return got, tenure.apply_pending(conn, target=target, run_id="manual__test", sheet=writer)

    return run


@pytest.fixture
def send(sqs_client, queues):
    def go(*bodies) -> None:
        for b in bodies:
            sqs_client.send_message(QueueUrl=queues[0], MessageBody=b if isinstance(b, str) else json.dumps(b))

    return go


def account(conn, tenure_id: str, rent_group: str = "HousingRevenue") -> str:
    ref = payment_ref()
    conn.execute(
        "INSERT INTO ifs.rent_account (payment_ref, tenure_id, rent_group) VALUES (%s, %s, %s)",
        (ref, tenure_id, rent_group),
    )
    return ref


def sheet_rows(sheets, tab: str, ref: str) -> list[list[str]]:
    return [r for r in sheets.get_values(SPREADSHEET, f"{tab}!A:M") if r and r[0] == ref]


def table_row(conn, ref: str):
    return conn.execute(
        "SELECT tenure_type, end_date::text, surname, version, rent_group FROM ifs.tenancy WHERE payment_ref = %s",
        (ref,),
    ).fetchone()


def statuses(conn, tenure_id: str) -> dict[int, str]:
    rows = conn.execute("SELECT version, status FROM ops.tenure_event WHERE tenure_id = %s", (tenure_id,))
    return dict(rows.fetchall())


def google_calls() -> dict[str, int]:
    port = os.environ["FINFLOWS_GOOGLE_PORT"]  # from .local/stack.env: the stack's own port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=60) as r:
        return json.load(r)


def test_create_then_update_lands_in_sheet_and_table(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    send(event(tid, 1))
    collected, applied = sync()
    assert collected["new"] == 1 and applied["applied"] >= 1
    rows = sheet_rows(sheets, "HousingRevenue", ref)
    assert len(rows) == 1 and rows[0][:4] == [ref, "Secure", "2026-12-01", ""]
    assert table_row(conn, ref) == ("Secure", None, "Tenant", 1, "HousingRevenue")

    send(event(tid, 2, endDate="2027-11-30", surname="Renamed"))
    sync()
    rows = sheet_rows(sheets, "HousingRevenue", ref)
    assert len(rows) == 1, "updated in place, not appended"
    assert rows[0][3] == "2027-11-30" and rows[0][11] == "Renamed"
    assert table_row(conn, ref) == ("Secure", "2027-11-30", "Renamed", 2, "HousingRevenue")
    assert statuses(conn, tid) == {1: "applied", 2: "applied"}


def test_duplicate_and_out_of_order_events_change_nothing(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    v1, v2, v3 = event(tid, 1), event(tid, 2, surname="Two"), event(tid, 3, surname="Three")
    send(v3, v3, v1)  # v3 delivered twice (same event id), v1 late
    collected, _ = sync()
    assert collected["new"] == 2 and collected["duplicate"] == 1
    assert table_row(conn, ref)[2:4] == ("Three", 3)
    assert statuses(conn, tid) == {1: "stale", 3: "applied"}

    send(v2)  # an older version arriving after a newer one was applied
    _, applied = sync()
    assert statuses(conn, tid) == {1: "stale", 2: "stale", 3: "applied"}
    assert table_row(conn, ref)[2:4] == ("Three", 3)
    assert sheet_rows(sheets, "HousingRevenue", ref)[0][11] == "Three"
    assert applied["stale"] >= 1

    again = {**event(tid, 3, surname="Three-again")}  # same version, new event id: a repeat
    send(again)
    sync()
    assert table_row(conn, ref)[2:4] == ("Three", 3)


def test_unknown_account_waits_then_applies_when_the_account_arrives(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    send(event(tid, 1))
    _, applied = sync()
    assert statuses(conn, tid) == {1: "pending"} and applied["pending"] >= 1
    assert conn.execute("SELECT attempts FROM ops.tenure_event WHERE tenure_id = %s", (tid,)).fetchone()[0] == 1

    ref = account(conn, tid, "TempAccomHRA")
    send(event(tid, 2, rent_group="TempAccomHRA"))
    sync()
    assert statuses(conn, tid) == {1: "stale", 2: "applied"}
    assert len(sheet_rows(sheets, "TempAccomHRA", ref)) == 1
    assert table_row(conn, ref)[3:] == (2, "TempAccomHRA")


def test_poison_messages_go_to_the_dead_letter_queue_with_their_reason(sync, send, conn, queues, drain_queue):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    send("{not json", event(str(uuid.uuid4()), 1, rent_group="Parking"), event(tid, 1))
    collected, _ = sync()
    assert collected["rejected"] == 2 and collected["new"] == 1
    dead = drain_queue(queues[1], wait=2)
    assert len(dead) == 2
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)
    assert reasons[0].startswith("not JSON") and "tenure.rentGroup" in reasons[1] and "'Parking'" in reasons[1]
    assert {m["Body"] for m in dead} >= {"{not json"}, "the original body is kept"
    ids = [m["MessageAttributes"]["sourceMessageId"]["StringValue"] for m in dead]
    recorded = conn.execute(
        "SELECT count(*) FROM ops.tenure_event WHERE message_id = ANY(%s) AND status = 'rejected' AND reason <> ''",
        (ids,),
    ).fetchone()[0]
    assert recorded == 2
    assert table_row(conn, ref) is not None, "the good message in the same batch was applied"
    assert drain_queue(queues[0], wait=0) == [], "nothing left on the source queue"


def test_a_card_number_in_a_poison_message_is_masked_on_the_dead_letter_queue(sync, send, queues, drain_queue):
    """Issue #41: a refused event is kept on the dead-letter queue for people to read, but a card
    number written in it (here in the address of an event refused for its rent group) is masked
    there, and said so."""
    send(event(str(uuid.uuid4()), 1, rent_group="Parking", shortAddress="paid by card 4111 1111 1111 1111"))
    collected, _ = sync()
    assert collected["rejected"] == 1
    [dead] = drain_queue(queues[1], wait=2)
    assert "4111 1111 1111 1111" not in dead["Body"] and "4111 11** **** 1111" in dead["Body"]
    assert dead["MessageAttributes"]["cardNumbers"]["StringValue"] == "masked"
    assert "4111 1111 1111 1111" not in dead["MessageAttributes"]["reason"]["StringValue"]


def test_moving_rent_group_moves_the_row(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    send(event(tid, 1))
    sync("sheet")
    send(event(tid, 2, rent_group="LHServCharges"))
    sync("sheet")
    assert sheet_rows(sheets, "HousingRevenue", ref) == []
    assert len(sheet_rows(sheets, "LHServCharges", ref)) == 1


def test_target_sheet_leaves_the_table_and_both_catches_it_up_later(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    send(event(tid, 1))
    sync("sheet")
    assert len(sheet_rows(sheets, "HousingRevenue", ref)) == 1 and table_row(conn, ref) is None
    send(event(tid, 1 + 1, surname="Later"))
    sync("database")
    assert table_row(conn, ref)[2:4] == ("Later", 2)
    assert sheet_rows(sheets, "HousingRevenue", ref)[0][11] == "Tenant", "database target leaves the sheet"


def test_one_read_and_one_write_request_for_many_rows_in_many_tabs(sync, send, conn):
    tids = [str(uuid.uuid4()) for _ in range(6)]
    groups = ["HousingRevenue", "GarParkHRA", "TravelGenFund"]
    for i, tid in enumerate(tids):
        account(conn, tid)
        send(event(tid, 1, rent_group=groups[i % 3]))
    before = google_calls()
    _, applied = sync("sheet")
    after = google_calls()
    assert applied["sheet_rows"] >= 6
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert calls.get(f"POST /v4/spreadsheets/{SPREADSHEET}/values:batchUpdate") == 1, calls
    assert calls.get(f"GET /v4/spreadsheets/{SPREADSHEET}/values:batchGet") == 1, calls


def test_the_sheet_is_protected_for_the_flow_only_and_formulas_stay_text(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    ref = account(conn, tid)
    send(event(tid, 1, shortAddress='=HYPERLINK("http://evil.example","x")'))
    sync("sheet")
    book = sheets.get_spreadsheet(SPREADSHEET)
    email = sheets.get_credentials().service_account_email
    for s in book["sheets"]:
        prot = [p for p in s["protectedRanges"] if p["description"] == tenure.PROTECTION]
        assert len(prot) == 1, s["properties"]["title"]  # added once, not on every run
        assert prot[0]["editors"]["users"] == [email] and prot[0]["warningOnly"] is False
    assert sheet_rows(sheets, "HousingRevenue", ref)[0][5].startswith("=HYPERLINK")
    raw = sheets.batch_get_values(SPREADSHEET, ["HousingRevenue!A:M"], value_render_option="FORMULA")
    assert any(r and r[0] == ref for r in raw["valueRanges"][0]["values"])


def test_a_changed_header_stops_the_write_and_keeps_events_pending(sync, send, conn, sheets):
    tid = str(uuid.uuid4())
    account(conn, tid, "LHMajorWorks")
    sheets.update_values(SPREADSHEET, "LHMajorWorks!B1", [["Tenancy"]])
    try:
        send(event(tid, 1, rent_group="LHMajorWorks"))
        with pytest.raises(tenure.SheetLayoutError, match="'LHMajorWorks' header"):
            sync("both")
        assert statuses(conn, tid) == {1: "pending"}, "rolled back: still pending"
        assert conn.execute("SELECT count(*) FROM ifs.tenancy WHERE tenure_id = %s", (tid,)).fetchone()[0] == 0
    finally:
        sheets.update_values(SPREADSHEET, "LHMajorWorks!B1", [["Tenure"]])
    sync("both")
    assert statuses(conn, tid) == {1: "applied"}
