"""Task bodies of bank_payments and bank_transfer_retry: connections, keys and hooks around
finflows.payments. Imported inside tasks only (it loads providers)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from finflows import banks, files, metrics, payments, settings
from finflows.task_support import (
    bad_input_fails_without_retry,
    fail_run_if_any,
    finance_db,
    label_mapped_task,
    nothing_upstream,
    s3_hook,
)

log = logging.getLogger(__name__)


def choose_banks(requested: list[str] | None) -> list[str]:
    """The enabled banks, or those a manual run asked for (each must be configured). A bank that is
    not configured, or a configuration that does not load, fails the task at once: no retry can
    fix it, and a run that cannot succeed must not hold the next one."""
    with bad_input_fails_without_retry(banks.BankConfigError):
        cfg = banks.load()
        chosen = [cfg.bank(b).id for b in requested] if requested else cfg.enabled
    log.info("banks to pay: %s", ", ".join(chosen) or "none")
    return chosen


@contextmanager
def bank_pgp(cfg: banks.BankConfig, bank: banks.Bank) -> Iterator:
    """Our key pair and the bank's public key (``PgpHook``: Airflow connections, each pinned to the
    fingerprint the bank configuration gives) in one throwaway keyring."""
    from finflows.hooks.pgp import PgpHook

    ours = PgpHook(cfg.originator.signing_key_conn_id, fingerprint=cfg.originator.signing_key_fingerprint)
    theirs = PgpHook(bank.pgp_key_conn_id, fingerprint=bank.pgp_key_fingerprint)
    with ours.session(theirs) as session:
        yield session


@contextmanager
def encrypter(cfg: banks.BankConfig, bank: banks.Bank) -> Iterator[payments.Encrypt]:
    """Encrypt to the bank's key and sign with ours."""
    with bank_pgp(cfg, bank) as session:
        yield lambda data: session.encrypt_and_sign(data, to=bank.pgp_key_conn_id)


def sftp(bank: banks.Bank, *, one_attempt: bool = False):
    """The bank's SFTP hook, every session within the bank's ``sftp_sessions`` across all DAGs and
    the monitor; ``one_attempt`` for health checks (no connect retries, a short wait for a slot)."""
    from finflows.hooks.sftp import BankSFTPHook

    return BankSFTPHook(
        ssh_conn_id=bank.sftp_conn_id,
        session_key=f"sftp:{bank.id}",
        session_limit=bank.sftp_sessions,
        limiter=lambda: finance_db().get_conn(),
        session_wait=30 if one_attempt else settings.bank_session_wait(),
        **({"conn_retry_attempts": 1} if one_attempt else {}),
    )


def pay_bank(bank_id: str) -> dict:
    run_id = label_mapped_task("bank", bank_id)
    cfg = banks.load()
    bank = cfg.bank(bank_id)
    with files.connect(finance_db()) as conn, encrypter(cfg, bank) as encrypt:
        result = payments.pay_bank(
            conn,
            cfg=cfg,
            bank_id=bank_id,
            now=None,
            run_id=run_id,
            s3_hook=s3_hook(),
            sftp_hook=sftp(bank),
            encrypt=encrypt,
            archive_bucket=settings.archive_bucket(),
            attempts=settings.bank_upload_attempts(),
            backoff=settings.bank_upload_backoff(),
            circuit=circuit_now(conn, bank_id),
        )
    _lineage(bank, result)
    return asdict(result)


def _lineage(bank: banks.Bank, result: payments.BankRun) -> None:
    """The bank's payments in, each file now on the bank's server out."""
    from finflows import lineage

    delivered = [d for d in result.deliveries if d["outcome"] in ("uploaded", "already_there")]
    if not delivered:
        return
    lineage.read(finance_db(), lineage.table(settings.CONN_FINANCE_DB, "pay.payment"))
    for d in delivered:
        path = f"{bank.upload_path.rstrip('/')}/{d['file_name']}"
        lineage.wrote(sftp(bank), lineage.remote_file(bank.sftp_conn_id, path))


