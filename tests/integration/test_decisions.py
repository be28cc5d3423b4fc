"""Every money decision a person makes is a question treasury_decisions asks (issue #40), against
the real PostgreSQL, sshd and the S3 stand-in: what each question says, that each is asked once at
a time and again when unanswered, that its maker is refused by the code and by the database, and
that each answer is carried out and kept with who and when."""

from __future__ import annotations

import datetime as dt
import os

import psycopg
import pytest

from finflows.flows.banking import decisions, delivery, invariants
from tests.helpers import payments as pay
from tests.integration.test_money_invariants import MONDAY, _prepare, _walk, at, pay_transport

pytestmark = pytest.mark.integration


def _given_up(pg, db, cfg, local_dir, bank: str, maker: str) -> tuple[int, list[str]]:
    from finflows.flows.banking import common, payments

    upload = local_dir / "sftp" / bank / "upload"
    refs = pay.add(pg, bank, 2, due=MONDAY, amount=1100)
    os.chmod(upload, 0o555)
    try:
        with pay_transport(cfg, bank) as transport, common.encrypter(cfg, cfg.bank(bank)) as encrypt:
            run = payments.pay_bank(db, cfg=cfg, bank_id=bank, now=at(6, 0), run_id=f"manual__{maker}",
                                    transport=transport, encrypt=encrypt, made_by=maker)  # fmt: skip
    finally:
        os.chmod(upload, 0o755)
    [d] = run.deliveries
    assert d["outcome"] == "gave_up"
    return d["batch_id"], refs


def _uncertain(pg, db, cfg, bank: str, maker: str) -> int:
    pay.add(pg, bank, 3, due=MONDAY, amount=2000)
    _prepare(db, cfg, bank, at(6, 0), f"manual__{maker}", maker)
    [batch_id] = pg.execute("SELECT id FROM pay.batch WHERE bank = %s", (bank,)).fetchone()
    _walk(pg, batch_id, "status = 'sending', send_step = 'part'", "send_step = 'rename'",
          "status = 'uncertain', send_step = NULL, uncertain_reason = 'test: the rename answer was lost'")  # fmt: skip
    return batch_id


def _held(pg, db, cfg, bank: str, maker: str) -> str:
    pay.add(pg, bank, 1, due=MONDAY, amount=4321, account="000099998888")
    _prepare(db, cfg, bank, at(6, 0), "scheduled__a", None)
    [dup] = pay.add(pg, bank, 1, due=MONDAY, amount=4321, account="99998888")
    _prepare(db, cfg, bank, at(6, 10), f"manual__{maker}", maker)
    assert pg.execute("SELECT held_by FROM pay.payment WHERE reference = %s", (dup,)).fetchone()[0] == maker
    return dup


