"""Ports, paths and names of the local stack, declared once."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCAL = Path(os.environ.get("FINFLOWS_LOCAL", REPO / ".local"))
RUN = LOCAL / "run"
LOGS = LOCAL / "logs"
TLS = LOCAL / "tls"
KEYS = LOCAL / "keys"
ENV_FILE = LOCAL / "stack.env"
HOST = "127.0.0.1"

PORTS = {
    "postgres": int(os.environ.get("FINFLOWS_PG_PORT", "55432")),
    "sftp": int(os.environ.get("FINFLOWS_SFTP_PORT", "2222")),
    "ftps": int(os.environ.get("FINFLOWS_FTPS_PORT", "2121")),
    "ftp": int(os.environ.get("FINFLOWS_FTP_PORT", "2120")),
    "aws": int(os.environ.get("FINFLOWS_AWS_PORT", "4566")),
    "smtp": int(os.environ.get("FINFLOWS_SMTP_PORT", "2525")),
    "google": int(os.environ.get("FINFLOWS_GOOGLE_PORT", "8765")),
    "redis": int(os.environ.get("FINFLOWS_REDIS_PORT", "56379")),  # Celery's broker (EXECUTOR=celery)
}
_passive = os.environ.get("FINFLOWS_FTP_PASSIVE_PORTS", "30000-30039").split("-")
FTP_PASSIVE_PORTS = range(int(_passive[0]), int(_passive[1]) + 1)  # FTPS takes the first half, FTP the rest

BANKS_FILE = Path(os.environ.get("FINFLOWS_BANKS_FILE", REPO / "include" / "banking" / "banks.yaml"))


def _bank_ids(path: Path) -> tuple[str, ...]:
    """The banks of the bank configuration (their ids only: nothing else of it is read here)."""
    import yaml

    return tuple((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("banks") or {})


# Counterparties with an SFTP account each (chrooted to their own directory). The banks are those of
# banks.yaml (the one source): a bank added there gets its account, keys and connections here.
BANKS = _bank_ids(BANKS_FILE)
SFTP_USERS = ("civicapay", *BANKS)
# FTP(S) accounts: the acquirer's statement drop and the card companies' inboxes.
FTPS_USERS = ("acquirer", "visa", "mastercard", "elo", "amex")
FTP_USERS = ("visa", "mastercard", "elo", "amex")
# Each account's folders it may write to; the account's root itself is not writable (OpenSSH's
# ChrootDirectory and vsftpd's default both insist): card companies take files in inbound/.
ACCOUNT_FOLDERS = {
    "sftp": {"civicapay": ["outbound"], **{bank: ["upload", "download"] for bank in BANKS}},
    "ftps": {"acquirer": ["Saida"], **{u: ["inbound"] for u in FTPS_USERS if u != "acquirer"}},
    "ftp": {u: ["inbound"] for u in FTP_USERS},
}

PG_DB = "finance"
PG_USER = "finflows"
# Throwaway credentials of a loopback-only stack, never used elsewhere. None is a common word or a
# part of a path, URL or name: Airflow masks every connection secret wherever it appears in a log or
# a form ("local" as a password turned every ".local/keys" path into ".***/keys" and broke Test).
PG_PASSWORD = "pg-fin-7f3a9c1e58"
# Airflow's own metadata, on the same PostgreSQL server under a role of its own: one database for
# the test suite and the demo, one for `make up` (so neither sees the other's runs)
AIRFLOW_PG_USER = "airflow"
AIRFLOW_PG_PASSWORD = "pg-af-2b8d4e6f93"
AIRFLOW_DB = "airflow"
AIRFLOW_UP_DB = "airflow_up"
# make up's own finance database too: the monitor shows the user's data, never the suite's or the demo's
FINANCE_UP_DB = "finance_up"
REDIS_PASSWORD = "rd-5c1e9a7d24"  # loopback-only throwaway broker

AWS_REGION = "eu-west-2"
# moto takes any key; these say what they are without being a word a log or a path could contain
AWS_KEY_ID = "AKIAFINFLOWSSTACK01"
AWS_SECRET = "aws-sk-3e7b1d9c0f6a"
AWS_ACCOUNT = "123456789012"  # moto's fixed account id
QUEUES = (
    "cashfile-events",
    "chargeback-events",
    "chargeback-notifications-audit",  # what SNS sent, for tests and the demo to read
    "tenure-events",
    "tenure-events-dlq",
)
TOPICS = ("chargeback-notifications", "tenure-events")
FINANCE_DRIVE_FOLDER = "finance-cashfiles"
INTERIM_SPREADSHEET = "interim-finance-accounts"

AIRFLOW_HOME = LOCAL / "airflow"


def pg_bin(name: str) -> str:
    return f"/usr/lib/postgresql/15/bin/{name}"
