"""The duplicate-payment guard against the real database: a payment repeating another's payee
bank, account and amount within the window is held, not batched, until a person decides."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from finflows.flows.banking import payments
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
ACCOUNT = "000012345678"


def at(day: dt.date, hh: int = 6) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, 0), tzinfo=TAIPEI)


def one(pg, bank: str, *, due: dt.date, amount: int = 25_000, account: str = ACCOUNT, prefix: str) -> str:
    return pay.add(pg, bank, 1, due=due, amount=amount, account=account, payee_bank="8220015", ref_prefix=prefix)[0]


def test_duplicates_across_days_banks_and_states_are_held_and_nothing_else(clean_payments, db, pg, cfg, local_dir):
    earlier = one(pg, "mega", due=MONDAY - dt.timedelta(days=6), prefix="EARLIER")
    pay.pay_bank(db, cfg, "mega", now=at(MONDAY - dt.timedelta(days=6)))  # uploaded six days before
    assert pay.statuses(pg, [earlier]) == {earlier: "uploaded"}
    first = one(pg, "ctbc", due=MONDAY, prefix="FIRST")  # the same again, by another of our banks
    second = one(pg, "mega", due=MONDAY + dt.timedelta(days=2), prefix="SECOND")  # and again, pending
    other_amount = one(pg, "mega", due=MONDAY, amount=25_001, prefix="OTHERAMT")
    other_account = one(pg, "mega", due=MONDAY, account="000012345679", prefix="OTHERACC")
    far = one(pg, "esun", due=MONDAY + dt.timedelta(days=8), prefix="FAR")  # 14 days after the uploaded one

    runs = {b: pay.pay_bank(db, cfg, b, now=at(MONDAY + dt.timedelta(days=8))) for b in ("ctbc", "mega", "esun")}
    held = {h["reference"]: h["duplicate_of"] for r in runs.values() for h in r.held}
    # each names the oldest payment it repeats within the window; FAR is 14 days after EARLIER and 8
    # after FIRST, but 6 after SECOND (pending)
    assert held == {first: earlier, second: first, far: second}
    assert pay.statuses(pg, [first, second]) == {first: "pending", second: "pending"}
    assert pay.statuses(pg, [far]) == {far: "pending"} and runs["esun"].held == [
        {"reference": far, "duplicate_of": second}
    ]
    assert pay.statuses(pg, [other_amount, other_account]) == {other_amount: "uploaded", other_account: "uploaded"}
    assert any("held: possible duplicate of" in p for p in runs["ctbc"].problems)
    assert {h["reference"] for h in payments.held_payments(db)} == {first, second, far}
    detail = pg.execute(
        "SELECT detail FROM pay.payment_event e JOIN pay.payment p ON p.id = e.payment_id WHERE p.reference = %s "
        "ORDER BY e.id DESC LIMIT 1",
        (first,),
    ).fetchone()[0]
    assert detail.startswith(f"possible duplicate of {earlier}")


def test_a_released_payment_is_paid_once_and_never_held_again_a_cancelled_one_never(
    clean_payments, db, pg, cfg, local_dir
):
    original = one(pg, "mega", due=MONDAY, prefix="ORIG")
    pay.pay_bank(db, cfg, "mega", now=at(MONDAY))
    again = one(pg, "mega", due=MONDAY + dt.timedelta(days=1), prefix="AGAIN")
    twice = one(pg, "mega", due=MONDAY + dt.timedelta(days=1), prefix="TWICE")
    run = pay.pay_bank(db, cfg, "mega", now=at(MONDAY + dt.timedelta(days=1)))
    assert {h["reference"] for h in run.held} == {again, twice} and run.batches_created == 0

    with pytest.raises(ValueError, match="release or cancel"):
        payments.decide_hold(db, again, "maybe", by="treasurer-b")
    out = payments.decide_hold(db, again, "release", by="treasurer-b", note="two invoices, checked")
    assert out == {"reference": again, "bank": "mega", "decision": "release", "decided_by": "treasurer-b"}
    payments.decide_hold(db, twice, "cancel", by="treasurer-b", note="entered twice")
    with pytest.raises(LookupError, match="not held"):
        payments.decide_hold(db, twice, "release", by="treasurer-c")

    after = pay.pay_bank(db, cfg, "mega", now=at(MONDAY + dt.timedelta(days=1), 7))
    assert after.held == [] and after.payments_batched == 1
    assert pay.statuses(pg, [original, again, twice]) == {original: "uploaded", again: "uploaded", twice: "failed"}
    assert pg.execute(
        "SELECT hold_decision, hold_decided_by FROM pay.payment WHERE reference = %s", (twice,)
    ).fetchone() == ("cancel", "treasurer-b")
    assert payments.held_payments(db) == []
