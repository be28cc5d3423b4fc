"""What every finflows DAG shares: owner, approved tags, retries, failure email.

Imported by DAG files at parse time: keep it light (no provider, pandas or client imports here).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from finflows import flowspec, settings
from finflows.notifiers import OperationsEmailNotifier

OWNER = "finance-data-eng"


class Tag(StrEnum):
    """The approved DAG tags; the integrity test refuses any other."""

    FINANCE = "finance"
    CASH = "cash"
    CARDS = "cards"
    BANKING = "banking"
    CHARGEBACKS = "chargebacks"
    TENURE = "tenure"
    EVENT_DRIVEN = "event-driven"
    DAILY = "daily"
    OPERATIONS = "operations"
    PII = "pii"


APPROVED_TAGS = frozenset(t.value for t in Tag)


def tags(dag_id: str, flow: str | None = None) -> list[Tag]:
    """The DAG's tags as its flow's spec declares them (``Dag.tags``), each an approved ``Tag``: a
    tag outside the set fails the DAG file's import, naming the DAG and the tag. ``flow``: the
    package whose ``spec`` declares it, when it is not under ``finflows.flows`` (an example)."""
    import importlib

    if flow is None:
        found = flowspec.dags().get(dag_id)
        declared = found[1] if found else None
    else:
        spec = importlib.import_module(f"{flow}.spec").SPEC
        declared = next((d for d in spec.dags if d.dag_id == dag_id), None)
    if declared is None:
        raise ValueError(f"DAG {dag_id} is declared in no flow's spec.py (finflows.flowspec)")
    unknown = [t for t in declared.tags if t not in APPROVED_TAGS]
    if unknown:
        raise ValueError(f"DAG {dag_id}: tags {unknown} are not among the approved ones ({sorted(APPROVED_TAGS)})")
    return [Tag(t) for t in declared.tags]


def default_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 3,
        # FINFLOWS_RETRY_DELAY (seconds): shorter in the fault tests, which wait for real retries
        "retry_delay": dt.timedelta(seconds=settings.retry_delay_seconds()),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        # no task waits for ever on a counterparty that stopped answering: past this it fails (and
        # retries); a bank file cut off anywhere is settled by its recorded delivery state
        "execution_timeout": dt.timedelta(minutes=settings.task_timeout_minutes()),
        "on_failure_callback": OperationsEmailNotifier(),
    }
    args.update(overrides)
    return args


# Expected minutes from a run being queued to its end; past it operations get a "LATE" email.
# Each flow declares its DAGs' in its spec (finflows/flows/<flow>/spec.py, ``finflows.flowspec``).
# Override per deployment with FINFLOWS_DEADLINE_<DAG_ID> (minutes, decimals allowed).
EXPECTED_MINUTES: dict[str, float] = flowspec.expected_minutes()


def deadline(dag_id: str):
    """The DAG's Deadline Alert: the triggerer runs ``finflows.alerts.deadline_missed`` (email to
    operations) when a run has not finished its expected minutes after it was queued.

    ``FINFLOWS_DEADLINES=off`` leaves it out: Airflow 3.3.2's ``dag.test()`` cannot create a run
    of a DAG with a deadline ("the dag is not serialized"), so the dag.test suites and
    ``make demo`` (``airflow dags test``) turn it off; the scheduler always has it.
    """
    if not settings.deadlines_on():
        return None
    # exported by airflow.sdk lazily (its __getattr__), which mypy cannot follow in 3.3.2
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference  # type: ignore[attr-defined]

    if dag_id not in EXPECTED_MINUTES:
        raise KeyError(f"DAG {dag_id} is declared by no flow spec (finflows/flows/<flow>/spec.py: SPEC = Flow(...))")
    minutes = settings.deadline_minutes(dag_id, EXPECTED_MINUTES[dag_id])
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(minutes=minutes),
        callback=AsyncCallback("finflows.alerts.deadline_missed", kwargs={"expected_minutes": minutes}),
        name=f"{dag_id} expected within {minutes:g} min",
    )
