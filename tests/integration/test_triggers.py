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


def test_parked_tenure_bodies_keep_no_card_number_and_their_identifiers_whole(s3_hook, unique):
    """Issue #41: the tenure events a trigger parks in the archive bucket pass through the tenure
    layout's mask first: a card number typed into an address is masked, every id and number kept,
    and a body with nothing to mask is parked byte for byte (the run reads back the same events)."""
    import uuid

    from finflows.formats import tenure
    from tests.helpers.tenure import event

    bucket = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")
    tid = "12345678-1234-5678-1234-567812345670"  # digits only in groups: no card number for all that
    carded = json.dumps(event(tid, 1, shortAddress="card 4111 1111 1111 1111 at the door"))
    clean = json.dumps(event(str(uuid.uuid4()), 2))
    trigger = SqsEventTrigger(
        park=f"s3://{bucket}/tenure-events/test-{unique}/",
        mask="finflows.formats.tenure.mask_body",
        sqs_queue="https://sqs.eu-west-2.amazonaws.com/1/q",
        aws_conn_id="aws_finflows",
    )
    assert SqsEventTrigger(**trigger.serialize()[1]).mask == trigger.mask
    payload = trigger._parked(
        {"message_batch": [{"MessageId": "a", "Body": carded}, {"MessageId": "b", "Body": clean}]}
    )
    key = payload["parked"].removeprefix(f"s3://{bucket}/")
    parked = json.loads(s3_hook.read_key(key, bucket_name=bucket))
    assert "4111 1111 1111 1111" not in json.dumps(parked) and payload["message_ids"] == ["a", "b"]
    first = tenure.parse_message(parked[0]["Body"])
    assert str(first.tenure_id) == tid and first.tenure.property.short_address == "card 4111 11** **** 1111 at the door"
    assert parked[1]["Body"] == clean
    assert tenure.mask_body("{not json 4111111111111111") == "{not json 411111******1111"
