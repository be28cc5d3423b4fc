"""tenure_sync: tenure events → the interim finance spreadsheet and/or ``ifs.tenancy``.

Two steps, each safe to repeat:

``collect``
    Every message (those the asset watcher already took off the queue, then whatever is still
    on it) is parsed. A good event is stored in ``ops.tenure_event`` as *pending*; an event seen
    before (same event id, or the same SQS message redelivered) is not stored twice. A message
    that can never be applied (not JSON, wrong shape, unknown rent group) is sent to the
    dead-letter queue with its reason as a message attribute and recorded as *rejected*. A
    message is deleted from the queue only after its row is committed: nothing is lost between.

``apply``
    In one database transaction, with the pending rows locked: per tenure the newest pending
    version is applied to each target (``sheet``, ``database`` or ``both``) whose last applied
    version is older; everything older, or equal, becomes *stale* and changes nothing. An event
    whose tenure has no rent account yet stays pending (its attempts counted) for a later run.
    The spreadsheet is written last, in one read and one write request for all tabs; if it fails,
    the transaction rolls back and the events stay pending. Writing the same rows twice is
    harmless (upsert by Payment Ref), so a retry after a lost commit converges.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from typing import Any

from finflows.errors import FinflowsError
from finflows.formats.tenure import RENT_GROUPS, SHEET_HEADER, PoisonMessage, TenureEvent, parse_message
from finflows.pci import mask_pans
from finflows.seams import AwsClient, Conn, one

log = logging.getLogger(__name__)

TARGETS = ("sheet", "database", "both")
PROTECTION = "finflows tenure_sync: written by the flow only; change the source (MMH / accounts), not this sheet"
LAST_COLUMN = "M"


def targets_of(target: str) -> tuple[str, ...]:
    if target not in TARGETS:
        raise ValueError(f"tenure target must be one of {', '.join(TARGETS)}, not {target!r}")
    return ("sheet", "database") if target == "both" else (target,)


# ------------------------------------------------------------------------------------- collect
def collect(
    conn: Conn,
    sqs: AwsClient,
    *,
    queue_url: str,
    dlq_url: str,
    delivered: list[dict[str, Any]],
    run_id: str,
    max_messages: int = 10_000,
) -> dict[str, Any]:
    """Store every message as an event (or reject it); return counts (no personal data)."""
    counts: Counter[str] = Counter()
    if delivered:
        _record(conn, sqs, delivered, dlq_url, run_id, counts)
    received = 0
    while received < max_messages:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            break
        received += len(msgs)
        _record(conn, sqs, msgs, dlq_url, run_id, counts)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        failed = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:  # stored already; a redelivery is recognised by its message id
            log.warning("%d message(s) not deleted, they will be seen again: %s", len(failed), failed)
    summary = {"messages": len(delivered) + received, **{k: counts[k] for k in ("new", "duplicate", "rejected")}}
    log.info("collected %(messages)d message(s): %(new)d new, %(duplicate)d duplicate, %(rejected)d rejected", summary)
    return summary


def _record(
    conn: Conn, sqs: AwsClient, messages: list[dict[str, Any]], dlq_url: str, run_id: str, counts: Counter[str]
) -> None:
    good: list[tuple[dict[str, Any], TenureEvent]] = []
    bad: list[tuple[dict[str, Any], str]] = []
    for m in messages:
        try:
            good.append((m, parse_message(m.get("Body", ""))))
        except PoisonMessage as e:
            bad.append((m, str(e)[:1000]))
    with conn.transaction():
        for m, ev in good:
            cur = conn.execute(
                """INSERT INTO ops.tenure_event (message_id, event_id, event_type, tenure_id, version, occurred_at,
                                                 rent_group, snapshot, status, dag_run_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s) ON CONFLICT DO NOTHING""",
                (
                    m["MessageId"],
                    ev.event_id,
                    ev.event_type,
                    ev.tenure_id,
                    ev.version,
                    ev.occurred_at,
                    ev.tenure.rent_group,
                    json.dumps(ev.model_dump(mode="json", by_alias=True)),
                    run_id,
                ),
            )
            counts["new" if cur.rowcount else "duplicate"] += 1
        for m, reason in bad:
            cur = conn.execute(
                """INSERT INTO ops.tenure_event (message_id, status, reason, decided_at, dag_run_id)
                   VALUES (%s, 'rejected', %s, now(), %s) ON CONFLICT DO NOTHING""",
                (m["MessageId"], reason, run_id),
            )
            counts["rejected"] += 1
            log.warning("message %s rejected to the dead-letter queue: %s", m["MessageId"], reason)
            if cur.rowcount:  # a redelivered poison message is dead-lettered once
                _dead_letter(sqs, dlq_url, m, reason, run_id)


def _dead_letter(sqs: AwsClient, dlq_url: str, m: dict[str, Any], reason: str, run_id: str) -> None:
    """The refused message on the dead-letter queue as it came, but for any card number in it
    (masked in place, said in an attribute: the queue keeps messages for days, people read them)."""
    body = m.get("Body") or "(empty)"
    kept = mask_pans(body)
    attributes = {
        "reason": {"DataType": "String", "StringValue": reason},
        "sourceMessageId": {"DataType": "String", "StringValue": m["MessageId"]},
        "rejectedBy": {"DataType": "String", "StringValue": run_id[:200]},
    }
    if kept != body:
        attributes["cardNumbers"] = {"DataType": "String", "StringValue": "masked"}
    sqs.send_message(QueueUrl=dlq_url, MessageBody=kept, MessageAttributes=attributes)


# --------------------------------------------------------------------------------------- apply
class EventStatus(StrEnum):
    """``ops.tenure_event.status``."""

    PENDING = "pending"  # received, not yet written where it goes
    APPLIED = "applied"
    STALE = "stale"  # an older version than the one already written: kept, not applied
    REJECTED = "rejected"  # a message its layout refuses (also on the dead-letter queue)


@dataclass(frozen=True)
class Pending:
    message_id: str
    tenure_id: Any
    version: int
    snapshot: dict[str, Any]
    payment_ref: str | None
    sheet_version: int | None
    database_version: int | None

    @property
    def ref(self) -> str:
        """The rent account's payment reference: only an event whose account is known is applied."""
        if self.payment_ref is None:
            raise ValueError(f"tenure event {self.message_id}: no rent account yet, so it cannot be applied")
        return self.payment_ref


