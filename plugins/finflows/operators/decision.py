"""``MoneyDecisionOperator``: one decision a person makes about money, as an Airflow Required Action.

Mapped by treasury_decisions over the questions its first task reserved
(``finflows.flows.banking.decisions``)::

    MoneyDecisionOperator.partial(task_id="decide", map_index_template=LABEL).expand(
        question=ask()
    )

Each task shows one question (an uncertain delivery, a held duplicate, a given-up batch, an
attention-list row) in Browse → Required Actions, with what is known, the amounts, the deadline in
Asia/Taipei and the choices; it is assigned to ``FINFLOWS_PAYMENT_APPROVERS`` less the batch's maker
or the user whose run held the payment (Airflow refuses anyone else with 403; the code and the
database refuse the maker whatever asks). The answer goes through the same functions as the finance
monitor's API; who, when and what are kept on the batch or payment and on the request row.

- answered: carried out; the XCom says what was decided, by whom and when (references only);
- decided meanwhile through the API (or no longer waiting): nothing is done, said in the log;
- refused (the maker, or a rule of the decision): the task fails, red in the grid, and the
  question is asked again by a later run;
- unanswered after ``decisions.ASK_FOR``: closed, and asked again by a later run (a new entry).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from finflows import settings

log = logging.getLogger(__name__)

NOTE = "note"
# the map index Airflow shows (Required Actions, the grid): rendered from the task's own field before
# it waits, so the list names the bank and the question, not "0"; the same words as Question.label
LABEL = "{{ task.question.bank or 'all' }} · {{ task.question.kind | replace('_', ' ') }} · {{ task.question.subject }}"


class MoneyDecisionOperator(HITLOperator):
    """Ask a person (never the maker) to decide one question about money.

    :param question: a ``decisions.Question`` as a dict (usually mapped from the ask task's XCom).
    :param approvers: Airflow user ids who may answer (default ``FINFLOWS_PAYMENT_APPROVERS``).
    :param postgres_conn_id: the finance database (default ``postgres_finance``).
    """

    template_fields: Sequence[str] = ("question",)
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        question: Any,
        approvers: list[str] | None = None,
        postgres_conn_id: str = settings.CONN_FINANCE_DB,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("response_timeout", dt.timedelta(hours=4))  # decisions.ASK_FOR, set in execute
        params = {
            NOTE: Param(
                "",
                type=["string", "null"],
                maxLength=500,
                title="Note",
                description="What the bank said, a ticket number, what was fixed (no payee details); kept with the answer",
            )
        }
        # options are the question's, set in execute; one placeholder here for the operator's own checks
        super().__init__(subject="Money decision", options=["Decide"], params=params, **kwargs)
        self.question = question
        self.approvers = approvers
        self.postgres_conn_id = postgres_conn_id

    def _question(self, context: Any):
        from finflows.flows.banking.decisions import Question

        return Question.from_dict(self.question)

    def _db(self):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        from finflows import files

        return files.connect(PostgresHook(postgres_conn_id=self.postgres_conn_id))

    def execute(self, context: Any):
        from finflows.flows.banking import approval, banks, decisions

        q = self._question(context)
        run_id, now = context["run_id"], dt.datetime.now(dt.UTC)
        with self._db() as conn:
            if not decisions.still_open(conn, banks.load(), q, now):
                decisions.close(conn, q, run_id, "decided_elsewhere")
                log.info("%s: decided meanwhile (the finance monitor's API), nothing to ask", q.label)
                return {"question": q.label, "decision": "decided_elsewhere"}
            may = approval.eligible(self._approvers(), set(q.barred), None)
            if not may:
                decisions.close(conn, q, run_id, "refused", note="no approver other than its maker")
                raise settings.ApproverConfigError(
                    f"{q.label}: no approver other than {', '.join(q.barred)}: set FINFLOWS_PAYMENT_APPROVERS"
                )
        self.params = self._own_params()
        self.options, self.subject, self.body = list(q.options), q.subject_line(), q.body(may)
        self.assigned_users = [{"id": u, "name": u} for u in may]
        self.response_timeout = decisions.ASK_FOR
        log.warning("%s: waiting for one of %s (not %s) until %s", q.label, ", ".join(may),
                    ", ".join(q.barred) or "-", q.when())  # fmt: skip
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from finflows.flows.banking import decisions, delivery

        q = self._question(context)
        run_id = context["run_id"]
        if "error" in event:  # the scheduler's sweep: unanswered; a later run asks again
            with self._db() as conn:
                decisions.close(conn, q, run_id, "unanswered")
            log.warning("%s: unanswered after %s; asked again by a later run", q.label, decisions.ASK_FOR)
            return {"question": q.label, "decision": "unanswered"}
        self.params = self._own_params()
        self.options = list(q.options)
        answer = super().execute_complete(context, event)
        chosen = answer["chosen_options"][0]
        by = str((answer.get("responded_by_user") or {}).get("id") or "")
        note = str((answer.get("params_input") or {}).get(NOTE) or "").strip()
        with self._db() as conn:
            try:
                if by in q.barred:  # Airflow checks the assigned users; this holds whatever auth manager runs
                    raise delivery.FourEyesRefused(f"{by} made or held what {q.label} is about and may not decide it")
                result = decisions.apply(conn, q, chosen, by=by, note=note)
            except delivery.FourEyesRefused as e:
                decisions.close(conn, q, run_id, "refused", by=by, answer=chosen, note=str(e))
                raise
            except (delivery.DecisionRefused, LookupError) as e:
                decisions.close(conn, q, run_id, "decided_elsewhere", by=by, answer=chosen, note=str(e))
                log.warning("%s: %s answered %r, but: %s", q.label, by, chosen, e)
                return {"question": q.label, "decision": "decided_elsewhere", "by": by, "answer": chosen}
            decisions.close(conn, q, run_id, "answered", by=by, answer=chosen, note=note)
        at = answer["responded_at"]
        log.warning("%s: %s chose %r at %s", q.label, by, chosen, at.isoformat())
        return {"question": q.label, "decision": chosen, "by": by, "at": at.isoformat(), "note": note,
                "result": {k: v for k, v in result.items() if k != "note"}}  # fmt: skip

    def _approvers(self) -> list[str]:
        return list(self.approvers) if self.approvers else settings.payment_approvers()

    def _own_params(self):
        """Only the note: at run time Airflow merges the DAG's params into the task's."""
        from airflow.sdk.definitions.param import ParamsDict

        return ParamsDict({NOTE: self.params.get_param(NOTE)})
