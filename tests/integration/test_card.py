"""card_reconciliation against the real stack: FTPS (verified TLS), S3, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from decimal import Decimal

import pytest

from finflows import files, inbox
from finflows.flows.card_reconciliation import card
from finflows.settings import Limit
from tests.helpers.statements import DAY, acquirer_file, acquirer_line, detail, name, statement, statement_lines

pytestmark = pytest.mark.integration
BUCKET = os.environ.get("FINFLOWS_STATEMENT_BUCKET", "finflows-card-statements")


@pytest.fixture
def pg_hook():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id="postgres_finance")


@pytest.fixture
def load(s3_hook, pg_hook):
    def go(key: str, run_id: str = "manual__test"):
        return inbox.run(card.Statements(), key, bucket=BUCKET, run_id=run_id, s3_hook=s3_hook, pg_hook=pg_hook)

    return go


def facts(pg, file_name: str) -> list[tuple]:
    return pg.execute(
        """SELECT t.record_seq, t.gross, t.net, t.card_bin, t.card_last4, t.brand FROM card.fact_transaction t
             JOIN ops.file_control c ON c.id = t.file_id
            WHERE c.flow = 'card_reconciliation' AND c.file_name = %s ORDER BY t.record_seq""",
        (file_name,),
    ).fetchall()


def control(pg, file_name: str):
    return pg.execute(
        "SELECT status, line_count, row_count, total_amount, error FROM ops.file_control "
        "WHERE flow = 'card_reconciliation' AND file_name = %s",
        (file_name,),
    ).fetchone()


def test_a_statement_on_ftps_is_copied_to_s3_loaded_and_archived(ftps_hook, s3_hook, pg_hook, pg, load, unique):
    fname = name(unique)
    acquirer = ftps_hook("acquirer")
    acquirer.store_file(f"/Saida/{fname}", io.BytesIO(statement(3)))
    acquirer.store_file(f"/Saida/README-{unique}.txt", io.BytesIO(b"not a statement"))
    with files.connect(pg_hook) as conn:
        copied = card.fetch_from_ftps(acquirer, "/Saida", s3_hook, BUCKET, conn)
    assert fname in copied and f"README-{unique}.txt" not in copied
    key = f"statements/{fname}"
    assert key in card.discover(s3_hook, BUCKET)

    outcome = load(key)
    assert (outcome.status, outcome.records, outcome.gross, outcome.net) == ("LOADED", 3, "300.00", "294.00")
    assert [r[0] for r in facts(pg, fname)] == [2, 3, 4]
    assert {(r[3], r[4]) for r in facts(pg, fname)} == {("411111", "1111")}
    assert control(pg, fname)[:4] == ("SUCCESS", 5, 3, Decimal("300.00"))
    assert s3_hook.check_for_key(f"processed/{fname}", bucket_name=BUCKET)
    assert not s3_hook.check_for_key(key, bucket_name=BUCKET)
    assert pg.execute("SELECT 1 FROM card.dim_store WHERE store_id = '000012345678901'").fetchone()
    assert pg.execute("SELECT is_weekend FROM card.dim_date WHERE day = %s", (DAY,)).fetchone() == (False,)

    # the next run: the file is still on FTPS but the control table has it, so nothing is copied
    with files.connect(pg_hook) as conn:
        assert fname not in card.fetch_from_ftps(acquirer, "/Saida", s3_hook, BUCKET, conn)


def test_times_and_dates_are_stored_as_the_file_states_them(s3_hook, pg, load, unique):
    """The reader copies ``HHMMSS`` and the calendar-checked dates as PostgreSQL reads them: what
    lands in the table is the file's time of day, midnight and the last second included (records
    laid out from the layout, not by our writer)."""
    fname = name(unique)
    times = [dt.time(0, 0, 0), dt.time(23, 59, 59), dt.time(9, 5, 7)]
    days = [dt.date(2024, 2, 29), dt.date(2026, 12, 31), dt.date(2027, 1, 1)]
    details = [
        acquirer_line(i + 2, txn_date=f"{d:%Y%m%d}", txn_time=f"{t:%H%M%S}")
        for i, (t, d) in enumerate(zip(times, days, strict=True))
    ]
    s3_hook.load_bytes(acquirer_file(*details), key=f"statements/{fname}", bucket_name=BUCKET)
    assert load(f"statements/{fname}").status == "LOADED"
    stored = pg.execute(
        """SELECT t.txn_time, t.txn_date FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id
            WHERE c.flow = 'card_reconciliation' AND c.file_name = %s ORDER BY t.record_seq""",
        (fname,),
    ).fetchall()
    assert stored == list(zip(times, days, strict=True))


def test_re_running_the_same_statement_adds_nothing(s3_hook, pg, load, unique):
    fname = name(unique)
    s3_hook.load_bytes(statement(2), key=f"statements/{fname}", bucket_name=BUCKET)
    load(f"statements/{fname}")
    s3_hook.load_bytes(statement(2), key=f"statements/{fname}", bucket_name=BUCKET)
    again = load(f"statements/{fname}", run_id="manual__again")
    assert again.status == "ALREADY_LOADED" and again.records == 2
    assert len(facts(pg, fname)) == 2


def test_clearing_a_load_that_succeeded_reports_it_as_already_loaded(s3_hook, pg, load, unique):
    """Airflow's clear-and-rerun: the statement has moved to processed/; the task says it was
    loaded and succeeds, never a NoSuchKey; a statement that was never loaded is refused by name."""

    fname = name(unique)
    key = f"statements/{fname}"
    s3_hook.load_bytes(statement(2), key=key, bucket_name=BUCKET)
    first = load(key, run_id="scheduled__first")
    assert first.status == "LOADED" and not s3_hook.check_for_key(key, bucket_name=BUCKET)
    again = load(key, run_id="scheduled__first")  # the same task instance, cleared and run again
    assert (again.status, again.records, again.sha256, again.net) == ("ALREADY_LOADED", 2, first.sha256, first.net)
    assert len(facts(pg, fname)) == 2
    never = name(unique, seq=9)
    with pytest.raises(files.FileRejected, match=f"{never} is not in the inbox and was never loaded") as gone:
        load(f"statements/{never}", run_id="scheduled__gone")
    assert gone.value.rule == "not_in_inbox"


def _broken(kind: str) -> tuple[bytes, str]:
    lines = statement_lines([detail(2), detail(3)])
    if kind == "no trailer":
        lines = lines[:-1]
        expect = "no A9 trailer"
    elif kind == "trailer count":
        lines[-1] = "A9000007000004".ljust(400)
        expect = "field total_records, value '000007': says 7 records but the file has 4"
    elif kind == "short record":
        lines[2] = lines[2][:399]
        expect = "line 3, field record"
    elif kind == "bad amount":
        lines[1] = lines[1][:76] + "00000-98.00" + lines[1][87:]
        expect = "line 2, field net, value '00000-98.00'"
    elif kind == "impossible date":
        lines[2] = lines[2][:44] + "20261131" + lines[2][52:]
        expect = "line 3, field entry_date, value '20261131': is not a date (expected YYYYMMDD)"
    elif kind == "unknown brand":
        lines[1] = lines[1][:187] + "004" + lines[1][190:]
        expect = "line 2, field brand, value '004'"
    else:  # unmasked card number
        lines[2] = lines[2][:87] + "5555555555554444   " + lines[2][106:]
        expect = "line 3, field card, value '555555******4444': shows more than BIN + last four"
    return "".join(x + "\r\n" for x in lines).encode("latin-1"), expect


@pytest.mark.parametrize(
    "kind",
    ["no trailer", "trailer count", "short record", "bad amount", "impossible date", "unknown brand", "unmasked card"],
)
def test_bad_statements_are_quarantined_with_a_precise_message_and_nothing_loaded(kind, s3_hook, pg, load, unique):
    fname = name(unique)
    data, expect = _broken(kind)
    s3_hook.load_bytes(data, key=f"statements/{fname}", bucket_name=BUCKET)
    with pytest.raises(files.FileRejected) as err:
        load(f"statements/{fname}")
    assert expect in str(err.value)
    assert facts(pg, fname) == []
    status, *_rest, error = control(pg, fname)
    assert status == "ERROR" and expect in error
    report = s3_hook.read_key(f"quarantine/{fname}.error.json", bucket_name=BUCKET)
    # kept as received; only on a line the error names may a digit show as '*' (a card number may sit
    # anywhere in a line that departs from its layout), and then the original's sha256 is beside it
    kept = s3_hook.get_key(f"quarantine/{fname}", bucket_name=BUCKET)
    body = kept.get()["Body"].read()
    named = {e["line"] for e in json.loads(report)["errors"]}
    assert len(body) == len(data)
    for n, (ours, theirs) in enumerate(zip(body.split(b"\r\n"), data.split(b"\r\n"), strict=True), start=1):
        if n not in named:
            assert ours == theirs, f"line {n} kept as received"
        else:
            assert all(a == b or (a == ord("*") and chr(b).isdigit()) for a, b in zip(ours, theirs, strict=True))
    if body != data:
        assert kept.metadata["original-sha256"] == hashlib.sha256(data).hexdigest()
    if kind == "unmasked card":
        assert b"555555******4444" in body
    first = json.loads(report)["errors"][0]
    assert {"line", "field", "value", "reason"} <= set(first) and first["reason"] in str(err.value)
    for text in (str(err.value), error, report):
        assert "5555555555554444" not in text


def test_daily_summary_and_instalment_matching(s3_hook, pg, load, unique):
    """Forecasts (entry type 0) against settlements (1/2) by instalment NSU, in the views."""
    base = int(unique, 16) % 10**8 * 10
    nsu = [f"{base + i:012d}" for i in range(5)]
    store = f"9{int(unique, 16) % 10**14:014d}"
    past = DAY - dt.timedelta(days=60)
    rows = [
        detail(2, store_id=store, instalment_nsu=nsu[0], amount="100.00"),  # matched below
        detail(3, store_id=store, instalment_nsu=nsu[1], amount="50.00"),  # settled for less
        detail(4, store_id=store, instalment_nsu=nsu[2], amount="20.00", entry_date=past),  # overdue
        detail(5, store_id=store, instalment_nsu=nsu[3], amount="10.00", brand="001"),  # awaiting
        detail(6, store_id=store, instalment_nsu=nsu[0], entry_type="1", amount="100.00"),
        detail(7, store_id=store, instalment_nsu=nsu[1], entry_type="2", amount="40.00"),
        detail(8, store_id=store, instalment_nsu=nsu[4], entry_type="1", amount="5.00"),  # no forecast
    ]
    fname = name(unique)
    s3_hook.load_bytes(statement(rows), key=f"statements/{fname}", bucket_name=BUCKET)
    load(f"statements/{fname}")

    summary = pg.execute(
        "SELECT brand, sales, gross, discount, net FROM card.v_daily_summary WHERE store_id = %s ORDER BY brand",
        (store,),
    ).fetchall()
    assert summary == [
        ("Mastercard", 1, Decimal("10.00"), Decimal("0.20"), Decimal("9.80")),
        ("Visa", 3, Decimal("170.00"), Decimal("3.40"), Decimal("166.60")),
    ]
    match = dict(
        pg.execute(
            "SELECT instalment_nsu, status FROM card.v_instalment_match WHERE store_id = %s", (store,)
        ).fetchall()
    )
    assert match == {
        nsu[0]: "matched",
        nsu[1]: "amount mismatch",
        nsu[2]: "overdue",
        nsu[3]: "awaiting settlement",
        nsu[4]: "settlement without forecast",
    }
    diff = pg.execute("SELECT difference FROM card.v_instalment_exceptions WHERE instalment_nsu = %s", (nsu[1],))
    assert diff.fetchone()[0] == Decimal("-9.80")
    exceptions = {
        r[0]
        for r in pg.execute(
            "SELECT instalment_nsu FROM card.v_instalment_exceptions WHERE store_id = %s", (store,)
        ).fetchall()
    }
    assert exceptions == {nsu[1], nsu[2], nsu[4]}


def test_a_file_not_named_like_a_statement_is_quarantined(s3_hook, pg, load, unique):
    s3_hook.load_bytes(statement(1), key=f"statements/extrato-{unique}.txt", bucket_name=BUCKET)
    with pytest.raises(files.FileRejected, match="is not EXTRATO_UNICA_"):
        load(f"statements/extrato-{unique}.txt")
    assert s3_hook.check_for_key(f"quarantine/extrato-{unique}.txt", bucket_name=BUCKET)


def test_an_ftps_outage_raises_and_s3_discovery_is_unaffected(s3_hook, pg_hook, unique, monkeypatch):
    from finflows.hooks.ftp import FTPSHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_FTPS_DOWN",
        json.dumps({"conn_type": "ftps", "host": "127.0.0.1", "port": 1, "login": "x", "password": "y"}),
    )
    s3_hook.load_bytes(statement(1), key=f"statements/{name(unique)}", bucket_name=BUCKET)
    with files.connect(pg_hook) as conn, pytest.raises(ConnectionRefusedError):
        card.fetch_from_ftps(FTPSHook(ftp_conn_id="ftps_down"), "/Saida", s3_hook, BUCKET, conn)
    assert f"statements/{name(unique)}" in card.discover(s3_hook, BUCKET)
    s3_hook.delete_objects(bucket=BUCKET, keys=[f"statements/{name(unique)}"])


def test_same_name_with_other_content_is_quarantined_and_the_first_load_stands(s3_hook, pg, load, unique):
    fname = name(unique)
    key = f"statements/{fname}"
    s3_hook.load_bytes(statement(3), key=key, bucket_name=BUCKET, replace=True)
    assert load(key, run_id="run_1").status == "LOADED"
    first = facts(pg, fname)
    s3_hook.load_bytes(statement(2), key=key, bucket_name=BUCKET, replace=True)  # a corrected resend, same name
    with pytest.raises(files.FileRejected, match="already loaded with different content") as e:
        load(key, run_id="run_2")
    assert facts(pg, fname) == first and control(pg, fname)[0] == "SUCCESS"  # nothing replaced
    assert e.value.quarantined == f"s3://{BUCKET}/quarantine/{fname}"
    assert "processed/" in e.value.next_step and fname in e.value.next_step
    assert s3_hook.read_key(f"quarantine/{fname}", bucket_name=BUCKET).encode("latin-1") == statement(2)
    report = json.loads(s3_hook.read_key(f"quarantine/{fname}.error.json", bucket_name=BUCKET))
    assert report["run_id"] == "run_2" and "different content" in report["error"]
    assert (e.value.rule, report["rule"]) == ("conflict", "conflict")
    last = pg.execute(
        "SELECT event FROM ops.file_event WHERE flow = 'card_reconciliation' AND file_name = %s ORDER BY id DESC LIMIT 1",
        (fname,),
    ).fetchone()
    assert last == ("CONFLICT",)


def test_a_statement_over_the_size_limit_stays_on_ftps_is_named_once_and_skipped_after(
    ftps_hook, s3_hook, pg_hook, pg, unique, monkeypatch
):
    """FINFLOWS_STATEMENT_MAX_BYTES: the server's SIZE is over it, so nothing is read; the other
    statement is still copied, the run is told which file and why, and the next run skips it."""
    big, small = name(unique), name(unique, seq=2)
    acquirer = ftps_hook("acquirer")
    acquirer.store_file(f"/Saida/{big}", io.BytesIO(statement(200)))
    acquirer.store_file(f"/Saida/{small}", io.BytesIO(statement(2)))
    monkeypatch.setenv("FINFLOWS_STATEMENT_MAX_BYTES", str(len(statement(2)) + 10))
    with files.connect(pg_hook) as conn, pytest.raises(files.FileRejected) as err:
        card.fetch_from_ftps(acquirer, "/Saida", s3_hook, BUCKET, conn, run_id="manual__big")
    # (statements other tests left on the server are over this test's tiny limit too)
    assert big in err.value.file_name.split(", ") and "FINFLOWS_STATEMENT_MAX_BYTES" in str(err.value)
    assert small not in err.value.file_name.split(", ")
    assert s3_hook.check_for_key(f"statements/{small}", bucket_name=BUCKET)
    assert not s3_hook.check_for_key(f"statements/{big}", bucket_name=BUCKET)
    assert control(pg, big)[0] == "ERROR" and "refused unread" in control(pg, big)[4]
    assert acquirer.get_size(f"/Saida/{big}") == len(statement(200))  # left where it was
    monkeypatch.delenv("FINFLOWS_STATEMENT_MAX_BYTES")
    with files.connect(pg_hook) as conn:
        assert big not in card.fetch_from_ftps(acquirer, "/Saida", s3_hook, BUCKET, conn)  # recorded: skipped
    for n in (big, small):
        acquirer.delete_file(f"/Saida/{n}")
    s3_hook.get_conn().delete_object(Bucket=BUCKET, Key=f"statements/{small}")


def test_a_statement_that_grows_past_the_limit_while_read_is_cut_off(ftps_hook, tmp_path, unique):
    """A server that does not answer SIZE truthfully: the count of bytes received is the bound."""
    big = name(unique)
    acquirer = ftps_hook("acquirer")
    acquirer.store_file(f"/Saida/{big}", io.BytesIO(statement(500)))
    acquirer.get_size = lambda path: None  # as a server without SIZE answers
    with pytest.raises(files.FileTooLarge, match="over the limit of 100,000 bytes"):
        card.retrieve_bounded(acquirer, f"/Saida/{big}", tmp_path / big, Limit(100_000, "FINFLOWS_STATEMENT_MAX_BYTES"))
    assert (tmp_path / big).stat().st_size <= 100_000


@pytest.mark.parametrize("held", [True, False], ids=["members held by the reader", "members read from the facts"])
def test_every_store_date_and_product_a_statement_names_reaches_its_dimension(
    s3_hook, pg, load, unique, monkeypatch, held
):
    """Each store, each sale and entry date, each product with its type's name reaches its
    dimension: from the members the reader held, and (a statement naming more than MEMBERS_HELD,
    here made 2) from the facts just copied, nothing held in Python."""
    import datetime as dt

    from finflows.formats import card_statement

    if not held:
        monkeypatch.setattr(card_statement, "MEMBERS_HELD", 2)

    fname = name(unique)
    stores = [f"{int(unique, 16) % 10**9:09d}{i:06d}" for i in range(3)]
    days = [DAY - dt.timedelta(days=400 + i) for i in range(3)]
    rows = [
        detail(
            i + 2,
            store_id=stores[i],
            txn_date=days[i],
            entry_date=days[i] + dt.timedelta(days=31),
            product_type="DVC"[i],
            product_code=f"{11 + i:03d}",
        )
        for i in range(3)
    ]
    wanted = days + [d + dt.timedelta(days=31) for d in days]
    # no foreign key points at a dimension row: these are removed so that only this load can make them
    pg.execute("DELETE FROM card.dim_date WHERE day = ANY(%s)", (wanted,))
    pg.execute(
        "DELETE FROM card.dim_product WHERE (product_type, product_code) IN (('D','011'), ('V','012'), ('C','013'))"
    )
    s3_hook.load_bytes(statement(rows), key=f"statements/{fname}", bucket_name=BUCKET, replace=True)
    assert load(f"statements/{fname}").records == 3
    found = {r[0] for r in pg.execute("SELECT store_id FROM card.dim_store WHERE store_id = ANY(%s)", (stores,))}
    assert found == set(stores)
    assert pg.execute("SELECT count(*) FROM card.dim_date WHERE day = ANY(%s)", (wanted,)).fetchone()[0] == 6
    products = pg.execute(
        "SELECT product_type, product_code, type_name FROM card.dim_product "
        "WHERE (product_type, product_code) IN (('D','011'), ('V','012'), ('C','013')) ORDER BY product_code"
    ).fetchall()
    assert products == [("D", "011", "debit"), ("V", "012", "voucher"), ("C", "013", "credit")]


def test_a_statement_whose_name_the_acquirer_never_uses_is_refused_by_the_name_rule(s3_hook, pg, load, unique):
    """Refused before anything is read or loaded, quarantined with the rule ``name``."""

    fname = f"statement-{unique}.txt"
    s3_hook.load_bytes(statement(1), key=f"statements/{fname}", bucket_name=BUCKET, replace=True)
    with pytest.raises(files.FileRejected, match=r"field file_name, value .* is not EXTRATO_UNICA_") as e:
        load(f"statements/{fname}")
    assert e.value.rule == "name"
    report = json.loads(s3_hook.read_key(f"quarantine/{fname}.error.json", bucket_name=BUCKET))
    assert report["rule"] == "name" and report["errors"][0]["field"] == "file_name"
    assert control(pg, fname)[0] == "ERROR" and facts(pg, fname) == []


def test_a_card_number_in_a_statements_free_text_is_masked_in_every_copy_kept(s3_hook, pg, load, unique):
    """Issue #41: the order code and the authorisation code are text the acquirer's merchants fill;
    a card number there is loaded masked, and the statement archived in processed/ is the same file
    with that number masked in place, the original's sha256 in its metadata and the control row."""
    fname = name(unique)
    lines = statement_lines([detail(2), detail(3)])
    lines[1] = lines[1][:272] + "ORDER 4111-1111-1111-1111".ljust(30) + lines[1][302:]
    lines[2] = lines[2][:175] + "378282246310005"[:12] + lines[2][187:]  # 12 digits: no card number
    data = "".join(x + "\r\n" for x in lines).encode("latin-1")
    s3_hook.load_bytes(data, key=f"statements/{fname}", bucket_name=BUCKET)
    assert load(f"statements/{fname}").status == "LOADED"
    archived = s3_hook.get_key(f"processed/{fname}", bucket_name=BUCKET)
    kept = archived.get()["Body"].read()
    assert kept == data.replace(b"4111-1111-1111-1111", b"4111-11**-****-1111") and len(kept) == len(data)
    sha = pg.execute("SELECT sha256 FROM ops.file_control WHERE file_name = %s", (fname,)).fetchone()[0]
    assert archived.metadata == {"original-sha256": sha, "card-numbers": "masked"}
    assert sha == hashlib.sha256(data).hexdigest()


def test_a_statement_without_a_card_number_is_archived_byte_for_byte(s3_hook, load, unique):
    fname = name(unique)
    data = statement(3)
    s3_hook.load_bytes(data, key=f"statements/{fname}", bucket_name=BUCKET)
    load(f"statements/{fname}")
    archived = s3_hook.get_key(f"processed/{fname}", bucket_name=BUCKET)
    assert archived.get()["Body"].read() == data and "card-numbers" not in archived.metadata
