"""Where the monitor's Today page puts a batch, by its database state (no database: ``_where``
reads one row)."""

from __future__ import annotations

import datetime as dt

import pytest

from finflows.flows.banking.states import Approval, BatchStatus
from finflows.flows.banking.today import STATES, DayState, _where

ROW = {
    "bank": "esun", "approval_by": None, "approval_note": None, "approval_at": None, "decision": None,
    "decided_by": None, "uploaded_at": None, "uncertain_at": None, "uncertain_reason": "", "retry": None,
    "last_error": None, "send_step": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "approval", "state"),
    [
        (BatchStatus.BATCHED, Approval.REQUESTED, DayState.AWAITING_APPROVAL),
        (BatchStatus.BATCHED, Approval.APPROVED, DayState.QUEUED),  # approved, the upload step ahead: not "failed"
        (BatchStatus.BATCHED, Approval.NOT_REQUIRED, DayState.QUEUED),
        (BatchStatus.CANCELLED, Approval.EXPIRED, DayState.EXPIRED),
        (BatchStatus.CANCELLED, Approval.NOT_REQUIRED, DayState.CANCELLED),
        (BatchStatus.UPLOADED, Approval.APPROVED, DayState.SENT),
        (BatchStatus.SENDING, Approval.NOT_REQUIRED, DayState.QUEUED),
        (BatchStatus.FAILED, Approval.NOT_REQUIRED, DayState.FAILED),
    ],
)
def test_each_batch_state_has_its_column(status, approval, state):
    got, words = _where(ROW | {"status": status, "approval": approval}, dt.timedelta(minutes=30), {})
    assert got == state and got in STATES and words
