"""Deadline Alert callback: runs in the triggerer when a run has not finished in time.

Imported by path when DAG files are parsed (Airflow checks the callback is awaitable): keep it
light; the SMTP hook is imported when a deadline is missed.
"""

from __future__ import annotations

import asyncio
import html

from finflows import links


def _late_email(expected_minutes: float, context: dict) -> tuple[str, str]:
    run = context.get("dag_run") or {}
    dag_id, run_id = run.get("dag_id", "?"), run.get("dag_run_id", "?")
    link = links.run_url(links.base_url(), dag_id, run_id)
    subject = f"[finflows] LATE {dag_id} ({run_id}): not finished {expected_minutes:g} min after it was queued"
    body = (
        f"<p>Run <b>{html.escape(run_id)}</b> of <b>{html.escape(dag_id)}</b> was queued at "
        f"{html.escape(str(run.get('queued_at')))} and had not finished by its deadline "
        f"{html.escape(str((context.get('deadline') or {}).get('deadline_time')))} (expected duration "
        f"{expected_minutes:g} min, <code>FINFLOWS_DEADLINE_{dag_id.upper()}</code>).</p>"
        f'<p>State then: {html.escape(str(run.get("state")))}. <a href="{link}">The run in Airflow</a></p>'
    )
    return subject, body


FINISHED = frozenset({"success", "failed"})


async def deadline_missed(expected_minutes: float, context: dict | None = None) -> str:
    """Email the operations address that a run is late (the SMTP notifier's hook, off the event loop).

    Only a run still queued or running is late: a run that already finished (a failed run has had
    its own failure email) is not mailed about again."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from finflows import settings

    state = str(((context or {}).get("dag_run") or {}).get("state") or "").lower().rsplit(".", 1)[-1]
    if state in FINISHED:
        return f"not sent: the run had already finished ({state})"
    subject, body = _late_email(expected_minutes, context or {})

    def send() -> None:
        with SmtpHook(smtp_conn_id=settings.CONN_SMTP) as smtp:
            smtp.send_email_smtp(to=settings.ops_email(), subject=subject, html_content=body)

    await asyncio.to_thread(send)
    return subject