Applied = list[tuple[Pending, TenureEvent, tuple[str, ...]]]


def apply_pending(conn: Conn, *, target: str, run_id: str, sheet: SheetWriter | None) -> dict[str, Any]:
    """Apply the newest pending version of each tenure to the target(s); see the module doc."""
    wanted = targets_of(target)
    if "sheet" in wanted and sheet is None:
        raise ValueError("target includes the sheet but no sheet writer was given")
    counts: Counter[str] = Counter()
    with conn.transaction():
        applied, stale, waiting = _sort_pending(_pending(conn), wanted)
        if "database" in wanted:
            counts["database_rows"] = _upsert_tenancy(conn, [(p, ev) for p, ev, t in applied if "database" in t])
        _record_versions(conn, applied)
        _set_status(conn, [p.message_id for p, _e, _t in applied], EventStatus.APPLIED, run_id)
        _set_status(conn, stale, EventStatus.STALE, run_id)
        if waiting:
            conn.execute(
                "UPDATE ops.tenure_event SET attempts = attempts + 1, dag_run_id = %s WHERE message_id = ANY(%s)",
                (run_id, waiting),
            )
        oldest = one(
            conn.execute(
                "SELECT min(received_at) FROM ops.tenure_event WHERE status = 'pending' AND message_id = ANY(%s)",
                (waiting,),
            )
        )[0]
        sheet_rows = [
            (ev.tenure.rent_group, p.ref, ev.sheet_row(p.ref)) for p, ev, needed in applied if "sheet" in needed
        ]
        if sheet_rows:
            if sheet is None:
                raise ValueError(f"target {target} writes the sheet, but no sheet writer was given")
            counts["sheet_rows"] = sheet.write(sheet_rows)  # last: a failure here rolls everything back
    summary = {
        "target": target,
        "applied": len(applied),
        "stale": len(stale),
        "pending": len(waiting),
        "oldest_pending": oldest.isoformat() if oldest else None,
        "sheet_rows": counts["sheet_rows"],
        "database_rows": counts["database_rows"],
    }
    log.info(
        "target %(target)s: %(applied)d applied (%(sheet_rows)d sheet row(s), %(database_rows)d table row(s)), "
        "%(stale)d stale, %(pending)d waiting for their rent account",
        summary,
    )
    if waiting:
        log.warning("%d event(s) wait for a rent account; oldest received %s", len(waiting), summary["oldest_pending"])
    return summary


def _pending(conn: Conn) -> list[Pending]:
    """Every pending event, locked, with its tenure's rent account and the versions applied so far."""
    return [
        Pending(*r)
        for r in conn.execute(
            """SELECT e.message_id, e.tenure_id, e.version, e.snapshot, acc.payment_ref,
                      s.sheet_version, s.database_version
                 FROM ops.tenure_event e
                 LEFT JOIN LATERAL (SELECT a.payment_ref FROM ifs.rent_account a
                                     WHERE a.tenure_id = e.tenure_id::text
                                     ORDER BY a.created_at DESC LIMIT 1) acc ON true
                 LEFT JOIN ops.tenure_sync_state s ON s.tenure_id = e.tenure_id
                WHERE e.status = 'pending'
                ORDER BY e.tenure_id, e.version, e.occurred_at
                  FOR UPDATE OF e"""
        ).fetchall()
    ]


