"""Operations emails as finance reads them: built without Airflow or a server."""

from __future__ import annotations

import email
import email.policy

import pytest

from finflows import emails, files

BASE = "http://airflow.example:8080/"


def rejection() -> Exception:
    """What bad_input_fails_without_retry raises: Airflow's exception raised from the rejection."""
    rejected = files.FileRejected(
        "s3://finflows-cashfiles/cashfiles/CashFile20261130.dat rejected and quarantined, nothing loaded:\n"
        "CashFile20261130.dat line 7, field amount, value '12*4': is not a signed amount",
        flow="cashfile_import",
        file_name="CashFile20261130.dat",
        source_uri="s3://finflows-cashfiles/cashfiles/CashFile20261130.dat",
        quarantined="s3://finflows-cashfiles/quarantine/CashFile20261130.dat",
    )
    try:
        raise RuntimeError(str(rejected)) from rejected
    except RuntimeError as failure:
        return failure


def test_a_rejected_file_is_named_with_its_outcome_copy_report_and_next_step():
    mail = emails.failure_email(
        dag_id="cashfile_import",
        task_id="import_file",
        run_id="manual__2026-12-01T08:00:00",
        map_index=1,
        try_number=1,
        exception=rejection(),
        base_url=BASE,
    )
    assert mail.subject == "[finflows] cashfile_import: CashFile20261130.dat REJECTED"
    text = mail.text
    assert text.startswith(
        "cashfile_import rejected the file CashFile20261130.dat and quarantined at "
        "s3://finflows-cashfiles/quarantine/CashFile20261130.dat; nothing of it was loaded."
    )
    assert "What was wrong (rule layout):\n" in text and "line 7, field amount, value '12*4'" in text
    assert (
        "Error report (every line, field and value): "
        "s3://finflows-cashfiles/quarantine/CashFile20261130.dat.error.json" in text
    )
    assert "Next step: Correct the file" in text and "same name to s3://finflows-cashfiles/cashfiles/" in text
    run = "http://airflow.example:8080/dags/cashfile_import/runs/manual__2026-12-01T08%3A00%3A00"
    assert f"The run: {run}\n" in text
    assert f"The task's log: {run}/tasks/import_file/mapped/1\n" in text
    assert f'<a href="{run}">' in mail.html and "value &#x27;12*4&#x27;" in mail.html


def test_any_other_failure_names_task_error_run_and_what_to_do():
    mail = emails.failure_email(
        dag_id="bank_payments",
        task_id="upload",
        run_id="scheduled__2026-12-01",
        map_index=-1,
        try_number=4,
        exception=ConnectionError("sftp.mega: timed out"),
        base_url=BASE,
    )
    assert mail.subject == "[finflows] FAILED bank_payments.upload (scheduled__2026-12-01)"
    assert "The task upload of bank_payments failed (try 4)" in mail.text
    assert "sftp.mega: timed out" in mail.text and "clear the task" in mail.text
    assert mail.text.endswith(
        "The task's log: http://airflow.example:8080/dags/bank_payments/runs/scheduled__2026-12-01/tasks/upload\n"
    )


def test_the_message_has_a_plain_text_part_first_and_html_beside_it():
    mail = emails.failure_email(
        dag_id="cashfile_import",
        task_id="import_file",
        run_id="r",
        map_index=0,
        try_number=1,
        exception=rejection(),
        base_url=BASE,
    )
    raw = mail.message(sender="finflows@example.org", to=["ops@example.org"]).as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content() == mail.text
    assert msg["To"] == "ops@example.org" and msg["Subject"] == mail.subject


def test_a_long_report_is_cut_in_the_email_and_points_to_the_report():
    rejected = files.FileRejected(
        "\n".join(f"line {i}, field x, value 'y': bad" for i in range(100)),
        flow="card_reconciliation",
        file_name="E.txt",
        source_uri="s3://b/statements/E.txt",
        quarantined="s3://b/quarantine/E.txt",
    )
    failure = RuntimeError("x")
    failure.__cause__ = rejected
    mail = emails.failure_email(
        dag_id="card_reconciliation",
        task_id="load",
        run_id="r",
        map_index=None,
        try_number=1,
        exception=failure,
        base_url=BASE,
    )
    assert "line 39," in mail.text and "line 40," not in mail.text
    assert "… 60 more line(s) in the report" in mail.text


def test_a_control_character_in_a_subject_is_shown_escaped_never_sent_raw():
    from finflows.emails import Email, header_safe

    assert header_safe("file a\r\nBcc: x@evil.test.json failed") == "file a\\r\\nBcc: x@evil.test.json failed"
    msg = Email("[finflows] cb\nX.json REJECTED", ("body",)).message(sender="a@b.c", to=["d@e.f"])
    assert "\n" not in msg["Subject"] and "Bcc" not in msg


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("TimeoutError: timed out connecting to 10.1.2.3:22", "did not answer in time"),
        ("ConnectionRefusedError: [Errno 111] Connection refused (sftp.bank.example:2222)", "refused the connection"),
        ("SSHException: Authentication failed for user finflows", "refused our login"),
        ("ValueError: something at host.internal", "the test failed (ValueError)"),
    ],
)
def test_a_connection_test_says_what_failed_without_the_address(error, words):
    from finflows.monitor_api import _in_words

    said = _in_words(error)
    assert words in said and not any(h in said for h in ("10.1.2.3", "sftp.bank.example", "host.internal", "finflows"))


def test_a_rejected_file_is_told_in_its_flows_own_word():
    """The email says what the flow did not do as the flow says it (``InboxFlow.nothing``, carried
    by the rejection): no DAG id is special-cased."""
    for flow, word in (("chargeback_export", "exported"), ("some_new_flow", "posted"), ("cashfile_import", "read")):
        rejected = files.FileRejected(
            "bad", flow=flow, file_name="f.json", source_uri="s3://b/incoming/f.json", nothing=word
        )
        mail = emails.failure_email(
            dag_id=flow, task_id="t", run_id="r", map_index=None, try_number=1, exception=rejected, base_url=BASE
        )
        assert f"; nothing of it was {word}." in mail.text, mail.text
