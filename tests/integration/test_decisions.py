"""Every money decision a person makes is a question treasury_decisions asks (issue #40), against
the real PostgreSQL, sshd and the S3 stand-in: what each question says, that each is asked once at
a time and again when unanswered, that its maker is refused by the code and by the database, and
that each answer is carried out and kept with who and when."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from finflows.flows.banking import decisions, delivery, invariants
from tests.helpers import payments as pay
from tests.helpers.decisions import MONDAY, at
from tests.helpers.decisions import given_up as _given_up
from tests.helpers.decisions import held as _held
from tests.helpers.decisions import uncertain as _uncertain

pytestmark = pytest.mark.integration


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


def test_the_treasurers_today_page_names_where_every_file_is_with_its_links(clean_payments, pg, db, cfg, local_dir):
    from finflows.flows.banking import today

    given_up, _ = _given_up(pg, db, cfg, local_dir, "esun", "alice")
    uncertain = _uncertain(pg, db, cfg, "ctbc", "alice")
    held = _held(pg, db, cfg, "taishin", "alice")
    pg.execute(
        """INSERT INTO ops.file_control (flow, file_name, sha256, status, error, dag_run_id, started_at)
           VALUES ('cashfile_import', 'CP_BAD.dat', repeat('0', 64), 'ERROR',
                   'CP_BAD.dat line 3 field paid_on: ''2026-02-30'' is not a date (DD/MM/YYYY)', 'manual__x', %s)""",
        (at(8, 0),),
    )
    now = at(9, 30)
    decisions.reserve(db, decisions.open_questions(db, cfg, now), "scheduled__d", "decide", now)
    page = today.today(db, cfg, now, dt.timedelta(minutes=5), dt.timedelta(minutes=30), "http://af")
    assert (page["day"], page["zone"], page["now"]) == ("2026-11-23", "Asia/Taipei", "2026-11-23 09:30 Asia/Taipei")
    banks = {b["bank"]: b for b in page["banks"]}
    assert (banks["esun"]["prepared"], banks["esun"]["given_up"]) == (1, 1)
    assert (banks["ctbc"]["prepared"], banks["ctbc"]["uncertain"]) == (1, 1)
    assert banks["taishin"]["held"] == 1 and banks["esun"]["cutoff"].endswith("Asia/Taipei")
    rows = {r["batch_id"]: r for r in page["batches"]}
    g, u = rows[given_up], rows[uncertain]
    assert g["state"] == "given_up" and g["words"].startswith("given up: ") and g["made_by"] == "alice"
    assert u["state"] == "uncertain" and "the rename answer was lost" in u["words"] and "Asia/Taipei" in u["words"]
    assert (
        g["run_url"] == "http://af/dags/bank_payments/runs/manual__alice"
        and g["batch_url"] == f"/finflows/api/batches/{given_up}"
    )
    assert g["log_url"].startswith("http://af/dags/bank_payments/runs/manual__alice/tasks/bank.prepare")
    asked = {(d["kind"], d["subject"]): d for d in page["decisions"]}
    assert set(asked) == {("given_up", str(given_up)), ("uncertain", str(uncertain)), ("held", held)}
    assert asked[("held", held)]["action_url"].startswith(
        "http://af/dags/treasury_decisions/runs/scheduled__d/tasks/decide/mapped/"
    )
    [f] = page["failures"]
    assert (f["file_name"], f["at"], f["run_url"]) == (
        "CP_BAD.dat",
        "2026-11-23 08:00 Asia/Taipei",
        "http://af/dags/cashfile_import/runs/manual__x",
    )
    assert "paid_on" in f["rule"] and "CivicaPay" in f["next_step"]
    pg.execute("DELETE FROM ops.file_control WHERE file_name = 'CP_BAD.dat'")


def test_the_map_index_airflow_shows_is_the_questions_label():
    """Rendered from the task's own field before it waits: Required Actions names the bank and the
    question, the same words as the question's label."""
    import types

    import jinja2

    from finflows.operators.decision import LABEL

    for q in (decisions.Question("given_up", "12", "esun", "h", ("f",), None, ("alice",)),
              decisions.Question("attention", "5", "", "h", ("f",), None)):  # fmt: skip
        task = types.SimpleNamespace(question=q.as_dict())
        assert jinja2.Environment().from_string(LABEL).render(task=task) == q.label
    assert q.label == "all · attention · 5"
