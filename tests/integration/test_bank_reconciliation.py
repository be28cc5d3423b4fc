"""bank_reconciliation against the real stack: the bank's return file on its SFTP server, PGP, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest

from finflows.flows.banking import reconciliation
from finflows.formats import ach
from tests.helpers import payments as pay
from tests.helpers import tch

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")
MONDAY = dt.date(2026, 11, 23)
ARCHIVE = os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive")


@pytest.fixture
def paid(clean_payments, pg, db, cfg, local_dir):
    """Three payments through Mega, uploaded: (references, their batch's file name)."""
    refs = pay.add(pg, "mega", 3, due=MONDAY, amount=5000)
    pay.pay_bank(db, cfg, "mega", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "mega")
    return refs, batch_file


def ach_return(pg, cfg, batch_file: str, reasons: dict | None = None, drop: int = 0, **kw) -> bytes:
    data = pay.return_file(pg, cfg, batch_file, reasons, **kw)
    return data[: len(data) - drop] if drop else data


def test_a_return_as_the_clearing_house_lays_it_out_returns_the_right_payment(paid, pg, db, cfg, local_dir, s3_hook):
    """Mega lists only returned items (no success code): the swapped ACHR01 returns one payment with
    its reason and meaning; the others wait for the return window and then settle."""
    refs, batch_file = paid
    plain = ach_return(pg, cfg, batch_file, {refs[1]: "04"})
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    pay.drop_return(local_dir, "mega", "unrelated.txt", b"not ours to read")

    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["outcome"], out["settled"], out["returned"], out["unmatched"], out["mismatch"]) == (
        "applied",
        0,
        1,
        0,
        0,
    )
    assert out["alerts"] == [f"{refs[1]} returned by mega: 04 no such account (無此帳號)"]
    assert pay.statuses(pg, refs) == {refs[0]: "uploaded", refs[1]: "returned", refs[2]: "uploaded"}
    row = pg.execute(
        "SELECT r.return_reason, r.return_meaning, r.original_date, r.original_seq, p.return_reason "
        "FROM pay.return_line r JOIN pay.payment p ON p.id = r.payment_id"
    ).fetchone()
    assert row == ("04", "04 no such account (無此帳號)", MONDAY, 2, "04")
    assert s3_hook.check_for_key("bank-reconciliation/mega/2026-11-23/ACHR01_017_20261123_01.txt", ARCHIVE)
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"  # the next run skips it

    mega = cfg.bank("mega")  # return window: 2 business days after Monday's processing date
    assert reconciliation.settle_unreturned(db, mega, dt.date(2026, 11, 25), "test") == []  # Wednesday: still open
    assert reconciliation.settle_unreturned(db, mega, dt.date(2026, 11, 26), "test") == sorted([refs[0], refs[2]])
    assert pay.statuses(pg, refs) == {refs[0]: "settled", refs[1]: "returned", refs[2]: "settled"}
    why = pg.execute(
        "SELECT detail FROM pay.payment_event e JOIN pay.payment p ON p.id = e.payment_id "
        "WHERE p.reference = %s AND e.to_status = 'settled'",
        (refs[0],),
    ).fetchone()[0]
    assert why == "settled: no return within 2 business day(s)"


def test_a_bank_that_lists_every_item_settles_by_its_success_code(clean_payments, pg, db, cfg, local_dir):
    refs = pay.add(pg, "ctbc", 3, due=MONDAY)
    pay.pay_bank(db, cfg, "ctbc", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "ctbc")
    plain = pay.return_file(pg, cfg, batch_file, {refs[2]: "22"}, paid="00")
    pay.drop_return(local_dir, "ctbc", "REC_20261123_1.txt", pay.encrypt_as_bank("ctbc", plain))
    [out] = pay.reconcile(db, cfg, "ctbc", today=MONDAY)
    assert (out["settled"], out["returned"]) == (2, 1)
    assert pay.statuses(pg, refs) == {refs[0]: "settled", refs[1]: "settled", refs[2]: "returned"}
    assert reconciliation.settle_unreturned(db, cfg.bank("ctbc"), dt.date(2026, 12, 31), "test") == []


