"""The states a payment, a batch and their decisions are in, as the database stores them.

Each enum's values are exactly its column's ``CHECK`` constraint (``tests/integration/
test_states.py`` reads both from the live database); Python compares a state only with these
members, never with a string of its own (``tests/dags/test_layout.py`` looks for one)."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """``pay.payment.status``."""

    PENDING = "pending"  # waiting for a batch
    BATCHED = "batched"  # in a batch not yet at the bank
    UPLOADED = "uploaded"  # at the bank, waiting for its return file or the return window
    SETTLED = "settled"  # final: paid
    RETURNED = "returned"  # final: the bank returned it (a reason code)
    FAILED = "failed"  # final: never to be paid


class BatchStatus(StrEnum):
    """``pay.batch.status``."""

    BATCHED = "batched"  # made; approval and sending ahead
    SENDING = "sending"  # a try is at its send step (``send_step``)
    UPLOADED = "uploaded"  # final: the bank has it
    QUEUED = "queued"  # not delivered; bank_transfer_retry tries again (``pay.transfer_retry``)
    UNCERTAIN = "uncertain"  # nobody can prove whether the bank has it: treasury decides
    CANCELLED = "cancelled"  # final: nothing sent; its payments roll on
    FAILED = "failed"  # final


UNSETTLED = frozenset({BatchStatus.BATCHED, BatchStatus.SENDING, BatchStatus.QUEUED, BatchStatus.UNCERTAIN})
STILL_TO_SEND = frozenset({BatchStatus.BATCHED, BatchStatus.QUEUED, BatchStatus.SENDING})
BATCH_FINAL = frozenset({BatchStatus.UPLOADED, BatchStatus.CANCELLED, BatchStatus.FAILED})


class Approval(StrEnum):
    """``pay.batch.approval``: a second person's answer, where the bank asks for one."""

    REQUIRED = "required"
    REQUESTED = "requested"
    APPROVED = "approved"
    NOT_REQUIRED = "not_required"
    REJECTED = "rejected"
    EXPIRED = "expired"  # unanswered by the deadline


WAITING_FOR_APPROVAL = frozenset({Approval.REQUIRED, Approval.REQUESTED})
APPROVAL_REFUSED = frozenset({Approval.REJECTED, Approval.EXPIRED})
MAY_SEND = frozenset({Approval.APPROVED, Approval.NOT_REQUIRED})


class Retry(StrEnum):
    """``pay.transfer_retry.status``."""

    WAITING = "waiting"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    GAVE_UP = "gave_up"
    UNCERTAIN = "uncertain"


class Uncertain(StrEnum):
    """``pay.batch.decision``: treasury's answer about an uncertain delivery."""

    BANK_HAS_IT = "bank_has_it"
    RESEND = "resend"


class Hold(StrEnum):
    """``pay.payment.hold_decision``: treasury's answer about a held duplicate."""

    RELEASE = "release"
    CANCEL = "cancel"


class ReturnLine(StrEnum):
    """``pay.return_line.outcome``: what a line of a bank's return file came to."""

    SETTLED = "settled"
    RETURNED = "returned"
    UNMATCHED = "unmatched"
    MISMATCH = "mismatch"
    DUPLICATE = "duplicate"


class ReturnFile(StrEnum):
    """What reading one return file came to (``FileOutcome.outcome``, in XCom)."""

    APPLIED = "applied"
    SEEN = "seen"  # read before, with the same bytes: nothing applied twice
    QUARANTINED = "quarantined"


class CircuitState(StrEnum):
    """``pay.circuit.state`` (and ``pay.health_check.circuit``): a bank's circuit breaker."""

    CLOSED = "closed"  # payments flow
    OPEN = "open"  # nothing is sent to the bank
    HALF_OPEN = "half_open"  # open, its cool-down over: the next check decides (computed, never stored)


class Transition(StrEnum):
    """How one health check moved a circuit (``health.record``'s answer, in XCom and the email)."""

    OPENED = "opened"
    CLOSED = "closed"
    REOPENED = "reopened"
