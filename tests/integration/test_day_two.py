"""Day-two behaviour against the real stack: alerts that mean something, bad parameters that fail
at once, summaries that do not crash on a failed upstream."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.integration


def _context(state: str) -> dict:
    return {
        "dag_run": {
            "dag_id": "cashfile_import",
            "dag_run_id": f"manual__late-{state}",
            "state": state,
            "queued_at": "2026-12-01T11:02:00Z",
        },
        "deadline": {"deadline_time": "2026-12-01T11:32:00Z"},
    }


@pytest.mark.parametrize("state", ["running", "queued"])
def test_a_run_still_going_at_its_deadline_emails_operations(mailbox, state):
    from finflows.alerts import deadline_missed

    seen = mailbox.names()
    subject = asyncio.run(deadline_missed(30, _context(state)))
    mail = mailbox.wait_for(lambda m: f"manual__late-{state}" in m["Subject"], since=seen)
    assert mail["Subject"] == subject and "LATE cashfile_import" in subject


@pytest.mark.parametrize("state", ["failed", "success", "DagRunState.FAILED"])
def test_a_run_that_already_finished_sends_no_late_email(mailbox, state):
    from finflows.alerts import deadline_missed

    seen = mailbox.names()
    assert asyncio.run(deadline_missed(30, _context(state))).startswith("not sent: the run had already finished")
    asyncio.run(deadline_missed(30, _context("running")))  # a later email, to know the sink has caught up
    mailbox.wait_for(lambda m: "manual__late-running" in m["Subject"], since=seen)
    assert not [m for m in mailbox.messages(since=seen) if f"late-{state}" in m["Subject"]]


@pytest.mark.parametrize("requested", [["Mega "], ["mega", "nowhere"]])
def test_a_bank_that_is_not_configured_fails_at_once_without_retries(requested):
    from airflow.sdk.exceptions import AirflowFailException

    from finflows.flows.banking.common import choose_banks

    with pytest.raises(AirflowFailException, match=r"no bank '(Mega |nowhere)' in the configuration \(mega, ctbc"):
        choose_banks(requested)


@pytest.mark.parametrize(
    "summary",
    [
        "payments.summarise",
        "reconciliation.reconciliation_summary",
        "health.health_summary",
    ],
)
def test_a_summary_whose_upstream_failed_fails_cleanly_without_retries(summary):
    import importlib

    from airflow.sdk.exceptions import AirflowFailException

    module, name = summary.split(".")
    with pytest.raises(AirflowFailException, match="choose_banks failed"):
        getattr(importlib.import_module(f"finflows.flows.banking.tasks.{module}"), name)(None, [None])


def test_the_trigger_form_offers_the_configured_banks_only():
    from tests.helpers.dags import load_dag

    param = load_dag("bank_payments").params.get_param("banks")
    banks = ["mega", "ctbc", "esun", "first", "taishin"]
    assert param.schema["items"]["enum"] == param.schema["examples"] == ["all", *banks]  # a pick list
    assert param.value == ["all"] and param.schema["minItems"] == 1  # every bank is a choice, never an empty field
    from airflow.sdk.exceptions import ParamValidationError

    for refused in ([], ["nobank"], ["mega", "mega"]):
        with pytest.raises(ParamValidationError):
            param.resolve(refused)


def test_every_bank_is_paid_only_when_chosen():
    from airflow.sdk.exceptions import AirflowFailException

    from finflows.flows.banking import banks
    from finflows.flows.banking.common import choose_banks

    enabled = banks.load().enabled
    assert choose_banks(["all"]) == enabled and choose_banks(None) == enabled  # the schedule's choice
    assert choose_banks(["esun", "mega"]) == ["esun", "mega"]
    with pytest.raises(AirflowFailException, match="no bank chosen: choose 'all' or the banks to pay"):
        choose_banks([])
    with pytest.raises(AirflowFailException, match="'all' or named banks, not both"):
        choose_banks(["all", "mega"])
