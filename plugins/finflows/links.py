"""Links into the Airflow UI, built one way for every email, alert and monitor page: a run, one of
its tasks (mapped or not), and a task's Required Actions. Light: imports nothing of Airflow's
unless asked for the configured base URL."""

from __future__ import annotations

from urllib.parse import quote

LOCAL = "http://localhost:8080"


def base_url(default: str = LOCAL) -> str:
    """``[api] base_url`` (the UI's public address), else ``default``."""
    try:
        from airflow.sdk.configuration import conf  # a worker's (the task SDK's) view of the config
    except ImportError:
        from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or default).rstrip("/")


def run_url(base: str, dag_id: str, run_id: str) -> str:
    return f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_url(base: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{run_url(base, dag_id, run_id)}/tasks/{quote(task_id, safe='')}{mapped}"


def required_actions_url(base: str, dag_id: str, run_id: str, task_id: str, map_index: int | str) -> str:
    """The task instance's Required Actions tab: a mapped instance's page is ``…/mapped/N/required_actions``
    (``…/required_actions?map_index=N`` finds no task instance in Airflow 3.3's UI)."""
    mapped = f"/mapped/{map_index}" if int(map_index) >= 0 else ""
    return f"{run_url(base, dag_id, run_id)}/tasks/{quote(task_id, safe='')}{mapped}/required_actions"