def test_each_decision_is_asked_once_says_what_and_by_when_and_refuses_its_maker(
    clean_payments, pg, db, cfg, local_dir
):
    given_up, refs = _given_up(pg, db, cfg, local_dir, "esun", "alice")
    uncertain = _uncertain(pg, db, cfg, "ctbc", "alice")
    held = _held(pg, db, cfg, "taishin", "alice")
    pg.execute("""INSERT INTO pay.attention (kind, subject, bank, what, next_step)
                  VALUES ('batch_totals', 'batch 999 X.txt', 'first', 'totals differ', 'operations: look')""")  # fmt: skip
    now = at(7, 0)
    qs = {q.kind: q for q in decisions.open_questions(db, cfg, now)}
    assert set(qs) == {"given_up", "uncertain", "held", "attention"}

    g, u, h, a = qs["given_up"], qs["uncertain"], qs["held"], qs["attention"]
    assert (g.subject, g.bank, g.barred, g.deadline) == (
        str(given_up),
        "esun",
        ("alice",),
        delivery.cutoff(cfg.bank("esun"), MONDAY),
    )
    assert g.options == ("Re-queue", "Cancel the batch") and "NTD 2,200" in g.headline
    assert u.subject == str(uncertain) and u.barred == ("alice",) and "NTD 6,000" in u.headline
    assert "sha256" in u.body(["bob"]) and "the rename answer was lost" in u.body(["bob"])
    assert h.subject == held and h.barred == ("alice",) and "NTD 4,321" in h.headline
    assert a.barred == () and a.bank == "first" and a.options == ("Resolved",)
    for q in (g, u, h):
        body = q.body(["bob"])
        assert "Asia/Taipei" in body and "**Who may answer:** bob; not alice (four eyes)." in body
        assert q.label.startswith(f"{q.bank} · ") and q.subject in q.label
        assert decisions.Question.from_dict(q.as_dict()) == q  # through XCom unchanged
    # the attention row a decision covers is not asked twice
    invariants.sync(db, invariants.check(db, cfg, now))
    assert sorted(q.kind for q in decisions.open_questions(db, cfg, now)) == [
        "attention",
        "given_up",
        "held",
        "uncertain",
    ]

    first = decisions.reserve(db, list(qs.values()), "run1", "decide", now)
    assert len(first) == 4
    assert decisions.reserve(db, list(qs.values()), "run2", "decide", now + dt.timedelta(minutes=10)) == []
    later = now + decisions.ASK_FOR + dt.timedelta(minutes=1)  # run1 never got an answer: asked again
    assert len(decisions.reserve(db, list(qs.values()), "run3", "decide", later)) == 4
    outcomes = pg.execute("SELECT dag_run_id, outcome FROM pay.decision_request ORDER BY id").fetchall()
    assert outcomes == [("run1", "unanswered")] * 4 + [("run3", None)] * 4

    for q in (g, u, h):  # the maker: refused by the code...
        with pytest.raises(delivery.FourEyesRefused, match="alice"):
            decisions.apply(db, q, q.options[0], by="alice", note="mine")
    # ...and by the database, whatever asks
    with pytest.raises(psycopg.errors.CheckViolation, match="alice made it and may not re-queue or cancel it"):
        pg.execute("UPDATE pay.transfer_retry SET requeued_by = 'alice' WHERE batch_id = %s", (given_up,))
    with pytest.raises(psycopg.errors.CheckViolation, match="alice made it and may not re-queue or cancel it"):
        pg.execute("UPDATE pay.transfer_retry SET cancelled_by = 'alice', cancelled_at = now() WHERE batch_id = %s",
                   (given_up,))  # fmt: skip
    with pytest.raises(delivery.DecisionRefused, match="not one of"):
        decisions.apply(db, g, "Perhaps", by="bob", note="")

    # bob decides each; each is carried out and kept with who
    assert (
        decisions.apply(db, g, "Cancel the batch", by="bob", note="the bank's account stays closed today")["decided_by"]
        == "bob"
    )
    assert pay.statuses(pg, refs) == dict.fromkeys(refs, "pending")
    assert pg.execute("SELECT b.status, r.status, r.cancelled_by, r.cancel_note FROM pay.batch b JOIN pay.transfer_retry r "
                      "ON r.batch_id = b.id WHERE b.id = %s", (given_up,)).fetchone() == (
        "cancelled", "expired", "bob", "the bank's account stays closed today")  # fmt: skip
    decisions.apply(db, u, "The bank has it", by="bob", note="confirmed by phone, ticket 42")
    assert pg.execute("SELECT status, decision, decided_by FROM pay.batch WHERE id = %s", (uncertain,)).fetchone() == (
        "uploaded", "bank_has_it", "bob")  # fmt: skip
    decisions.apply(db, h, "Release: not a duplicate", by="bob", note="two invoices")
    assert pg.execute("SELECT hold_decision, hold_decided_by FROM pay.payment WHERE reference = %s", (held,)).fetchone() == (
        "release", "bob")  # fmt: skip
    decisions.apply(db, a, "Resolved", by="bob", note="a test row")
    for q in (g, u, h, a):
        assert not decisions.still_open(db, cfg, q, now)
        decisions.close(db, q, "run3", "answered", by="bob", answer=q.options[0])
    assert decisions.waiting(db) == []
    assert invariants.open_rows(db) == []  # the decisions resolved their rows too
    assert decisions.open_questions(db, cfg, now) == []


def test_a_given_up_batch_past_its_cutoff_is_not_asked_the_retry_cancels_it(clean_payments, pg, db, cfg, local_dir):
    _given_up(pg, db, cfg, local_dir, "esun", "alice")
    assert [q.kind for q in decisions.open_questions(db, cfg, at(7, 0))] == ["given_up"]
    assert decisions.open_questions(db, cfg, delivery.cutoff(cfg.bank("esun"), MONDAY)) == []


def test_a_decision_taken_through_the_api_first_leaves_nothing_to_apply(clean_payments, pg, db, cfg):
    uncertain = _uncertain(pg, db, cfg, "ctbc", None)
    [q] = decisions.open_questions(db, cfg, at(7, 0))
    assert q.barred == ()  # a scheduled run made it: nobody is barred
    delivery.decide(db, uncertain, "resend", by="carol", note="the monitor's API")
    assert not decisions.still_open(db, cfg, q, at(7, 0))
    with pytest.raises(delivery.DecisionRefused, match="not uncertain"):
        decisions.apply(db, q, "The bank has it", by="bob", note="")
