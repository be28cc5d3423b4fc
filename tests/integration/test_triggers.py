"""The asset watchers' trigger, run as the triggerer runs it, against the real SQS endpoint."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from finflows.triggers import SqsEventTrigger

pytestmark = pytest.mark.integration


def test_serialises_to_itself_so_the_triggerer_can_rebuild_it():
    trigger = SqsEventTrigger(sqs_queue="https://sqs.eu-west-2.amazonaws.com/1/q", aws_conn_id="aws_finflows")
    path, kwargs = trigger.serialize()
    assert path == "finflows.triggers.SqsEventTrigger"
    assert SqsEventTrigger(**kwargs).serialize() == (path, kwargs)


def test_an_s3_event_on_the_queue_fires_the_trigger(sqs_client, drain_queue, s3_hook, unique):
    url = os.environ["FINFLOWS_CASHFILE_QUEUE_URL"]
    drain_queue(url, wait=0)
    key = f"cashfiles/trigger-{unique}.dat"
    s3_hook.load_bytes(b"x", key=key, bucket_name=os.environ["FINFLOWS_CASHFILE_BUCKET"], replace=True)
    trigger = SqsEventTrigger(
        sqs_queue=url, aws_conn_id="aws_finflows", max_messages=10, wait_time_seconds=1, waiter_delay=1
    )

    async def first_event():
        async for event in trigger.run():
            return event
        return None

    try:
        event = asyncio.run(asyncio.wait_for(first_event(), timeout=180))
    finally:
        s3_hook.delete_objects(bucket=os.environ["FINFLOWS_CASHFILE_BUCKET"], keys=[key])
    bodies = [json.loads(m["Body"]) for m in event.payload["message_batch"]]
    keys = [r["s3"]["object"]["key"] for b in bodies for r in b.get("Records", [])]
    from finflows.flows.cashfile_import.cashfile import keys_from_message

    assert key in [k for m in event.payload["message_batch"] for k in keys_from_message(m["Body"])], keys
    assert drain_queue(url, wait=0) == []  # the trigger deleted what it received
