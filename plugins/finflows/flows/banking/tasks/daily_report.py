"""Task body of finance_daily_report. Imported inside tasks only."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from finflows import files, settings
from finflows.flows.banking import banks, keys
from finflows.flows.banking.common import alert_attention, email_treasury, own_decrypter
from finflows.seams import OpenOwn, S3Hook
from finflows.task_support import (
    fail_run_if_any,
    finance_db,
    s3_hook,
)

if TYPE_CHECKING:
    from finflows.flows.banking.daily_report import Report


log = logging.getLogger(__name__)


def _gather(d: dt.date) -> tuple[Report, list[dict[str, Any]]]:
    """The day's report (with keys and certificates about to expire among its problems) and the
    manifest of the day's files."""
    from finflows import expiry
    from finflows.flows.banking import daily_report as dr
    from finflows.flows.banking import expiry as banking_expiry

    with files.connect(finance_db()) as conn:
        report = dr.gather(
            conn, d, banks.load().enabled, dt.datetime.now(dt.UTC), settings.bank_circuit_half_open_after()
        )
        listed = dr.manifest(conn, d)
    cfg = banks.load()
    report.problems += expiry.warnings(expiry.watched(cfg=cfg), dt.datetime.now(dt.UTC), settings.expiry_warn_days())
    report.problems += banking_expiry.window_warnings(cfg, dt.datetime.now(dt.UTC).date(), settings.expiry_warn_days())
    try:
        report.problems += keys.host_key_warnings(
            cfg, dt.datetime.now(settings.TAIPEI).date(), settings.expiry_warn_days()
        )
    except Exception as e:  # an unreadable pin is a problem to report, not a reason to send no report
        report.problems.append(f"SFTP host keys could not be read: {e}")
    return report, listed


def _attention(hook: S3Hook, open_own: OpenOwn) -> list[str]:
    """Every money invariant, the archive's included; the attention list in words (new rows alerted
    at once, as bank_health does)."""
    from finflows.flows.banking import invariants
    from finflows.flows.banking.sent_records import SentRecords

    cfg = banks.load()
    records = SentRecords(hook.get_conn(), settings.archive_bucket(), settings.sent_record_window_days())
    with files.connect(finance_db()) as conn:
        result = invariants.check(conn, cfg, everything=True, records=records, s3_hook=hook, open_own=open_own)
        alert_attention(invariants.sync(conn, result))
        return invariants.describe(invariants.open_rows(conn))


def _archive(hook: S3Hook, bucket: str, prefix: str, items: Iterable[tuple[str, bytes, str]]) -> None:
    """Each (name, bytes, content type) under ``prefix`` in the archive bucket."""
    client = hook.get_conn()
    for key, data, kind in items:
        client.put_object(Bucket=bucket, Key=prefix + key, Body=data, ContentType=kind)


def daily_report(day: str | None) -> dict[str, Any]:
    """The day's report emailed with its chart inline; report, chart, figures and the manifest of the
    day's files archived under ``finance-daily/DAY/``; the run fails if a processed file's archived
    copy is missing or differs."""
    import json
    import tempfile
    from pathlib import Path

    from finflows.flows.banking import daily_report as dr

    d = dt.date.fromisoformat(day) if day else dt.datetime.now(settings.TAIPEI).date()
    bucket = settings.archive_bucket()
    report, listed = _gather(d)
    hook = s3_hook()
    with own_decrypter(banks.load()) as open_own:  # finance's own copy of what it sent, checked
        missing, report.attention = dr.verify_archive(hook, listed, open_own), _attention(hook, open_own)
    prefix = f"finance-daily/{d}/"
    png, name = dr.chart(report), dr.CHART_NAME.format(day=d)
    subject, body = dr.render(
        report,
        name,
        {
            "files": len(listed),
            "verified": len(listed) - len(missing),
            "missing": missing,
            "prefix": f"s3://{bucket}/{prefix}",
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(png)
        email_treasury(subject, body, also=settings.ops_email(), inline=[str(Path(tmp) / name)])
    _archive(
        hook,
        bucket,
        prefix,
        (
            ("report.html", body.encode(), "text/html; charset=utf-8"),
            (name, png, "image/png"),
            ("totals.json", json.dumps(report.totals(), indent=1).encode(), "application/json"),
            (
                "manifest.json",
                json.dumps({"files": listed, "missing": missing}, indent=1, default=str).encode(),
                "application/json",
            ),
        ),
    )
    log.info("%s", subject)
    log.info("archived report and manifest of %d file(s) to s3://%s/%s", len(listed), bucket, prefix)
    fail_run_if_any(missing, len(listed), "archived file")
    t = report.total
    return {
        "day": d.isoformat(),
        "files_sent": t.files_sent,
        "ntd_sent": int(t.ntd_sent),
        "problems": len(report.problems),
    }
