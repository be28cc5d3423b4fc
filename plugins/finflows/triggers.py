"""Asset-watcher triggers that cost nothing when a DAG file is parsed.

Importing ``MessageQueueTrigger`` loads every provider's queue integration (boto3, the Google
clients): about two seconds on each parse of each DAG that watches a queue. ``SqsEventTrigger``
serialises to its own small class and builds the provider's ``MessageQueueTrigger`` only when the
triggerer runs it, so the work is the provider's and the parse stays light (bench/dag_parse.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class SqsEventTrigger(BaseEventTrigger):
    """``MessageQueueTrigger(scheme="sqs", **kwargs)``, constructed lazily in the triggerer."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.kwargs = kwargs

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", dict(self.kwargs)

    def provider_trigger(self) -> BaseEventTrigger:
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

        return MessageQueueTrigger(scheme="sqs", **self.kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self.provider_trigger().run():
            yield event


def s3_event_asset(name: str, queue_url: str, aws_conn_id: str) -> Asset:
    """An asset updated whenever S3 notifies ``queue_url`` of a new object."""
    return sqs_asset(name, queue_url, aws_conn_id, watcher=f"{name}_s3_events")


def sqs_asset(name: str, queue_url: str, aws_conn_id: str, *, watcher: str | None = None) -> Asset:
    """An asset updated whenever messages arrive on ``queue_url``; the trigger takes them off the
    queue and they reach the run in ``triggering_asset_events`` (``task_support.delivered_messages``).

    No URI scheme: any scheme makes the SDK load every provider's asset handlers at parse time."""
    return Asset(
        name=name,
        watchers=[
            AssetWatcher(
                name=watcher or f"{name}_messages",
                trigger=SqsEventTrigger(
                    sqs_queue=queue_url,
                    aws_conn_id=aws_conn_id,
                    max_messages=10,
                    # SQS long polling: a receive returns as soon as a message arrives (or after
                    # 20 s, the most SQS allows); only then the trigger pauses 1 s. Before: a 30 s
                    # sleep between polls made an S3 object wait 21–30 s for its run.
                    wait_time_seconds=20,
                    waiter_delay=1,
                ),
            )
        ],
    )
