"""Every local stand-in is reached over a socket through the Airflow hook production uses,
and what arrived is checked on the other side."""

from __future__ import annotations

import ftplib
import io
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

pytestmark = pytest.mark.integration


def test_sftp_upload_lands_in_the_counterpartys_chroot(sftp_hook, local_dir: Path, unique: str):
    hook = sftp_hook("civicapay")
    hook.store_file(f"/outbound/probe-{unique}.dat", io.BytesIO(b"0001234567\n"))
    assert (local_dir / "sftp" / "civicapay" / "outbound" / f"probe-{unique}.dat").read_bytes() == b"0001234567\n"
    # each counterparty sees only its own directory
    assert "upload" in sftp_hook("mega").list_directory("/")
    assert "outbound" not in sftp_hook("mega").list_directory("/")


def test_sftp_refuses_a_server_whose_host_key_does_not_match(monkeypatch):
    import paramiko
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    conn = json.loads(os.environ["AIRFLOW_CONN_SFTP_CIVICAPAY"])
    wrong = paramiko.Ed25519Key.from_private_key_file(conn["extra"]["key_file"])  # a key that is not the host's
    conn["extra"]["host_key"] = f"ssh-ed25519 {wrong.get_base64()}"
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_IMPOSTOR", json.dumps(conn))
    with pytest.raises(paramiko.SSHException, match=r"not found in known_hosts|does not match"):
        SFTPHook(ssh_conn_id="sftp_impostor").list_directory("/")


def test_ftps_transfers_over_verified_tls(ftps_hook, local_dir: Path, unique: str):
    hook = ftps_hook("acquirer")
    hook.store_file(f"/Saida/probe-{unique}", io.BytesIO(b"A0 header"))
    assert (local_dir / "ftps" / "acquirer" / "Saida" / f"probe-{unique}").read_bytes() == b"A0 header"
    conn = hook.get_conn()
    assert isinstance(conn.sock, ssl.SSLSocket)
    subject = dict(attr for rdn in conn.sock.getpeercert()["subject"] for attr in rdn)  # verified: else empty
    assert subject["commonName"] == "localhost" and subject["organizationName"] == "finflows local stack"


def test_ftps_refuses_a_certificate_from_an_untrusted_ca(ftps_hook, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        ftps_hook("visa").get_conn()


def test_plain_ftp_for_card_companies_that_use_it(local_dir: Path, unique: str):
    from finflows.hooks.ftp import FTPHook

    hook = FTPHook(ftp_conn_id="ftp_mastercard")
    hook.store_file(f"inbound/probe-{unique}.csv", io.BytesIO(b"case_id\n"))
    buf = io.BytesIO()
    hook.retrieve_file(f"inbound/probe-{unique}.csv", buf)
    with pytest.raises(ftplib.error_perm, match="553"):  # vsftpd's default: the chroot root is not writable
        hook.store_file(f"probe-{unique}.csv", io.BytesIO(b"case_id\n"))
    hook.close_conn()
    assert buf.getvalue() == b"case_id\n"
    assert (local_dir / "ftp" / "mastercard" / "inbound" / f"probe-{unique}.csv").exists()


def test_the_ftp_servers_are_vsftpd_and_the_sftp_server_is_openssh():
    from devstack import stack

    for name, exe in (("sftp", "sshd"), ("ftps", "vsftpd"), ("ftp", "vsftpd")):
        pid = stack._read_pid(name)
        assert Path(f"/proc/{pid}/exe").resolve().name == exe, name


def test_vsftpd_requires_tls_session_reuse_which_the_provider_hook_lacks_and_ours_has(unique: str):
    """The provider's FTPSHook opens data connections without the control connection's TLS session:
    vsftpd's default (require_ssl_reuse=YES) refuses them with 522. Ours reuses it, over TLS 1.3 and 1.2."""
    from airflow.providers.ftp.hooks.ftp import FTPSHook as ProviderFTPSHook

    provider = ProviderFTPSHook(ftp_conn_id="ftps_acquirer")
    try:
        with pytest.raises(ftplib.error_perm, match="522"):
            provider.list_directory("/Saida")
    finally:
        provider.get_conn().close()
    from finflows.hooks.ftp import FTPSHook

    for version, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):

        class Pinned(FTPSHook):
            def tls_context(self, _v=version) -> ssl.SSLContext:
                ctx = super().tls_context()
                ctx.minimum_version = ctx.maximum_version = _v
                return ctx

        hook = Pinned(ftp_conn_id="ftps_acquirer")
        try:
            assert hook.get_conn().sock.version() == name
            hook.store_file(f"/Saida/reuse-{unique}-{version.name}", io.BytesIO(b"A0"))
            assert f"/Saida/reuse-{unique}-{version.name}" in hook.list_directory("/Saida")
        finally:
            hook.close_conn()


