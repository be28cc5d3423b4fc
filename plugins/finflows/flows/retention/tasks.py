"""Task bodies of the retention DAG: hooks from Airflow connections around
finflows.flows.retention.retention."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from finflows import files, settings
from finflows.flows.retention import policy, retention
from finflows.task_support import finance_db, label_mapped_task, s3_hook

log = logging.getLogger(__name__)


def expire(kind: str) -> dict[str, Any]:
    """One kind past its age: exported to the archive bucket, then removed (or emptied)."""
    run_id = label_mapped_task("kind", kind)
    with files.connect(finance_db()) as conn:
        out = retention.expire(
            conn,
            s3_hook(),
            settings.archive_bucket(),
            policy.load(),
            kind,
            now=dt.datetime.now(dt.UTC),
            run_id=run_id,
        )
    return {
        "kind": out.kind,
        "cutoff": out.cutoff,
        "rows_exported": out.rows_exported,
        "rows_removed": out.rows_removed,
        "batches": out.batches,
        "archive": out.prefix,
    }
