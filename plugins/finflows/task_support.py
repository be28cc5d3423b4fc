"""What every file flow's task bodies share: hooks from connections, mapped-task labels, and how
bad input and failed files end a run. Imported inside tasks only (it loads providers)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from finflows import settings
from finflows.seams import PgHook, S3Hook


def s3_hook() -> S3Hook:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=settings.CONN_AWS)


def finance_db() -> PgHook:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=settings.CONN_FINANCE_DB)


def delivered_messages(context: Any) -> list[dict[str, Any]]:
    """The SQS messages an asset watcher took off its queue for this run (none for a manual run)."""
    messages: list[dict[str, Any]] = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            payload = (event.extra or {}).get("payload") or {}
            messages += payload.get("message_batch", [])
            if parked := payload.get("parked"):  # bodies kept out of the event (finflows.triggers)
                import json

                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                from finflows import settings

                bucket, _, key = parked.removeprefix("s3://").partition("/")
                messages += json.loads(S3Hook(aws_conn_id=settings.CONN_AWS).read_key(key, bucket))
    return messages


def label_mapped_task(template_var: str, key: str) -> str:
    """Give the mapped task instance its file name in the UI; return the run id."""
    from airflow.sdk import get_current_context

    # the live context (what map_index_template renders from), written under a key of our choosing
    context = cast("dict[str, Any]", get_current_context())
    context[template_var] = key.rsplit("/", 1)[-1]
    return str(context["run_id"])


@contextmanager
def bad_input_fails_without_retry(*rejections: type[Exception]) -> Iterator[None]:
    """A quarantined file fails its task at once: retrying cannot fix the input."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except rejections as e:
        # raised from the refusal: the failure email reads it there (files.rejection_of)
        raise AirflowFailException(str(e)) from e


def failed_keys(keys: Sequence[str], outcomes: Sequence[dict[str, Any] | None]) -> list[str]:
    """A mapped task that failed has no outcome (its XCom is simply absent)."""
    return sorted(set(keys) - {o["key"] for o in outcomes if o})


def failed_tasks(task_ids: list[str]) -> list[str]:
    """Which of these tasks of the current run failed: an all_done summary task is the run's leaf,
    so without this a failed upstream step would leave the run green."""
    from airflow.sdk import get_current_context
    from airflow.utils.state import TaskInstanceState

    ti = get_current_context()["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=task_ids, run_ids=[ti.run_id]).get(ti.run_id, {})
    return sorted(
        t for t, state in states.items() if state in (TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED)
    )


def nothing_upstream(value: Any, what: str) -> None:
    """A summary task (``all_done``) whose upstream produced nothing, because it failed: fail at
    once, without retries and without crashing on ``None``; the upstream task's log says why."""
    from airflow.sdk.exceptions import AirflowFailException

    if value is None:
        raise AirflowFailException(f"nothing to summarise: {what} failed (see its log)")


def fail_run_if_any(failed: list[str], total: int, noun: str) -> None:
    """Called last by an all_done summary task, so the run is red when any file failed."""
    from airflow.sdk.exceptions import AirflowFailException

    if failed:
        raise AirflowFailException(f"{len(failed)} of {total} {noun}(s) failed: {', '.join(failed)}")