def email_treasury(subject: str, body: str, also: list[str] | None = None, inline: list[str] | None = None) -> None:
    """HTML email to treasury (and ``also``); files in ``inline`` go in a multipart/related message,
    each with its file name as Content-ID for ``<img src="cid:NAME">``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=settings.CONN_SMTP) as smtp:
        smtp.send_email_smtp(
            to=(also or []) + settings.treasury_email(),
            subject=subject,
            html_content=body,
            files=inline,
            mime_subtype="related" if inline else "mixed",
        )


def summarise(bank_ids: list[str], outcomes: list[dict | None]) -> dict:
    """The treasury email; the run fails when a bank's task failed or anything needs a person."""
    nothing_upstream(bank_ids, "choose_banks")
    runs = [o for o in outcomes if o]
    failed = sorted(set(bank_ids) - {r["bank"] for r in runs})
    subject, body = payments.summary(runs)
    if failed:
        body += "<p><b>Failed banks (see their task logs):</b> " + ", ".join(failed) + "</p>"
        subject = subject.replace(" OK:", " PROBLEMS:")
    email_treasury(subject, body)
    log.info("%s", subject)
    sent = [d for r in runs for d in r["deliveries"] if d["outcome"] == "uploaded"]
    metrics.emit_outcomes("bank_payments", sent, len(failed), "payment_count")
    problems = [f"{r['bank']}: {p}" for r in runs for p in payments.BankRun(**r).problems]
    problems += [f"skipped {r['skipped_reason']}" for r in runs if r.get("left_pending")]
    fail_run_if_any(failed + problems, len(bank_ids), "bank")
    return {"banks": len(runs), "files": sum(1 for r in runs for d in r["deliveries"] if d["outcome"] == "uploaded")}


def retry_transfers(everything: bool) -> dict:
    """Work off the retry queue: deliver each waiting batch's archived file, or cancel it after its cutoff."""
    cfg = banks.load()
    now = dt.datetime.now(dt.UTC)
    done = []
    with files.connect(finance_db()) as conn:
        waiting = payments.waiting_transfers(conn, now, everything)
        log.info("%d queued transfer(s) to try", len(waiting))
        for batch_id, bank_id in waiting:
            d = payments.retry_one(
                conn,
                cfg=cfg,
                batch_id=batch_id,
                bank_id=bank_id,
                now=now,
                run_id=_run_id(),
                s3_hook=s3_hook(),
                sftp_hook=sftp(cfg.bank(bank_id)),
                attempts=settings.bank_upload_attempts(),
                backoff=settings.bank_upload_backoff(),
                limit=settings.bank_retry_limit(),
                circuit=circuit_now(conn, bank_id),
            )
            done.append(asdict(d) | {"bank": bank_id})
        queue = payments.retry_queue(conn)
    alert = payments.retry_queue_alert(queue, settings.bank_retry_queue_alert())
    if alert is not None:
        from finflows import emails

        log.warning("%s", alert.subject)
        emails.send(alert, to=settings.ops_email() + settings.treasury_email(), smtp_conn_id=settings.CONN_SMTP)
    by_bank: dict[str, dict] = {}
    for d in done:
        by_bank.setdefault(d.pop("bank"), {"deliveries": []})["deliveries"].append(d)
    runs = [{"bank": b, **v} for b, v in by_bank.items()]
    if runs:
        email_treasury(*payments.summary(runs, "[finflows] bank transfer retry"))
    gave_up = [f"{d['file_name']}: {d['outcome']}" for d in done if d["outcome"] in ("gave_up", "expired")]
    fail_run_if_any(gave_up, len(done), "queued transfer")
    return {
        "tried": len(done),
        "delivered": sum(1 for d in done if d["outcome"] in ("uploaded", "already_there")),
        "waiting": sum(n for _bank, n, _oldest in queue),
    }


