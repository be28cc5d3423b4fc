"""The deadline email's wording from the context the scheduler gives the triggerer (no Airflow needed)."""

from __future__ import annotations

from finflows.alerts import _late_email


def test_the_late_email_names_the_run_its_deadline_and_links_to_it(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    context = {
        "dag_run": {
            "dag_id": "bank_payments",
            "dag_run_id": "scheduled__2026-11-23T06:00:00+08:00",
            "queued_at": "2026-11-22T22:00:01Z",
            "state": "running",
        },
        "deadline": {"id": "x", "deadline_time": "2026-11-22T22:45:01Z"},
    }
    subject, body = _late_email(45, context)
    assert subject == (
        "[finflows] LATE bank_payments (scheduled__2026-11-23T06:00:00+08:00): not finished 45 min after it was queued"
    )
    assert "2026-11-22T22:45:01Z" in body and "FINFLOWS_DEADLINE_BANK_PAYMENTS" in body and "running" in body
    assert (
        'href="https://airflow.example.org/dags/bank_payments/runs/scheduled__2026-11-23T06%3A00%3A00%2B08%3A00"'
        in body
    )
