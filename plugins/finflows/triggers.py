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
    """``MessageQueueTrigger(scheme="sqs", **kwargs)``, constructed lazily in the triggerer.

    ``park``: ``s3://bucket/prefix/`` where the messages' bodies are kept instead of in the asset
    event, which any Viewer of the Airflow UI can read: the event then carries the messages' ids
    and that object's address only (``task_support.delivered_messages`` reads them back).
    ``mask``: the dotted path of a function a body passes through before it is parked (e.g.
    ``finflows.formats.tenure.mask_body``: no card number kept in the archive)."""

    def __init__(self, park: str | None = None, mask: str | None = None, **kwargs: Any):
        super().__init__()
        self.park, self.mask, self.kwargs = park, mask, kwargs

    def serialize(self) -> tuple[str, dict[str, Any]]:
        own = {"park": self.park} if self.park else {}
        own |= {"mask": self.mask} if self.mask else {}
        return f"{type(self).__module__}.{type(self).__qualname__}", dict(self.kwargs) | own

    def provider_trigger(self) -> BaseEventTrigger:
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

        return MessageQueueTrigger(scheme="sqs", **self.kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self.provider_trigger().run():
            if self.park and isinstance(event.payload, dict) and event.payload.get("message_batch"):
                from asgiref.sync import sync_to_async

                yield TriggerEvent(await sync_to_async(self._parked)(event.payload))
            else:
                yield event

    def _parked(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its message bodies moved to S3 (one object per batch)."""
        import json
        import uuid

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        batch = payload["message_batch"]
        if not self.park:  # run() parks only when there is a place to park in
            raise ValueError("no park location for a message batch")
        if self.mask:
            import importlib

            module, _, name = self.mask.rpartition(".")
            keep = getattr(importlib.import_module(module), name)
            batch = [m | {"Body": keep(m["Body"])} if isinstance(m.get("Body"), str) else m for m in batch]
        bucket, _, prefix = self.park.removeprefix("s3://").partition("/")
        key = f"{prefix}{uuid.uuid4()}.json"
        S3Hook(aws_conn_id=self.kwargs.get("aws_conn_id")).load_string(
            json.dumps(batch), key=key, bucket_name=bucket, replace=False
        )
        ids = [m.get("MessageId") for m in batch]
        return {k: v for k, v in payload.items() if k != "message_batch"} | {
            "parked": f"s3://{bucket}/{key}",
            "message_ids": ids,
        }


def s3_event_asset(name: str, queue_url: str, aws_conn_id: str) -> Asset:
    """An asset updated whenever S3 notifies ``queue_url`` of a new object."""
    return sqs_asset(name, queue_url, aws_conn_id, watcher=f"{name}_s3_events")


def sqs_asset(
    name: str,
    queue_url: str,
    aws_conn_id: str,
    *,
    watcher: str | None = None,
    park: str | None = None,
    mask: str | None = None,
) -> Asset:
    """An asset updated whenever messages arrive on ``queue_url``; the trigger takes them off the
    queue and they reach the run in ``triggering_asset_events`` (``task_support.delivered_messages``),
    or, with ``park`` (``s3://bucket/prefix/``), the event names where their bodies were kept
    (each passed through ``mask`` first, a dotted path, when given).

    No URI scheme: any scheme makes the SDK load every provider's asset handlers at parse time."""
    return Asset(
        name=name,
        watchers=[
            AssetWatcher(
                name=watcher or f"{name}_messages",
                trigger=SqsEventTrigger(
                    park=park,
                    mask=mask,
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