def _sort_pending(rows: list[Pending], wanted: tuple[str, ...]) -> tuple[Applied, list[str], list[str]]:
    """Per tenure, its newest version: to apply to the targets still behind it, or stale; every
    version of a tenure whose rent account is not known yet waits. Returns (to apply, stale, waiting)."""
    applied: Applied = []
    stale: list[str] = []
    waiting: list[str] = []
    for _tenure, group in groupby(rows, key=lambda p: p.tenure_id):
        events = list(group)
        latest = events[-1]
        if latest.payment_ref is None:
            waiting += [p.message_id for p in events]
            continue
        stale += [p.message_id for p in events[:-1]]
        done = {"sheet": latest.sheet_version or 0, "database": latest.database_version or 0}
        needed = tuple(t for t in wanted if latest.version > done[t])
        if needed:
            applied.append((latest, TenureEvent.model_validate(latest.snapshot), needed))
        else:
            stale.append(latest.message_id)
    return applied, stale, waiting


def _record_versions(conn: Conn, applied: Applied) -> None:
    """The version each target now has of each tenure (never lowered)."""
    for p, _ev, needed in applied:
        conn.execute(
            """INSERT INTO ops.tenure_sync_state (tenure_id, sheet_version, database_version)
               VALUES (%(t)s, %(s)s, %(d)s)
               ON CONFLICT (tenure_id) DO UPDATE SET
                   sheet_version = GREATEST(ops.tenure_sync_state.sheet_version, EXCLUDED.sheet_version),
                   database_version = GREATEST(ops.tenure_sync_state.database_version, EXCLUDED.database_version),
                   updated_at = now()""",
            {
                "t": p.tenure_id,
                "s": p.version if "sheet" in needed else None,
                "d": p.version if "database" in needed else None,
            },
        )


def _set_status(conn: Conn, message_ids: list[str], status: EventStatus, run_id: str) -> None:
    if message_ids:
        conn.execute(
            "UPDATE ops.tenure_event SET status = %s, decided_at = now(), dag_run_id = %s WHERE message_id = ANY(%s)",
            (status, run_id, message_ids),
        )


_UPSERT_TENANCY = """
    INSERT INTO ifs.tenancy (payment_ref, tenure_id, rent_group, tenure_type, start_date, end_date, property_ref,
                             short_address, address, post_code, num_bedrooms, title, forename, surname,
                             date_of_birth, version, event_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (payment_ref) DO UPDATE SET
        tenure_id = EXCLUDED.tenure_id, rent_group = EXCLUDED.rent_group, tenure_type = EXCLUDED.tenure_type,
        start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, property_ref = EXCLUDED.property_ref,
        short_address = EXCLUDED.short_address, address = EXCLUDED.address, post_code = EXCLUDED.post_code,
        num_bedrooms = EXCLUDED.num_bedrooms, title = EXCLUDED.title, forename = EXCLUDED.forename,
        surname = EXCLUDED.surname, date_of_birth = EXCLUDED.date_of_birth, version = EXCLUDED.version,
        event_id = EXCLUDED.event_id, updated_at = now()
"""


def _upsert_tenancy(conn: Conn, items: list[tuple[Pending, TenureEvent]]) -> int:
    if items:
        with conn.cursor() as cur:
            cur.executemany(_UPSERT_TENANCY, [_tenancy_row(p.ref, ev) for p, ev in items])
    return len(items)


def _tenancy_row(payment_ref: str, ev: TenureEvent) -> tuple[Any, ...]:
    t, p, who = ev.tenure, ev.tenure.property, ev.tenure.tenant
    return (
        payment_ref,
        ev.tenure_id,
        t.rent_group,
        t.tenure_type,
        t.start_date,
        t.end_date,
        p.property_ref,
        p.short_address,
        p.address,
        p.post_code,
        p.num_bedrooms,
        who.title,
        who.forename,
        who.surname,
        who.date_of_birth,
        ev.version,
        ev.event_id,
    )


# --------------------------------------------------------------------------------------- sheet
def _q(tab: str) -> str:
    return "'" + tab.replace("'", "''") + "'"


