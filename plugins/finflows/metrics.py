"""Flow metrics through Airflow's own metrics settings (StatsD or OpenTelemetry).

Each flow's summary task calls ``emit`` once per run: ``finflows.<flow>.files``, ``.rows``,
``.bytes``, ``.failures`` (counters) and ``finflows.<flow>.duration`` (timer, from the run's start
to its summary). The backend is the one ``[metrics]`` configures (``statsd_on`` / ``otel_on``,
host, port, prefix, allow/block lists); with neither on, nothing is sent. The figures are logged
too, so a run's numbers are in its task log whatever the backend.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)


def _backend() -> Any:
    """Built per call (a UDP socket for StatsD): the [metrics] settings are read as they are now."""
    from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

    return get_stats_factory()()


def emit(flow: str, *, files: int, rows: int, nbytes: int, failures: int, seconds: float | None = None) -> None:
    log.info(
        "metrics %s: files=%d rows=%d bytes=%d failures=%d seconds=%s",
        flow,
        files,
        rows,
        nbytes,
        failures,
        f"{seconds:.1f}" if seconds is not None else "-",
    )
    backend, tags = _backend(), {"flow": flow}
    for name, value in (("files", files), ("rows", rows), ("bytes", nbytes), ("failures", failures)):
        backend.incr(f"finflows.{flow}.{name}", value, tags=tags)
    if seconds is not None:
        backend.timing(f"finflows.{flow}.duration", dt.timedelta(seconds=seconds), tags=tags)


def run_seconds() -> float | None:
    """Seconds since the current DAG run started (None outside a task)."""
    try:
        from airflow.sdk import get_current_context

        started = get_current_context()["dag_run"].start_date
    except Exception:  # outside a task: no context
        return None
    return (dt.datetime.now(dt.UTC) - started).total_seconds() if started else None


def emit_outcomes(flow: str, outcomes: list[dict[str, Any]], failures: int, rows_key: str) -> None:
    """``emit`` for a run whose per-file outcomes carry ``bytes`` and a row count under ``rows_key``."""
    emit(
        flow,
        files=len(outcomes),
        rows=sum(int(o.get(rows_key) or 0) for o in outcomes),
        nbytes=sum(int(o.get("bytes") or 0) for o in outcomes),
        failures=failures,
        seconds=run_seconds(),
    )