def test_s3_object_created_reaches_sqs_with_an_url_encoded_key(s3_hook, drain_queue, unique: str):
    url = os.environ["FINFLOWS_CASHFILE_QUEUE_URL"]
    drain_queue(url, wait=0)
    bucket = os.environ["FINFLOWS_CASHFILE_BUCKET"]
    s3_hook.load_bytes(b"x", key=f"cashfiles/Cash File {unique}.dat", bucket_name=bucket, replace=True)
    s3_hook.load_bytes(b"x", key=f"cashfiles/readme-{unique}.txt", bucket_name=bucket, replace=True)  # filtered out
    bodies = [json.loads(m["Body"]) for m in drain_queue(url, wait=3)]
    s3_hook.delete_objects(bucket=bucket, keys=[f"cashfiles/Cash File {unique}.dat", f"cashfiles/readme-{unique}.txt"])
    raw = [r["s3"]["object"]["key"] for b in bodies for r in b.get("Records", [])]
    assert raw and all(" " not in k for k in raw)  # keys arrive URL-encoded, as from AWS
    keys = [unquote_plus(k) for k in raw]
    assert f"cashfiles/Cash File {unique}.dat" in keys
    assert not any(unique in k and k.endswith(".txt") for k in keys)


def test_the_local_buckets_carry_the_production_lifecycle_rules(s3_hook):
    """deploy/s3/lifecycle.json, applied by the stack as production applies it: cash files imported
    (or duplicates) expire after 30 days, as the seeds ask; a file still waiting or quarantined
    is never removed by age before a person has seen it."""
    rules = s3_hook.get_conn().get_bucket_lifecycle_configuration(Bucket=os.environ["FINFLOWS_CASHFILE_BUCKET"])
    got = {(r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules["Rules"]}
    assert got == {("processed/", 30, "Enabled"), ("duplicates/", 30, "Enabled"), ("quarantine/", 365, "Enabled")}
    archive = s3_hook.get_conn().get_bucket_lifecycle_configuration(Bucket=os.environ["FINFLOWS_ARCHIVE_BUCKET"])
    assert ("tenure-events/", 90) in {(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in archive["Rules"]}


def test_sns_topic_fans_out_to_its_sqs_queue(sns_client, drain_queue, unique: str):
    url = os.environ["FINFLOWS_TENURE_QUEUE_URL"]
    drain_queue(url, wait=0)
    arn = next(t["TopicArn"] for t in sns_client.list_topics()["Topics"] if t["TopicArn"].endswith(":tenure-events"))
    sns_client.publish(TopicArn=arn, Message=json.dumps({"probe": unique}))
    assert {"probe": unique} in [json.loads(m["Body"]) for m in drain_queue(url, wait=3)]


def test_postgres_migrations_are_recorded_and_applied_once(pg_dsn: str):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from finflows.migrations import apply_migrations

    hook = PostgresHook(postgres_conn_id="postgres_finance")
    recorded = [r[0] for r in hook.get_records("SELECT name FROM public.schema_migrations ORDER BY version")]
    on_disk = sorted(p.name for p in (Path(__file__).parents[2] / "include" / "sql").glob("*.sql"))
    assert recorded == on_disk
    assert apply_migrations(pg_dsn, Path(__file__).parents[2] / "include" / "sql") == []


def test_a_changed_migration_is_refused(pg_dsn: str, tmp_path: Path):
    from finflows.migrations import MigrationError, apply_migrations

    src = Path(__file__).parents[2] / "include" / "sql" / "0001_ops.sql"
    (tmp_path / "0001_ops.sql").write_text(src.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationError, match=r"0001_ops\.sql changed after it was applied"):
        apply_migrations(pg_dsn, tmp_path)


def test_sheets_round_trip_through_the_google_client(sheets, unique: str):
    book = sheets.create_spreadsheet(
        {"properties": {"title": f"probe {unique}"}, "sheets": [{"properties": {"title": "Tab One"}}]}
    )
    sid = book["spreadsheetId"]
    sheets.update_values(sid, "'Tab One'!A1:C1", [["Payment Ref", "Tenure", "Start Date"]])
    sheets.append_values(sid, "'Tab One'!A:C", [["1234567890", "T-1", "2026-01-01"]])
    sheets.append_values(sid, "'Tab One'!A:C", [["1234567891", "T-2", "2026-02-01"]])
    assert sheets.get_values(sid, "'Tab One'!A2:C") == [
        ["1234567890", "T-1", "2026-01-01"],
        ["1234567891", "T-2", "2026-02-01"],
    ]
    sheets.batch_update_values(sid, ranges=["'Tab One'!B3"], values=[[["T-2b"]]])
    assert sheets.get_values(sid, "'Tab One'!B3")[0] == ["T-2b"]


def test_google_standin_refuses_requests_without_a_token():
    port = os.environ["AIRFLOW_CONN_GOOGLE_FINFLOWS"]
    endpoint = json.loads(port)["extra"]["api_endpoint"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{endpoint}/v4/spreadsheets/interim-finance-accounts")
    assert err.value.code == 401


def test_drive_upload_and_download_through_the_google_client(drive, tmp_path: Path, unique: str):
    src = tmp_path / f"CashFile{unique}.dat"
    src.write_bytes(b"0001234567CIVICAPAY           DD1+000123.4501/02/202307\n")
    file_id = drive.upload_file(local_location=str(src), remote_location=src.name, folder_id="finance-cashfiles")
    assert drive.exists(folder_id="finance-cashfiles", file_name=src.name)
    assert drive.get_conn().files().get_media(fileId=file_id).execute() == src.read_bytes()


def test_smtp_message_is_stored_in_the_sink(mailbox, unique: str):
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    before = mailbox.names()
    with SmtpHook(smtp_conn_id="smtp_finflows") as hook:
        hook.send_email_smtp(
            to="treasury@finance.local",
            subject=f"probe {unique}",
            html_content="<p>hello</p>",
            from_email="finflows@finance.local",
        )
    msg = mailbox.wait_for(lambda m: m["Subject"] == f"probe {unique}", since=before)
    assert msg["To"] == "treasury@finance.local"
    assert "hello" in msg.get_body(("html",)).get_content()


def test_sheets_standin_tabs_seeded_alike_do_not_share_rows(sheets):
    """A fresh stand-in seeds every tab with the same header: a write to one must not reach another."""
    import os

    book = os.environ["FINFLOWS_INTERIM_SPREADSHEET"]
    sheets.update_values(book, "TravelGenFund!N1", [["probe"]])
    try:
        assert sheets.get_values(book, "TravelGenFund!N1") == [["probe"]]
        assert sheets.get_values(book, "GarParkHRA!N1") == []
    finally:
        sheets.clear(book, "TravelGenFund!N1")


class _NoSessionReuse:
    """What the provider's FTPSHook does: data connections without the control connection's TLS session."""

    @staticmethod
    def hook(conn_id: str):
        from finflows.hooks.ftp import FTPSHook

        class NoReuse(FTPSHook):
            ftp_class = ftplib.FTP_TLS

        return NoReuse(ftp_conn_id=conn_id)


def test_a_refused_data_connection_keeps_its_522_error_and_leaves_no_part_file(local_dir: Path, unique: str):
    from finflows import transfer

    hook = _NoSessionReuse.hook("ftps_visa")
    try:
        with pytest.raises(ftplib.error_perm, match="522"):
            transfer.ftp_upload_atomic(hook, "/inbound", f"cb-{unique}.csv", b"case_id\n")
    finally:
        hook.close_conn()  # never raises: the 522 above is what the task, its log and its email report
    assert hook.conn is None
    assert not list((local_dir / "ftps" / "visa" / "inbound").glob(f"cb-{unique}*"))  # no 0-byte .part left


def test_closing_a_connection_that_never_opened_or_died_does_not_hide_the_error(monkeypatch):
    from finflows.hooks.ftp import FTPSHook

    ours = os.environ["SSL_CERT_FILE"]
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")  # our local CA untrusted
    hook = FTPSHook(ftp_conn_id="ftps_acquirer")

    def list_then_close() -> None:
        try:
            hook.list_directory("/Saida")
        finally:
            hook.close_conn()  # the provider's raised AttributeError: 'NoneType' object has no attribute 'quit'

    with pytest.raises(ssl.SSLCertVerificationError):
        list_then_close()
    live = FTPSHook(ftp_conn_id="ftps_acquirer")
    monkeypatch.setenv("SSL_CERT_FILE", ours)
    live.get_conn().sock.close()  # the control connection dies under us
    live.close_conn()  # quietly: no EOFError in place of whatever ended the work
    assert live.conn is None
