"""Notifiers (Airflow's ``BaseNotifier``) for task callbacks; light to import when a DAG is parsed.

``OperationsEmailNotifier``: the failure email every DAG sends (``finflows.emails``: the flow,
the file and what happened in the subject; the run link, the quarantined copy, the next step).
``SnsTopicNotifier``: the Amazon provider's ``SnsNotifier``, created only when it fires (the
provider's module loads boto3, which a DAG file must not import at parse time).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context


class OperationsEmailNotifier(BaseNotifier):
    """Email operations about a failed task.

    :param to: recipients; default ``FINFLOWS_OPS_EMAIL``.
    :param smtp_conn_id: default ``smtp_finflows``.
    """

    template_fields: Sequence[str] = ("to",)

    def __init__(self, *, to: list[str] | None = None, smtp_conn_id: str | None = None) -> None:
        super().__init__()
        self.to, self.smtp_conn_id = to, smtp_conn_id

    def notify(self, context: Context) -> None:
        from finflows import emails, links, settings

        ti = context["ti"]
        email = emails.failure_email(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=context["run_id"],
            map_index=getattr(ti, "map_index", None),
            try_number=getattr(ti, "try_number", None),
            exception=context.get("exception"),
            base_url=links.base_url(),
        )
        # the task's log ends with this, after the traceback: what happened and the next step in words
        logging.getLogger("finflows.failure").error("%s\n%s", email.subject, email.text)
        if not emails.worth_an_email(context.get("exception")):
            return
        emails.send(email, to=self.to or settings.ops_email(), smtp_conn_id=self.smtp_conn_id or settings.CONN_SMTP)


class SnsTopicNotifier(BaseNotifier):
    """Publish to an SNS topic through the Amazon provider's ``SnsNotifier`` (templated
    ``subject`` and ``message``), imported only when the callback runs.

    :param target_arn: the topic (or endpoint) ARN.
    :param subject: templated; SNS allows 100 characters.
    :param message: templated.
    :param aws_conn_id: default ``aws_finflows``.
    """

    template_fields: Sequence[str] = ("target_arn", "subject", "message")

    def __init__(self, *, target_arn: str, subject: str, message: str, aws_conn_id: str = "aws_finflows") -> None:
        super().__init__()
        self.target_arn, self.subject, self.message, self.aws_conn_id = target_arn, subject, message, aws_conn_id

    def notify(self, context: Context) -> None:
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        SnsNotifier(
            aws_conn_id=self.aws_conn_id, target_arn=self.target_arn, subject=self.subject[:100], message=self.message
        ).notify(context)