def plan_sheet_writes(
    columns: dict[str, list[str]], rows: list[tuple[str, str, list[str]]]
) -> list[tuple[str, list[Any]]]:
    """Where each row goes: the row already holding its Payment Ref in its tab, else the next free row.

    ``columns``: each tab's column A, top to bottom (row 1 is the header). ``rows``: (tab,
    payment ref, values A:M). A Payment Ref found in another tab (the tenure changed rent group)
    is blanked there. Consecutive rows of a tab are written as one range.
    """
    where: dict[str, tuple[str, int]] = {}
    for tab, col in columns.items():
        for i, ref in enumerate(col[1:], start=2):
            if ref:
                where.setdefault(ref, (tab, i))
    free = {tab: max(len(col), 1) + 1 for tab, col in columns.items()}
    writes: dict[tuple[str, int], list[str]] = {}
    for tab, ref, values in rows:
        if tab not in columns:
            raise KeyError(f"the spreadsheet has no tab {tab!r}")
        at = where.get(ref)
        if at is None or at[0] != tab:
            if at is not None:
                writes[at] = [""] * len(SHEET_HEADER)
            at = (tab, free[tab])
            free[tab] += 1
            where[ref] = at
        writes[at] = values
    out: list[tuple[str, list[Any]]] = []
    for tab, cells in groupby(sorted(writes.items()), key=lambda kv: kv[0][0]):
        run: list[tuple[int, list[str]]] = []
        for (_t, row), values in cells:
            if run and row != run[-1][0] + 1:
                out.append(_range(tab, run))
                run = []
            run.append((row, values))
        out.append(_range(tab, run))
    return out


def _range(tab: str, run: list[tuple[int, list[str]]]) -> tuple[str, list[Any]]:
    return f"{_q(tab)}!A{run[0][0]}:{LAST_COLUMN}{run[-1][0]}", [v for _r, v in run]


class SheetLayoutError(FinflowsError, RuntimeError):
    pass


class SheetWriter:
    """The interim finance spreadsheet through ``GSheetsHook``: one read and one write per run."""

    def __init__(self, hook: Any, spreadsheet_id: str) -> None:
        self.hook = hook
        self.spreadsheet_id = spreadsheet_id

    def ensure_protected(self) -> int:
        """Every rent-group tab exists and is protected so that only the flow's account edits it.

        Returns the number of protections added (0 once done)."""
        book = self.hook.get_spreadsheet(self.spreadsheet_id)
        tabs = {s["properties"]["title"]: s for s in book.get("sheets", [])}
        missing = [t for t in RENT_GROUPS if t not in tabs]
        if missing:
            raise SheetLayoutError(f"spreadsheet {self.spreadsheet_id} lacks the rent-group tab(s) {missing}")
        editor = getattr(self.hook.get_credentials(), "service_account_email", None)
        requests = [
            {
                "addProtectedRange": {
                    "protectedRange": {
                        "range": {"sheetId": tabs[t]["properties"]["sheetId"]},
                        "description": PROTECTION,
                        "warningOnly": False,
                        "editors": {"users": [editor] if editor else []},
                    }
                }
            }
            for t in RENT_GROUPS
            if not any(p.get("description") == PROTECTION for p in tabs[t].get("protectedRanges", []))
        ]
        if requests:
            self.hook.get_conn().spreadsheets().batchUpdate(
                spreadsheetId=self.spreadsheet_id, body={"requests": requests}
            ).execute(num_retries=self.hook.num_retries)
            log.info("protected %d tab(s) of the interim finance spreadsheet", len(requests))
        return len(requests)

    def write(self, rows: list[tuple[str, str, list[str]]]) -> int:
        tabs = sorted({tab for tab, _ref, _v in rows} | set(RENT_GROUPS))
        ranges = [f"{_q(t)}!A1:{LAST_COLUMN}1" for t in tabs] + [f"{_q(t)}!A:A" for t in tabs]
        got = self.hook.batch_get_values(self.spreadsheet_id, ranges, major_dimension="ROWS")["valueRanges"]
        headers, cols = got[: len(tabs)], got[len(tabs) :]
        for tab, vr in zip(tabs, headers, strict=True):
            header = tuple((vr.get("values") or [[]])[0])
            if header != SHEET_HEADER:
                raise SheetLayoutError(f"tab {tab!r} header is {list(header)}, expected {list(SHEET_HEADER)}")
        columns = {tab: [(r[0] if r else "") for r in vr.get("values", [])] for tab, vr in zip(tabs, cols, strict=True)}
        plan = plan_sheet_writes(columns, rows)
        self.hook.batch_update_values(
            self.spreadsheet_id, [r for r, _v in plan], [v for _r, v in plan], value_input_option="RAW"
        )
        log.info("sheet: %d row(s) written in %d range(s) by one request", len(rows), len(plan))
        return len(rows)
