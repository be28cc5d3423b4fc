"""Faults injected into the real stack, and what the flows make of them: nothing half-done,
nothing lost, nothing done twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows import inbox
from finflows.flows.card_reconciliation import card
from tests.helpers import payments as pay
from tests.helpers.statements import name as statement_name
from tests.helpers.statements import statement

pytestmark = pytest.mark.integration
MONDAY_6AM = dt.datetime(2026, 11, 23, 6, 0, tzinfo=ZoneInfo("Asia/Taipei"))


def test_sftp_session_killed_mid_upload_then_the_retry_completes_once(
    clean_payments, pg, db, cfg, local_dir, sftp_server
):
    """OpenSSH's sshd: the session serving our upload is caught while only NAME.part exists, then
    killed (kill -9), as a crash of the bank's server would end it. Killing only sshd's listener
    would leave the session running, so the session processes are the ones killed."""
    from devstack import stack
    from devstack.services import servers

    pay.add(pg, "mega", 5000, due=MONDAY_6AM.date())
    listener = sftp_server.pid()
    upload_dir = local_dir / "sftp" / "mega" / "upload"
    at_crash: dict[str, int] = {}
    killed: list[int] = []

    def session_process() -> int | None:
        """The process serving the account's SFTP session (titled ``sshd: USER@notty``)."""
        for pid in servers.descendants(listener):
            with contextlib.suppress(OSError):
                if b"@notty" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
        return None

    def kill_the_session_mid_upload() -> None:
        """Find the logged-in session, then step it: freeze it, look at the upload folder, let it
        run a fraction of a millisecond, and again, until NAME.part is there; then kill it (and the
        rest of that connection's processes) where it stands."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pid = session_process()
            if pid is None:
                time.sleep(0.0005)
                continue
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    break  # that session ended without an upload (e.g. a check): wait for the next
                files = {p.name: p.stat().st_size for p in upload_dir.iterdir()}
                if any(n.endswith(".part") for n in files):
                    at_crash.update(files)
                    killed.extend(stack.kill_sessions(listener, signal.SIGKILL))
                    return
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.0002)

    watcher = threading.Thread(target=kill_the_session_mid_upload)
    watcher.start()
    result = pay.pay_bank(db, cfg, "mega", now=MONDAY_6AM, attempts=6, backoff=0.5)
    watcher.join()

    [d] = result.deliveries
    name, size = d["file_name"], d["bytes"]
    assert killed, "no session was killed"
    assert d["outcome"] == "uploaded" and d["attempts"] >= 2
    # when the session died only the partial NAME.part existed: nothing under the final name
    assert list(at_crash) == [f"{name}.part"] and at_crash[f"{name}.part"] <= size
    assert stack._alive(listener)  # the server itself is up: the retry opened a new session
    assert pay.uploaded(local_dir, "mega").keys() == {name}  # the retry's rename; no .part left
    pay.decrypt_as_bank("mega", pay.uploaded(local_dir, "mega")[name])  # complete: decrypts and verifies
    assert pg.execute("SELECT outcome, attempts FROM pay.transfer").fetchall() == [("uploaded", d["attempts"])]
    assert pg.execute("SELECT DISTINCT status FROM pay.payment").fetchall() == [("uploaded",)]


def test_postgresql_restarted_mid_load_rolls_back_and_the_retry_loads_exactly_once(s3_hook, pg_dsn, unique):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from devstack import stack

    bucket = os.environ.get("FINFLOWS_STATEMENT_BUCKET", "finflows-card-statements")
    fname, records = statement_name(unique), 150_000
    key = f"statements/{fname}"
    data = statement(records)
    s3_hook.load_bytes(data, key=key, bucket_name=bucket, replace=True)
    seen_copy = threading.Event()

    def restart_during_the_copy() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as watch:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY card.%%' AND state = 'active'"
                ).fetchone()[0]
                if busy:
                    seen_copy.set()
                    break
                time.sleep(0.01)
        if seen_copy.is_set():
            stack.stop_postgres()  # fast shutdown: every session is cut, open transactions roll back
            stack.start_postgres()

    def load():
        return inbox.run(
            card.Statements(),
            key,
            bucket=bucket,
            run_id=f"manual__{unique}",
            s3_hook=s3_hook,
            pg_hook=PostgresHook(postgres_conn_id="postgres_finance"),
        )

    watcher = threading.Thread(target=restart_during_the_copy)
    watcher.start()
    with pytest.raises(psycopg.OperationalError):
        load()
    watcher.join()
    assert seen_copy.is_set(), "the restart must hit the load's COPY"

    def loaded() -> tuple:
        with psycopg.connect(pg_dsn, autocommit=True) as pg:
            return pg.execute(
                """SELECT (SELECT count(*) FROM ops.file_control WHERE flow = 'card_reconciliation' AND file_name = %s),
                          (SELECT count(*) FROM card.fact_transaction t JOIN ops.file_control c ON c.id = t.file_id
                            WHERE c.flow = 'card_reconciliation' AND c.file_name = %s)""",
                (fname, fname),
            ).fetchone()

    assert loaded() == (0, 0)  # the transaction rolled back: no control row, no fact
    assert s3_hook.check_for_key(key, bucket)  # the source is still where it was
    assert load().status == "LOADED"
    assert loaded() == (1, records)
    s3_hook.load_bytes(data, key=key, bucket_name=bucket, replace=True)  # delivered again
    assert load().status == "ALREADY_LOADED"
    assert loaded() == (1, records)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:  # 150,000 facts a run would pile up in the stack's database
        pg.execute(
            """DELETE FROM card.fact_transaction WHERE file_id =
                 (SELECT id FROM ops.file_control WHERE flow = 'card_reconciliation' AND file_name = %s)""",
            (fname,),
        )


def s3_client_get(bucket: str, key: str) -> bytes:
    from devstack import stack

    return stack._aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_s3_down_during_a_payments_run_fails_cleanly_and_the_retry_delivers_once(
    clean_payments, pg, db, cfg, local_dir
):
    """The archive (S3) is down when the batch's file is made: the step fails before anything is
    sent (the batch stays batched, no archive, no transfer, nothing on the bank's server); with S3
    back the same batch is made, archived and delivered once."""
    from botocore.exceptions import BotoCoreError

    from devstack import stack

    refs = pay.add(pg, "ctbc", 3, due=MONDAY_6AM.date())
    stack.stop_service("aws")
    try:
        with pytest.raises(BotoCoreError):
            pay.pay_bank(db, cfg, "ctbc", now=MONDAY_6AM)
    finally:
        stack.start_service("aws", stack.material())
        stack.provision_aws()  # the stand-in keeps state in memory: buckets and queues again
    assert pg.execute("SELECT status, archive_uri FROM pay.batch").fetchall() == [("batched", None)]
    assert pg.execute("SELECT count(*) FROM pay.transfer").fetchone()[0] == 0
    assert pay.uploaded(local_dir, "ctbc") == {} and set(pay.statuses(pg, refs).values()) == {"batched"}

    result = pay.pay_bank(db, cfg, "ctbc", now=MONDAY_6AM.replace(hour=7))
    assert result.batches_created == 0 and [d["outcome"] for d in result.deliveries] == ["uploaded"]
    [(name, data)] = pay.uploaded(local_dir, "ctbc").items()
    [uri] = pg.execute("SELECT archive_uri FROM pay.batch WHERE file_name = %s", (name,)).fetchone()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    assert s3_client_get(bucket, key) == data  # what was sent is what is archived
    assert pg.execute("SELECT outcome FROM pay.transfer").fetchall() == [("uploaded",)]
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    pay.decrypt_as_bank("ctbc", data)
