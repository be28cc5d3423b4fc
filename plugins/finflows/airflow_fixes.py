"""Fixes for bugs of the pinned Airflow that our users hit, applied in the process where they
bite, each with its upstream reference; remove one when the pin moves past its fix.

* apache/airflow#70368 (fix: PR #70370, not in 3.3.2): clearing a task of a run whose
  ``DAGRUN_QUEUED_AT`` deadline is still pending answers HTTP 500, because
  ``taskinstance._recalculate_dagrun_queued_at_deadlines`` builds ``timedelta(seconds=<dict>)``
  from the serialized interval. Every finflows DAG has such a deadline, and a failed run is
  exactly what someone clears within its first half hour. The replacement below recalculates the
  pending deadline from the interval as Airflow serialized it (``airflow.sdk.serde``), so Clear
  works and the deadline alert stays, moved to the new ``queued_at``.

``apply()`` is called by the finflows plugin when the api-server builds its apps (the process that
serves Clear); it is idempotent and does nothing on an Airflow without the bug.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)
_APPLIED = "_finflows_fixed"


def deadline_interval(raw) -> dt.timedelta | None:
    """A deadline alert's stored interval as a timedelta: a number of seconds (older rows) or a
    serde dict; None for one that cannot be known here (an interval read from a Variable)."""
    if isinstance(raw, (int, float)):
        return dt.timedelta(seconds=raw)
    from airflow.sdk.serde import deserialize

    value = deserialize(raw)
    return value if isinstance(value, dt.timedelta) else None


def _recalculate_dagrun_queued_at_deadlines(dagrun, new_queued_at, session) -> None:
    """Airflow's own recalculation (same query, same place in the clear transaction), with the
    interval decoded."""
    from airflow.models.deadline import Deadline, ReferenceModels
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel
    from sqlalchemy import false, select

    rows = session.execute(
        select(Deadline, DeadlineAlertModel)
        .join(DeadlineAlertModel, Deadline.deadline_alert_id == DeadlineAlertModel.id)
        .where(
            Deadline.dagrun_id == dagrun.id,
            Deadline.missed == false(),
            DeadlineAlertModel.reference[ReferenceModels.REFERENCE_TYPE_FIELD].as_string()
            == ReferenceModels.DagRunQueuedAtDeadline.__name__,
        )
    ).all()
    for deadline, alert in rows:
        interval = deadline_interval(alert.interval)
        if interval is None:
            log.warning(
                "deadline %s of %s: interval %r not known here; left as it was", deadline.id, dagrun, alert.interval
            )
            continue
        deadline.deadline_time = new_queued_at + interval


def apply() -> bool:
    """Install the fixes this Airflow needs; True when one was installed now."""
    from airflow.models import taskinstance

    current = taskinstance._recalculate_dagrun_queued_at_deadlines
    if getattr(current, _APPLIED, False):
        return False
    import inspect

    if "timedelta(seconds=deadline_alert.interval)" not in inspect.getsource(current):
        return False  # an Airflow with the upstream fix
    setattr(_recalculate_dagrun_queued_at_deadlines, _APPLIED, True)
    taskinstance._recalculate_dagrun_queued_at_deadlines = _recalculate_dagrun_queued_at_deadlines
    log.info("finflows: applied the fix for apache/airflow#70368 (Clear of a run with a pending deadline)")
    return True
