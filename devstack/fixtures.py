"""Local-only data chores shared by the tests, the demo and the benchmarks. Never used by a flow."""

from __future__ import annotations

CASH_TABLES = ("ifs.cash_payment", "ifs.cash_suspense", "ifs.cashfile_text")


def forget_cash_files(conn, names: list[str]) -> None:
    """Remove every trace of these cash files so a test or demo can import them afresh."""
    for table in CASH_TABLES:
        conn.execute(
            f"DELETE FROM {table} WHERE file_id IN (SELECT id FROM ops.file_control "
            "WHERE flow = 'cashfile_import' AND file_name = ANY(%s))",
            (names,),
        )
    conn.execute("DELETE FROM ops.file_event WHERE flow = 'cashfile_import' AND file_name = ANY(%s)", (names,))
    conn.execute("DELETE FROM ops.file_control WHERE flow = 'cashfile_import' AND file_name = ANY(%s)", (names,))


def seed_rent_accounts(conn, refs: list[str], rent_group: str = "HousingRevenue") -> None:
    for ref in refs:
        conn.execute(
            "INSERT INTO ifs.rent_account (payment_ref, rent_group) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (ref, rent_group),
        )


def forget_chargeback_file(conn, name: str) -> None:
    """Forget an exported chargeback input (and its deliveries) so the demo can export it again."""
    conn.execute("DELETE FROM ops.delivery WHERE flow = 'chargeback_export' AND source_file = %s", (name,))
    conn.execute("DELETE FROM ops.file_event WHERE flow = 'chargeback_export' AND file_name = %s", (name,))
    conn.execute("DELETE FROM ops.file_control WHERE flow = 'chargeback_export' AND file_name = %s", (name,))


def seed_tenure_accounts(conn, accounts: dict[str, tuple[str, str]]) -> None:
    """Rent accounts for tenures: {payment_ref: (tenure_id, rent_group)}."""
    for ref, (tenure_id, rent_group) in accounts.items():
        conn.execute(
            "INSERT INTO ifs.rent_account (payment_ref, tenure_id, rent_group) VALUES (%s, %s, %s) "
            "ON CONFLICT (payment_ref) DO UPDATE SET tenure_id = EXCLUDED.tenure_id, rent_group = EXCLUDED.rent_group",
            (ref, tenure_id, rent_group),
        )


def forget_tenures(conn, tenure_ids: list[str]) -> None:
    """Forget what tenure_sync applied for these tenures so the demo can apply them afresh."""
    conn.execute("DELETE FROM ops.tenure_event WHERE tenure_id = ANY(%s::uuid[])", (tenure_ids,))
    conn.execute("DELETE FROM ops.tenure_sync_state WHERE tenure_id = ANY(%s::uuid[])", (tenure_ids,))
    conn.execute("DELETE FROM ifs.tenancy WHERE tenure_id = ANY(%s::uuid[])", (tenure_ids,))
    conn.execute("DELETE FROM ifs.rent_account WHERE tenure_id = ANY(%s)", (tenure_ids,))


def forget_statement(conn, name: str) -> None:
    """Forget a loaded card statement (facts, events, control row) so the demo can load it again."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM ops.file_control WHERE flow = 'card_reconciliation' AND file_name = %s", (name,)
        ).fetchall()
    ]
    conn.execute("DELETE FROM card.fact_transaction WHERE file_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM ops.file_event WHERE flow = 'card_reconciliation' AND file_name = %s", (name,))
    conn.execute("DELETE FROM ops.file_control WHERE id = ANY(%s)", (ids,))


def forget_payments(conn, reference_prefix: str) -> list[tuple[str, str]]:
    """Remove payments whose reference starts with the prefix, with their batches, transfers and
    audit rows, so the demo can pay them afresh. Returns (bank, file name) of the batches removed."""
    like = reference_prefix.replace("%", r"\%") + "%"
    batches = conn.execute(
        "SELECT DISTINCT b.id, b.bank, b.file_name FROM pay.batch b JOIN pay.payment p ON p.batch_id = b.id "
        "WHERE p.reference LIKE %s",
        (like,),
    ).fetchall()
    ids = [b[0] for b in batches]
    conn.execute(
        "DELETE FROM pay.payment_event WHERE payment_id IN (SELECT id FROM pay.payment WHERE reference LIKE %s)",
        (like,),
    )
    conn.execute(  # returns the demo's reconciliation matched to them (a second `make demo` met them)
        "DELETE FROM pay.return_line WHERE payment_id IN (SELECT id FROM pay.payment WHERE reference LIKE %s) "
        "OR batch_id = ANY(%s)",
        (like, ids),
    )
    conn.execute("DELETE FROM pay.payment WHERE reference LIKE %s", (like,))
    conn.execute("DELETE FROM pay.transfer WHERE batch_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM pay.transfer_retry WHERE batch_id = ANY(%s)", (ids,))
    conn.execute(
        "DELETE FROM pay.batch_event WHERE batch_id = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pay.payment p WHERE p.batch_id = pay.batch_event.batch_id)",
        (ids,),
    )
    conn.execute(
        "DELETE FROM pay.batch WHERE id = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pay.payment p WHERE p.batch_id = pay.batch.id)",
        (ids,),
    )
    return [(b[1], b[2]) for b in batches]


def forget_orphan_uploads(conn) -> list[str]:
    """Remove files in the local banks' upload directories that no batch in pay.batch made (left by
    tests, which truncate the payment tables), so a new batch of the same name is not refused as a
    conflict. The local stand-in only: the bank's side of the exchange."""
    from devstack.config import BANKS, LOCAL

    known = {(b, n) for b, n in conn.execute("SELECT bank, file_name FROM pay.batch").fetchall()}
    removed = []
    for bank in BANKS:
        for f in (LOCAL / "sftp" / bank / "upload").glob("*"):
            if (bank, f.name.removesuffix(".part")) not in known:
                f.unlink()
                removed.append(f"{bank}/{f.name}")
    return removed + forget_orphan_send_records(conn)


def forget_orphan_send_records(conn) -> list[str]:
    """Remove the local archive's write-once send records of batches pay.batch no longer has (the
    demo forgets its own payments, the tests truncate), with their void markers: else they stop the
    same references, or a new batch of the same name, as "sent according to the archive record".
    The local stand-in only: in production the records are under object lock and nothing removes them."""
    import json

    from finflows import settings
    from finflows.flows.banking import sent_records
    from finflows.task_support import s3_hook

    known = {(b, n, i) for b, n, i in conn.execute("SELECT bank, file_name, id FROM pay.batch").fetchall()}
    s3, bucket = s3_hook().get_conn(), settings.archive_bucket()
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sent_records.PREFIX + "/")
        for obj in page.get("Contents", [])
    ]
    removed = []
    for key in (k for k in keys if not k.endswith(".void.json")):
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if (body["bank"], body["file_name"], int(body["batch_id"])) not in known:
            removed.append(key)
    void = [k for k in keys if k.endswith(".void.json") and k.removesuffix(".void.json") + ".json" not in keys]
    for key in removed + [k.removesuffix(".json") + ".void.json" for k in removed] + void:
        if key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
    return sorted(set(removed + void))
