"""Task bodies of bank_health: one check of each bank's SFTP server; circuits and their alerts. Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict
from typing import Any

from finflows import files, settings
from finflows.flows.banking import banks
from finflows.flows.banking.common import check_invariants, circuit_now, email_treasury, sftp
from finflows.flows.banking.states import Transition
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
    label_mapped_task,
    nothing_upstream,
)

log = logging.getLogger(__name__)


def check_bank(bank_id: str) -> dict[str, Any]:
    """One health check of the bank's SFTP server (one connection attempt), recorded; the circuit moves."""
    from finflows.flows.banking import health

    run_id = label_mapped_task("bank", bank_id)
    bank = banks.load().bank(bank_id)
    check = health.probe(sftp(bank, one_attempt=True), bank)
    now = dt.datetime.now(dt.UTC)
    with files.connect(finance_db()) as conn:
        transition = health.record(
            conn,
            check,
            now,
            run_id,
            failures_to_open=settings.bank_circuit_failures(),
            half_open_after=settings.bank_circuit_half_open_after(),
        )
        state = circuit_now(conn, bank_id)
    (log.info if check.ok else log.warning)(
        "%s: %s in %d ms%s; %s",
        bank_id,
        "ok" if check.ok else "FAILED",
        check.latency_ms,
        f" ({check.error})" if check.error else "",
        state.describe(settings.TAIPEI),
    )
    return asdict(check) | {"transition": transition, "circuit": state.describe(settings.TAIPEI)}


def health_summary(bank_ids: list[str], checks: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Alert operations and treasury when a circuit opens or closes; check the cheap money
    invariants (the attention list, new rows alerted). A failed check is data, not a failed run:
    the run fails only when a check could not even be recorded."""
    import html

    nothing_upstream(bank_ids, "choose_banks")
    recorded = [c for c in checks if c is not None]
    moved = [c for c in recorded if c["transition"] in (Transition.OPENED, Transition.CLOSED)]
    if moved:
        what = {"opened": "OPEN: bank_payments skips this bank", "closed": "closed again: payments flow"}
        items = "".join(
            f"<li><b>{c['bank']}</b>: circuit {what[c['transition']]}. {html.escape(c['circuit'])}"
            f"{'; last check: ' + html.escape(c['error']) if c['error'] else ''}</li>"
            for c in moved
        )
        note = (
            "<p>Payments a skipped run left pending go out with the next bank_payments run; trigger it "
            "for the bank (param <code>banks</code>) to send them before today's cutoff.</p>"
        )
        names = ", ".join(f"{c['bank']} {c['transition']}" for c in moved)
        email_treasury(f"[finflows] bank circuit: {names}", f"<ul>{items}</ul>{note}", also=settings.ops_email())
    attention = check_invariants()  # the cheap money invariants, every run
    failed = sorted(set(bank_ids) - {c["bank"] for c in recorded})
    fail_run_if_any(failed, len(bank_ids), "bank health check")
    return {
        "ok": sum(c["ok"] for c in recorded),
        "failed": sum(not c["ok"] for c in recorded),
        "transitions": {c["bank"]: c["transition"] for c in moved},
        "attention": attention,
    }
