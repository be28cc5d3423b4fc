"""A chaos day: a compressed business day of the banking flows on the real scheduler with the
CeleryExecutor and two workers, under a fault schedule drawn from a seed, then the money
invariants proven from what the banks' servers received.

    python -m devstack.chaos [--seed N ...] [--short]      (make chaos: three seeds)

The day, in order (each step through Airflow's REST API, as people and the schedule would):

1. Payments are keyed in for the day's banks (fictitious payees; references ``CHAOS-<seed>-…``).
   The banks' stand-ins **take every file at once** (as a bank does): a watcher moves each file
   that appears under its final name out of the upload directory into the bank's received files.
2. A dump of the finance database's payment schema is taken (for the restore, step 6).
3. bank_payments, triggered by ``admin``; ``treasurer`` answers every approval through the REST
   API (Required Actions). Faults: one bank's upload directory **refuses** our writes (its batch
   is given up), another bank's server **stalls** mid-session (its sshd session frozen with
   SIGSTOP past the idle timeout), and the **Celery worker** running that stalled upload is
   **killed** (SIGKILL) and started again.
4. The **scheduler is restarted**; then **PostgreSQL is restarted** (the finance and the metadata
   database both); any component that exits is started again, as a supervisor would.
5. The refusing bank is fixed.
6. The **finance database is restored** from the dump of step 2: it forgets the deliveries.
7. bank_payments again (treasurer approves); the write-once send records must stop every payment
   the banks already have. Treasurer decides each uncertain delivery from what the bank says it
   has, and re-queues a given-up one; bank_transfer_retry runs.
8. A bank returns one payment (a signed, encrypted ACHR01); bank_reconciliation, bank_health and
   the finance daily report run.

It then proves, from the files the banks received (decrypted with each bank's key, read with the
layouts): every payment reference reached its bank at most once; the database's uploaded
payments are exactly those the banks received; every payment is final, pending, or in a batch a
person is shown (the attention list); the money invariants hold (``invariants.check`` of them all);
no payee's name or account and no card number in any log, email or report we wrote. It prints a
table of the faults injected and the invariants held, and the seed to replay. Runs against the
local stack (``make stack-up``); the payment tables are emptied first, as the tests do.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from devstack import cluster, stack
from devstack.config import LOCAL

TAIPEI = ZoneInfo("Asia/Taipei")
REPO = Path(__file__).resolve().parents[1]
SHIPPED_BANKS = REPO / "include" / "banking" / "banks.yaml"
IDLE = 15  # seconds: the SFTP idle timeout of the day
FULL_BANKS = ("mega", "ctbc", "esun", "first", "taishin")
SHORT_BANKS = ("mega", "esun", "taishin")
# fictitious payees; what the scan at the end must never find in a log, an email or a report
NAMES = ("王小明", "陳美玲", "林志強", "張淑芬", "李建國", "黃雅婷", "吳家豪", "劉怡君")
# a Visa or Mastercard number as a person would write it (16 digits, grouped or not); Luhn decides
# (not the fraction of a decimal number: ``duration=4.4238940549998915`` is no card)
PAN_LIKE = re.compile(rb"(?<![\d.,-])[45]\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}(?![\d-])")


@dataclass
class Fault:
    name: str
    at: float  # seconds since the day began
    what: str


@dataclass
class Day:
    seed: int
    short: bool
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    held: list[tuple[str, bool, str]] = field(default_factory=list)  # (invariant, held, detail)
    payees: list[tuple[str, str]] = field(default_factory=list)  # (name, account)
    received: Path = LOCAL / "chaos" / "received"

    def fault(self, name: str, what: str) -> None:
        self.faults.append(Fault(name, time.monotonic() - self.started, what))
        log(f"FAULT {name}: {what}")

    @property
    def ok(self) -> bool:
        return bool(self.held) and all(h for _, h, _ in self.held)


def log(msg: str) -> None:
    sys.stdout.write(f"[chaos] {msg}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- the REST API
def rest(port: int, method: str, path: str, body: dict | None = None, user: str = "admin") -> dict:
    from devstack.demo import rest as demo_rest

    return demo_rest(port, method, path, body, user)


def trigger(port: int, dag_id: str, conf: dict | None = None) -> str:
    rest(port, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run = rest(port, "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
    log(f"{dag_id}: run {run['dag_run_id']} triggered by admin")
    return run["dag_run_id"]


def state_of(port: int, dag_id: str, run_id: str) -> str:
    q = urllib.parse.quote(run_id, safe="")
    return rest(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{q}")["state"]


def wait_run(port: int, dag_id: str, run_id: str, timeout: float = 900, during=None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if during is not None:
            during()
        try:
            state = state_of(port, dag_id, run_id)
        except OSError:  # the api-server restarting, PostgreSQL restarting: ask again
            state = "unknown"
        if state in ("success", "failed"):
            log(f"{dag_id}: run {run_id} {state}")
            return state
        time.sleep(2)
    raise TimeoutError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")


def answer_approvals(port: int) -> int:
    """Treasurer answers every open approval of bank_payments (Approve); how many were answered."""
    answered = 0
    for r in rest(port, "GET", "/api/v2/dags/bank_payments/dagRuns?state=running", user="treasurer")["dag_runs"]:
        q = urllib.parse.quote(r["dag_run_id"], safe="")
        for d in rest(port, "GET", f"/api/v2/dags/bank_payments/dagRuns/{q}/hitlDetails", user="treasurer")[
            "hitl_details"
        ]:
            if d["response_received"]:
                continue
            ti = d["task_instance"]
            path = f"/api/v2/dags/bank_payments/dagRuns/{q}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails"
            with contextlib.suppress(OSError):
                rest(port, "PATCH", path, {"chosen_options": ["Approve"], "params_input": {"reason": ""}}, "treasurer")
                answered += 1
    return answered


# ---------------------------------------------------------------------------- the banks' side
class BankTakesFiles(threading.Thread):
    """A bank that takes every file the moment it appears under its final name."""

    def __init__(self, banks: tuple[str, ...], into: Path) -> None:
        super().__init__(daemon=True, name="bank-takes-files")
        self.banks, self.into, self.stop = banks, into, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for bank in self.banks:
                for f in (LOCAL / "sftp" / bank / "upload").glob("*"):
                    if f.name.endswith(".part"):
                        continue
                    target = self.into / bank
                    target.mkdir(parents=True, exist_ok=True)
                    n = len(list(target.glob(f"{f.name}.*")))
                    with contextlib.suppress(FileNotFoundError):
                        shutil.move(str(f), target / f"{f.name}.{n}")
            time.sleep(0.05)


def sshd_sessions(account: str) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "cmdline").read_bytes().replace(b"\0", b" ").startswith(f"sshd: {account}".encode()):
                    out.append(int(proc.name))
    return out


class StallOnce(threading.Thread):
    """The bank's server stops answering in the middle of a session: its first session's processes
    are frozen (SIGSTOP) for longer than the idle timeout, then let go."""

    def __init__(self, day: Day, bank: str, seconds: float) -> None:
        super().__init__(daemon=True, name=f"stall-{bank}")
        self.day, self.bank, self.seconds, self.stop = day, bank, seconds, threading.Event()
        self.frozen: list[int] = []

    def run(self) -> None:
        while not self.stop.is_set() and not self.frozen:
            pids = sshd_sessions(f"ffsftp_{self.bank}")
            if pids:
                time.sleep(0.3)  # logged in, in the middle of its work
                self.frozen = sshd_sessions(f"ffsftp_{self.bank}")
                for pid in self.frozen:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGSTOP)
                self.day.fault("stalled bank server", f"{self.bank}'s sshd session frozen for {self.seconds:.0f} s")
                self.stop.wait(self.seconds)
                self.thaw()
                return
            time.sleep(0.05)

    def thaw(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


# ---------------------------------------------------------------------------- the finance database
def pg():
    import psycopg

    return psycopg.connect(stack.pg_dsn(), autocommit=True)


def clean(conn) -> None:
    from devstack.fixtures import forget_orphan_send_records

    conn.execute(
        "TRUNCATE pay.return_line, pay.payment_event, pay.batch_event, pay.transfer, pay.transfer_retry, "
        "pay.payment, pay.batch, pay.attention, pay.health_check, pay.circuit RESTART IDENTITY"
    )
    conn.execute("DELETE FROM ops.file_event WHERE flow = 'bank_reconciliation'")
    conn.execute("DELETE FROM ops.file_control WHERE flow = 'bank_reconciliation'")
    forget_orphan_send_records(conn)
    for bank in FULL_BANKS:
        for sub in ("upload", "download"):
            for f in (LOCAL / "sftp" / bank / sub).glob("*"):
                f.unlink()


def add_payments(day: Day, conn, banks: tuple[str, ...]) -> list[str]:
    today = dt.datetime.now(TAIPEI).date()
    refs = []
    for bank in banks:
        for i in range(day.rng.randint(2, 3 if day.short else 6)):
            ref = f"CHAOS-{day.seed}-{bank[:2].upper()}{i:02d}"
            name = day.rng.choice(NAMES)
            account = "9" + "".join(day.rng.choice("0123456789") for _ in range(13))
            day.payees.append((name, account))
            conn.execute(
                """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                            amount, due_date) VALUES (%s, %s, '0081005', %s, %s, %s, '貨款', %s, %s)""",
                (ref, bank, account, f"A{day.rng.randint(0, 10**9 - 1):09d}", name, day.rng.randint(100, 90_000),
                 today),
            )  # fmt: skip
            refs.append(ref)
    return refs


def dump(path: Path) -> None:
    subprocess.run(
        ["/usr/lib/postgresql/15/bin/pg_dump", "--data-only", "--schema=pay", "-Fc", "-f", str(path), stack.pg_dsn()],
        check=True,
        timeout=300,
    )


def restore(conn, path: Path) -> None:
    """The payment schema back to the dump: what a restore (or an asynchronous replica's failover)
    leaves. The owner switches its own triggers off while the rows go back in."""
    tables = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'pay'").fetchall()]  # fmt: skip
    conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    for t in tables:
        conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
    try:
        subprocess.run(
            ["/usr/lib/postgresql/15/bin/pg_restore", "--data-only", "-d", stack.pg_dsn(), str(path)],
            check=True,
            timeout=300,
        )
    finally:
        for t in tables:
            conn.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")


# ---------------------------------------------------------------------------- what the banks received
def received_refs(day: Day) -> dict[str, list[tuple[str, str]]]:
    """reference → [(bank, file)] for every file the banks received, decrypted with the bank's key
    and read with its layout."""
    import csv
    import io

    from devstack import secrets
    from finflows import pgp
    from finflows.flows.banking import banks
    from finflows.formats import ach

    cfg = banks.load(SHIPPED_BANKS)
    keys = secrets.pgp_keys()
    with pg() as conn:  # an ACH file names each payment by its CNO: back to our reference
        ours = {ach.customer_number(r): r for (r,) in conn.execute("SELECT reference FROM pay.payment")}
    out: dict[str, list[tuple[str, str]]] = {}
    for bank_dir in sorted(day.received.glob("*")):
        bank = cfg.bank(bank_dir.name)
        for f in sorted(bank_dir.iterdir()):
            with pgp.keyring() as ring:
                ring.add(keys[bank.id]["secret"], keys[bank.id]["fingerprint"], f"{bank.id} secret key")
                ring.add(keys["finflows"]["public"], keys["finflows"]["fingerprint"], "our public key")
                plain = ring.decrypt_and_verify(f.read_bytes(), keys["finflows"]["fingerprint"], None)
            if bank.file_format.value == "achp01":  # the CNO is our reference without its dashes
                cnos = [d["customer_number"].strip() for d in ach.read_ach(plain, f.name, "ACHP01").details]
                refs = [ours.get(c, c) for c in cnos]
            else:
                refs = [r["reference"] for r in csv.DictReader(io.StringIO(plain.decode(bank.encoding)))]
            for r in refs:
                out.setdefault(r, []).append((bank.id, f.name))
    return out


def return_one(day: Day, port: int, conn) -> str | None:
    """Mega returns one payment of a file it received (04: no such account), signed and encrypted."""
    from devstack import secrets
    from finflows import pgp
    from finflows.flows.banking import banks
    from finflows.formats import ach

    cfg = banks.load(SHIPPED_BANKS)
    mega = cfg.bank("mega")
    rows = conn.execute(
        "SELECT p.reference, p.payee_bank, p.payee_account, p.amount::bigint, p.payee_id, p.seq, p.txn_code, "
        "b.processing_date FROM pay.payment p JOIN pay.batch b ON b.id = p.batch_id "
        "WHERE b.bank = 'mega' AND p.status = 'uploaded' ORDER BY p.seq LIMIT 1"
    ).fetchall()
    if not rows:
        return None
    ref, unit, acct, amount, pid, seq, txn, processing = rows[0]
    payment = ach.Payment(seq, ref, unit, acct, amount, pid, "", "", txn or mega.default_txn_code)
    original = ach.Batch(processing, dt.time(6), mega.sending_unit, mega.presenting_account, cfg.originator.company_id)
    plain = ach.write_achr01(
        ach.Batch(processing, dt.time(17), unit, "0", cfg.originator.company_id,
                  previous_business_day=processing - dt.timedelta(days=1)),
        original,
        [(payment, "04")],
    )  # fmt: skip
    keys = secrets.pgp_keys()
    with pgp.keyring() as ring:
        ring.add(keys["mega"]["secret"], keys["mega"]["fingerprint"], "mega")
        ring.add(keys["finflows"]["public"], keys["finflows"]["fingerprint"], "finflows")
        data = ring.encrypt_and_sign(plain, keys["finflows"]["fingerprint"], keys["mega"]["fingerprint"], None)
    name = f"ACHR01_017_{processing:%Y%m%d}_chaos{day.seed}.txt"
    (LOCAL / "sftp" / "mega" / "download" / name).write_bytes(data)
    return ref


# ---------------------------------------------------------------------------- the inboxes
def hostile_inboxes(day: Day, port: int) -> dict:
    """A broken and a hostile file in every inbox (cash files and chargebacks in S3, the acquirer's
    statement on FTPS, tenure events on SQS); each flow runs; what was sent, for the proof."""
    from devstack.fixtures import forget_cash_files, forget_statement
    from finflows import settings
    from finflows.task_support import s3_hook

    s3 = s3_hook().get_conn()
    d0 = dt.date(2031, 1, 1) + dt.timedelta(days=2 * day.seed)
    cash = {
        f"CashFile{d0:%Y%m%d}.dat": b"this is not a cash file\r\n",
        f"CashFile{d0 + dt.timedelta(days=1):%Y%m%d}.dat": b"\x00" * 64 + b"4111 1111 1111 1111\r\n" * 3,
    }
    chargebacks = {
        f"chaos-{day.seed}-broken.json": b'{"cases": [',
        f"chaos-{day.seed}-hostile.json": b'"a string where a batch of chargebacks belongs\u0000"',
    }
    statement = f"EXTRATO_UNICA_1_{d0:%Y%m%d}_{day.seed}.txt"
    with pg() as conn:
        forget_cash_files(conn, list(cash))
        forget_statement(conn, statement)
    for name, data in cash.items():
        s3.put_object(Bucket=settings.cashfile_bucket(), Key=f"cashfiles/{name}", Body=data)
    for name, data in chargebacks.items():
        s3.put_object(Bucket=settings.chargeback_bucket(), Key=f"incoming/{name}", Body=data)
    (LOCAL / "ftps" / "acquirer" / "Saida" / statement).write_bytes(b"A0 not a statement\r\n" + b"\xff" * 300)
    sqs = stack._aws_client("sqs")
    sqs.purge_queue(QueueUrl=settings.tenure_dlq_url())
    events = [f"not json {day.seed}", json.dumps({"tenureId": "not-a-uuid", "chaos": day.seed})]
    for body in events:
        sqs.send_message(QueueUrl=settings.tenure_queue_url(), MessageBody=body)
    day.fault("broken and hostile files", "2 cash files, 2 chargeback files, 1 statement, 2 tenure events")
    for dag_id in ("cashfile_import", "chargeback_export", "card_reconciliation", "tenure_sync"):
        wait_run(port, dag_id, trigger(port, dag_id))
    return {"cash": cash, "chargebacks": chargebacks, "statement": statement, "events": events}


def prove_inboxes(day: Day, sent: dict) -> None:
    from finflows import settings
    from finflows.task_support import s3_hook

    s3 = s3_hook().get_conn()
    with pg() as conn:
        status = dict(conn.execute(
            "SELECT file_name, status FROM ops.file_control WHERE file_name = ANY(%s)",
            ([*sent["cash"], *sent["chargebacks"], sent["statement"]],)).fetchall())  # fmt: skip
        loaded = conn.execute(
            "SELECT (SELECT count(*) FROM ifs.cash_payment p JOIN ops.file_control c ON c.id = p.file_id "
            "WHERE c.file_name = ANY(%s)) + (SELECT count(*) FROM card.fact_transaction t JOIN ops.file_control c "
            "ON c.id = t.file_id WHERE c.file_name = %s)",
            (list(sent["cash"]), sent["statement"]),
        ).fetchone()[0]
    kept = []
    for name, data in sent["cash"].items():
        with contextlib.suppress(Exception):
            copy = s3.get_object(Bucket=settings.cashfile_bucket(), Key=f"quarantine/{name}")
            body, meta = copy["Body"].read(), copy.get("Metadata") or {}
            # as received, or with its card numbers masked in place beside the original's sha256
            masked = meta.get("original-sha256") == hashlib.sha256(data).hexdigest() and len(body) == len(data)
            kept.append(body == data or (masked and not _leaks("copy", body, set())))
    refused = [n for n in [*sent["cash"], *sent["chargebacks"], sent["statement"]] if status.get(n) == "ERROR"]
    total = len(sent["cash"]) + len(sent["chargebacks"]) + 1
    day.held.append(("every bad file refused, kept, nothing loaded",
                     len(refused) == total and loaded == 0 and kept == [True, True],
                     f"refused {len(refused)} of {total} (status {status}), rows loaded {loaded}, "
                     f"cash files kept in quarantine {kept}"))  # fmt: skip
    dlq = (
        stack._aws_client("sqs")
        .receive_message(
            QueueUrl=settings.tenure_dlq_url(), MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
        )
        .get("Messages", [])
    )
    bodies = {m["Body"] for m in dlq}
    day.held.append(("poison tenure events dead-lettered", set(sent["events"]) <= bodies,
                     f"{len(set(sent['events']) & bodies)} of {len(sent['events'])} on the dead-letter queue"))  # fmt: skip


# ---------------------------------------------------------------------------- the day
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_airflow() -> tuple[cluster.Cluster, int]:
    port = _free_port()
    database = "airflow_chaos"
    stack.drop_database(database)
    extra = {
        "FINFLOWS_BANKS_FILE": str(SHIPPED_BANKS),  # approvals as shipped: mega, ctbc and first ask a person
        "FINFLOWS_PAYMENT_APPROVERS": "treasurer",
        "FINFLOWS_SFTP_IDLE_TIMEOUT": str(IDLE),
        "FINFLOWS_BANK_UPLOAD_ATTEMPTS": "2",
        "FINFLOWS_BANK_UPLOAD_BACKOFF": "1",
        "FINFLOWS_RETRY_DELAY": "5",
        "FINFLOWS_DEADLINES": "off",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        # a task the killed worker had taken from the queue but not begun stays "queued" until this
        # (600 s by default; Celery gives the message back only after its visibility timeout)
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    }
    c = cluster.start(port, executor="celery", workers=2, database=database, log_dir=LOCAL / "logs" / "chaos",
                      extra_env=extra)  # fmt: skip
    return c, port


def _forget_dead_connections() -> None:
    """This process's own pooled connections to Airflow's metadata database died with the server
    (the test suite's, when the short day runs inside it): drop them, new ones are made on demand."""
    if "airflow.settings" in sys.modules:
        from airflow import settings

        with contextlib.suppress(Exception):  # closing a dead connection may raise: it is dead either way
            settings.dispose_orm(do_log=False)  # the scoped session's connection too, not only the pool's
        settings.configure_orm()


def supervise(c: cluster.Cluster, port: int, timeout: float = 300) -> None:
    """Start again any component that exited; wait until Airflow reports healthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in list(c.procs.items()):
            if proc.poll() is not None:
                log(f"{name} exited ({proc.returncode}): started again")
                cluster.restart(c, name)
        if cluster._healthy(port):
            return
        time.sleep(2)
    raise TimeoutError("Airflow did not become healthy again")


def kill_worker_mid_task(day: Day, c: cluster.Cluster, port: int) -> bool:
    """SIGKILL the Celery worker running an upload of bank_payments (any run: unpausing the DAG
    also starts its scheduled run); start it again."""
    running = []
    for r in rest(port, "GET", "/api/v2/dags/bank_payments/dagRuns?state=running")["dag_runs"]:
        q = urllib.parse.quote(r["dag_run_id"], safe="")
        tis = rest(port, "GET", f"/api/v2/dags/bank_payments/dagRuns/{q}/taskInstances")["task_instances"]
        running += [t for t in tis if t["task_id"] == "bank.upload" and t["state"] == "running"]
    for ti in running:
        holder = next(
            (w for w, given in cluster.tasks_given(c).items() if any(g["id"] == ti["id"] for g in given)), None
        )
        if holder:
            cluster.kill(c, holder)
            day.fault("worker killed", f"{holder} SIGKILLed while running bank.upload ({ti.get('rendered_map_index')})")
            cluster.restart(c, holder)
            return True
    return False


def pay_and_approve(day: Day, c: cluster.Cluster, port: int, *, kill_worker: bool) -> str:
    run_id = trigger(port, "bank_payments", {"banks": ["all"]})
    killed = not kill_worker

    def during() -> None:
        nonlocal killed
        answer_approvals(port)
        if not killed:
            killed = kill_worker_mid_task(day, c, port)

    wait_run(port, "bank_payments", run_id, during=during)
    return run_id


def decide(day: Day, port: int, conn) -> None:
    """Treasurer asks each bank what it has and decides every uncertain delivery; re-queues a given-up one."""
    got = received_refs(day)
    for u in rest(port, "GET", "/finflows/api/batches/uncertain", user="treasurer"):
        refs = [r[0] for r in conn.execute("SELECT reference FROM pay.payment WHERE batch_id = %s", (u["batch_id"],))]
        has = refs and all(r in got for r in refs)
        decision = "bank_has_it" if has else "resend"
        rest(port, "POST", f"/finflows/api/batches/{u['batch_id']}/decision",
             {"decision": decision, "note": f"the bank {'has' if has else 'does not have'} it (chaos day)"},
             "treasurer")  # fmt: skip
        log(f"treasurer decided {u['file_name']}: {decision}")
    for row in rest(port, "GET", "/finflows/api/attention", user="treasurer")["rows"]:
        if row["kind"] == "given_up" and row["batch_id"]:
            with contextlib.suppress(OSError):
                rest(port, "POST", f"/finflows/api/batches/{row['batch_id']}/requeue",
                     {"note": "the bank fixed the account's rights (chaos day)"}, "treasurer")  # fmt: skip
                log(f"treasurer re-queued batch {row['batch_id']}")


def run_day(seed: int, short: bool) -> Day:  # noqa: PLR0915 (the day is one story, told in order)
    day = Day(seed, short, random.Random(seed))
    banks = SHORT_BANKS if short else FULL_BANKS
    shutil.rmtree(LOCAL / "chaos", ignore_errors=True)
    day.received.mkdir(parents=True)
    scan_from = time.time()
    with pg() as conn:
        clean(conn)
        refs = add_payments(day, conn, banks)
    log(f"seed {seed}: {len(refs)} payments for {', '.join(banks)}")
    c, port = start_airflow()
    taker = BankTakesFiles(FULL_BANKS, day.received)
    taker.start()
    day.fault("bank takes files at once", "every file is moved off the banks' servers the moment it is complete")
    refusing, stalled = day.rng.sample([b for b in banks if b != "mega"], 2)
    staller = StallOnce(day, stalled, IDLE + 10)
    try:
        dump(LOCAL / "chaos" / "finance.dump")
        os.chmod(LOCAL / "sftp" / refusing / "upload", 0o555)  # noqa: S103 (read-only to the bank's account: refused writes)
        day.fault("refusing bank server", f"{refusing}'s upload directory refuses our writes")
        staller.start()
        pay_and_approve(day, c, port, kill_worker=True)
        staller.stop.set()
        staller.thaw()
        cluster.kill(c, "scheduler")
        cluster.restart(c, "scheduler")
        day.fault("scheduler restart", "SIGKILL of the scheduler, started again")
        supervise(c, port)
        stack.stop_postgres()
        stack.start_postgres()
        _forget_dead_connections()
        day.fault("PostgreSQL restart", "the finance and the metadata database stopped and started")
        supervise(c, port)
        os.chmod(LOCAL / "sftp" / refusing / "upload", 0o755)  # noqa: S103 (the account's own directory, as provisioned)
        with pg() as conn:
            restore(conn, LOCAL / "chaos" / "finance.dump")
        day.fault("finance database restored", "the payment schema back to its dump from before the first run")
        pay_and_approve(day, c, port, kill_worker=False)
        with pg() as conn:
            decide(day, port, conn)
        wait_run(port, "bank_transfer_retry", trigger(port, "bank_transfer_retry", {"everything": True}))
        with pg() as conn:
            returned = return_one(day, port, conn)
        if returned:
            wait_run(port, "bank_reconciliation", trigger(port, "bank_reconciliation", {"banks": ["mega"]}))
        wait_run(port, "bank_health", trigger(port, "bank_health"))
        wait_run(port, "finance_daily_report", trigger(port, "finance_daily_report"))
        inboxes = hostile_inboxes(day, port)
        time.sleep(1)
        prove(day, refs, returned, scan_from)
        prove_inboxes(day, inboxes)
    finally:
        taker.stop.set()
        staller.stop.set()
        staller.thaw()
        os.chmod(LOCAL / "sftp" / refusing / "upload", 0o755)  # noqa: S103 (the account's own directory, as provisioned)
        for dag_id in ("bank_payments", "bank_transfer_retry", "bank_reconciliation", "bank_health",
                       "finance_daily_report", "cashfile_import", "chargeback_export", "card_reconciliation",
                       "tenure_sync"):  # fmt: skip
            with contextlib.suppress(Exception):
                rest(port, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
        cluster.stop(c)
        stack.drop_database("airflow_chaos")
    return day


# ---------------------------------------------------------------------------- the proof
def prove(day: Day, refs: list[str], returned: str | None, scan_from: float) -> None:
    from finflows.flows.banking import banks, invariants
    from finflows.flows.banking.sent_records import SentRecords
    from finflows.task_support import s3_hook

    got = received_refs(day)
    twice = {r: where for r, where in got.items() if len(where) > 1}
    day.held.append(
        ("at most once at the bank", not twice, f"{len(got)} reference(s) received; twice: {twice or 'none'}")
    )
    with pg() as conn:
        status = dict(conn.execute("SELECT reference, status FROM pay.payment WHERE reference = ANY(%s)", (refs,)))
        uploaded = {r for r, s in status.items() if s in ("uploaded", "settled", "returned")}
        at_bank = {r for r in got if r in status}
        day.held.append(("database agrees with the banks", uploaded == at_bank,
                         f"uploaded {len(uploaded)}, received {len(at_bank)}; "
                         f"differ: {sorted(uploaded ^ at_bank) or 'none'}"))  # fmt: skip
        listed = {r[0] for r in conn.execute("SELECT batch_id FROM pay.attention WHERE resolved_at IS NULL")}
        out_of_sight = [
            ref
            for ref, batch, s in conn.execute(
                "SELECT reference, batch_id, status FROM pay.payment WHERE reference = ANY(%s)", (refs,)
            ).fetchall()
            if s not in ("pending", "uploaded", "settled", "returned", "failed") and batch not in listed
        ]
        day.held.append(("no payment out of sight", not out_of_sight,
                         f"not final, pending or listed: {out_of_sight or 'none'}"))  # fmt: skip
        if returned:
            day.held.append(
                ("the return applied", status.get(returned) == "returned", f"{returned}: {status.get(returned)}")
            )
        cfg = banks.load(SHIPPED_BANKS)
        hook = s3_hook()
        from finflows import settings

        records = SentRecords(hook.get_conn(), settings.archive_bucket(), settings.sent_record_window_days())
        result = invariants.check(conn, cfg, everything=True, records=records, s3_hook=hook)
        day.held.append(("money invariants (all six)", not result.broken,
                         "; ".join(f"[{f.kind}] {f.what}" for f in result.broken)[:600] or "none broken"))  # fmt: skip
    leaks = scan_for_leaks(day, scan_from)
    day.held.append(("no payee detail or card number written", not leaks, "; ".join(leaks[:5]) or "none"))


def _leaks(where: str, data: bytes, needles: set[bytes]) -> list[str]:
    """A payee's name or account, or a card number (16 digits passing Luhn), in ``data``."""
    from finflows import pci

    found = [f"{where}: a payee detail" for n in needles if n in data][:1]
    for m in PAN_LIKE.finditer(data):
        digits = re.sub(rb"\D", b"", m.group()).decode()
        if pci.luhn_ok(digits):
            return [*found, f"{where}: a card-number-like {digits[:6]}…"]
    return found


def scan_for_leaks(day: Day, since: float) -> list[str]:
    """What we wrote since the day began: logs and task logs, emails, the daily report, the error
    reports of quarantined files, and Airflow's asset events and XComs: no payee's name or
    account, no card number."""
    from finflows import settings
    from finflows.task_support import s3_hook

    needles = {n.encode() for n, _ in day.payees} | {a.encode() for _, a in day.payees}
    found = []
    for root in (LOCAL / "logs", LOCAL / "smtp", LOCAL / "airflow" / "logs"):
        for f in root.rglob("*") if root.exists() else []:
            if f.is_file() and f.stat().st_mtime >= since:
                found += _leaks(str(f.relative_to(LOCAL)), f.read_bytes(), needles)
    client = s3_hook().get_conn()
    ours = ((settings.archive_bucket(), "finance-daily/"), (settings.cashfile_bucket(), "quarantine/"),
            (settings.chargeback_bucket(), "quarantine/"))  # fmt: skip
    for bucket, prefix in ours:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                report = prefix == "finance-daily/" or obj["Key"].endswith(".error.json")  # not the sender's file
                if report and obj["LastModified"].timestamp() >= since:
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    found += _leaks(f"s3://{bucket}/{obj['Key']}", body, needles)
    import psycopg

    with psycopg.connect(stack.airflow_db_url("airflow_chaos").replace("+psycopg2", "")) as meta:
        for table, column in (("asset_event", "extra"), ("xcom", "value")):
            rows = meta.execute(f"SELECT {column}::text FROM {table}").fetchall()
            found += _leaks(f"Airflow's {table}", "\n".join(r[0] or "" for r in rows).encode(), needles)
    return found


def table(day: Day) -> str:
    lines = [f"chaos day, seed {day.seed}{' (short)' if day.short else ''}: replay with "
             f"`python -m devstack.chaos --seed {day.seed}{' --short' if day.short else ''}`", "",
             "| at (s) | fault injected | what |", "|---:|---|---|"]  # fmt: skip
    lines += [f"| {f.at:.0f} | {f.name} | {f.what} |" for f in day.faults]
    lines += ["", "| invariant | held | detail |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} | {detail} |" for name, ok, detail in day.held]
    lines.append(f"\n{'HELD' if day.ok else 'BROKEN'} in {time.monotonic() - day.started:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, action="append", help="the seed (repeat for several days)")
    parser.add_argument("--short", action="store_true", help="three banks, fewer payments (make test)")
    args = parser.parse_args(argv)
    seeds = args.seed or [1, 2, 3]
    # a TERM (a time limit, Ctrl-C of make in another shell) stops the day through its clean-up
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.update(stack.up())
    failed = 0
    for seed in seeds:
        day = run_day(seed, args.short)
        sys.stdout.write(table(day) + "\n\n")
        failed += not day.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
