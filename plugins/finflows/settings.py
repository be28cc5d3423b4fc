"""Where each flow finds its buckets, queues, folders and connections.

Values come from ``FINFLOWS_*`` environment variables (the local stack writes them to
``.local/stack.env``; a deployment sets them in its image or chart) with production-shaped
defaults. Read at parse time only where Airflow needs them then (asset watchers); cheap: no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from finflows.errors import FinflowsError
from finflows.flowspec import Setting

TAIPEI = ZoneInfo("Asia/Taipei")  # the banks' zone: business days, cutoffs, key and host-key windows, "today"
INCLUDE = Path(__file__).resolve().parents[2] / "include"  # the repository's configuration and reference data

# Airflow connection ids, one per external system; production defines the same ids in its secrets backend.
CONN_FINANCE_DB = "postgres_finance"
CONN_AWS = "aws_finflows"
CONN_SMTP = "smtp_finflows"
CONN_GOOGLE = "google_finflows"
CONN_SFTP_CIVICAPAY = "sftp_civicapay"


# The settings every flow shares; each flow declares its own in its spec (``finflows.flowspec``).
CORE = (
    Setting("OPS_EMAIL", "finance-ops@example.org", "who gets failure and LATE emails (comma separated)",
            compose="finance-ops@finance.local"),
    Setting("ARCHIVE_BUCKET", "finflows-archive", "where files sent and received are kept", bucket=True),
    Setting("PGP_PLAINTEXT_MAX_BYTES", str(64 << 20), "the largest plaintext a counterparty's PGP file may decrypt to"),
    Setting("QUARANTINE_KMS_KEY", "alias/finflows-quarantine",
            "the KMS key a file over its intake limit is kept under, unread (SSE-KMS); only reviewers may decrypt"),
    Setting("SFTP_IDLE_TIMEOUT", "120", "seconds an SFTP server may stay silent mid-session"),
    Setting("TEST_CONNECTION_INTERVAL", "30", "seconds between two connection tests of one server from the monitor"),
    Setting("EXPIRY_WARN_DAYS", "30", "days before a key or certificate expires that the daily report warns"),
    Setting("RETRY_DELAY", "30", "seconds before a failed task's first retry (doubled, 10 minutes at most)"),
    Setting("TASK_TIMEOUT_MINUTES", "60", "every task's execution_timeout"),
    Setting("DEADLINES", "on", "Deadline Alerts on the DAGs (off only for dag.test())"),
)  # fmt: skip


class UndeclaredSetting(FinflowsError, KeyError):
    """A ``FINFLOWS_*`` setting read without a declaration (``CORE`` or a flow's spec)."""


@functools.cache
def _declarations() -> dict[str, Setting]:
    from finflows import flowspec

    return {name: s for name, (_owner, s) in flowspec.declared_settings().items()}


def get(name: str, default: str | None = None) -> str:
    """``FINFLOWS_<name>``, else its declared default (``CORE`` or its flow's spec); ``default``
    only for a name made at run time (``<FLOW>_MAX_BYTES`` of a flow that declares none,
    ``DEADLINE_<DAG_ID>``)."""
    if default is not None:
        return os.environ.get(f"FINFLOWS_{name}", default)
    declared = _declarations().get(name)
    if declared is None:
        raise UndeclaredSetting(f"FINFLOWS_{name} is read but declared nowhere: add a Setting to its flow's spec.py")
    return declared.value(str(INCLUDE))


def cashfile_bucket() -> str:
    return get("CASHFILE_BUCKET")


def cashfile_queue_url() -> str:
    return get("CASHFILE_QUEUE_URL")


def finance_drive_folder() -> str:
    return get("FINANCE_DRIVE_FOLDER")


def ops_email() -> list[str]:
    return [a.strip() for a in get("OPS_EMAIL").split(",") if a.strip()]


def chargeback_bucket() -> str:
    return get("CHARGEBACK_BUCKET")


def chargeback_queue_url() -> str:
    return get("CHARGEBACK_QUEUE_URL")


def chargeback_topic_arn() -> str:
    return get("CHARGEBACK_TOPIC_ARN")


def tenure_queue_url() -> str:
    return get("TENURE_QUEUE_URL")


def tenure_dlq_url() -> str:
    return get("TENURE_DLQ_URL")


def interim_spreadsheet() -> str:
    return get("INTERIM_SPREADSHEET")


def tenure_target() -> str:
    """Where tenure_sync writes: ``sheet`` (today), ``both`` (while finance checks), ``database`` (the plan)."""
    return get("TENURE_TARGET")


CONN_FTPS_ACQUIRER = "ftps_acquirer"


def statement_bucket() -> str:
    return get("STATEMENT_BUCKET")


def statement_ftps_dir() -> str:
    """Where the acquirer leaves statements on its FTPS server."""
    return get("STATEMENT_FTPS_DIR")


def archive_bucket() -> str:
    """Where files sent and received are kept (encrypted bank files, processed returns)."""
    return get("ARCHIVE_BUCKET")


def treasury_email() -> list[str]:
    return [a.strip() for a in get("TREASURY_EMAIL").split(",") if a.strip()]


def bank_upload_attempts() -> int:
    """Tries of one SFTP upload inside a task before the batch goes to the retry queue."""
    return int(get("BANK_UPLOAD_ATTEMPTS"))


def bank_upload_backoff() -> float:
    """Seconds before the second try; doubled for each try after it."""
    return float(get("BANK_UPLOAD_BACKOFF"))


def bank_retry_limit() -> int:
    """Hourly retries of a queued transfer before it is given up to a person."""
    return int(get("BANK_RETRY_LIMIT"))


def bank_retry_queue_alert() -> int:
    """Operations and treasury are alerted when more transfers than this wait in the retry queue."""
    return int(get("BANK_RETRY_QUEUE_ALERT"))


def bank_session_wait() -> float:
    """Seconds a transfer waits for one of its bank's SFTP sessions to free before it fails."""
    return float(get("BANK_SESSION_WAIT"))


def business_day_close() -> dt.time:
    """Asia/Taipei time after which an uploaded batch without reconciliation is alerted."""
    import datetime as dt

    return dt.time.fromisoformat(get("BUSINESS_DAY_CLOSE"))


def duplicate_window_days() -> int:
    """A pending payment repeating another's payee bank, account and amount due within this many
    days is held as a possible duplicate."""
    return int(get("DUPLICATE_WINDOW_DAYS"))


def pgp_plaintext_max_bytes() -> int:
    """The largest plaintext a counterparty's PGP file may decrypt to; gpg stops there
    (``--max-output``) and the file is refused: a compression bomb costs nothing."""
    return int(get("PGP_PLAINTEXT_MAX_BYTES"))


class Limit(NamedTuple):
    """A size limit and the setting that sets it (every refusal names both)."""

    bytes: int
    setting: str


def intake_limit(flow: str) -> Limit:
    """The largest file a flow takes from its inbox or a counterparty's server; a larger one is
    refused by its size (quarantined, never read whole). ``CASHFILE_MAX_BYTES`` (256 MiB; a day's
    CivicaPay file is a few MB), ``STATEMENT_MAX_BYTES`` (1 GiB; the largest acquirer statement is
    about 400 MB), ``CHARGEBACK_MAX_BYTES`` (64 MiB), ``BANK_FILE_MAX_BYTES`` (a bank's return
    file as it lies on the server, 10 MiB); a new flow's ``<FLOW>_MAX_BYTES``, 64 MiB unless set."""
    name = f"{flow}_MAX_BYTES"  # declared by its flow's spec
    return Limit(int(get(name, None if name in _declarations() else str(64 << 20))), f"FINFLOWS_{name}")


def quarantine_kms_key() -> str:
    """The KMS key (id, ARN or ``alias/...``) a file over its intake limit is kept encrypted under
    when it is quarantined unread (S3 SSE-KMS, copied server-side: not a byte read by us). Only the
    people who review quarantined files may decrypt with it; everyone else with read access to the
    bucket gets ``AccessDenied`` (PCI DSS 3.5: a card number in it is unreadable where it is stored)."""
    return get("QUARANTINE_KMS_KEY")


def sftp_idle_timeout() -> float:
    """Seconds a bank's SFTP server may stay silent in the middle of a session (a listing, a
    transfer) before the operation fails; the connect has its own timeout in the connection."""
    return float(get("SFTP_IDLE_TIMEOUT"))


def test_connection_interval() -> int:
    """Seconds between two connection tests of one bank from the finance monitor."""
    return int(get("TEST_CONNECTION_INTERVAL"))


def payment_approvers() -> list[str]:
    """Airflow user ids who may approve a bank payment batch or decide about money (comma
    separated): a user id, or ``role:NAME`` for every user of that Airflow role. The user who
    triggered a run, and the maker of a batch, are never its approvers."""
    out: list[str] = []
    for entry in (u.strip() for u in get("PAYMENT_APPROVERS").split(",")):
        if entry.startswith("role:"):
            out += [u for u in users_of_role(entry.removeprefix("role:").strip()) if u not in out]
        elif entry and entry not in out:
            out.append(entry)
    return out


class ApproverConfigError(FinflowsError, ValueError):
    """FINFLOWS_PAYMENT_APPROVERS names a role this deployment cannot list the users of."""


def users_of_role(role: str) -> list[str]:
    """The users of an Airflow role, as the configured auth manager holds them. The simple auth
    manager (the one this project configures) lists them in ``[core] simple_auth_manager_users``
    (``user:role``, comma separated); another auth manager is refused in words rather than guessed."""
    from airflow.configuration import conf

    manager = conf.get("core", "auth_manager", fallback="")
    if not manager.endswith("SimpleAuthManager"):
        raise ApproverConfigError(
            f"FINFLOWS_PAYMENT_APPROVERS names role:{role}, but roles are read from the simple auth manager only "
            f"(configured: {manager or 'none'}); list the approvers' user ids instead"
        )
    users = []
    for pair in conf.get("core", "simple_auth_manager_users", fallback="").split(","):
        user, _, user_role = pair.strip().partition(":")
        if user and user_role.strip().lower() == role.lower():
            users.append(user.strip())
    return users


def sent_record_window_days() -> int:
    """Processing days back that a payment file's references are checked against the write-once
    send records in the archive before anything is sent (a restore of the finance database older
    than this is not caught by the records)."""
    return int(get("SENT_RECORD_WINDOW_DAYS"))


def approval_margin() -> dt.timedelta:
    """How long before a bank's cutoff an unanswered approval expires (minutes): the upload still
    has time to reach the bank."""
    import datetime as dt

    return dt.timedelta(minutes=float(get("APPROVAL_MARGIN_MINUTES")))


def approval_max_wait() -> dt.timedelta | None:
    """The longest an approval waits (minutes), when sooner than the cutoff less the margin; 0: until then."""
    import datetime as dt

    minutes = float(get("APPROVAL_MAX_WAIT_MINUTES"))
    return dt.timedelta(minutes=minutes) if minutes > 0 else None


def expiry_warn_days() -> int:
    """Days before a PGP key or TLS certificate expires that the daily report starts to warn."""
    return int(get("EXPIRY_WARN_DAYS"))


def bank_circuit_failures() -> int:
    """Consecutive failed bank_health checks that open a bank's circuit (bank_payments then skips it)."""
    return int(get("BANK_CIRCUIT_FAILURES"))


def bank_circuit_half_open_after() -> dt.timedelta:
    """Seconds an open circuit waits before a single successful health check may close it."""
    import datetime as dt

    return dt.timedelta(seconds=float(get("BANK_CIRCUIT_HALF_OPEN_AFTER")))


def retry_delay_seconds() -> float:
    """The first wait before a failed task's retry (doubled each time, 10 minutes at most); short
    in the fault tests, which wait for real retries."""
    return float(get("RETRY_DELAY"))


def task_timeout_minutes() -> float:
    """Every task's execution_timeout: no task waits for ever on a counterparty that stopped answering."""
    return float(get("TASK_TIMEOUT_MINUTES"))


def deadlines_on() -> bool:
    """Deadline Alerts on the DAGs (``FINFLOWS_DEADLINES=off`` for ``dag.test()``, which cannot run them)."""
    return get("DEADLINES") != "off"


def deadline_minutes(dag_id: str, expected: float) -> float:
    """A DAG's expected minutes from queued to done (``FINFLOWS_DEADLINE_<DAG_ID>``)."""
    return float(get(f"DEADLINE_{dag_id.upper()}", str(expected)))


ALL_BANKS = "all"  # the trigger form's explicit choice of every enabled bank (bank_payments)


def configured_bank_ids() -> list[str]:
    """The bank ids include/banking/banks.yaml names (its keys only: no ``${}`` value is needed),
    for the trigger form's choices; light enough for a DAG file's top level (no pydantic). Empty
    when the file cannot be read: the task that loads it then says why."""
    from pathlib import Path

    import yaml

    try:
        raw = yaml.safe_load(Path(get("BANKS_FILE")).read_text(encoding="utf-8"))
        return [str(b) for b in raw["banks"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []
