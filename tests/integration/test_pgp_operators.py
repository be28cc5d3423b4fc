"""PgpHook and the PGP operators, run as providers test theirs: ``execute(context)`` against the
real stack (moto S3, OpenSSH sftp, gpg). What they write is checked by the other side's own
keyring (``tests.helpers.payments``: the partner's secret key, not our hook)."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers.payments import decrypt_as_bank, encrypt_as_bank

pytestmark = pytest.mark.integration
BUCKET = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")
PARTNER = "mega"  # the local bank whose key stands in for the example partner (pgp_example_partner)


def test_a_key_that_does_not_carry_its_pin_is_refused_before_use(monkeypatch):
    from finflows.hooks.pgp import PgpHook
    from finflows.pgp import PgpError

    wrong = "0" * 40
    with (
        pytest.raises(
            PgpError, match=f"connection pgp_example_partner: the key holds .*, the configuration pins {wrong}"
        ),
        PgpHook("pgp_finflows").session(PgpHook("pgp_example_partner", fingerprint=wrong)),
    ):
        pass
    extra = json.loads(os.environ["AIRFLOW_CONN_PGP_EXAMPLE_PARTNER"])
    extra["extra"].pop("fingerprint")
    monkeypatch.setenv("AIRFLOW_CONN_PGP_EXAMPLE_PARTNER", json.dumps(extra))
    with pytest.raises(PgpError, match="pgp_example_partner: no fingerprint to pin the key to"):
        PgpHook("pgp_example_partner").key()
    assert PgpHook("pgp_example_partner").test_connection()[0] is False
    assert PgpHook("pgp_finflows").test_connection()[0] is True


def test_encrypt_operator_writes_what_the_partner_decrypts_and_our_signature_verifies(s3_hook, unique):
    from finflows.operators.pgp import PgpEncryptOperator

    plain = f"partner file {unique}\n".encode() * 100
    s3_hook.load_bytes(plain, key=f"partners/{unique}/plain.csv", bucket_name=BUCKET)
    op = PgpEncryptOperator(
        task_id="encrypt",
        source=f"s3://{BUCKET}/partners/{unique}/plain.csv",
        dest=f"s3://{BUCKET}/partners/{unique}/out.pgp",
        peer_pgp_conn_id="pgp_example_partner",
    )
    assert op.execute({}) == f"s3://{BUCKET}/partners/{unique}/out.pgp"  # the XCom: a URI, never the data
    sent = s3_hook.get_key(f"partners/{unique}/out.pgp", bucket_name=BUCKET).get()["Body"].read()
    assert plain not in sent
    assert decrypt_as_bank(PARTNER, sent) == plain  # the partner's keyring insists on our signature


def test_decrypt_operator_accepts_only_the_partners_signature_and_writes_nothing_otherwise(s3_hook, unique):
    from finflows.operators.pgp import PgpDecryptOperator
    from finflows.pgp import SignatureError

    plain = f"statement {unique}\n".encode()
    for name, signer in (("good", PARTNER), ("forged", "first")):
        data = encrypt_as_bank(PARTNER, plain, signer=signer)
        s3_hook.load_bytes(data, key=f"partners/{unique}/{name}.pgp", bucket_name=BUCKET)

    def op(name: str) -> PgpDecryptOperator:
        return PgpDecryptOperator(
            task_id="decrypt",
            source=f"s3://{BUCKET}/partners/{unique}/{name}.pgp",
            dest=f"s3://{BUCKET}/partners/{unique}/{name}.csv",
            peer_pgp_conn_id="pgp_example_partner",
        )

    op("good").execute({})
    assert s3_hook.read_key(f"partners/{unique}/good.csv", bucket_name=BUCKET).encode() == plain
    with pytest.raises(SignatureError, match="signed by another key"):  # signed by a key we do not hold
        op("forged").execute({})
    assert not s3_hook.check_for_key(f"partners/{unique}/forged.csv", bucket_name=BUCKET)
    with pytest.raises(FileExistsError, match=r"good\.csv exists"):  # nothing overwritten unless asked
        op("good").execute({})


def test_decrypt_operator_reads_from_the_partners_sftp_server(s3_hook, local_dir, unique):
    from finflows.operators.pgp import PgpDecryptOperator

    plain = f"from sftp {unique}\n".encode()
    (local_dir / "sftp" / PARTNER / "download" / f"{unique}.pgp").write_bytes(encrypt_as_bank(PARTNER, plain))
    PgpDecryptOperator(
        task_id="decrypt",
        source=f"sftp://sftp_{PARTNER}/download/{unique}.pgp",
        dest=f"s3://{BUCKET}/partners/{unique}/from-sftp.csv",
        peer_pgp_conn_id="pgp_example_partner",
    ).execute({})
    assert s3_hook.read_key(f"partners/{unique}/from-sftp.csv", bucket_name=BUCKET).encode() == plain


def test_the_example_dag_runs_end_to_end(s3_hook, unique):
    import datetime as dt

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils.state import DagRunState

    from tests.helpers.dags import DAGS

    bag = DagBag(dag_folder=str(DAGS / "examples"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["example_partner_exchange"]
    DagBundlesManager().sync_bundles_to_db()  # as dag.test() does: run alone, no earlier test made the bundle
    sync_bag_to_db(bag, "dags-folder", None)  # dag.test() runs serialized DAGs; .airflowignore hides this one
    day = dt.datetime(2031, 1, 1, 6, tzinfo=dt.UTC) + dt.timedelta(days=sum(map(ord, unique)) % 3000)
    plain = f"partner data {unique}\n".encode()
    key = f"partners/acme/in/{day:%Y%m%d}.csv.pgp"
    s3_hook.load_bytes(encrypt_as_bank(PARTNER, plain), key=key, bucket_name=BUCKET, replace=True)
    assert dag.test(logical_date=day).state == DagRunState.SUCCESS
    reply = s3_hook.get_key(f"partners/acme/out/{day:%Y%m%d}.reply.pgp", bucket_name=BUCKET).get()["Body"].read()
    assert decrypt_as_bank(PARTNER, reply) == plain


def test_production_does_not_load_the_examples():
    from airflow.dag_processing.dagbag import DagBag

    from tests.helpers.dags import DAGS

    assert "examples/" in (DAGS / ".airflowignore").read_text().split()
    assert "example_partner_exchange" not in DagBag(dag_folder=str(DAGS)).dags


def test_a_key_saved_by_the_connections_form_is_read_like_one_written_as_json(monkeypatch):
    """The form's fields (``finflows.provider``: public_key, private_key, fingerprint) may come back
    prefixed ``extra__pgp__``; the hook reads both spellings, and still refuses a wrong pin."""
    from finflows.hooks.pgp import PgpHook

    conn = json.loads(os.environ["AIRFLOW_CONN_PGP_EXAMPLE_PARTNER"])
    conn["extra"] = {f"extra__pgp__{k}": v for k, v in conn["extra"].items()}
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FORM", json.dumps(conn))
    ok, message = PgpHook("pgp_form").test_connection()
    assert ok and conn["extra"]["extra__pgp__fingerprint"] in message
    conn["extra"]["extra__pgp__fingerprint"] = "0" * 40
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FORM", json.dumps(conn))
    assert PgpHook("pgp_form").test_connection()[0] is False


def test_a_key_whose_line_breaks_a_single_line_field_dropped_is_rebuilt_and_still_pinned(monkeypatch):
    """Pasted into a one-line input, an armoured key arrives with spaces for line breaks; the hook
    rebuilds the armour (gpg checks its CRC and the pin), and refuses one whose armour headers
    cannot be told from its body."""
    from finflows.hooks.pgp import PgpHook

    conn = json.loads(os.environ["AIRFLOW_CONN_PGP_EXAMPLE_PARTNER"])
    armored = conn["extra"]["public_key"]
    assert armored.count("\n") > 5
    flat = " ".join(armored.split("\n"))  # what a single-line input keeps
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FLAT", json.dumps(conn | {"extra": conn["extra"] | {"public_key": flat}}))
    ok, message = PgpHook("pgp_flat").test_connection()
    assert ok and conn["extra"]["fingerprint"] in message, message
    pinned_elsewhere = conn["extra"] | {"public_key": flat, "fingerprint": "0" * 40}
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FLAT", json.dumps(conn | {"extra": pinned_elsewhere}))
    assert PgpHook("pgp_flat").test_connection()[0] is False  # rebuilt, and still held to its pin
    headed = flat.replace(
        "-----BEGIN PGP PUBLIC KEY BLOCK----- ", "-----BEGIN PGP PUBLIC KEY BLOCK----- Comment: ours "
    )
    monkeypatch.setenv("AIRFLOW_CONN_PGP_FLAT", json.dumps(conn | {"extra": conn["extra"] | {"public_key": headed}}))
    ok, message = PgpHook("pgp_flat").test_connection()
    assert not ok and "lost its line breaks" in message and "pgp_flat" in message