def test_a_return_is_matched_by_the_original_date_and_sequence_across_a_days_batches(
    clean_payments, pg, db, cfg, local_dir
):
    """Two batches on one day: PSEQ runs on, so each return finds its own payment."""
    first = pay.add(pg, "mega", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "mega", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    second = pay.add(pg, "mega", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "mega", now=dt.datetime.combine(MONDAY, dt.time(7), tzinfo=TAIPEI))
    seqs = dict(
        pg.execute("SELECT reference, seq FROM pay.payment WHERE reference = ANY(%s)", (first + second,)).fetchall()
    )
    assert sorted(seqs.values()) == [1, 2, 3, 4]
    batch_files = sorted(pay.uploaded(local_dir, "mega"))
    plain = pay.return_file(pg, cfg, batch_files[1], {second[1]: "23"})
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["returned"] == 1 and pay.statuses(pg, [second[1]]) == {second[1]: "returned"}


@pytest.mark.parametrize(
    ("case", "make", "reason"),
    [
        (
            "another key signed",
            lambda plain: pay.encrypt_as_bank("mega", plain, signer="ctbc"),
            "signed by another key",
        ),
        ("unsigned", lambda plain: pay.encrypt_as_bank("mega", plain, sign=False), "signature is missing"),
        ("not encrypted", lambda plain: sign_only("mega", plain), "signed but not encrypted"),
        ("wrong key", lambda plain: pay.encrypt_as_bank("mega", plain, recipient="esun"), "cannot decrypt"),
        ("truncated", None, "does not end with CRLF"),
    ],
)
def test_a_file_that_cannot_be_trusted_or_read_is_quarantined_and_applies_nothing(
    paid, pg, db, cfg, local_dir, s3_hook, case, make, reason
):
    refs, batch_file = paid
    returns = dict.fromkeys(refs, "04")
    if make is None:  # cut in the middle of the trailer
        data = pay.encrypt_as_bank("mega", ach_return(pg, cfg, batch_file, returns, drop=100))
    else:
        data = make(ach_return(pg, cfg, batch_file, returns))
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", data)
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["outcome"] == "quarantined" and reason in out["error"], out
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}  # nothing applied
    assert pg.execute("SELECT count(*) FROM pay.return_line").fetchone()[0] == 0
    assert pg.execute("SELECT status FROM ops.file_control WHERE flow = 'bank_reconciliation'").fetchone()[0] == "ERROR"
    q = quarantined_at(pg)
    assert q.startswith("bank-reconciliation/quarantine/mega/ACHR01_017_20261123_01.txt")  # + a time if taken
    assert s3_hook.read_key(f"{q}.error.json", ARCHIVE)
    assert s3_hook.get_conn().get_object(Bucket=ARCHIVE, Key=q)["Body"].read() == data  # kept as received
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"  # not retried until the bank sends another file


@pytest.mark.parametrize(
    ("change", "line", "field", "value"),
    [
        ({"RCODE": "00"}, 2, "return_reason", "'00'"),  # Mega sends no success code
        ({"RCODE": "  "}, 2, "return_reason", "(blank)"),
        ({"TYPE": "N"}, 2, "record_type", "'N'"),
        ({"PSEQ": "00000O01"}, 2, "original_seq", "'00000O01'"),
        ({"PDATE": "01150231"}, 2, "original_date", "'01150231'"),  # 31 February
    ],
)
def test_a_return_that_breaks_the_clearing_houses_rules_is_quarantined_naming_line_field_value(
    paid, pg, db, cfg, local_dir, s3_hook, change, line, field, value
):
    refs, batch_file = paid
    plain = ach_return(pg, cfg, batch_file, {refs[0]: "04"})
    records = plain.split(b"\r\n")
    offsets = {"RCODE": 70, "TYPE": 0, "PSEQ": 107, "PDATE": 99}  # 0-based starts in the public layout
    ((name, text),) = change.items()
    at = offsets[name]
    records[1] = records[1][:at] + text.encode() + records[1][at + len(text) :]
    assert len(records[1]) == 250
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", b"\r\n".join(records)))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["outcome"] == "quarantined", out
    assert f"line {line}, field {field}, value {value}" in out["error"], out["error"]
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    report = json.loads(s3_hook.read_key(f"{quarantined_at(pg)}.error.json", ARCHIVE))
    assert {"line": line, "field": field}.items() <= report["errors"][0].items()


