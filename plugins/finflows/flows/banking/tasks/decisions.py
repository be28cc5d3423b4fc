"""Task bodies of treasury_decisions: find what waits for a person and reserve the questions this
run asks (``finflows.flows.banking.decisions``). Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from finflows import files
from finflows.flows.banking import banks, decisions
from finflows.task_support import finance_db

log = logging.getLogger(__name__)


def ask(run_id: str, task_id: str = "decide") -> list[dict[str, Any]]:
    """The questions this run asks (none already asked by a live run), as dicts for the mapped task."""
    now = dt.datetime.now(dt.UTC)
    with files.connect(finance_db()) as conn:
        found = decisions.open_questions(conn, banks.load(), now)
        asked = decisions.reserve(conn, found, run_id, task_id, now)
    log.info(
        "%d question(s) wait for a person; %d asked by this run, %d already asked by another",
        len(found),
        len(asked),
        len(found) - len(asked),
    )
    return [q.as_dict() for q in asked]
