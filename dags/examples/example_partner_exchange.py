"""Example: a new counterparty's daily file exchange from provider operators and ours only.

The partner drops an encrypted, signed file in S3; we wait for it (S3KeySensor), decrypt it and
insist on the partner's signature (PgpDecryptOperator), and send back an encrypted, signed reply
(PgpEncryptOperator); SmtpNotifier emails operations if a run fails. Keys: connections
``pgp_finflows`` (ours) and ``pgp_example_partner`` (theirs), each pinned by ``extra.fingerprint``.
Not loaded in production (``dags/.airflowignore``); the tests run it.
"""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG

from finflows import settings
from finflows.operators.pgp import PgpDecryptOperator, PgpEncryptOperator

BUCKET = settings.archive_bucket()
DAY = "{{ ds_nodash }}"

with DAG(
    dag_id="example_partner_exchange",
    description="Example: partner file in S3 → decrypted and verified → encrypted reply; daily 06:00 UTC",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
    default_args={"owner": "finance-data-engineering", "retries": 2},
    on_failure_callback=SmtpNotifier(
        smtp_conn_id="smtp_finflows",
        to=settings.ops_email(),
        subject="[finflows] {{ dag.dag_id }} failed on {{ ds }}",
    ),
):
    arrived = S3KeySensor(
        task_id="wait_for_file",
        bucket_name=BUCKET,
        bucket_key=f"partners/acme/in/{DAY}.csv.pgp",
        aws_conn_id="aws_finflows",
        poke_interval=60,
        timeout=6 * 3600,
        mode="reschedule",
    )
    decrypted = PgpDecryptOperator(
        task_id="decrypt_and_verify",
        source=f"s3://{BUCKET}/partners/acme/in/{DAY}.csv.pgp",
        dest=f"s3://{BUCKET}/partners/acme/plain/{DAY}.csv",
        peer_pgp_conn_id="pgp_example_partner",
        replace=True,
    )
    reply = PgpEncryptOperator(
        task_id="encrypt_reply",
        source=f"s3://{BUCKET}/partners/acme/plain/{DAY}.csv",
        dest=f"s3://{BUCKET}/partners/acme/out/{DAY}.reply.pgp",
        peer_pgp_conn_id="pgp_example_partner",
        replace=True,
    )
    arrived >> decrypted >> reply
