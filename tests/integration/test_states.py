"""Each state enum holds exactly what its column's CHECK constraint allows, read from the live
finance database (after every migration): a state added on one side only fails here, not on the
first batch that reaches it."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest

from finflows import files
from finflows.flows.banking import states
from finflows.flows.tenure_sync.tenure import EventStatus

pytestmark = pytest.mark.integration

STORED = [
    (states.PaymentStatus, "pay.payment", "status"),
    (states.BatchStatus, "pay.batch", "status"),
    (states.Approval, "pay.batch", "approval"),
    (states.Retry, "pay.transfer_retry", "status"),
    (states.Uncertain, "pay.batch", "decision"),
    (states.Hold, "pay.payment", "hold_decision"),
    (states.ReturnLine, "pay.return_line", "outcome"),
    (states.CircuitState, "pay.circuit", "state"),
    (states.CircuitState, "pay.health_check", "circuit"),
    (files.ControlStatus, "ops.file_control", "status"),
    (EventStatus, "ops.tenure_event", "status"),
]
NEVER_STORED = {states.CircuitState.HALF_OPEN}  # computed from opened_at when read


def allowed(pg, table: str, column: str) -> set[str]:
    """The values the table's CHECK constraints allow the column: ``col = ANY (ARRAY['a', ...])``."""
    defs = [
        r[0]
        for r in pg.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
            (table,),
        )
    ]
    lists = [d for d in defs if re.search(rf"\(\(?{column}\s*=\s*ANY \(ARRAY\[", d)]
    assert len(lists) == 1, f"{table}.{column}: one CHECK listing its values, found {lists or defs}"
    return set(re.findall(r"'([a-z_A-Z]+)'::text", lists[0]))


@pytest.mark.parametrize(("enum", "table", "column"), STORED, ids=lambda v: getattr(v, "__name__", v))
def test_each_state_enum_is_its_columns_check(pg, enum: type[StrEnum], table: str, column: str):
    assert allowed(pg, table, column) == {str(m) for m in enum if m not in NEVER_STORED}
