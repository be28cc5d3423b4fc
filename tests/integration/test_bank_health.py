"""bank_health against the real stack: the circuit breaker in PostgreSQL, and the real SFTP server stopped."""

from __future__ import annotations

import datetime as dt

import pytest

from finflows.flows.banking import health
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 Taipei, before every cutoff
COOL_DOWN = dt.timedelta(minutes=5)
MIN = dt.timedelta(minutes=1)


def record(db, ok: bool, at: dt.datetime, bank: str = "ctbc") -> str | None:
    check = health.Check(bank, ok, 12, None if ok else "NoValidConnectionsError: refused")
    return health.record(db, check, at, "test", failures_to_open=3, half_open_after=COOL_DOWN)


def state(db, at: dt.datetime, bank: str = "ctbc") -> str:
    return health.circuit(db, bank, at, COOL_DOWN).state


def test_three_failures_open_the_circuit_and_one_check_after_the_cool_down_decides(clean_payments, db, pg):
    assert state(db, T0) == "closed"  # never checked
    assert [record(db, False, T0), record(db, False, T0 + 5 * MIN)] == [None, None]
    assert state(db, T0 + 6 * MIN) == "closed"
    assert record(db, True, T0 + 7 * MIN) is None  # a success resets the count...
    assert [record(db, False, T0 + m * MIN) for m in (8, 9, 10)] == [None, None, "opened"]  # ...so 3 more open it
    assert state(db, T0 + 10 * MIN) == "open"

    assert record(db, True, T0 + 12 * MIN) is None  # inside the cool-down a success does not close it
    assert state(db, T0 + 14 * MIN) == "open"
    assert state(db, T0 + 15 * MIN) == "half_open"
    assert record(db, False, T0 + 15 * MIN) == "reopened"  # the half-open check failed: another cool-down
    assert state(db, T0 + 19 * MIN) == "open"
    assert record(db, True, T0 + 20 * MIN) == "closed"
    assert state(db, T0 + 20 * MIN) == "closed"

    rows = pg.execute("SELECT ok, circuit FROM pay.health_check WHERE bank = 'ctbc' ORDER BY checked_at").fetchall()
    assert [c for _, c in rows] == ["closed"] * 5 + ["open"] * 3 + ["closed"]
    assert pg.execute("SELECT state, consecutive_failures, opened_at FROM pay.circuit").fetchall() == [
        ("closed", 0, None)
    ]
    assert state(db, T0, bank="mega") == "closed"  # circuits are per bank


def test_a_stopped_sftp_server_opens_the_circuit_after_three_checks_and_payments_skip_the_bank(
    clean_payments, db, pg, cfg, local_dir, sftp_server
):
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    bank = cfg.bank("mega")
    refs = pay.add(pg, "mega", 2, due=T0.date())

    def check(at: dt.datetime) -> tuple[health.Check, str | None]:
        c = health.probe(SFTPHook(ssh_conn_id=bank.sftp_conn_id, conn_retry_attempts=1), bank)
        return c, health.record(db, c, at, "test", failures_to_open=3, half_open_after=COOL_DOWN)

    ok, moved = check(T0 - 5 * MIN)
    assert ok.ok and ok.latency_ms > 0 and moved is None  # the server answers: login and stat work

    sftp_server.stop()
    outcomes = [check(T0 + m * 5 * MIN) for m in range(3)]
    assert [c.ok for c, _ in outcomes] == [False] * 3
    assert [m for _, m in outcomes] == [None, None, "opened"]
    assert "Connection" in outcomes[0][0].error  # the refusal, as paramiko reported it

    circuit = health.circuit(db, "mega", T0 + 11 * MIN, COOL_DOWN)
    skipped = pay.pay_bank(db, cfg, "mega", now=T0 + 11 * MIN, circuit=circuit)
    assert skipped.skipped_reason.startswith("mega: circuit open since 2026-11-23 09:10")
    assert "3 failed health check(s)" in skipped.skipped_reason and skipped.left_pending == 2
    assert skipped.batches_created == 0 and skipped.deliveries == []
    assert set(pay.statuses(pg, refs).values()) == {"pending"}
    assert pg.execute("SELECT count(*) FROM pay.batch").fetchone()[0] == 0

    sftp_server.start()
    c, moved = check(T0 + 15 * MIN)  # half-open: one good check closes it
    assert c.ok and moved == "closed"
    circuit = health.circuit(db, "mega", T0 + 16 * MIN, COOL_DOWN)
    paid = pay.pay_bank(db, cfg, "mega", now=T0 + 16 * MIN, circuit=circuit)
    assert paid.skipped_reason is None and [d["outcome"] for d in paid.deliveries] == ["uploaded"]
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    assert len(pay.uploaded(local_dir, "mega")) == 1


def test_the_retry_queue_waits_while_the_circuit_is_open(clean_payments, db, pg, cfg, local_dir, monkeypatch):
    import json
    import os

    from tests.integration.test_bank_payments import retry

    refs = pay.add(pg, "first", 1, due=T0.date())
    monkeypatch.setenv(
        "AIRFLOW_CONN_SFTP_DOWN", json.dumps(json.loads(os.environ["AIRFLOW_CONN_SFTP_FIRST"]) | {"port": 1})
    )
    pay.pay_bank(db, cfg, "first", now=T0, sftp_conn="sftp_down")
    [(batch_id, status, tried)] = pg.execute("SELECT batch_id, status, attempts FROM pay.transfer_retry").fetchall()
    assert status == "waiting"
    for m in range(3):
        record(db, False, T0 + m * MIN, bank="first")
    circuit = health.circuit(db, "first", T0 + 3 * MIN, COOL_DOWN)
    d = retry(db, cfg, batch_id, "first", T0 + 3 * MIN, circuit=circuit)
    assert d.outcome == "skipped" and "circuit open" in d.error
    assert pg.execute("SELECT status, attempts FROM pay.transfer_retry").fetchone() == ("waiting", tried)
    assert set(pay.statuses(pg, refs).values()) == {"batched"} and pay.uploaded(local_dir, "first") == {}
