"""make demo: seed sample inputs for every flow, run each with `airflow dags test`, print a summary."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from devstack import seed, stack
from devstack.config import LOCAL, REPO
from devstack.fixtures import (
    forget_chargeback_file,
    forget_orphan_uploads,
    forget_payments,
    forget_tenures,
    seed_tenure_accounts,
)

SAMPLES = REPO / "include" / "samples"
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def s3():
    return stack._aws_client("s3")


def mails() -> int:
    return len(list((LOCAL / "smtp").glob("*.eml")))


def dags_test(dag_id: str, conf: dict | None = None) -> tuple[bool, float, Path]:
    log = LOCAL / "logs" / f"demo-{dag_id}-{int(time.time())}.log"
    t0 = time.monotonic()
    cmd = [AIRFLOW, "dags", "test", dag_id] + (["--conf", json.dumps(conf)] if conf else [])
    with log.open("w") as out:
        # FINFLOWS_DEADLINES=off: `dags test` cannot run a DAG with a Deadline Alert in Airflow 3.3.2
        env = os.environ | {"FINFLOWS_DEADLINES": "off"}
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode
    return rc == 0, time.monotonic() - t0, log


@contextlib.contextmanager
def api_server():
    """An Airflow api-server on the demo's metadata database, for a person's answers through the
    REST API (users admin and treasurer, the local payment approver); yields its port."""
    import socket

    from devstack import standalone

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (LOCAL / "logs" / f"demo-api-server-{int(time.time())}.log").open("wb")
    proc = subprocess.Popen(
        [AIRFLOW, "api-server", "--port", str(port)],
        env=standalone.standalone_env(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                standalone.health(port)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the demo's api-server did not start: see {log.name}") from None
                time.sleep(2)
        yield port
    finally:
        standalone.stop(proc, port)
        log.close()


def rest(port: int, method: str, path: str, body: dict | None = None, user: str | None = None) -> dict:
    import urllib.request

    from devstack import standalone

    headers = {"Content-Type": "application/json"}
    if user:
        password = json.loads(standalone.passwords_file().read_text())[user]
        tok = rest(port, "POST", "/auth/token", {"username": user, "password": password})["access_token"]
        headers["Authorization"] = f"Bearer {tok}"
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    with urllib.request.urlopen(req, timeout=120) as r:  # noqa: S310 (http to our loopback api-server)
        return json.load(r)


def approve_as(port: int, user: str, dag_id: str, run: subprocess.Popen, timeout: float = 600) -> list[dict]:
    """Answer every open approval of the DAG's running runs as ``user`` through the REST API until
    ``run`` (an `airflow dags test`) ends; the requests answered, as the API showed them."""
    import urllib.parse

    answered, deadline = [], time.monotonic() + timeout
    while run.poll() is None and time.monotonic() < deadline:
        for r in rest(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns?state=running", user=user)["dag_runs"]:
            q = urllib.parse.quote(r["dag_run_id"], safe="")
            for d in rest(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{q}/hitlDetails", user=user)["hitl_details"]:
                if d["response_received"]:
                    continue
                ti = d["task_instance"]
                path = f"/api/v2/dags/{dag_id}/dagRuns/{q}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails"
                reply = rest(port, "PATCH", path, {"chosen_options": ["Approve"], "params_input": {"reason": ""}}, user)
                answered.append(d | {"reply": reply})
        time.sleep(2)
    return answered


def dags_test_answered(dag_id: str, conf: dict, port: int) -> tuple[bool, float, Path, list[dict]]:
    """`airflow dags test` of a DAG that asks a person: its approvals answered by treasurer."""
    log = LOCAL / "logs" / f"demo-{dag_id}-{int(time.time())}.log"
    t0 = time.monotonic()
    with log.open("w") as out:
        env = os.environ | {"FINFLOWS_DEADLINES": "off"}
        cmd = [AIRFLOW, "dags", "test", dag_id, "--conf", json.dumps(conf)]
        run = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            answered = approve_as(port, "treasurer", dag_id, run)
            rc = run.wait(timeout=600)
        finally:
            if run.poll() is None:
                run.kill()
    return rc == 0, time.monotonic() - t0, log, answered


def demo_cashfile() -> list[str]:
    bucket = os.environ["FINFLOWS_CASHFILE_BUCKET"]
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        # the demo is repeatable: the seed forgets what an earlier demo imported from these samples
        client = s3()
        files = seed.cash_files(pg, client)
        names = list(seed.CASH_FILES)
        mails_before = mails()
        ok1, secs1, log1 = dags_test("cashfile_import")
        # CivicaPay delivers the first file again: the second run must skip it as a duplicate
        client.put_object(Bucket=bucket, Key=f"cashfiles/{files[0].name}", Body=files[0].read_bytes())
        ok2, secs2, log2 = dags_test("cashfile_import")
        rows = pg.execute(
            """SELECT c.file_name, c.status, c.row_count, c.total_amount,
                      (SELECT count(*) FROM ifs.cash_payment p WHERE p.file_id = c.id),
                      (SELECT count(*) FROM ifs.cash_suspense s WHERE s.file_id = c.id)
               FROM ops.file_control c WHERE c.flow = 'cashfile_import' AND c.file_name = ANY(%s)
               ORDER BY c.file_name""",
            (names,),
        ).fetchall()
        dups = pg.execute(
            "SELECT count(*) FROM ops.file_event WHERE flow = 'cashfile_import' AND event = 'DUPLICATE' "
            "AND file_name = ANY(%s) AND at > now() - interval '10 minutes'",
            (names,),
        ).fetchone()[0]
    from finflows.google import DriveHook

    drive = DriveHook(gcp_conn_id="google_finflows").get_conn()
    copies = (
        drive.files()
        .list(q="'finance-cashfiles' in parents and trashed = false", fields="files(id, name, size)")
        .execute()["files"]
    )
    copies = {c["name"]: c for c in copies if c["name"] in names}
    lines = [
        f"cashfile_import   run 1: {'ok' if ok1 else 'FAILED'} in {secs1:.0f}s ({log1.name}); "
        f"run 2 (re-delivery): {'ok' if ok2 else 'FAILED'} in {secs2:.0f}s"
    ]
    lines.append(
        f"  files in: {len(files)} (+1 re-delivered)   duplicates skipped: {dups}   "
        f"emails sent: {mails() - mails_before}"
    )
    for name, status, n, total, payments, suspense in rows:
        drive_note = (
            f"Drive copy {copies[name]['id']} ({copies[name]['size']} bytes)" if name in copies else "NO Drive copy"
        )
        lines.append(
            f"  {name}: {status}, {n} records, total {total}, {payments} payments + {suspense} suspense; {drive_note}"
        )
    if not (ok1 and ok2 and len(rows) == len(files) and dups == 1 and len(copies) == len(files)):
        lines.append(f"  !! unexpected outcome: see {log1} and {log2}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_chargeback() -> list[str]:
    bucket = os.environ["FINFLOWS_CHARGEBACK_BUCKET"]
    sample = SAMPLES / "chargeback" / "chargebacks_20261120.json"
    audit = os.environ["FINFLOWS_CHARGEBACK_AUDIT_QUEUE_URL"]
    sqs = stack._aws_client("sqs")
    sqs.purge_queue(QueueUrl=audit)
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        forget_chargeback_file(pg, sample.name)
    s3().put_object(Bucket=bucket, Key=f"incoming/{sample.name}", Body=sample.read_bytes())
    mails_before = mails()
    ok, secs, log = dags_test("chargeback_export")
    time.sleep(1)
    sns = sqs.receive_message(QueueUrl=audit, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    delivered = sorted((LOCAL / "ftps").glob(f"*/inbound/chargebacks_*_{sample.stem}_*.csv"))
    lines = [f"chargeback_export run: {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    lines.append(
        f"  files in: 1   files out: {len(delivered)}   SNS messages: {len(sns)}   "
        f"emails sent: {mails() - mails_before}"
    )
    for f in delivered:
        rows = f.read_bytes().count(b"\r\n") - 1
        lines.append(f"  {f.parent.name:10s} <- {f.name} ({rows} rows)")
    if sns:
        lines.append("  notification: " + sns[0]["Body"].splitlines()[0][:100])
    if not (ok and len(delivered) == 2 and sns):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_tenure() -> list[str]:
    events = (SAMPLES / "tenure" / "events.jsonl").read_text().splitlines()
    parsed = [json.loads(e) for e in events]
    tenure_ids = sorted({e["tenureId"] for e in parsed})
    # accounts exist for two of the tenures; the third waits (pending) until its account arrives
    accounts = {
        "9100000001": (parsed[0]["tenureId"], "HousingRevenue"),
        "9100000002": (parsed[2]["tenureId"], "GarParkHRA"),
    }
    queue, dlq = os.environ["FINFLOWS_TENURE_QUEUE_URL"], os.environ["FINFLOWS_TENURE_DLQ_URL"]
    sqs = stack._aws_client("sqs")
    sqs.purge_queue(QueueUrl=dlq)
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        forget_tenures(pg, tenure_ids)
        seed_tenure_accounts(pg, accounts)
        for body in events:
            sqs.send_message(QueueUrl=queue, MessageBody=body)
        ok, secs, log = dags_test("tenure_sync", {"target": "both"})
        status = dict(
            pg.execute(
                "SELECT status, count(*) FROM ops.tenure_event WHERE tenure_id = ANY(%s::uuid[]) GROUP BY status",
                (tenure_ids,),
            ).fetchall()
        )
        table = pg.execute(
            "SELECT payment_ref, rent_group, tenure_type, end_date, version FROM ifs.tenancy "
            "WHERE payment_ref = ANY(%s) ORDER BY payment_ref",
            (list(accounts),),
        ).fetchall()
    time.sleep(1)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
    from finflows.google import sheets_hook

    sheets = sheets_hook("google_finflows")
    book = os.environ["FINFLOWS_INTERIM_SPREADSHEET"]
    lines = [f"tenure_sync run (target both): {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    lines.append(
        f"  events in: {len(events)}   applied: {status.get('applied', 0)}   stale: {status.get('stale', 0)}   "
        f"waiting for an account: {status.get('pending', 0)}   dead-lettered: {len(dead)}"
    )
    sheet_rows = 0
    for ref, (_tid, tab) in accounts.items():
        for row in sheets.get_values(book, f"{tab}!A:M"):
            if row[:1] == [ref]:
                sheet_rows += 1
                lines.append(f"  sheet {tab:15s} row: {' | '.join(row[:5])} ...")
    for ref, group, kind, end, version in table:
        lines.append(f"  table ifs.tenancy   row: {ref} | {group} | {kind} | end {end} | version {version}")
    for m in dead:
        lines.append("  dead letter: " + m["MessageAttributes"]["reason"]["StringValue"][:100])
    if not (ok and sheet_rows == 2 and len(table) == 2 and status.get("pending") == 1 and len(dead) == 1):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_card() -> list[str]:
    sample = seed.STATEMENT
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        # the acquirer leaves it on its FTPS server; the flow copies it into S3 and loads it
        seed.statement(pg)
        ok, secs, log = dags_test("card_reconciliation")
        summary = pg.execute(
            "SELECT day, store_id, brand, sales, gross, discount, net FROM card.v_daily_summary s "
            "WHERE EXISTS (SELECT 1 FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id "
            "WHERE c.file_name = %s AND t.store_id = s.store_id AND t.txn_date = s.day) ORDER BY 1, 2, 3",
            (sample.name,),
        ).fetchall()
        exceptions = pg.execute(
            "SELECT status, count(*) FROM card.v_instalment_exceptions e WHERE EXISTS (SELECT 1 FROM "
            "card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id WHERE c.file_name = %s "
            "AND t.instalment_nsu = e.instalment_nsu) GROUP BY status ORDER BY status",
            (sample.name,),
        ).fetchall()
    archived = s3().list_objects_v2(Bucket=os.environ["FINFLOWS_STATEMENT_BUCKET"], Prefix=f"processed/{sample.name}")
    lines = [f"card_reconciliation run: {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    lines.append(f"  {sample.name}: FTPS → S3 → card.fact_transaction; archived: {archived.get('KeyCount', 0) == 1}")
    lines.append("  daily summary  day         store            brand       sales     gross  discount       net")
    for day, store, brand, sales, gross, discount, net in summary:
        lines.append(f"                 {day}  {store}  {brand:10s} {sales:5d} {gross:9} {discount:9} {net:9}")
    lines.append("  instalment exceptions: " + (", ".join(f"{n} {status}" for status, n in exceptions) or "none"))
    if not (ok and summary and archived.get("KeyCount") == 1):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def bank_encoding(bank: str) -> str:
    from finflows.flows.banking import banks

    return banks.load().bank(bank).encoding


def demo_bank_payments() -> list[str]:
    from devstack import secrets
    from finflows import pgp
    from finflows.formats import ach

    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        others = pg.execute(
            "SELECT count(*) FROM pay.payment WHERE status = 'pending' AND reference NOT LIKE 'DEMO-%%'"
        ).fetchone()[0]
        seed.payments(pg)
        mails_before = mails()
        # mega asks a second person (banks.yaml approval: required); esun's own channel does (none).
        # The run waits in Required Actions; treasurer, the local approver, approves through the REST API.
        with api_server() as port:
            ok, secs, log, answered = dags_test_answered("bank_payments", {"banks": ["mega", "esun"]}, port)
        ok2, secs2, log2 = dags_test("bank_payments", {"banks": ["mega", "esun"]})  # the same day again
        batches = pg.execute(
            "SELECT b.bank, b.file_name, b.processing_date, b.payment_count, b.total_amount, b.cipher_bytes, b.status "
            "FROM pay.batch b WHERE EXISTS (SELECT 1 FROM pay.payment p WHERE p.batch_id = b.id AND p.reference "
            "LIKE 'DEMO-%%') ORDER BY b.bank",
        ).fetchall()
        transfers = pg.execute(
            "SELECT count(*) FROM pay.transfer t JOIN pay.batch b ON b.id = t.batch_id WHERE b.file_name = ANY(%s)",
            ([b[1] for b in batches],),
        ).fetchone()[0]
    keys = secrets.pgp_keys()
    lines = [
        f"bank_payments run: {'ok' if ok else 'FAILED'} in {secs:.0f}s, re-run {'ok' if ok2 else 'FAILED'} "
        f"in {secs2:.0f}s ({log.name})"
    ]
    if others:
        lines.append(f"  note: {others} other pending payment(s) were already in pay.payment")
    for a in answered:
        lines.append(f"  approval asked in Required Actions: {a['subject']}")
        lines.append(
            f"        assigned to {', '.join(u['id'] for u in a['assigned_users'])} (not the run's trigger user); "
            f"approved by {a['reply']['responded_by']['name']} through the REST API"
        )
    for bank, name, day, count, total, size, status in batches:
        lines.append(
            f"  {bank:5s} -> sftp {bank}/upload/{name}: {count} payment(s), NTD {int(total):,}, "
            f"processing {day}, {size} bytes encrypted+signed, {status}"
        )
        data = (LOCAL / "sftp" / bank / "upload" / name).read_bytes()
        with pgp.keyring() as ring:  # play the bank: decrypt with its key, check our signature
            ring.add(keys[bank]["secret"], keys[bank]["fingerprint"], bank)
            ring.add(keys["finflows"]["public"], keys["finflows"]["fingerprint"], "finflows")
            plain = ring.decrypt_and_verify(data, keys["finflows"]["fingerprint"], None)
        first = plain.split(b"\r\n")[1]
        lines.append("        the bank decrypts it and our signature verifies")
        if name.endswith(".txt"):
            lines.append(f"        detail bytes 1-72: {first[:72].decode('ascii')}")
            lines.append(f"        bytes 137-176 (Big5): {first[136:176].decode('cp950').rstrip()}")
            f = ach.read_ach(plain, name, "ACHP01")
            lines.append(
                f"        trailer: {int(f.trailer['total_count'])} record(s), NTD {int(f.trailer['total_amount']):,}"
                f", ROC date {ach.roc(f.header['processing_date'])}"
            )
        else:
            lines.append(f"        {first.decode(bank_encoding(bank))}")
    lines.append(
        f"  transfers audited: {transfers} (the re-run uploaded nothing)   emails to treasury: {mails() - mails_before}"
    )
    if not (ok and ok2 and len(batches) == 2 and transfers == 2 and len(answered) == 1):
        lines.append(f"  !! unexpected outcome: see {log} and {log2}")
        raise SystemExit("\n".join(lines))
    return lines


def _worker_killed_after_the_rename(bank_id: str) -> int:
    """A bank_payments worker that dies (SIGKILL) right after the bank's server acknowledged the
    rename, before the commit that records it: the exit code of that process."""
    import multiprocessing

    def work() -> None:
        import signal

        from finflows import files
        from finflows.flows.banking import banks, common, delivery, payments
        from finflows.task_support import finance_db

        delivery.at_step = lambda step: os.kill(os.getpid(), signal.SIGKILL) if step == "renamed" else None
        cfg = banks.load()
        bank = cfg.bank(bank_id)
        with files.connect(finance_db()) as conn, common.encrypter(cfg, bank) as encrypt:
            payments.pay_bank(
                conn,
                cfg=cfg,
                bank_id=bank_id,
                now=None,
                run_id="demo-killed-worker",
                transport=common.transport(bank),
                encrypt=encrypt,
            )
        os._exit(0)

    child = multiprocessing.get_context("fork").Process(target=work)
    child.start()
    child.join(300)
    return child.exitcode


def demo_uncertain_delivery() -> list[str]:
    """The worst day: the bank's server renamed our file and the bank took it, but the worker died
    before recording it. Nothing may resend it; treasury is alerted and decides."""
    import datetime as dt
    import shutil
    from zoneinfo import ZoneInfo

    from finflows.flows.banking import delivery

    bank = "esun"  # approval: none (the bank's own channel), so the run has no approval step to wait for
    upload, taken = LOCAL / "sftp" / bank / "upload", LOCAL / "sftp" / bank / "taken-by-bank"
    taken.mkdir(exist_ok=True)
    today = dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        for b, name in forget_payments(pg, "DEMO-U-"):
            (LOCAL / "sftp" / b / "upload" / name).unlink(missing_ok=True)
        forget_orphan_uploads(pg)
        for p in taken.iterdir():
            p.unlink()
        for i, amount in enumerate((12_000, 8_500)):
            pg.execute(
                """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                            amount, due_date) VALUES (%s, %s, '0081005', %s, %s, %s, '', %s, %s)""",
                (f"DEMO-U-{i}", bank, f"00000000{i:04d}", f"D{i:09d}", "示範收款人", amount, today),
            )
        already = {p.name for p in upload.iterdir()}  # e.g. the payment demo's own esun file
        code = _worker_killed_after_the_rename(bank)
        names = sorted(p.name for p in upload.iterdir() if not p.name.endswith(".part") and p.name not in already)
        for name in names:  # the bank reads the file and takes it away, as banks do
            shutil.move(upload / name, taken / name)
        mails_before = mails()
        ok, secs, log = dags_test("bank_payments", {"banks": [bank]})  # the next run (a retry, a re-run, a clear)
        batch_id, status, reason = pg.execute(
            "SELECT b.id, b.status, b.uncertain_reason FROM pay.batch b JOIN pay.payment p ON p.batch_id = b.id "
            "WHERE p.reference = 'DEMO-U-0'"
        ).fetchone()
        alerted = mails() - mails_before
        resent = sorted(p.name for p in upload.iterdir() if p.name not in already)
        # treasury asks E.SUN, which confirms it has the file: the decision is recorded
        # (in production: POST /finflows/api/batches/<id>/decision as an Airflow user allowed to
        # trigger bank_payments; tests/e2e/test_standalone.py does it through the real api-server)
        decided = delivery.decide(pg, batch_id, "bank_has_it", by="treasurer (demo)", note="E.SUN confirmed")
        after = pg.execute("SELECT status, decided_by, decided_at FROM pay.batch WHERE id = %s", (batch_id,)).fetchone()
    lines = [
        f"uncertain delivery ({bank}): worker killed after the rename (exit {code}); the bank took {', '.join(names)}",
        f"  next bank_payments run: {'ok' if ok else 'red, as it must be,'} in {secs:.0f}s ({log.name}); batch {batch_id} "
        f"is {status}: {reason}",
        f"  resent by the run: {resent or 'nothing'}   alert emails: {alerted}",
        f"  decision: {decided['decision']} by {after[1]} at {after[2]:%Y-%m-%d %H:%M:%S %Z}; batch now {after[0]}",
    ]
    if not (
        code == -9 and len(names) == 1 and status == "uncertain" and not resent and alerted and after[0] == "uploaded"
    ):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_duplicate_hold() -> list[str]:
    """A payment entered twice: the second is held, not paid, until a person decides (here: cancel)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from finflows.flows.banking import payments

    bank = "taishin"
    today = dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        for b, name in forget_payments(pg, "DEMO-D-"):
            (LOCAL / "sftp" / b / "upload" / name).unlink(missing_ok=True)
        forget_orphan_uploads(pg)
        for ref in ("DEMO-D-1", "DEMO-D-2"):  # the same invoice keyed in twice
            pg.execute(
                """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                            amount, due_date) VALUES (%s, %s, '8220015', '000077776666', 'D000000077',
                                            '示範收款人', '', 33000, %s)""",
                (ref, bank, today),
            )
        ok, secs, log = dags_test("bank_payments", {"banks": [bank]})
        states = dict(pg.execute("SELECT reference, status FROM pay.payment WHERE reference LIKE 'DEMO-D-%'"))
        held = [h for h in payments.held_payments(pg) if h["reference"].startswith("DEMO-D-")]
        decided = payments.decide_hold(pg, "DEMO-D-2", "cancel", by="treasurer (demo)", note="keyed in twice")
        after = pg.execute("SELECT status FROM pay.payment WHERE reference = 'DEMO-D-2'").fetchone()[0]
    lines = [
        f"duplicate payment ({bank}): DEMO-D-1 and DEMO-D-2, same payee bank, account and NTD 33,000",
        f"  bank_payments run: {'ok' if ok else 'red, as it must be,'} in {secs:.0f}s ({log.name}): "
        f"DEMO-D-1 {states['DEMO-D-1']}, DEMO-D-2 {states['DEMO-D-2']} and held ({held[0]['reason'] if held else '-'})",
        f"  decision: {decided['decision']} by {decided['decided_by']}; DEMO-D-2 now {after}, never paid",
    ]
    if not (states == {"DEMO-D-1": "uploaded", "DEMO-D-2": "pending"} and held and after == "failed"):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_bank_reconciliation() -> list[str]:
    """Play Mega: answer the demo's ACHP01 batch with a signed, encrypted ACHR01 laid out as the
    clearing house lays it out (one payment returned, the two sides swapped); then the rest settle
    when Mega's return window closes (Mega lists only returned items)."""
    import datetime as dt

    from devstack import secrets
    from finflows import pgp
    from finflows.flows.banking import banks, reconciliation
    from finflows.formats import ach, tch

    keys = secrets.pgp_keys()
    cfg = banks.load()
    mega = cfg.bank("mega")
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        rows = pg.execute(
            "SELECT p.reference, p.payee_bank, p.payee_account, p.amount::bigint, p.payee_id, p.seq, p.txn_code, "
            "b.processing_date FROM pay.payment p JOIN pay.batch b ON b.id = p.batch_id "
            "WHERE p.reference LIKE 'DEMO-%%' AND b.bank = 'mega' ORDER BY p.seq"
        ).fetchall()
        day = rows[0][7]
        returned = [
            (ach.Payment(seq, ref, unit, acct, amount, pid, "", "", txn or mega.default_txn_code), "04")
            for ref, unit, acct, amount, pid, seq, txn, _ in rows
            if ref == "DEMO-0004"
        ]
        original = ach.Batch(day, dt.time(6), mega.sending_unit, mega.presenting_account, cfg.originator.company_id)
        payee_unit = returned[0][0].receiving_bank
        plain = ach.write_achr01(
            ach.Batch(
                day,
                dt.time(17),
                payee_unit,
                "0",
                cfg.originator.company_id,
                previous_business_day=day - dt.timedelta(days=1),
            ),
            original,
            returned,
        )
        name = f"ACHR01_017_{day:%Y%m%d}_demo.txt"
        pg.execute(
            "DELETE FROM pay.return_line WHERE file_id IN (SELECT id FROM ops.file_control "
            "WHERE flow = 'bank_reconciliation' AND file_name = %s)",
            (f"mega/{name}",),
        )
        pg.execute(
            "DELETE FROM ops.file_control WHERE flow = 'bank_reconciliation' AND file_name = %s", (f"mega/{name}",)
        )
        with pgp.keyring() as ring:  # the bank signs with its key and encrypts to ours
            ring.add(keys["mega"]["secret"], keys["mega"]["fingerprint"], "mega")
            ring.add(keys["finflows"]["public"], keys["finflows"]["fingerprint"], "finflows")
            data = ring.encrypt_and_sign(plain, keys["finflows"]["fingerprint"], keys["mega"]["fingerprint"], None)
        (LOCAL / "sftp" / "mega" / "download" / name).write_bytes(data)
        ok, secs, log = dags_test("bank_reconciliation")
        with psycopg.connect(stack.pg_dsn()) as conn:
            settled = reconciliation.settle_unreturned(conn, mega, day + dt.timedelta(days=7), "demo")
        statuses = pg.execute(
            "SELECT reference, status, coalesce(return_reason, '') FROM pay.payment "
            "WHERE reference LIKE 'DEMO-%%' AND bank = 'mega' ORDER BY reference"
        ).fetchall()
    detail = plain.split(b"\r\n")[1]
    lines = [f"bank_reconciliation run: {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    lines.append(f"  mega -> download/{name}: ACHR01 signed by Mega, verified, applied in one transaction")
    lines.append(
        f"  return detail as the clearing house lays it out: TYPE {detail[0:1].decode()}, "
        f"RCODE {detail[70:72].decode()} ({tch.describe_return(detail[70:72].decode())}), "
        f"PBANK/PCLNO {detail[14:21].decode()}/{detail[21:37].decode()} (the payee's), "
        f"RBANK/RCLNO {detail[37:44].decode()}/…{detail[56:60].decode()} (ours), "
        f"PDATE {detail[99:107].decode()} PSEQ {detail[107:115].decode()} → matched to DEMO-0004"
    )
    lines.append(
        f"  no return for the others within {mega.return_window_days} business days: "
        f"{len(settled)} settled when the window closed"
    )
    lines.append("  " + ", ".join(f"{r} {s}{' (reason ' + why + ')' if why else ''}" for r, s, why in statuses))
    if not (ok and {s for _, s, _ in statuses} == {"settled", "returned"}):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_bank_health() -> list[str]:
    with psycopg.connect(stack.pg_dsn(), autocommit=True) as pg:
        before = pg.execute("SELECT coalesce(max(id), 0) FROM pay.health_check").fetchone()[0]
        ok, secs, log = dags_test("bank_health")
        checks = pg.execute(
            "SELECT h.bank, h.ok, h.latency_ms, c.state FROM pay.health_check h "
            "JOIN pay.circuit c USING (bank) WHERE h.id > %s ORDER BY h.bank",
            (before,),
        ).fetchall()
    lines = [f"bank_health run: {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    lines.append(
        "  " + ", ".join(f"{b} {'ok' if good else 'FAILED'} {ms} ms (circuit {state})" for b, good, ms, state in checks)
    )
    if not (ok and checks and all(good for _, good, _, _ in checks)):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    return lines


def demo_daily_report() -> list[str]:
    """Today's finance report: the email in the SMTP sink, its chart saved beside it, the archive."""
    import datetime as dt
    import email
    import email.policy
    from zoneinfo import ZoneInfo

    day = dt.datetime.now(ZoneInfo("Asia/Taipei")).date()
    before = {p.name for p in (LOCAL / "smtp").glob("*.eml")}
    ok, secs, log = dags_test("finance_daily_report", {"day": day.isoformat()})
    lines = [f"finance_daily_report run: {'ok' if ok else 'FAILED'} in {secs:.0f}s ({log.name})"]
    new = [p for p in sorted((LOCAL / "smtp").glob("*.eml")) if p.name not in before]
    reports = [(p, email.message_from_bytes(p.read_bytes(), policy=email.policy.default)) for p in new]
    reports = [(p, m) for p, m in reports if "finance daily report" in m["Subject"]]
    if not (ok and reports):
        lines.append(f"  !! unexpected outcome: see {log}")
        raise SystemExit("\n".join(lines))
    path, mail = reports[-1]
    out = LOCAL / "demo"
    out.mkdir(exist_ok=True)
    for part in mail.iter_attachments():
        (out / part.get_filename()).write_bytes(part.get_payload(decode=True))
        lines.append(f"  chart (inline PNG): {out / part.get_filename()}")
    (out / f"finance_daily_{day}.html").write_text(mail.get_body(("html",)).get_content())
    lines.append(f"  {mail['Subject']}")
    lines.append(f"  email: {path}  (HTML copy: {out / f'finance_daily_{day}.html'})")
    bucket = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")
    keys = [o["Key"] for o in s3().list_objects_v2(Bucket=bucket, Prefix=f"finance-daily/{day}/").get("Contents", [])]
    lines.append(f"  archived: s3://{bucket}/finance-daily/{day}/ " + ", ".join(k.rsplit("/", 1)[1] for k in keys))
    return lines


def main() -> None:
    sys.path.insert(0, str(REPO / "plugins"))
    print("[demo] running every flow end to end with `airflow dags test` against the local stack", flush=True)
    summary = demo_cashfile() + demo_card() + demo_chargeback() + demo_tenure() + demo_bank_payments()
    summary += demo_uncertain_delivery() + demo_duplicate_hold()
    summary += demo_bank_reconciliation() + demo_bank_health() + demo_daily_report()
    print("\n==================== finflows demo summary ====================")
    print("\n".join(summary))
    print("================================================================")
    print("Browse it: `make up` serves the Airflow UI on http://localhost:8080")


if __name__ == "__main__":
    main()