def circuit_now(conn, bank_id: str):
    from finflows import health

    return health.circuit(conn, bank_id, dt.datetime.now(dt.UTC), settings.bank_circuit_half_open_after())


def _run_id() -> str:
    from airflow.sdk import get_current_context

    return get_current_context()["run_id"]


# ---------------------------------------------------------------------------- bank_reconciliation
@contextmanager
def decrypter(cfg: banks.BankConfig, bank: banks.Bank) -> Iterator:
    """Decrypt with our key and insist on the bank's signature (its pinned fingerprint)."""
    with bank_pgp(cfg, bank) as session:
        yield lambda data: session.decrypt_and_verify(data, signed_by=bank.pgp_key_conn_id)


def reconcile_bank(bank_id: str) -> dict:
    from finflows import reconciliation

    run_id = label_mapped_task("bank", bank_id)
    cfg = banks.load()
    bank = cfg.bank(bank_id)
    hook = sftp(bank)
    outcomes = []
    today = dt.datetime.now(payments.TAIPEI).date()
    with files.connect(finance_db()) as conn, decrypter(cfg, bank) as decrypt, hook.get_managed_conn() as client:
        names = reconciliation.candidates(client, bank)
        log.info(
            "%s: %d file(s) match %s in %s", bank_id, len(names), bank.reconciliation_file_pattern, bank.download_path
        )
        for name in names:
            with client.open(f"{bank.download_path.rstrip('/')}/{name}", "rb") as f:
                data = f.read()
            out = reconciliation.process_file(
                conn,
                bank=bank,
                name=name,
                data=data,
                decrypt=decrypt,
                s3_hook=s3_hook(),
                archive_bucket=settings.archive_bucket(),
                run_id=run_id,
                today=today,
            )
            outcomes.append(asdict(out))
        settled = reconciliation.settle_unreturned(conn, bank, today, run_id)
    return {"bank": bank_id, "files": outcomes, "settled_unreturned": len(settled)}


def reconciliation_summary(bank_ids: list[str], per_bank: list[dict | None]) -> dict:
    """Alert by email on quarantined files, unmatched lines, batches over 5% mismatched, and batches
    still unreconciled after their business day; the run fails on a quarantined file or a failed bank."""
    from finflows import reconciliation

    nothing_upstream(bank_ids, "choose_banks")
    per_bank = [b for b in per_bank if b]
    done = [o for b in per_bank for o in b["files"]]
    failed_banks = sorted(set(bank_ids) - {b["bank"] for b in per_bank})
    alerts = [a for o in done for a in o["alerts"]]
    with files.connect(finance_db()) as conn:
        alerts += reconciliation.unreconciled_batches(conn, dt.datetime.now(dt.UTC), settings.business_day_close())
    applied = [o for o in done if o["outcome"] == "applied"]
    quarantined_n = sum(o["outcome"] == "quarantined" for o in done)
    for o in applied:
        o["lines"] = o["settled"] + o["returned"] + o["unmatched"] + o["mismatch"] + o["duplicate"]
    metrics.emit_outcomes("bank_reconciliation", applied, quarantined_n + len(failed_banks), "lines")
    log.info(
        "%d file(s) applied, %d seen before, %d quarantined",
        len(applied),
        sum(o["outcome"] == "seen" for o in done),
        sum(o["outcome"] == "quarantined" for o in done),
    )
    if alerts or failed_banks:
        import html

        body = "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in alerts) + "</ul>"
        if failed_banks:
            body += f"<p>Banks whose check failed (see their task logs): {', '.join(failed_banks)}</p>"
        email_treasury(f"[finflows] bank reconciliation ALERT: {len(alerts)} item(s)", body, also=settings.ops_email())
    quarantined = [f"{o['bank']}/{o['file_name']}" for o in done if o["outcome"] == "quarantined"]
    fail_run_if_any(failed_banks + quarantined, len(done) + len(failed_banks), "file")
    return {"applied": len(applied), "alerts": len(alerts)}


