"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="chargeback_export",
            expected_minutes=30,
            trigger="S3 ObjectCreated on `incoming/*.json` (S3 → SQS → asset watcher), or by hand",
            what="chargeback JSON → one CSV per card company, ≤ 4 files a batch → FTPS/FTP (`.part`, size check, rename) → SNS + email",
            tags=("finance", "chargebacks", "cards", "event-driven"),
        ),
    ),
    settings=(
        Setting("CHARGEBACK_BUCKET", "finflows-chargebacks", "where chargeback files land (incoming/)", bucket=True),
        Setting(
            "CHARGEBACK_QUEUE_URL",
            "https://sqs.eu-west-2.amazonaws.com/123456789012/chargeback-events",
            "the SQS queue of the bucket's ObjectCreated events",
            compose="http://aws:5000/123456789012/chargeback-events",
        ),
        Setting(
            "CHARGEBACK_TOPIC_ARN",
            "arn:aws:sns:eu-west-2:123456789012:chargeback-notifications",
            "the SNS topic told of each export",
        ),
        Setting("CHARGEBACK_MAX_BYTES", str(64 << 20), "the largest chargeback file taken"),
    ),
    tables=("ops.delivery",),
)
