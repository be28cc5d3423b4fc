"""``PaymentApprovalOperator``: bank_payments' approve step, a second person before money moves.

An Airflow human-in-the-loop task (``HITLOperator`` of the standard provider), answered in the
Airflow UI (Browse → Required Actions) or through its REST API
(``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/{map_index}/hitlDetails``)::

    PaymentApprovalOperator(task_id="approve", bank_id="mega")

For one bank (``include/banking/banks.yaml``), between prepare (batched, encrypted, archived) and
upload:

- Nothing waits for approval (the bank's ``approval`` is ``none``, or no batch is over its
  ``above`` threshold, or nothing was batched): it returns at once, ``decision: nothing``.
- Otherwise the batches are shown (``finflows.flows.banking.approval.Request``: per file the
  processing date, count and total; the ten largest payments by reference and amount; held
  duplicates; the time to answer by), assigned to ``FINFLOWS_PAYMENT_APPROVERS`` (users, or
  ``role:NAME``) **less the user who triggered the run and every maker of the batches shown**
  (Airflow refuses anyone else with 403; the database refuses a maker's approval whatever asks),
  and the task waits in
  ``awaiting_input``; Airflow's scheduler ends the wait at the bank's cutoff less
  ``FINFLOWS_APPROVAL_MARGIN_MINUTES`` (or ``FINFLOWS_APPROVAL_MAX_WAIT_MINUTES``, if sooner).
- **Approve**: exactly the batches shown are approved, with who and when, on the batch and in
  ``pay.batch_event``; the upload step sends them.
- **Reject** (with the reason in the form), or no answer in time: the batches are cancelled,
  their payments wait for the next business day, treasury is emailed; the run is red.

The XCom is the decision ({decision, by, at, note, batches, cancelled}), never payee data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from finflows import settings

log = logging.getLogger(__name__)

APPROVE, REJECT = "Approve", "Reject"
# a placeholder until execute knows the bank's cutoff; set here so that HITLOperator does not take
# the DAG's execution_timeout for the human's wait
_UNTIL_EXECUTE = dt.timedelta(hours=24)


class PaymentApprovalOperator(HITLOperator):
    """Ask a second person to approve a bank's prepared payment files before they are uploaded.

    :param bank_id: the bank, as configured in ``include/banking/banks.yaml`` (templated; usually
        mapped). Its ``approval`` policy and cutoff come from there.
    :param approvers: Airflow user ids who may answer (default ``FINFLOWS_PAYMENT_APPROVERS``);
        the run's triggering user is always taken out.
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    """

    template_fields: Sequence[str] = ("bank_id",)
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        bank_id: str,
        approvers: list[str] | None = None,
        postgres_conn_id: str = settings.CONN_FINANCE_DB,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("response_timeout", _UNTIL_EXECUTE)
        params = dict(kwargs.pop("params", None) or {})  # the DAG's own are left out by HITLOperator
        params["reason"] = Param(
            "",
            type=["string", "null"],
            maxLength=500,
            title="Reason (needed to reject)",
            description="Why these files must not go out; emailed to treasury and kept on the batch",
        )
        super().__init__(
            subject="Approve payment files", options=[APPROVE, REJECT], multiple=False, params=params, **kwargs
        )
        self.bank_id = bank_id
        self.approvers = approvers
        self.postgres_conn_id = postgres_conn_id

    # ------------------------------------------------------------------ asking
    def execute(self, context: Any):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows import files
        from finflows.flows.banking import approval, banks
        from finflows.task_support import bad_input_fails_without_retry

        context["bank"] = self.bank_id
        with bad_input_fails_without_retry(banks.BankConfigError):
            bank = banks.load().bank(self.bank_id)
        now = dt.datetime.now(dt.UTC)
        ti = context["task_instance"]
        with files.connect(PostgresHook(postgres_conn_id=self.postgres_conn_id)) as conn:
            req = approval.request(
                conn,
                bank,
                request_id=self._request_id(context),
                run_id=context["run_id"],
                now=now,
                margin=settings.approval_margin(),
                max_wait=settings.approval_max_wait(),
            )
            if req is None:
                log.info("%s: no payment file waits for approval", bank.id)
                return {"bank": bank.id, "decision": "nothing", "batches": [], "cancelled": []}
            who_triggered = self._triggered_by(context)
            approvers = approval.eligible(self._approvers(), req.makers, who_triggered)
            if not approvers:
                barred = sorted(req.makers | ({who_triggered} if who_triggered else set()))
                refusal = (
                    "no approver is configured other than the users who made these files or triggered this run "
                    f"({', '.join(barred) or 'none: scheduled'}): set FINFLOWS_PAYMENT_APPROVERS"
                )
                return self._refuse(conn, bank, req.request_id, "expired", None, refusal, context, asked=False)
            if req.deadline <= now:
                refusal = (
                    f"too late to ask: the answer was due by {req.deadline.astimezone(settings.TAIPEI):%H:%M} Taipei"
                )
                return self._refuse(conn, bank, req.request_id, "expired", None, refusal, context, asked=False)
        self._show(req, approvers, who_triggered, now)
        ti.xcom_push(key="request", value=req.as_dict())
        return super().execute(context)

    def _show(self, req: Any, approvers: list[str], who_triggered: str | None, now: dt.datetime) -> None:
        """The form: what is asked, who may answer and why anyone else is refused, until when."""
        self._own_params()
        barred = sorted(req.makers | ({who_triggered} if who_triggered else set()))
        # Airflow answers anyone else with "Access Denied" and no reason: the form says who and why
        self.subject, self.body = (
            req.subject,
            (
                f"{req.body}\n\n**Who may answer:** {', '.join(approvers)}; not "
                f"{', '.join(barred) or 'nobody else'} (who triggered this run or made these files: four eyes). "
                "Anyone else who answers is refused by Airflow (Access Denied)."
            ),
        )
        self.assigned_users = [{"id": u, "name": u} for u in approvers]
        self.response_timeout = req.deadline - now
        log.warning(
            "%s: waiting for one of %s (not %s) until %s",
            req.bank,
            ", ".join(approvers),
            who_triggered or "a scheduled run's trigger",
            req.deadline.isoformat(),
        )

    # ------------------------------------------------------------------ the answer
    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows import files
        from finflows.flows.banking import approval, banks

        context["bank"] = self.bank_id
        bank = banks.load().bank(self.bank_id)
        request_id = self._request_id(context)
        with files.connect(PostgresHook(postgres_conn_id=self.postgres_conn_id)) as conn:
            if "error" in event:  # the scheduler's sweep: no answer by the deadline
                return self._refuse(conn, bank, request_id, "expired", None, "no answer by the deadline", context)
            self._own_params()
            answer = super().execute_complete(context, event)
            chosen = answer["chosen_options"][0]
            user = answer.get("responded_by_user") or {}
            by = str(user.get("id") or "")
            note = str((answer.get("params_input") or {}).get("reason") or "").strip()
            who_triggered = self._triggered_by(context)
            allowed = approval.eligible(self._approvers(), approval.makers(conn, request_id), who_triggered)
            if by not in allowed:  # Airflow checks the assigned users; this holds whatever auth manager runs
                why = f"answered by {by or 'nobody'}, who may not approve this run"
                return self._refuse(conn, bank, request_id, "expired", None, why, context)
            at = answer["responded_at"]
            if chosen == REJECT:
                return self._refuse(conn, bank, request_id, "rejected", by, note or "no reason given", context)
            ids = approval.approve(conn, request_id, by=by, at=at, run_id=context["run_id"], note=note)
        return {"bank": bank.id, "decision": "approved", "by": by, "at": at.isoformat(), "note": note,
                "batches": ids, "cancelled": []}  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _approvers(self) -> list[str]:
        return list(self.approvers) if self.approvers else settings.payment_approvers()

    def _refuse(
        self,
        conn,
        bank,
        request_id: str,
        outcome: str,
        by: str | None,
        note: str,
        context: Any,
        asked: bool = True,
    ) -> dict:
        from finflows import emails
        from finflows.flows.banking import approval

        at = dt.datetime.now(dt.UTC)
        cancelled = approval.refuse(
            conn, bank, request_id, outcome=outcome, by=by, at=at, run_id=context["run_id"], note=note
        )
        link = ""
        with contextlib.suppress(ValueError, KeyError):  # no [api] base_url: the email goes without it
            link = self.generate_link_to_ui_from_context(context=context)
        mail = approval.refusal_email(bank.id, outcome, by, note, cancelled, link, asked=asked)
        log.error("%s", mail.subject)
        if cancelled:
            emails.send(mail, to=settings.treasury_email(), smtp_conn_id=settings.CONN_SMTP)
        return {"bank": bank.id, "decision": outcome, "by": by, "at": at.isoformat(), "note": note,
                "batches": [d["batch_id"] for d in cancelled], "cancelled": cancelled}  # fmt: skip

    def _own_params(self) -> None:
        """The form asks for the reason only: at run time Airflow merges the DAG's params (``banks``)
        into the task's, which the form must not show and the answer cannot match."""
        from airflow.sdk.definitions.param import ParamsDict

        self.params = ParamsDict({"reason": self.params.get_param("reason")})

    @staticmethod
    def _request_id(context: Any) -> str:
        ti = context["task_instance"]
        return f"{ti.run_id}/{ti.task_id}/{ti.map_index}"

    @staticmethod
    def _triggered_by(context: Any) -> str | None:
        run = context.get("dag_run")
        return getattr(run, "triggering_user_name", None) or None