def test_unknown_transaction_is_unmatched_and_alerts_while_the_rest_applies(paid, pg, db, cfg, local_dir):

    refs, batch_file = paid
    mega = cfg.bank("mega")
    stranger = tch.payment_detail(
        seq=77,
        txid="405",
        pbank=mega.sending_unit,
        pclno=mega.presenting_account,
        rbank="8120023",
        rclno="1",
        amount=77,
        cid=cfg.originator.company_id,
        pid="Z000000009",
        cno="NOTOURS1",
    )
    extra = [tch.return_of(stranger, seq=0, rcode="04", pdate=MONDAY)]
    plain = ach_return(pg, cfg, batch_file, {refs[0]: "24"}, extra=extra)
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["returned"], out["unmatched"]) == (1, 1)
    assert any("match no payment" in a for a in out["alerts"])
    assert pg.execute("SELECT reference, detail FROM pay.return_line WHERE outcome = 'unmatched'").fetchall() == [
        ("NOTOURS1", "no payment of ours was presented at this bank as 2026-11-23 #77")
    ]


def test_a_mismatched_amount_over_five_percent_of_a_batch_alerts(paid, pg, db, cfg, local_dir):
    refs, batch_file = paid
    plain = ach_return(pg, cfg, batch_file, dict.fromkeys(refs, "04"))
    records = plain.split(b"\r\n")
    records[1] = records[1][:60] + b"0000005001" + records[1][70:]  # the bank says 5,001 where we sent 5,000
    records[-2] = records[-2][:39] + b"0000000000015001" + records[-2][55:]
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", b"\r\n".join(records)))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["returned"], out["mismatch"]) == (2, 1)
    assert any("1 of 3 payment(s) mismatched (33%)" in a for a in out["alerts"]), out["alerts"]
    assert pay.statuses(pg, refs)[refs[0]] == "uploaded"  # a mismatch settles nothing


def test_a_reference_that_is_not_the_payment_at_that_date_and_sequence_is_a_mismatch(paid, pg, db, cfg, local_dir):
    refs, batch_file = paid
    plain = ach_return(pg, cfg, batch_file, {refs[0]: "04"})
    plain = plain.replace(tch.cno(refs[0]).encode(), tch.cno(refs[1]).encode())  # CNO names another payment of ours
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", pay.encrypt_as_bank("mega", plain))
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert (out["returned"], out["mismatch"]) == (0, 1)
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}


def test_a_duplicate_file_changes_nothing(paid, pg, db, cfg, local_dir):
    refs, batch_file = paid
    data = pay.encrypt_as_bank("mega", ach_return(pg, cfg, batch_file, dict.fromkeys(refs, "04")))
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", data)
    pay.reconcile(db, cfg, today=MONDAY)
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_02.txt", data)  # the bank sends it again, renamed
    outs = {o["file_name"]: o for o in pay.reconcile(db, cfg, today=MONDAY)}
    assert outs["ACHR01_017_20261123_01.txt"]["outcome"] == "seen"
    assert outs["ACHR01_017_20261123_02.txt"]["duplicate"] == 3 and outs["ACHR01_017_20261123_02.txt"]["returned"] == 0
    assert set(pay.statuses(pg, refs).values()) == {"returned"}
    assert pg.execute("SELECT count(*) FROM pay.payment_event WHERE to_status = 'returned'").fetchone()[0] == 3


