"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="cashfile_import",
            expected_minutes=30,
            trigger="S3 ObjectCreated on `cashfiles/*.dat` (S3 → SQS → asset watcher) + daily 07:00 Europe/London sweep",
            what="CivicaPay cash file → finance Google Drive folder + interim finance DB (payments, suspense, raw lines)",
            tags=("finance", "cash", "event-driven", "daily"),
        ),
    ),
    settings=(
        Setting(
            "CASHFILE_BUCKET", "finflows-cashfiles", "where CivicaPay's cash files arrive (cashfiles/)", bucket=True
        ),
        Setting(
            "CASHFILE_QUEUE_URL",
            "https://sqs.eu-west-2.amazonaws.com/123456789012/cashfile-events",
            "the SQS queue of the bucket's ObjectCreated events",
            compose="http://aws:5000/123456789012/cashfile-events",
        ),
        Setting("FINANCE_DRIVE_FOLDER", "finance-cashfiles", "the finance Google Drive folder each file is copied to"),
        Setting("CASHFILE_MAX_BYTES", str(256 << 20), "the largest cash file taken (a day's is a few MB)"),
        Setting(
            "CASHFILE_SFTP_DROP",
            "",
            "a directory on sftp_civicapay to sweep into the bucket; empty: files arrive in S3",
        ),
    ),
    tables=(
        "ifs.cash_payment",
        "ifs.cash_suspense",
        "ifs.cashfile_text",
    ),
)
