"""Operations emails, written for the finance people who act on them.

A subject that says which flow, which file and what happened; a plain-text part first (what a
mail client shows in a preview, a ticket system stores, a phone reads) and the same words as HTML
beside it; the link to the run; where the quarantined copy and its error report are; the next step.

Building a message is pure (tested without Airflow); ``send`` goes through the provider's
``SmtpHook`` and its connection.
"""

from __future__ import annotations

import html
import re
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from finflows import files, links


@dataclass(frozen=True)
class Email:
    subject: str
    lines: tuple[str, ...]  # paragraphs; "Label: http…" lines become links in the HTML part

    @property
    def text(self) -> str:
        return "\n\n".join(self.lines) + "\n"

    @property
    def html(self) -> str:
        out = []
        for line in self.lines:
            label, sep, rest = line.partition(": ")
            if sep and rest.startswith(("http://", "https://")):
                out.append(f'<p>{html.escape(label)}: <a href="{html.escape(rest)}">{html.escape(rest)}</a></p>')
            else:
                out.append("<p>" + html.escape(line).replace("\n", "<br>\n") + "</p>")
        return "\n".join(out)

    def message(self, *, sender: str, to: Iterable[str]) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = header_safe(self.subject)
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="finflows")
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        return msg


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_safe(text: str) -> str:
    """A subject line that cannot break the message: a line break or any other control character
    (from a file name a counterparty chose, say) is shown escaped, never sent raw."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def worth_an_email(exception: BaseException | str | None) -> bool:
    """Whether a failed task's email says something new: not for a file asked for again after it
    was quarantined (a Clear of its task), whose rejection was emailed when it was quarantined."""
    rejection = files.rejection_of(exception)
    return rejection is None or rejection.rule != files.Refusal.ALREADY_QUARANTINED


def failure_email(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int | None,
    try_number: int | None,
    exception: BaseException | str | None,  # Airflow passes a string when the task was killed from outside
    base_url: str,
) -> Email:
    """The email for a failed task. A rejected file (``files.FileRejected``: the task's exception,
    or the one it was raised from) is named in the subject with its outcome and told from start to
    end: what was wrong and by which rule, where the copy and report are, what to do."""
    rejection = files.rejection_of(exception)
    run = links.run_url(base_url, dag_id, run_id)
    task = links.task_url(base_url, dag_id, run_id, task_id, map_index)
    if rejection is not None:
        loaded = f"nothing of it was {rejection.nothing}"  # the flow's own word (InboxFlow.nothing)
        where = f" and quarantined at {rejection.quarantined}" if rejection.quarantined else ""
        lines = [
            f"{dag_id} rejected the file {rejection.file_name}{where}; {loaded}.",
            f"What was wrong (rule {rejection.rule}):\n{_first_lines(str(rejection))}",
        ]
        if rejection.report:
            lines.append(f"Error report (every line, field and value): {rejection.report}")
        lines += [
            f"Next step: {rejection.next_step}",
            f"The run: {run}",
            f"The task's log: {task}",
        ]
        return Email(f"[finflows] {dag_id}: {rejection.file_name} {rejection.outcome}", tuple(lines))
    tries = f" (try {try_number})" if try_number else ""
    lines = [
        f"The task {task_id} of {dag_id} failed{tries} in run {run_id}.",
        f"Error:\n{_first_lines(str(exception)) if exception else '(no error was passed to the callback)'}",
        "Next step: read the task's log. A failure of a server or a network is retried by Airflow before "
        "this email is sent; once the cause is fixed, clear the task in the run to run it again.",
        f"The run: {run}",
        f"The task's log: {task}",
    ]
    return Email(f"[finflows] FAILED {dag_id}.{task_id} ({run_id})", tuple(lines))


def _first_lines(text: str, limit: int = 40) -> str:
    lines = text.strip().splitlines()
    more = f"\n… {len(lines) - limit} more line(s) in the report" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def send(email: Email, *, to: Iterable[str], smtp_conn_id: str) -> None:
    """Send through the provider's SmtpHook (its connection, TLS and retry settings). The hook builds
    HTML-only messages, so the multipart/alternative message is built here and given to its client."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.sdk.configuration import conf

    to = list(to)
    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        sender = hook.from_email or conf.get("email", "from_email", fallback=None) or "finflows@localhost"
        client = hook._smtp_client  # the provider's connected smtplib client (it has no send-message API)
        if not isinstance(client, smtplib.SMTP):
            raise TypeError(
                f"connection {smtp_conn_id}: the SMTP hook gave no smtplib client ({type(client).__name__})"
            )
        client.send_message(email.message(sender=sender, to=to), to_addrs=to)