def test_csv_return_file(clean_payments, pg, db, cfg, local_dir):
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "esun", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "esun")
    plain = ach.write_return_csv(*pay.returns_for(pg, batch_file, {refs[0]: "04"}), "cp950")
    pay.drop_return(local_dir, "esun", "ESUN_REC_20261123.csv", pay.encrypt_as_bank("esun", plain))
    [out] = pay.reconcile(db, cfg, "esun", today=MONDAY)
    assert (out["settled"], out["returned"]) == (1, 1)
    assert pay.statuses(pg, refs) == {refs[0]: "returned", refs[1]: "settled"}


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-1500", "15OO"])
def test_a_csv_return_line_without_a_real_amount_quarantines_the_file(clean_payments, pg, db, cfg, local_dir, amount):
    refs = pay.add(pg, "esun", 2, due=MONDAY)
    pay.pay_bank(db, cfg, "esun", now=dt.datetime.combine(MONDAY, dt.time(6), tzinfo=TAIPEI))
    [batch_file] = pay.uploaded(local_dir, "esun")
    good = ach.write_return_csv(*pay.returns_for(pg, batch_file), "cp950").decode("cp950").split("\r\n")
    cells = good[2].split(",")
    cells[ach.RETURN_CSV_COLUMNS.index("amount")] = amount
    plain = "\r\n".join([*good[:2], ",".join(cells), *good[3:]]).encode("cp950")
    pay.drop_return(local_dir, "esun", "ESUN_REC_20261123.csv", pay.encrypt_as_bank("esun", plain))
    [out] = pay.reconcile(db, cfg, "esun", today=MONDAY)
    assert out["outcome"] == "quarantined" and f"line 3, field amount, value '{amount}'" in out["error"]
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}  # nothing applied, not even the good line


def test_an_uploaded_batch_without_reconciliation_alerts_once_after_the_day_closes(paid, db):
    _refs, batch_file = paid
    before_close = dt.datetime.combine(MONDAY, dt.time(17, 59), tzinfo=TAIPEI)
    after_close = dt.datetime.combine(MONDAY, dt.time(18, 0), tzinfo=TAIPEI)
    assert reconciliation.unreconciled_batches(db, before_close, dt.time(18)) == []
    [alert] = reconciliation.unreconciled_batches(db, after_close, dt.time(18))
    assert batch_file in alert
    assert reconciliation.unreconciled_batches(db, after_close + dt.timedelta(hours=1), dt.time(18)) == []


def test_the_operator_applies_a_banks_return_file_once_and_reports_its_lineage(paid, pg, cfg, local_dir):
    """BankReturnFileOperator run as providers test theirs: ``execute(context)``; the return file is
    built from the public ACHR01 layout and encrypted and signed with the bank's own keyring."""
    from finflows.operators.bank import BankReturnFileOperator

    refs, batch_file = paid
    name = "ACHR01_017_20261123_01.txt"
    pay.drop_return(
        local_dir, "mega", name, pay.encrypt_as_bank("mega", ach_return(pg, cfg, batch_file, {refs[0]: "04"}))
    )
    op = BankReturnFileOperator(task_id="reconcile_bank", bank_id="mega")
    out = op.execute({"run_id": "operator-test"})

    [f] = out["files"]
    assert (f["file_name"], f["outcome"], f["returned"]) == (name, "applied", 1)
    # today is well past Monday's 2-business-day return window: the two unanswered payments settle
    assert out["settled_unreturned"] == 2
    assert pay.statuses(pg, refs) == {refs[0]: "returned", refs[1]: "settled", refs[2]: "settled"}
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"file://127.0.0.1:{os.environ['FINFLOWS_SFTP_PORT']}", f"download/{name}")
    ]
    pg_ns = f"postgres://127.0.0.1:{os.environ['FINFLOWS_POSTGRES_PORT']}"
    assert {(d.namespace, d.name) for d in lineage.outputs} == {
        (pg_ns, "finance.pay.return_line"),
        (pg_ns, "finance.pay.payment"),
    }

    again = BankReturnFileOperator(task_id="reconcile_bank", bank_id="mega")  # the next poll
    assert [f["outcome"] for f in again.execute({"run_id": "operator-test-2"})["files"]] == ["seen"]
    assert again.get_openlineage_facets_on_complete(None).inputs == []


