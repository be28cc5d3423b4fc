"""Task bodies of the cashfile_import DAG: hooks from Airflow connections around finflows.flows.cashfile_import.cashfile."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from finflows import files, metrics, settings
from finflows.flows.cashfile_import import cashfile
from finflows.flows.cashfile_import.cashfile import Status
from finflows.task_support import (
    delivered_messages,
    fail_run_if_any,
    failed_keys,
    finance_db,
    s3_hook,
)

log = logging.getLogger(__name__)


def drop_name_ok(name: str) -> bool:
    """A plain file name: no directory part, not ``.``/``..``, no control character."""
    return (
        bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\\" not in name
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )


def pull_sftp_drop() -> int:
    """Each ``.dat`` file in the SFTP drop copied into the inbox, then removed from the drop (only
    once its object is in S3). Through the providers' hooks: SFTPToS3Operator would do the same
    copy, but as an operator it is a task of its own, and importing it loads boto3 when the DAG is
    parsed."""
    import tempfile
    from pathlib import Path

    drop = settings.get("CASHFILE_SFTP_DROP")
    if not drop:
        log.info("no SFTP drop configured (FINFLOWS_CASHFILE_SFTP_DROP); files arrive in S3 directly")
        return 0
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    sftp, s3, bucket = SFTPHook(ssh_conn_id=settings.CONN_SFTP_CIVICAPAY), s3_hook(), settings.cashfile_bucket()
    moved, refused, limit = 0, [], settings.intake_limit("CASHFILE")
    for name in sorted(sftp.list_directory(drop)):
        if not name.lower().endswith(".dat"):
            continue
        if not drop_name_ok(name):  # a name from the server never leaves the drop or our temp directory
            log.error("sftp:%s/%r: not a plain file name (a path, or control characters): left there", drop, name)
            continue
        with sftp.get_managed_conn() as client:
            size = client.stat(f"{drop}/{name}").st_size or 0
        if size > limit.bytes:  # left in the drop for a person; never read
            log.error(
                "sftp:%s/%s is %s bytes, over %s (%s): left there, not read",
                drop,
                name,
                f"{size:,}",
                limit.setting,
                f"{limit.bytes:,}",
            )
            refused.append(name)
            continue
        with tempfile.TemporaryDirectory(prefix="drop-") as tmp:
            local = Path(tmp) / name
            sftp.retrieve_file(f"{drop}/{name}", str(local))
            s3.load_file(str(local), key=f"{cashfile.PREFIX}{name}", bucket_name=bucket, replace=True)
        sftp.delete_file(f"{drop}/{name}")  # only after the object is in S3
        moved += 1
    log.info("moved %d file(s) from sftp:%s into the inbox", moved, drop)
    if refused:
        raise ValueError(f"over {limit.setting} in sftp:{drop}, left there: {', '.join(refused)}")
    return moved


def find_files(context: dict[str, Any]) -> list[str]:
    event_keys = [k for m in delivered_messages(context) for k in cashfile.keys_from_message(m.get("Body", ""))]
    bucket = settings.cashfile_bucket()
    with files.connect(finance_db()) as conn:
        # an event re-delivered for a file imported already, and (a cleared run) the files this run
        # imported before: listed, so each reports itself as already imported
        imported = cashfile.imported_names(conn, event_keys) if event_keys else set()
        before = files.processed_by_run(conn, cashfile.FLOW, context["run_id"], bucket)
    keys = sorted(set(cashfile.discover(s3_hook(), bucket, event_keys, imported)) | set(before))
    log.info("%d cash file(s) waiting: %s", len(keys), ", ".join(keys) or "none")
    return keys


def summarise(keys: list[str], outcomes: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Totals of the run. A file whose import failed has no outcome; if any did, the run fails
    (after logging what did succeed) so the DAG run is red and the failure email names it."""
    done = [o for o in outcomes if o]
    failed = failed_keys(keys, outcomes)
    total = sum((Decimal(o["total"]) for o in done if o["status"] == Status.IMPORTED), Decimal(0))
    summary = {
        "files": len(done),
        "imported": sum(o["status"] == Status.IMPORTED for o in done),
        "duplicates": sum(o["status"] == Status.DUPLICATE for o in done),
        "payments": sum(o["payments"] for o in done if o["status"] == Status.IMPORTED),
        "suspense": sum(o["suspense"] for o in done if o["status"] == Status.IMPORTED),
        "total": str(total),
        "failed": len(failed),
    }
    for o in done:
        log.info(
            "%-16s %-24s %6d payments %4d suspense total %s",
            o["status"],
            o["file_name"],
            o["payments"],
            o["suspense"],
            o["total"],
        )
    log.info("cashfile_import: %s", summary)
    metrics.emit_outcomes("cashfile_import", [o for o in done if o["status"] == Status.IMPORTED], len(failed), "lines")
    fail_run_if_any(failed, len(keys), "cash file")
    return summary
