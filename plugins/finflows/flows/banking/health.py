"""bank_health: is each bank's SFTP server answering, and may bank_payments send to it?

Every check logs in and stats the bank's upload directory, and is kept in ``pay.health_check``
with its latency. Each bank has a circuit (``pay.circuit``):

* **closed**: payments flow. A failed check counts; ``failures_to_open`` in a row open it.
* **open**: bank_payments skips the bank (its payments stay pending, and the run says so) and the
  retry queue waits. Checks go on being recorded but do not close it...
* ...until ``half_open_after`` has passed since it opened: it is then **half-open**, and the next
  single check decides: success closes it, failure opens it again for another cool-down.

Opening and closing are returned as transitions for the DAG to alert on. No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from finflows.flows.banking.banks import Bank
from finflows.flows.banking.states import CircuitState, Transition
from finflows.seams import Conn, SftpHook, one
from finflows.sessions import SessionLimitReached
from finflows.transfer import sftp_reachable

log = logging.getLogger(__name__)
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@dataclass
class Check:
    bank: str
    ok: bool
    latency_ms: int
    error: str | None = None


@dataclass
class Circuit:
    bank: str
    state: str  # a CircuitState
    consecutive_failures: int = 0
    opened_at: dt.datetime | None = None
    last_error: str | None = None

    @property
    def allows_payments(self) -> bool:
        return self.state == CLOSED

    def describe(self, tz: dt.tzinfo) -> str:
        if self.state == CLOSED:
            return f"{self.bank}: circuit closed"
        assert self.opened_at is not None
        return (
            f"{self.bank}: circuit {self.state.replace('_', '-')} since {self.opened_at.astimezone(tz):%Y-%m-%d %H:%M} "
            f"after {self.consecutive_failures} failed health check(s); last error: {self.last_error}"
        )


def probe(sftp_hook: SftpHook, bank: Bank) -> Check:
    """Log in to the bank's SFTP server and look at its upload directory as uploads will (stat,
    list, or nothing beyond the login: its ``upload_check``); never raises."""
    started = time.perf_counter()
    try:
        with sftp_hook.get_managed_conn() as client:
            sftp_reachable(client, bank.upload_path, bank.upload_check.value)
        error = None
    except SessionLimitReached as e:  # every session the bank allows is ours, in use: it is reachable
        log.info("%s: not probed, %s", bank.id, e)
        error = None
    except Exception as e:  # every failure is a failed check, recorded with its message
        error = f"{type(e).__name__}: {e}"[:500]
    return Check(bank.id, error is None, round((time.perf_counter() - started) * 1000), error)


def circuit(conn: Conn, bank_id: str, now: dt.datetime, half_open_after: dt.timedelta) -> Circuit:
    """The bank's circuit as bank_payments sees it now (closed when never checked)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT state, consecutive_failures, opened_at, last_error FROM pay.circuit WHERE bank = %s", (bank_id,)
        )
        row = cur.fetchone()
    if row is None:
        return Circuit(bank_id, CLOSED)
    state, failures, opened_at, error = row
    if state == OPEN and now >= opened_at + half_open_after:
        state = HALF_OPEN
    return Circuit(bank_id, state, failures, opened_at, error)


def record(
    conn: Conn, check: Check, now: dt.datetime, run_id: str, *, failures_to_open: int, half_open_after: dt.timedelta
) -> str | None:
    """Keep the check and move the bank's circuit; returns ``opened``, ``closed``, ``reopened`` or None."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("INSERT INTO pay.circuit (bank) VALUES (%s) ON CONFLICT (bank) DO NOTHING", (check.bank,))
        cur.execute(
            "SELECT state, consecutive_failures, opened_at FROM pay.circuit WHERE bank = %s FOR UPDATE", (check.bank,)
        )
        state, failures, opened_at = one(cur)
        half_open = state == OPEN and now >= opened_at + half_open_after
        transition = None
        if check.ok:
            if state == CLOSED or half_open:
                transition = Transition.CLOSED if half_open else None
                state, failures, opened_at = CLOSED, 0, None
        else:
            failures += 1
            if state == CLOSED and failures >= failures_to_open:
                state, opened_at, transition = OPEN, now, Transition.OPENED
            elif half_open:
                opened_at, transition = now, Transition.REOPENED
        cur.execute(
            """UPDATE pay.circuit SET state = %s, consecutive_failures = %s, opened_at = %s, last_checked_at = %s,
                      last_error = coalesce(%s, last_error) WHERE bank = %s""",
            (state, failures, opened_at, now, check.error, check.bank),
        )
        cur.execute(
            """INSERT INTO pay.health_check (bank, checked_at, ok, latency_ms, error, circuit, dag_run_id)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (check.bank, now, check.ok, check.latency_ms, check.error, state, run_id),
        )
    return transition
