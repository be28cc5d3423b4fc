"""S3 against the stack's real S3 server: a move takes the version that was read, and a quarantined
copy is never overwritten by the next bad file of the same name."""

from __future__ import annotations

import os
import tempfile

import pytest

from finflows import files

pytestmark = pytest.mark.integration
BUCKET = os.environ.get("FINFLOWS_CHARGEBACK_BUCKET", "finflows-chargebacks")


def body(s3_hook, key: str) -> bytes:
    return s3_hook.get_conn().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_a_file_replaced_during_its_import_stays_for_the_next_run(s3_hook, unique):
    key, done = f"incoming/race-{unique}.json", f"processed/race-{unique}.json"
    s3_hook.load_bytes(b"version 1", key=key, bucket_name=BUCKET, replace=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _path, _sha, _size, etag = files.download(s3_hook, BUCKET, key, tmp)
        s3_hook.load_bytes(b"version 2, corrected", key=key, bucket_name=BUCKET, replace=True)  # meanwhile

        assert files.move_object(s3_hook, BUCKET, key, done, etag) is False
        assert body(s3_hook, key) == b"version 2, corrected"  # left in the inbox for the next run
        assert not files.exists(s3_hook, BUCKET, done)

        with tempfile.TemporaryDirectory() as tmp:
            _path, _sha, _size, etag = files.download(s3_hook, BUCKET, key, tmp)
        assert files.move_object(s3_hook, BUCKET, key, done, etag) is True  # unchanged: moved
        assert body(s3_hook, done) == b"version 2, corrected" and not files.exists(s3_hook, BUCKET, key)
    finally:
        s3_hook.delete_objects(bucket=BUCKET, keys=[key, done])


def test_a_second_bad_file_of_a_name_never_overwrites_the_first_quarantined_copy(s3_hook, unique):
    key = f"incoming/twice-{unique}.json"
    kept = []
    try:
        for content in (b"first bad", b"second bad"):
            s3_hook.load_bytes(content, key=key, bucket_name=BUCKET, replace=True)
            kept.append(files.quarantine(s3_hook, BUCKET, key, {"error": content.decode()}))
        assert kept[0] == f"quarantine/twice-{unique}.json" and kept[1] != kept[0]
        assert [body(s3_hook, k) for k in kept] == [b"first bad", b"second bad"]
        assert all(files.exists(s3_hook, BUCKET, f"{k}.error.json") for k in kept)
    finally:
        s3_hook.delete_objects(bucket=BUCKET, keys=[k for q in kept for k in (q, f"{q}.error.json")])
