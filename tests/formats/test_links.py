"""Links into the Airflow UI, one way everywhere (emails, alerts, the monitor)."""

from __future__ import annotations

from finflows import links


def test_run_task_and_required_actions_links_quote_what_airflow_quotes(monkeypatch):
    base = "https://airflow.example.org/"
    run = "scheduled__2026-11-23T06:00:00+08:00"
    assert links.run_url(base, "bank_payments", run) == (
        "https://airflow.example.org/dags/bank_payments/runs/scheduled__2026-11-23T06%3A00%3A00%2B08%3A00"
    )
    assert links.task_url(base, "bank_payments", run, "bank.upload", 2).endswith("/tasks/bank.upload/mapped/2")
    assert links.task_url(base, "bank_payments", run, "summarise", -1).endswith("/tasks/summarise")
    assert links.required_actions_url(base, "bank_payments", run, "bank.approve", 0).endswith(
        "/tasks/bank.approve/mapped/0/required_actions"
    )
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://public.example/")
    assert links.base_url() == "https://public.example"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    assert links.base_url(default="http://127.0.0.1:9") == "http://127.0.0.1:9"  # none configured: the default
