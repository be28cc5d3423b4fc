"""Payments for tests: rows in pay.payment, the bank side's keys, files on the banks' SFTP."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from pathlib import Path

_n = itertools.count(1)


def clean(pg) -> None:
    """No payment state from an earlier test: each run pays every bank's pending payments. The
    archive's send records go with the batches they record (else an earlier test's file, under
    the same name and batch id, stops this test's as "sent according to the archive record")."""
    from devstack.fixtures import forget_orphan_send_records

    pg.execute(
        "TRUNCATE pay.return_line, pay.payment_event, pay.batch_event, pay.transfer, pay.transfer_retry, pay.payment, "
        "pay.batch, pay.attention, pay.decision_request, "
        "pay.health_check, pay.circuit RESTART IDENTITY"
    )
    forget_orphan_send_records(pg)


def add(
    pg,
    bank: str,
    count: int = 1,
    *,
    due: dt.date,
    name: str = "王小明",
    amount: int | None = None,
    memo: str = "貨款",
    payee_bank: str = "0081005",
    ref_prefix: str | None = None,
    account: str | None = None,
) -> list[str]:
    """Insert ``count`` pending payments; returns their references (unique per call)."""
    prefix = ref_prefix or f"P{uuid.uuid4().hex[:8].upper()}"
    refs = []
    with pg.cursor() as cur:
        for i in range(count):
            ref = f"{prefix}-{i:05d}"
            cur.execute(
                """INSERT INTO pay.payment (reference, bank, payee_bank, payee_account, payee_id, payee_name, memo,
                                            amount, due_date)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    ref,
                    bank,
                    payee_bank,
                    account or f"{next(_n):012d}",
                    f"A{i:09d}",
                    name,
                    memo,
                    amount if amount is not None else 1000 + i,
                    due,
                ),
            )
            refs.append(ref)
    return refs


def statuses(pg, refs: list[str]) -> dict[str, str]:
    rows = pg.execute("SELECT reference, status FROM pay.payment WHERE reference = ANY(%s)", (refs,)).fetchall()
    return dict(rows)


def bank_keys(bank: str) -> dict:
    from devstack import secrets

    keys = secrets.pgp_keys()
    return {"bank": keys[bank], "ours": keys["finflows"]}


def decrypt_as_bank(bank: str, data: bytes) -> bytes:
    """What the bank does: decrypt with its key, and insist on our good signature."""
    from finflows import pgp

    keys = bank_keys(bank)
    with pgp.keyring() as ring:
        ring.add(keys["bank"]["secret"], keys["bank"]["fingerprint"], f"{bank} secret key")
        ring.add(keys["ours"]["public"], keys["ours"]["fingerprint"], "our public key")
        return ring.decrypt_and_verify(data, keys["ours"]["fingerprint"], None)


def uploaded(local_dir: Path, bank: str) -> dict[str, bytes]:
    """Files in the bank's SFTP upload directory, by name."""
    return {p.name: p.read_bytes() for p in sorted((local_dir / "sftp" / bank / "upload").iterdir())}


def clear_uploads(local_dir: Path) -> None:
    from devstack.config import BANKS

    for bank in BANKS:
        for p in (local_dir / "sftp" / bank / "upload").iterdir():
            p.unlink()


def encrypt_as_bank(
    bank: str, plain: bytes, *, signer: str | None = None, recipient: str = "finflows", sign: bool = True
) -> bytes:
    """What the bank sends: encrypted to our key (or ``recipient``'s), signed with its key (or ``signer``'s)."""
    from devstack import secrets
    from finflows import pgp

    keys = secrets.pgp_keys()
    signer = signer or bank
    with pgp.keyring() as ring:
        ring.add(keys[signer]["secret"], keys[signer]["fingerprint"], signer)
        ring.add(keys[recipient]["public"], keys[recipient]["fingerprint"], recipient)
        if sign:
            return ring.encrypt_and_sign(plain, keys[recipient]["fingerprint"], keys[signer]["fingerprint"], None)
        result = ring.gpg.encrypt(plain, [keys[recipient]["fingerprint"]], armor=False, always_trust=True)
        return result.data


def _batch_rows(pg, batch_file: str):
    return pg.execute(
        "SELECT p.reference, p.payee_bank, p.payee_account, p.amount::bigint, p.payee_id, p.seq, p.txn_code, "
        "b.processing_date, b.bank FROM pay.payment p JOIN pay.batch b ON b.id = p.batch_id WHERE b.file_name = %s "
        "ORDER BY p.seq",
        (batch_file,),
    ).fetchall()


def return_file(
    pg,
    cfg,
    batch_file: str,
    reasons: dict[str, str] | None = None,
    *,
    paid: str | None = None,
    day: dt.date | None = None,
    extra: list[dict] | None = None,
) -> bytes:
    """The ACHR01 the payee's bank sends for a batch of ours, built from the public layout by
    tests/helpers/tch.py (not by our writer): one R detail per payment in ``reasons`` (reference →
    reason code), and for the others a detail with ``paid`` where the bank lists paid items too
    (none where it lists returns only). ``extra``: further details as they are."""
    from tests.helpers import tch

    rows = _batch_rows(pg, batch_file)
    bank = cfg.bank(rows[0][-1])
    details = []
    for ref, unit, acct, amount, pid, seq, txn, processing_date, _ in rows:
        reason = (reasons or {}).get(ref, paid)
        if reason is None:
            continue
        original = tch.payment_detail(
            seq=seq,
            txid=txn or bank.default_txn_code,
            pbank=bank.sending_unit,
            pclno=bank.presenting_account,
            rbank=unit,
            rclno=acct,
            amount=amount,
            cid=cfg.originator.company_id,
            pid=pid,
            cno=tch.cno(ref),
        )
        details.append(tch.return_of(original, seq=len(details) + 1, rcode=reason, pdate=processing_date))
    details += [d | {"SEQ": len(details) + i} for i, d in enumerate(extra or [], start=1)]
    processing_date = rows[0][7]
    return tch.file("ACHR01", day or processing_date, rows[0][1], details, ydate=processing_date - dt.timedelta(days=3))


def returns_for(pg, batch_file: str, reasons: dict[str, str] | None = None, paid: str | None = "00"):
    """(Payment, reason) for the payments of a batch as a CSV bank answers them, and the batch's day."""
    from finflows.formats import ach

    rows = _batch_rows(pg, batch_file)
    out = []
    for ref, unit, acct, amount, pid, seq, _txn, _day, _bank in rows:
        reason = (reasons or {}).get(ref, paid)
        if reason is not None:
            out.append((ach.Payment(seq, ref, unit, acct, int(amount), pid, "", ""), reason))
    return out, rows[0][7]


def drop_return(local_dir: Path, bank: str, name: str, data: bytes) -> None:
    (local_dir / "sftp" / bank / "download" / name).write_bytes(data)


def clean_reconciliation(pg, local_dir: Path) -> None:
    from devstack.config import BANKS

    pg.execute("TRUNCATE pay.return_line")
    pg.execute("DELETE FROM ops.file_event WHERE flow = 'bank_reconciliation'")
    pg.execute("DELETE FROM ops.file_control WHERE flow = 'bank_reconciliation'")
    for bank in BANKS:
        for p in (local_dir / "sftp" / bank / "download").iterdir():
            p.unlink()


def pay_bank(
    db,
    cfg,
    bank: str,
    *,
    now=None,
    sftp_conn: str | None = None,
    attempts: int = 1,
    s3_hook=None,
    circuit=None,
    backoff: float = 0.01,
    run_id: str = "test",
    sftp_hook=None,
):
    """payments.pay_bank as the DAG task runs it, with the connections' keys and hooks (the
    provider's ``SFTPHook`` on ``sftp_conn`` unless ``sftp_hook`` is given)."""
    import os

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    from finflows.flows.banking import common as banking
    from finflows.flows.banking import payments

    b = cfg.bank(bank)
    with banking.encrypter(cfg, b) as encrypt:
        return payments.pay_bank(
            db,
            cfg=cfg,
            bank_id=bank,
            now=now,
            run_id=run_id,
            transport=payments.Transport(
                s3_hook=s3_hook or S3Hook(aws_conn_id="aws_finflows"),
                sftp_hook=sftp_hook or SFTPHook(ssh_conn_id=sftp_conn or b.sftp_conn_id),
                archive_bucket=os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
                attempts=attempts,
                backoff=backoff,
            ),
            encrypt=encrypt,
            circuit=circuit,
        )


def reconcile(db, cfg, bank: str = "mega", *, today) -> list[dict]:
    """bank_reconciliation's task body without Airflow's context: list, download, decrypt, verify, apply."""
    import os

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from finflows.flows.banking import common as banking
    from finflows.flows.banking import reconciliation

    b = cfg.bank(bank)
    with banking.decrypter(cfg, b) as decrypt, banking.sftp(b).get_managed_conn() as client:
        outcomes = reconciliation.reconcile_files(
            db,
            client,
            bank=b,
            decrypt=decrypt,
            s3_hook=S3Hook(aws_conn_id="aws_finflows"),
            archive_bucket=os.environ.get("FINFLOWS_ARCHIVE_BUCKET", "finflows-archive"),
            run_id="test",
            today=today,
        )
    return [o.__dict__ for o in outcomes]


def gpg_bomb(bank: str, size: int) -> bytes:
    """A signed and encrypted file whose plaintext is ``size`` zero bytes: gpg's own command line
    streams it from /dev/zero and compresses it (zlib, level 9), as a hostile sender would."""
    import subprocess

    from devstack import secrets
    from finflows import pgp

    keys = secrets.pgp_keys()
    with pgp.keyring() as ring:
        ring.add(keys[bank]["secret"], keys[bank]["fingerprint"], bank)
        ring.add(keys["finflows"]["public"], keys["finflows"]["fingerprint"], "finflows")
        zeros = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
        out = subprocess.run(
            ["gpg", "--homedir", ring.home, "--batch", "--trust-model", "always", "--compress-algo", "zlib", "-z", "9",
             "-u", keys[bank]["fingerprint"], "-r", keys["finflows"]["fingerprint"], "-s", "-e"],
            stdin=zeros.stdout, capture_output=True, check=True,
        )  # fmt: skip
        zeros.wait()
        return out.stdout
