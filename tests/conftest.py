"""Session fixtures: the running local stack and its Airflow connections, for every test.

The stack is started (idempotently) before Airflow is imported, so the Airflow settings and the
``AIRFLOW_CONN_*`` connections in ``.local/stack.env`` are in the environment from the start.
``make test`` stops it afterwards; a bare ``pytest`` leaves it running for the next run.
"""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]


def pytest_configure(config: pytest.Config) -> None:
    from devstack import stack

    if os.environ.get("FINFLOWS_UNIT") == "1":  # make test-unit: formats and DAG integrity, no service
        os.environ.update(stack.airflow_env())
        os.environ["AIRFLOW_HOME"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"finflows-unit-{os.getuid()}")
        return
    os.environ.update(stack.up())
    os.environ["FINFLOWS_BANKS_FILE"] = str(banks_without_approval())
    # dag.test() cannot run a DAG with a Deadline Alert in Airflow 3.3.2; the scheduler tests turn them on
    os.environ["FINFLOWS_DEADLINES"] = "off"
    if not stack.airflow_db_migrated():  # `make test` has migrated it; a bare pytest may not have
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)


SHIPPED_BANKS = REPO / "include" / "banking" / "banks.yaml"


def banks_without_approval() -> Path:
    """The shipped banks.yaml with ``approval: none`` for every bank: what the suite runs under,
    since most tests are about batching, files and delivery, and a run that waits for a person
    would need one. The approval itself is tested with the shipped file, where it is required:
    tests/integration/test_approval.py and, under the real scheduler and REST API,
    tests/e2e/test_standalone.py."""
    import yaml

    from devstack.config import LOCAL

    raw = yaml.safe_load(SHIPPED_BANKS.read_text(encoding="utf-8"))
    for entry in raw["banks"].values():
        entry["approval"] = "none"
    out = LOCAL / "banks-without-approval.yaml"
    out.write_text(
        yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )  # the order is the configuration's
    return out


# ---------------------------------------------------------------------------- the stack
@pytest.fixture(scope="session")
def local_dir() -> Path:
    from devstack.config import LOCAL

    return LOCAL


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    from devstack import stack

    return stack.pg_dsn()


@pytest.fixture
def pg(pg_dsn: str) -> Iterator:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def db(pg_dsn: str) -> Iterator:
    """A second finance-DB connection, for the code under test (``pg`` is the test's own)."""
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def cfg():
    """The bank configuration, as the flows load it."""
    from finflows.flows.banking import banks

    return banks.load()


@pytest.fixture(scope="session")
def s3_hook():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_finflows")


@pytest.fixture(scope="session")
def sqs_client():
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    return SqsHook(aws_conn_id="aws_finflows").get_conn()


@pytest.fixture(scope="session")
def sns_client():
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    return SnsHook(aws_conn_id="aws_finflows").get_conn()


@pytest.fixture
def drain_queue(sqs_client) -> Callable[[str], list[dict]]:
    """Receive (and delete) every message now on a queue; returns the messages."""

    def drain(url: str, wait: float = 1.0) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + wait
        while True:
            resp = sqs_client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            )
            msgs = resp.get("Messages", [])
            for m in msgs:
                sqs_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            got += msgs
            if not msgs and time.monotonic() > deadline:
                return got
            if not msgs:
                time.sleep(0.1)

    return drain


@pytest.fixture
def sftp_hook() -> Callable[[str], object]:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return lambda user: SFTPHook(ssh_conn_id=f"sftp_{user}")


@pytest.fixture
def ftps_hook() -> Iterator[Callable[[str], object]]:
    from finflows.hooks.ftp import FTPSHook

    made = []

    def make(user: str):
        made.append(FTPSHook(ftp_conn_id=f"ftps_{user}"))
        return made[-1]

    yield make
    for h in made:
        if h.conn is not None:
            h.close_conn()


@pytest.fixture(scope="session")
def sheets():
    from finflows.google import sheets_hook

    return sheets_hook("google_finflows")


@pytest.fixture(scope="session")
def drive():
    from finflows.google import DriveHook

    return DriveHook(gcp_conn_id="google_finflows")


class Mailbox:
    """The SMTP sink's stored messages (one ``.eml`` file each)."""

    def __init__(self, maildir: Path):
        self.maildir = maildir

    def names(self) -> set[str]:
        return {p.name for p in self.maildir.glob("*.eml")}

    def messages(self, since: set[str] | None = None) -> list[email.message.EmailMessage]:
        out = []
        for p in sorted(self.maildir.glob("*.eml")):
            if since is None or p.name not in since:
                out.append(email.message_from_bytes(p.read_bytes(), policy=email.policy.default))
        return out

    def wait_for(
        self, predicate: Callable[[email.message.EmailMessage], bool], since: set[str], timeout: float = 15
    ) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages(since):
                if predicate(m):
                    return m
            time.sleep(0.2)
        subjects = [m["Subject"] for m in self.messages(since)]
        raise AssertionError(f"no matching email within {timeout}s; new messages: {subjects}")


@pytest.fixture(scope="session")
def mailbox(local_dir: Path) -> Mailbox:
    return Mailbox(local_dir / "smtp")


@pytest.fixture
def clean_payments(pg, local_dir: Path) -> Iterator[None]:
    """No payment, batch, upload or return file from an earlier test, before and after: each bank
    run pays every pending payment of its bank."""
    from tests.helpers import payments as pay

    pay.clean(pg)
    pay.clear_uploads(local_dir)
    pay.clean_reconciliation(pg, local_dir)
    yield
    pay.clean(pg)
    pay.clear_uploads(local_dir)
    pay.clean_reconciliation(pg, local_dir)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def sftp_server() -> Iterator[object]:
    """The real local SFTP server, to stop and start again; it is running again after the test."""
    from devstack import stack

    class Server:
        def stop(self) -> None:
            pid = stack._read_pid("sftp")
            stack.stop_service("sftp")
            assert not stack.port_open(stack.PORTS["sftp"]), f"SFTP still listening after stopping pid {pid}"

        def start(self, **env: str) -> None:
            """Start it, with extra environment for this process only (fault injection)."""
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                stack.start_service("sftp", stack.material())
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

        def pid(self) -> int | None:
            return stack._read_pid("sftp")

    yield Server()
    stack.start_service("sftp", stack.material())