def quarantined_at(pg) -> str:
    """Where the last quarantined return file's copy was kept (a second bad file of a name gets its own key)."""
    uri = pg.execute(
        "SELECT source_uri FROM ops.file_control WHERE flow = 'bank_reconciliation' AND status = 'ERROR'"
    ).fetchone()[0]
    return uri.removeprefix(f"s3://{ARCHIVE}/")


def sign_only(bank: str, plain: bytes) -> bytes:
    """A file the bank signed and forgot to encrypt."""
    from devstack import secrets
    from finflows import pgp

    key = secrets.pgp_keys()[bank]
    with pgp.keyring() as ring:
        ring.add(key["secret"], key["fingerprint"], bank)
        return ring.gpg.sign(plain, keyid=key["fingerprint"], binary=True).data


def test_a_compression_bomb_is_refused_at_the_limit_and_never_read_again(
    paid, pg, db, cfg, local_dir, s3_hook, monkeypatch
):
    refs, _ = paid
    monkeypatch.setenv("FINFLOWS_PGP_PLAINTEXT_MAX_BYTES", str(1 << 20))  # 1 MiB here; 64 MiB by default
    data = pay.gpg_bomb("mega", 64 << 20)  # 64 MiB of plaintext in a file of a few tens of KB
    assert len(data) < 1 << 20
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", data)
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["outcome"] == "quarantined" and "over the limit of 1,048,576 bytes" in out["error"], out
    assert set(pay.statuses(pg, refs).values()) == {"uploaded"}
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"


def test_a_file_over_the_size_limit_is_refused_by_its_size_without_reading_it(
    paid, pg, db, cfg, local_dir, monkeypatch
):
    monkeypatch.setenv("FINFLOWS_BANK_FILE_MAX_BYTES", "1000")
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", b"x" * 5000)
    [out] = pay.reconcile(db, cfg, today=MONDAY)
    assert out["outcome"] == "quarantined" and "over the limit of 1,000" in out["error"], out
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "seen"  # the same file is not tried again
    pay.drop_return(local_dir, "mega", "ACHR01_017_20261123_01.txt", b"y" * 6000)  # the bank sends another
    assert pay.reconcile(db, cfg, today=MONDAY)[0]["outcome"] == "quarantined"


class Killed(BaseException):
    """Stands for the worker being killed inside the reader: nothing after it runs in this process."""


def test_a_reader_that_breaks_in_any_way_quarantines_the_file_and_the_next_one_still_goes_through(
    paid, pg, db, cfg, local_dir, s3_hook
):
    import os

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from finflows.flows.banking import reconciliation

    refs, batch_file = paid
    good = pay.encrypt_as_bank("mega", ach_return(pg, cfg, batch_file, dict.fromkeys(refs, "04")))
    args = {
        "bank": cfg.bank("mega"),
        "s3_hook": S3Hook(aws_conn_id="aws_finflows"),
        "archive_bucket": os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
        "run_id": "test",
        "today": MONDAY,
    }

    def explodes(_data: bytes, _day) -> bytes:
        raise MemoryError  # what python-gnupg met with a 3 GiB bomb

    out = reconciliation.process_file(db, name="A.txt", data=b"first", decrypt=explodes, **args)
    assert out.outcome == "quarantined" and "MemoryError" in out.error

    def killed(_data: bytes, _day) -> bytes:
        raise Killed

    with pytest.raises(Killed):
        reconciliation.process_file(db, name="B.txt", data=b"second", decrypt=killed, **args)
    again = reconciliation.process_file(db, name="B.txt", data=b"second", decrypt=killed, **args)
    assert again.outcome == "quarantined" and "a run stopped while decrypting or reading" in again.error

    with banking_decrypter(cfg) as decrypt:
        applied = reconciliation.process_file(db, name="C.txt", data=good, decrypt=decrypt, **args)
    assert applied.outcome == "applied" and applied.returned == len(refs)


def banking_decrypter(cfg):
    from finflows.flows.banking import common

    return common.decrypter(cfg, cfg.bank("mega"))