# ---------------------------------------------------------------------------- bank_health
def check_bank(bank_id: str) -> dict:
    """One health check of the bank's SFTP server (one connection attempt), recorded; the circuit moves."""
    from finflows import health

    run_id = label_mapped_task("bank", bank_id)
    bank = banks.load().bank(bank_id)
    check = health.probe(sftp(bank, one_attempt=True), bank)
    now = dt.datetime.now(dt.UTC)
    with files.connect(finance_db()) as conn:
        transition = health.record(
            conn,
            check,
            now,
            run_id,
            failures_to_open=settings.bank_circuit_failures(),
            half_open_after=settings.bank_circuit_half_open_after(),
        )
        state = circuit_now(conn, bank_id)
    (log.info if check.ok else log.warning)(
        "%s: %s in %d ms%s; %s",
        bank_id,
        "ok" if check.ok else "FAILED",
        check.latency_ms,
        f" ({check.error})" if check.error else "",
        state.describe(payments.TAIPEI),
    )
    return asdict(check) | {"transition": transition, "circuit": state.describe(payments.TAIPEI)}


def health_summary(bank_ids: list[str], checks: list[dict | None]) -> dict:
    """Alert operations and treasury when a circuit opens or closes. A failed check is data, not a
    failed run: the run fails only when a check could not even be recorded."""
    import html

    nothing_upstream(bank_ids, "choose_banks")
    checks = [c for c in checks if c]
    moved = [c for c in checks if c["transition"] in ("opened", "closed")]
    if moved:
        what = {"opened": "OPEN: bank_payments skips this bank", "closed": "closed again: payments flow"}
        items = "".join(
            f"<li><b>{c['bank']}</b>: circuit {what[c['transition']]}. {html.escape(c['circuit'])}"
            f"{'; last check: ' + html.escape(c['error']) if c['error'] else ''}</li>"
            for c in moved
        )
        note = (
            "<p>Payments a skipped run left pending go out with the next bank_payments run; trigger it "
            "for the bank (param <code>banks</code>) to send them before today's cutoff.</p>"
        )
        names = ", ".join(f"{c['bank']} {c['transition']}" for c in moved)
        email_treasury(f"[finflows] bank circuit: {names}", f"<ul>{items}</ul>{note}", also=settings.ops_email())
    failed = sorted(set(bank_ids) - {c["bank"] for c in checks})
    fail_run_if_any(failed, len(bank_ids), "bank health check")
    return {
        "ok": sum(c["ok"] for c in checks),
        "failed": sum(not c["ok"] for c in checks),
        "transitions": {c["bank"]: c["transition"] for c in moved},
    }


# ---------------------------------------------------------------------------- finance_daily_report
def daily_report(day: str | None) -> dict:
    """The day's report emailed with its chart inline; report, chart, figures and the manifest of the
    day's files archived under ``finance-daily/DAY/``; the run fails if a processed file's archived
    copy is missing or differs."""
    import json
    import tempfile
    from pathlib import Path

    from finflows import daily_report as dr

    d = dt.date.fromisoformat(day) if day else dt.datetime.now(payments.TAIPEI).date()
    bucket = settings.archive_bucket()
    with files.connect(finance_db()) as conn:
        report = dr.gather(
            conn, d, banks.load().enabled, dt.datetime.now(dt.UTC), settings.bank_circuit_half_open_after()
        )
        listed = dr.manifest(conn, d)
    hook = s3_hook()
    missing = dr.verify_archive(hook, listed)
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
    client = hook.get_conn()
    for key, data, kind in (
        ("report.html", body.encode(), "text/html; charset=utf-8"),
        (name, png, "image/png"),
        ("totals.json", json.dumps(report.totals(), indent=1).encode(), "application/json"),
        (
            "manifest.json",
            json.dumps({"files": listed, "missing": missing}, indent=1, default=str).encode(),
            "application/json",
        ),
    ):
        client.put_object(Bucket=bucket, Key=prefix + key, Body=data, ContentType=kind)
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
