"""This flow's one declaration (``finflows.flowspec``): its DAGs, the minutes each may take, the README's words, the settings it reads."""

from __future__ import annotations

from finflows.flowspec import Dag, Flow, Setting

SPEC = Flow(
    dags=(
        Dag(
            dag_id="bank_payments",
            expected_minutes=540,  # 06:00 Taipei until the earliest cutoff (14:30): it waits for the approvers
            trigger="daily 06:00 Asia/Taipei, or by hand (`banks` param: `all`, or the banks picked from the configured ones; an empty choice is refused)",
            what="pending payments (`pay.payment`) → per bank (a mapped task group, each bank on its own): **prepare** (batches of ≤ 5,000 / 10 MB by the bank's cutoff → TCH ACHP01 (Big5, byte-exact) or CSV → PGP encrypt + sign → archive to S3) → **approve** (a second person, in Required Actions) → **upload** (SFTP `.part`, size check, rename) → treasury email",
            tags=("finance", "banking", "daily", "pii"),
        ),
        Dag(
            dag_id="bank_transfer_retry",
            expected_minutes=20,
            trigger="hourly :15 Asia/Taipei, or by hand (`everything` param)",
            what="queued transfers (`pay.transfer_retry`) delivered from their archived bytes, and half-sent batches a stopped worker left settled by asking the server; after the bank's cutoff a batch whose record proves nothing reached the bank is cancelled and its payments roll to the next business day; an uncertain one waits for treasury (see Operations)",
            tags=("finance", "banking", "operations"),
        ),
        Dag(
            dag_id="bank_reconciliation",
            expected_minutes=20,
            trigger="every 30 min, 08:00–18:30 Asia/Taipei, Mon–Fri",
            what="per bank: new return files (ACHR01 / CSV) on its SFTP → decrypt, verify the bank's signature (else quarantine + alert) → one transaction: returns matched by PDATE/PSEQ, settled / returned (reason and meaning) payments, unmatched / mismatch / duplicate lines kept in `pay.return_line`; unreturned payments settle after the bank's return window → alerts (unmatched, > 5% of a batch mismatched, batch unanswered after 18:00)",
            tags=("finance", "banking", "pii"),
        ),
        Dag(
            dag_id="bank_health",
            expected_minutes=4,
            trigger="every 5 min (Asia/Taipei)",
            what="per bank: SFTP login + stat of the upload directory, latency and result in `pay.health_check`; 3 failures in a row open the bank's circuit (`pay.circuit`, email): bank_payments skips the bank and says so, the retry queue waits; after 5 min one good check closes it",
            tags=("banking", "operations"),
        ),
        Dag(
            dag_id="treasury_decisions",
            expected_minutes=250,  # a run waits up to 4 hours for its questions' answers
            trigger="every 10 min (Asia/Taipei)",
            what="every money decision a person makes, one Required Action each (Browse → Required Actions): an uncertain delivery (the bank has it / resend), a held possible duplicate (release / cancel), a given-up batch before its cutoff (re-queue / cancel), any other attention-list row (resolved, saying how); assigned to the approvers less the batch's maker; the answer, who and when kept on the batch or payment and in `pay.decision_request`; unanswered for 4 hours, asked again",
            tags=("banking", "finance"),
        ),
        Dag(
            dag_id="finance_daily_report",
            expected_minutes=15,
            trigger="daily 19:00 Asia/Taipei, or by hand for a `day`",
            what="the day per bank: files and NTD sent / not delivered, returns settled / returned / unmatched / mismatched, quarantined files, transfer failures, health checks and p95 latency, circuits, payments still pending → HTML email with an inline PNG chart; report, chart, figures and a sha256-verified manifest of the day's files archived under `finance-daily/DAY/`",
            tags=("finance", "banking", "daily", "operations"),
        ),
    ),
    settings=(
        Setting("BANKS_FILE", "{include}/banking/banks.yaml", "the banks, their formats, cutoffs and keys"),
        Setting(
            "TREASURY_EMAIL",
            "treasury@example.org",
            "who gets the banks' emails (comma separated)",
            compose="treasury@finance.local",
        ),
        Setting(
            "PAYMENT_APPROVERS",
            "",
            "Airflow users (or role:NAME) who approve batches and decide about money; never a batch's maker",
            helm="REPLACE",
        ),
        Setting("BANK_UPLOAD_ATTEMPTS", "3", "tries of one SFTP upload inside a task before the retry queue"),
        Setting("BANK_UPLOAD_BACKOFF", "2", "seconds before the second try, doubled after"),
        Setting("BANK_RETRY_LIMIT", "12", "hourly retries of a queued transfer before a person decides"),
        Setting("BANK_RETRY_QUEUE_ALERT", "100", "transfers waiting in the retry queue past which treasury is alerted"),
        Setting("BANK_SESSION_WAIT", "900", "seconds a transfer waits for one of its bank's SFTP sessions"),
        Setting("BUSINESS_DAY_CLOSE", "18:00", "Taipei time after which an unreconciled uploaded batch is alerted"),
        Setting("BANK_CIRCUIT_FAILURES", "3", "consecutive failed health checks that open a bank's circuit"),
        Setting("BANK_CIRCUIT_HALF_OPEN_AFTER", "300", "seconds an open circuit waits before a check may close it"),
        Setting("DUPLICATE_WINDOW_DAYS", "7", "days within which a repeated payee, account and amount is held"),
        Setting("SENT_RECORD_WINDOW_DAYS", "14", "processing days of write-once send records checked before sending"),
        Setting("APPROVAL_MARGIN_MINUTES", "30", "minutes before a bank's cutoff an unanswered approval expires"),
        Setting("APPROVAL_MAX_WAIT_MINUTES", "0", "the longest an approval waits, when sooner (0: until the margin)"),
        Setting("BANK_FILE_MAX_BYTES", str(10 << 20), "the largest return file taken from a bank's server"),
    ),
    tables=(
        "pay.payment",
        "pay.batch",
        "pay.transfer",
        "pay.transfer_retry",
        "pay.return_line",
        "pay.health_check",
        "pay.circuit",
        "pay.decision_request",
        "pay.attention",
    ),
)
