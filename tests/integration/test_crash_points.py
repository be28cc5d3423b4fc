"""Money moves at most once: the worker is killed (SIGKILL) at every step boundary of a delivery,
against the real sshd and PostgreSQL, and what runs next (the task's retry, bank_transfer_retry,
the cutoff cancel, a person's decision) must leave every payment delivered to the bank at most
once and none lost: delivered, pending again, or uncertain and waiting for a person.

The bank is played by the test: it "receives" every file that ever shows under its final name in
the upload directory, and where a case says so it takes the file away between tries, as banks
do once they have read it. What it received is decrypted with its key and read with the clearing
house's layout, so "at most once" is counted in payment references, not in file names.

The table of crash points and outcomes is printed at the end (``pytest -s`` or the captured output).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from collections import Counter
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows.flows.banking import delivery, payments
from finflows.formats import ach
from tests.helpers import payments as pay
from tests.helpers import tch

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
SENDING_STEPS = (
    "archived",
    "sending_committed",
    "part_written",
    "rename_committed",
    "sent_recorded",  # the write-once send record is in the archive, the rename not sent
    "renamed",
    "delivered_committed",
)
TABLE: list[tuple] = []


def at(hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(MONDAY, dt.time(hh, mm), tzinfo=TAIPEI)


# ---------------------------------------------------------------------------- the worker, killed
def _worker(pg_dsn: str, action: str, step: str, now: dt.datetime, sftp_conn: str | None) -> None:
    """Runs in a forked child: the action, with SIGKILL of this process at ``step``."""

    def die_at(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    delivery.at_step = die_at
    from finflows.flows.banking import banks

    cfg = banks.load()
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        if action == "pay_bank":
            pay.pay_bank(db, cfg, "mega", now=now, sftp_conn=sftp_conn)
        else:
            [(batch_id, bank)] = payments.waiting_transfers(db, now, everything=True)
            retry(db, cfg, batch_id, bank, now)
    os._exit(0)  # the step was never reached


def killed_at(pg_dsn: str, action: str, step: str, now: dt.datetime, sftp_conn: str | None = None) -> bool:
    """Run ``action`` in a worker process killed at ``step``; True when it died there."""
    child = multiprocessing.get_context("fork").Process(target=_worker, args=(pg_dsn, action, step, now, sftp_conn))
    child.start()
    child.join(600)
    assert child.exitcode is not None, f"{action} did not end"
    return child.exitcode == -signal.SIGKILL


def retry(db, cfg, batch_id: int, bank: str, now: dt.datetime):
    from tests.integration.test_bank_payments import retry as one_retry

    return one_retry(db, cfg, batch_id, bank, now)


# ---------------------------------------------------------------------------- the bank
class Bank:
    """Every file that shows under its final name is received; ``takes`` removes it once read."""

    def __init__(self, local_dir, takes: bool) -> None:
        self.dir = local_dir / "sftp" / "mega" / "upload"
        self.takes = takes
        self.received: dict[str, bytes] = {}  # name → bytes, first sight
        self.copies: Counter = Counter()  # name → distinct deliveries seen

    def look(self) -> None:
        for p in sorted(self.dir.iterdir()):
            if p.name.endswith(".part"):
                continue
            data = p.read_bytes()
            if self.takes or p.name not in self.received:  # taken files reappear only if sent again
                self.copies[p.name] += 1
            self.received.setdefault(p.name, data)
            if self.takes:
                p.unlink()

    def references(self) -> Counter:
        refs: Counter = Counter()
        for name, cipher in self.received.items():
            plain = pay.decrypt_as_bank("mega", cipher)
            for d in ach.read_ach(plain, name, "ACHP01").details:
                refs[d["customer_number"]] += self.copies[name]  # a reference without its dashes (tch.cno)
        return refs


def batch_row(pg) -> tuple:
    return pg.execute("SELECT status, send_step, decided_by FROM pay.batch ORDER BY id DESC LIMIT 1").fetchone()


def settle_by_person(db, pg, cfg, bank: Bank) -> str | None:
    """An uncertain batch waits for a person: 'the bank has it' when it has, else 'resend'."""
    status, _, _ = batch_row(pg)
    if status != "uncertain":
        return None
    batch_id = pg.execute("SELECT id FROM pay.batch ORDER BY id DESC LIMIT 1").fetchone()[0]
    # nothing automatic sends it again: the task's retry and bank_transfer_retry both report it and leave it
    before = dict(bank.received)
    again = pay.pay_bank(db, cfg, "mega", now=at(6, 30))
    assert [d["outcome"] for d in again.deliveries] == ["uncertain"]
    [(bid, b)] = payments.waiting_transfers(db, at(7, 0), everything=True) or [(batch_id, "mega")]
    assert retry(db, cfg, bid, b, at(7, 0)).outcome == "uncertain"
    bank.look()
    assert bank.received == before
    has_it = bool(bank.received)
    delivery.decide(db, batch_id, "bank_has_it" if has_it else "resend", by="treasurer-b", note="checked with mega")
    if not has_it:
        assert retry(db, cfg, batch_id, "mega", at(7, 5)).outcome == "uploaded"
        bank.look()
    return "bank_has_it" if has_it else "resend"


def check(pg, bank: Bank, refs: list[str]) -> dict:
    """Each payment reached the bank at most once; none is lost."""
    got = Counter({ref: bank.references()[tch.cno(ref)] for ref in refs})
    assert all(n <= 1 for n in got.values()), f"paid twice: {got}"
    states = pay.statuses(pg, refs)
    for ref in refs:
        if states[ref] == "uploaded":
            assert got[ref] == 1, f"{ref} is recorded uploaded but the bank never received it"
        else:
            assert states[ref] == "pending" and got[ref] == 0, f"{ref}: {states[ref]}, received {got[ref]}"
    return Counter(states.values())


@pytest.fixture(autouse=True, scope="module")
def print_table():
    yield
    if TABLE:
        head = ("actor", "killed at", "bank takes", "after", "batch", "decided", "payments", "received")
        rows = [head, *TABLE]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        print("\n\ncrash points and outcomes (each payment received at most once, none lost):\n" + "\n".join(lines))


# ---------------------------------------------------------------------------- the cases
@pytest.mark.parametrize("takes", [False, True], ids=["bank-keeps", "bank-takes"])
@pytest.mark.parametrize("step", SENDING_STEPS)
def test_pay_bank_killed_then_its_retry(clean_payments, pg, db, pg_dsn, cfg, local_dir, step, takes):
    refs = pay.add(pg, "mega", 3, due=MONDAY)
    bank = Bank(local_dir, takes)
    assert killed_at(pg_dsn, "pay_bank", step, at(6, 0)), f"never reached {step}"
    bank.look()
    after = pay.pay_bank(db, cfg, "mega", now=at(6, 5))  # the task's retry
    outcome = [d["outcome"] for d in after.deliveries]
    bank.look()
    if step == "renamed" and takes:  # the bank took it; the commit was lost: only a person can say
        assert outcome == ["uncertain"]
    decided = settle_by_person(db, pg, cfg, bank)
    states = check(pg, bank, refs)
    assert states == {"uploaded": 3}
    TABLE.append(("pay_bank", step, takes, outcome, batch_row(pg)[0], decided, dict(states), len(bank.received)))


@pytest.mark.parametrize("takes", [False, True], ids=["bank-keeps", "bank-takes"])
@pytest.mark.parametrize("step", SENDING_STEPS)
def test_pay_bank_killed_then_the_cutoff_passes(clean_payments, pg, db, pg_dsn, cfg, local_dir, step, takes):
    """No retry before the cutoff: bank_transfer_retry finds the batch; it cancels only what its
    record proves never reached the bank."""
    refs = pay.add(pg, "mega", 3, due=MONDAY)
    bank = Bank(local_dir, takes)
    assert killed_at(pg_dsn, "pay_bank", step, at(6, 0))
    bank.look()
    waiting = payments.waiting_transfers(db, at(16, 0), everything=True)
    outcome = [retry(db, cfg, b, k, at(16, 0)).outcome for b, k in waiting]
    # a batch the worker left "batched" is the next bank_payments run's: it cancels it first
    rerun = pay.pay_bank(db, cfg, "mega", now=at(16, 0))
    outcome += [d["outcome"] for d in rerun.deliveries]
    bank.look()
    if step in ("archived", "sending_committed", "part_written", "rename_committed", "sent_recorded"):
        assert "expired" in outcome and batch_row(pg)[0] in ("cancelled", "uploaded")
    if step == "renamed" and takes:
        assert outcome[:1] == ["uncertain"]
    decided = settle_by_person(db, pg, cfg, bank)
    states = check(pg, bank, refs)
    assert not list(bank.dir.glob("*.part")), "a .part was left on the bank's server"
    TABLE.append(("cutoff", step, takes, outcome, batch_row(pg)[0], decided, dict(states), len(bank.received)))


@pytest.mark.parametrize("step", SENDING_STEPS)
def test_bank_transfer_retry_killed_then_retried(clean_payments, pg, db, pg_dsn, cfg, local_dir, step, sftp_down):
    """A queued batch (its first upload failed before the rename): bank_transfer_retry is killed at
    each step, then runs again; the bank takes each file as soon as it sees it."""
    refs = pay.add(pg, "mega", 3, due=MONDAY)
    bank = Bank(local_dir, takes=True)
    first = pay.pay_bank(db, cfg, "mega", now=at(6, 0), sftp_conn=sftp_down)
    assert [d["outcome"] for d in first.deliveries] == ["queued"]
    assert killed_at(pg_dsn, "retry", step, at(7, 0))
    bank.look()
    outcome = [retry(db, cfg, b, k, at(7, 5)).outcome for b, k in payments.waiting_transfers(db, at(7, 5), True)]
    bank.look()
    decided = settle_by_person(db, pg, cfg, bank)
    states = check(pg, bank, refs)
    assert states == {"uploaded": 3}
    TABLE.append(("transfer_retry", step, True, outcome, batch_row(pg)[0], decided, dict(states), len(bank.received)))


def test_the_cutoff_cancel_killed_after_its_commit(clean_payments, pg, db, pg_dsn, cfg, local_dir, sftp_down):
    refs = pay.add(pg, "mega", 3, due=MONDAY)
    bank = Bank(local_dir, takes=True)
    pay.pay_bank(db, cfg, "mega", now=at(6, 0), sftp_conn=sftp_down)
    assert killed_at(pg_dsn, "retry", "cancel_committed", at(16, 0))
    assert payments.waiting_transfers(db, at(16, 5), everything=True) == []  # nothing left to try
    again = pay.pay_bank(db, cfg, "mega", now=at(16, 5))  # the payments roll to Tuesday
    bank.look()
    assert again.processing_date == "2026-11-24" and [d["outcome"] for d in again.deliveries] == ["uploaded"]
    states = check(pg, bank, refs)
    assert states == {"uploaded": 3} and list(bank.received) == ["ACHP01_017_20261124_001.txt"]
    TABLE.append(
        ("cutoff cancel", "cancel_committed", True, ["expired", "uploaded"], batch_row(pg)[0], None, dict(states), 1)
    )


@pytest.fixture
def sftp_down(monkeypatch):
    import json

    conn = json.loads(os.environ["AIRFLOW_CONN_SFTP_MEGA"]) | {"port": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_DOWN", json.dumps(conn))
    return "sftp_down"
