"""Who and why, for the audit triggers: every ``pay.payment_event``/``pay.batch_event`` row the
database writes in a transaction names the run (or the person) and the reason set here."""

from __future__ import annotations

from finflows.seams import Cur

REASON_MAX = 2000  # the audit columns' bound; a longer reason is cut, never refused mid-decision


def who(cur: Cur, run_id: str, reason: str) -> None:
    """Name the run and the reason in every event the triggers write in this transaction."""
    cur.execute(
        "SELECT set_config('finflows.run_id', %s, true), set_config('finflows.reason', %s, true)",
        (run_id, reason[:REASON_MAX]),
    )
