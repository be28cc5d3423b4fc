"""finance_daily_report: one banking day on one page, and its files proven archived.

For the Asia/Taipei day ``D``, per bank:

* **sent**: payment files uploaded during D (files, payments, NTD; whatever their processing
  date), and **not delivered**: batches made during D that are not uploaded (queued, cancelled,
  failed, still batched);
* **returns** received during D (``pay.return_line`` of return files whose control row started on
  D): settled and returned (count, NTD), unmatched, mismatched and duplicate lines, and return
  files quarantined;
* **transfer failures**: failed deliveries during D (each recorded try of a batch);
* **health**: checks during D, how many failed, the 95th-percentile latency, and the circuit now;
* **still pending**: payments due by D that are still pending.

``chart`` draws NTD sent / not delivered / settled / returned per bank as a PNG (matplotlib, no display).
``manifest`` lists every file the day processed (payment files sent, return files received) with
its archived copy in S3; ``verify_archive`` downloads each copy and checks its sha256, so the
report can say "all N archived" or name the one that is not. No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from finflows.flows.banking.states import Approval, CircuitState
from finflows.seams import Conn, Cur, OpenOwn, S3Hook
from finflows.settings import TAIPEI

CHART_NAME = "finance_daily_{day}.png"


@dataclass
class BankDay:
    bank: str
    files_sent: int = 0
    payments_sent: int = 0
    ntd_sent: Decimal = Decimal(0)
    files_not_sent: int = 0
    ntd_not_sent: Decimal = Decimal(0)
    settled: int = 0
    ntd_settled: Decimal = Decimal(0)
    returned: int = 0
    ntd_returned: Decimal = Decimal(0)
    unmatched: int = 0
    mismatch: int = 0
    duplicate: int = 0
    return_files: int = 0
    quarantined: int = 0
    transfer_failures: int = 0
    checks: int = 0
    checks_failed: int = 0
    p95_latency_ms: int | None = None
    circuit: str = "closed"
    still_pending: int = 0


NUMBERS = [f for f in BankDay.__dataclass_fields__ if f not in ("bank", "circuit", "p95_latency_ms")]


@dataclass
class Report:
    day: dt.date
    banks: list[BankDay]
    returns: list[str] = field(default_factory=list)  # "mega: 1 × 04 no such account (無此帳號), NTD 2,500"
    total: BankDay = field(init=False)
    problems: list[str] = field(default_factory=list)
    # "mega: ACHP01_….txt (3 payment(s), NTD 9,000) approved by treasurer at 2026-11-23 09:12 Asia/Taipei"
    approvals: list[str] = field(default_factory=list)
    # the attention list in words (invariants.describe): one sentence when it is empty
    attention: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.total = BankDay("total")
        for b in self.banks:
            for f in NUMBERS:
                setattr(self.total, f, getattr(self.total, f) + getattr(b, f))
        self.total.circuit = f"{sum(b.circuit != CircuitState.CLOSED for b in self.banks)} open"
        for b in self.banks:
            if b.files_not_sent:
                self.problems.append(
                    f"{b.bank}: {b.files_not_sent} file(s) made on {self.day} not delivered (NTD {b.ntd_not_sent:,})"
                )
            for what in ("unmatched", "mismatch", "duplicate", "quarantined", "transfer_failures"):
                if getattr(b, what):
                    self.problems.append(f"{b.bank}: {getattr(b, what)} {what.replace('_', ' ')}")
            if b.circuit != CircuitState.CLOSED:
                self.problems.append(f"{b.bank}: circuit {b.circuit}")

    def totals(self) -> dict[str, Any]:
        """The figures as JSON-able numbers (kept with the archived report)."""

        def plain(b: BankDay) -> dict[str, Any]:
            return {k: (int(v) if isinstance(v, Decimal) else v) for k, v in b.__dict__.items()}

        return {
            "day": self.day.isoformat(),
            "banks": [plain(b) for b in self.banks],
            "total": plain(self.total),
            "returns": self.returns,
            "approvals": self.approvals,
            "problems": self.problems,
        }


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=TAIPEI)
    return start, start + dt.timedelta(days=1)


def gather(conn: Conn, day: dt.date, bank_ids: list[str], now: dt.datetime, half_open_after: dt.timedelta) -> Report:
    """The day's figures per bank, its returns, and what needs attention (uncertain deliveries,
    held payments, refused or waiting approvals, the calendar running out)."""
    from finflows.flows.banking import business_days, health

    start, end = _day_bounds(day)
    by_bank = {b: BankDay(b) for b in bank_ids}
    with conn.cursor() as cur:
        _sent(cur, by_bank, start, end)
        returns = _returned(cur, by_bank, start, end)
        _operations(cur, by_bank, day, start, end)
    for row in by_bank.values():
        row.circuit = health.circuit(conn, row.bank, now, half_open_after).state.replace("_", "-")
    report = Report(day, [by_bank[b] for b in sorted(by_bank)], returns)
    report.problems += _held_or_uncertain(conn)
    report.approvals, refused = _approvals(conn, day)
    report.problems += refused
    calendar = business_days.coverage_warning(business_days.covered_until(conn), day)
    if calendar:
        report.problems.append(calendar)
    return report


def _put(by_bank: dict[str, BankDay], rows: Iterable[Sequence[Any]], *fields: str) -> None:
    """Each row (bank, *values) into that bank's figures; a NULL keeps the figure's default."""
    for bank, *values in rows:
        row = by_bank.setdefault(bank, BankDay(bank))
        for f, v in zip(fields, values, strict=True):
            setattr(row, f, v if v is not None else getattr(row, f))


def _sent(cur: Cur, by_bank: dict[str, BankDay], start: dt.datetime, end: dt.datetime) -> None:
    """Files and NTD sent that day, and the day's batches that did not go."""
    cur.execute(
        """SELECT bank,
                  count(*) FILTER (WHERE uploaded_at >= %(start)s AND uploaded_at < %(end)s),
                  coalesce(sum(payment_count) FILTER (WHERE uploaded_at >= %(start)s AND uploaded_at < %(end)s), 0),
                  coalesce(sum(total_amount) FILTER (WHERE uploaded_at >= %(start)s AND uploaded_at < %(end)s), 0),
                  count(*) FILTER (WHERE status <> 'uploaded' AND created_at >= %(start)s AND created_at < %(end)s),
                  coalesce(sum(total_amount) FILTER (WHERE status <> 'uploaded' AND created_at >= %(start)s
                                                     AND created_at < %(end)s), 0)
           FROM pay.batch WHERE (uploaded_at >= %(start)s AND uploaded_at < %(end)s)
                             OR (created_at >= %(start)s AND created_at < %(end)s) GROUP BY bank""",
        {"start": start, "end": end},
    )
    _put(by_bank, cur.fetchall(), "files_sent", "payments_sent", "ntd_sent", "files_not_sent", "ntd_not_sent")


def _returned(cur: Cur, by_bank: dict[str, BankDay], start: dt.datetime, end: dt.datetime) -> list[str]:
    """The day's return files: lines by outcome, payments settled by their return window, and the
    returned ones by reason (returned as lines for the report)."""
    cur.execute(
        """SELECT r.bank,
                  count(*) FILTER (WHERE r.outcome = 'settled'),
                  coalesce(sum(r.amount) FILTER (WHERE r.outcome = 'settled'), 0),
                  count(*) FILTER (WHERE r.outcome = 'returned'),
                  coalesce(sum(r.amount) FILTER (WHERE r.outcome = 'returned'), 0),
                  count(*) FILTER (WHERE r.outcome = 'unmatched'),
                  count(*) FILTER (WHERE r.outcome = 'mismatch'),
                  count(*) FILTER (WHERE r.outcome = 'duplicate'),
                  count(DISTINCT r.file_id)
           FROM pay.return_line r JOIN ops.file_control f ON f.id = r.file_id
           WHERE f.started_at >= %s AND f.started_at < %s GROUP BY r.bank""",
        (start, end),
    )
    fields = ("settled", "ntd_settled", "returned", "ntd_returned", "unmatched", "mismatch", "duplicate")
    _put(by_bank, cur.fetchall(), *fields, "return_files")
    # payments of banks that list only returns settle when their return window closes without one
    cur.execute(
        """SELECT p.bank, count(*), coalesce(sum(p.amount), 0) FROM pay.payment_event e
           JOIN pay.payment p ON p.id = e.payment_id
           WHERE e.to_status = 'settled' AND e.detail LIKE 'settled: no return within%%'
             AND e.at >= %s AND e.at < %s GROUP BY p.bank""",
        (start, end),
    )
    for bank, count, ntd in cur.fetchall():
        row = by_bank.setdefault(bank, BankDay(bank))
        row.settled += count
        row.ntd_settled += ntd
    cur.execute(
        """SELECT r.bank, r.return_reason, max(r.return_meaning), count(*), sum(r.amount)
           FROM pay.return_line r JOIN ops.file_control f ON f.id = r.file_id
           WHERE r.outcome = 'returned' AND f.started_at >= %s AND f.started_at < %s
           GROUP BY 1, 2 ORDER BY 1, 2""",
        (start, end),
    )
    return [f"{bank}: {n} × {meaning or code}, NTD {ntd:,}" for bank, code, meaning, n, ntd in cur.fetchall()]


def _operations(cur: Cur, by_bank: dict[str, BankDay], day: dt.date, start: dt.datetime, end: dt.datetime) -> None:
    """Quarantined return files, failed transfers, health checks and still-pending payments."""
    cur.execute(
        """SELECT split_part(file_name, '/', 1), count(*) FROM ops.file_control
           WHERE flow = 'bank_reconciliation' AND status = 'ERROR' AND started_at >= %s AND started_at < %s
           GROUP BY 1""",
        (start, end),
    )
    _put(by_bank, cur.fetchall(), "quarantined")
    cur.execute(
        """SELECT bank, count(*) FROM pay.transfer
           WHERE outcome = 'failed' AND finished_at >= %s AND finished_at < %s GROUP BY bank""",
        (start, end),
    )
    _put(by_bank, cur.fetchall(), "transfer_failures")
    cur.execute(
        """SELECT bank, count(*), count(*) FILTER (WHERE NOT ok),
                  percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE ok)
           FROM pay.health_check WHERE checked_at >= %s AND checked_at < %s GROUP BY bank""",
        (start, end),
    )
    _put(by_bank, cur.fetchall(), "checks", "checks_failed", "p95_latency_ms")
    cur.execute(
        "SELECT bank, count(*) FROM pay.payment WHERE status = 'pending' AND due_date <= %s GROUP BY bank", (day,)
    )
    _put(by_bank, cur.fetchall(), "still_pending")


def _held_or_uncertain(conn: Conn) -> list[str]:
    """Deliveries treasury must decide and payments held as possible duplicates."""
    from finflows.flows.banking import delivery, payments

    problems = [
        f"{u['bank']}: {u['file_name']} ({u['payment_count']} payment(s), NTD {u['total_amount']:,}) is UNCERTAIN "
        f"since {u['since']:%Y-%m-%d %H:%M %Z}: the bank may or may not have it; nothing resends it until treasury "
        f"decides in Browse → Required Actions ({u['reason']})"
        for u in delivery.uncertain_batches(conn)
    ]
    return problems + [
        f"{h['bank']}: payment {h['reference']} (NTD {h['amount']:,}) is HELD since {h['held_at']:%Y-%m-%d %H:%M %Z}: "
        f"{h['reason']}; release or cancel it in Browse → Required Actions"
        for h in payments.held_payments(conn)
    ]


def _approvals(conn: Conn, day: dt.date) -> tuple[list[str], list[str]]:
    """The day's answers to bank_payments' approve step (who and when), and the refused, expired and
    still unanswered ones as problems."""
    from finflows.flows.banking import approval

    start, end = _day_bounds(day)
    rows = conn.execute(
        """SELECT bank, file_name, payment_count, total_amount, approval, approval_by, approval_at, approval_note
           FROM pay.batch WHERE approval_at >= %s AND approval_at < %s ORDER BY approval_at, id""",
        (start, end),
    ).fetchall()
    answered, problems = [], []
    for bank, name, count, total, outcome, by, at, note in rows:
        line = (
            f"{bank}: {name} ({count} payment(s), NTD {int(total):,}) {outcome}"
            + (f" by {by}" if by else "")
            + f" at {at.astimezone(TAIPEI):%Y-%m-%d %H:%M} Asia/Taipei"
            + (f": {note}" if note and outcome != Approval.APPROVED else "")
        )
        answered.append(line)
        if outcome != Approval.APPROVED:
            problems.append(line + "; nothing was sent, its payments wait for the next business day")
    problems += [
        f"{a['bank']}: {a['file_name']} ({a['payment_count']} payment(s), NTD {a['total_amount']:,}) waits for "
        "approval (bank_payments' approve step, Browse → Required Actions)"
        for a in approval.awaiting(conn)
    ]
    return answered, problems


def chart(report: Report) -> bytes:
    """Grouped bars per bank: NTD sent, not delivered, settled and returned (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    banks = [b.bank for b in report.banks]
    series = [
        ("sent", "ntd_sent", "#1f77b4"),
        ("not delivered", "ntd_not_sent", "#7f7f7f"),
        ("settled", "ntd_settled", "#2ca02c"),
        ("returned", "ntd_returned", "#d62728"),
    ]
    fig = Figure(figsize=(7, 3.2), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, (label, attr, colour) in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(banks))]
        ax.bar(xs, [float(getattr(b, attr)) for b in report.banks], width, label=label, color=colour)
    ax.set_xticks(range(len(banks)), banks)
    ax.set_ylabel("NTD")
    ax.set_title(f"Payments {report.day:%Y-%m-%d} (Asia/Taipei)")
    top = max([float(getattr(b, a)) for b in report.banks for _, a, _ in series] + [1.0])
    ax.set_ylim(0, top * 1.3)  # room for the legend above the tallest bar
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.legend(frameon=False, ncols=len(series), loc="upper center", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


COLUMNS = [
    ("bank", "bank"),
    ("files sent", "files_sent"),
    ("payments", "payments_sent"),
    ("NTD sent", "ntd_sent"),
    ("files not sent", "files_not_sent"),
    ("settled", "settled"),
    ("NTD settled", "ntd_settled"),
    ("returned", "returned"),
    ("NTD returned", "ntd_returned"),
    ("unmatched", "unmatched"),
    ("mismatch", "mismatch"),
    ("duplicate", "duplicate"),
    ("quarantined", "quarantined"),
    ("transfer failures", "transfer_failures"),
    ("checks failed", "checks_failed"),
    ("p95 ms", "p95_latency_ms"),
    ("circuit", "circuit"),
    ("still pending", "still_pending"),
]


def render(report: Report, chart_cid: str, archive: dict[str, Any]) -> tuple[str, str]:
    """Subject and HTML body; the chart is referenced by its Content-ID."""
    t = report.total

    def cell(v: Any) -> str:
        if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
            return f"<td align=right>{v:,}</td>"
        return f"<td>{html.escape(str(v if v is not None else '–'))}</td>"

    rows = "".join("<tr>" + "".join(cell(getattr(b, a)) for _, a in COLUMNS) + "</tr>" for b in report.banks)
    rows += "<tr style='font-weight:bold'>" + "".join(cell(getattr(t, a)) for _, a in COLUMNS) + "</tr>"
    head = "".join(f"<th>{h}</th>" for h, _ in COLUMNS)
    open_rows = [a for a in report.attention if not a.startswith("The attention list is empty")]
    state = (
        f"{len(report.problems)} item(s) need attention, {len(open_rows)} on the attention list"
        if report.problems or open_rows
        else "all clear"
    )
    subject = (
        f"[finflows] finance daily report {report.day}: sent NTD {t.ntd_sent:,} in {t.files_sent} file(s), "
        f"settled NTD {t.ntd_settled:,}, returned NTD {t.ntd_returned:,}; {state}"
    )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report.problems) or "<li>none</li>"
    returned = "".join(f"<li>{html.escape(r)}</li>" for r in report.returns)
    body = (
        f"<h2>Finance daily report {report.day:%Y-%m-%d} (Asia/Taipei)</h2>"
        f'<p><img src="cid:{chart_cid}" alt="NTD sent, settled and returned per bank"></p>'
        f"<table border=1 cellpadding=4 cellspacing=0><tr>{head}</tr>{rows}</table>"
        + "<h3>Attention list (until a person resolves each row)</h3><ul>"
        + "".join(f"<li>{html.escape(a)}</li>" for a in report.attention or ["(not checked)"])
        + "</ul>"
        + f"<h3>Needs attention</h3><ul>{problems}</ul>"
        + (f"<h3>Returned by reason</h3><ul>{returned}</ul>" if returned else "")
        + (
            "<h3>Approvals (a second person before upload)</h3><ul>"
            + "".join(f"<li>{html.escape(a)}</li>" for a in report.approvals)
            + "</ul>"
            if report.approvals
            else ""
        )
        + f"<p>Files processed: {archive['files']}; archived and verified (sha256) in "
        f"<code>{html.escape(archive['prefix'])}</code>: {archive['verified']}"
        + (f"; <b>missing or different: {html.escape(', '.join(archive['missing']))}</b>" if archive["missing"] else "")
        + "</p>"
    )
    return subject, body


# ---------------------------------------------------------------------------- archive
def manifest(conn: Conn, day: dt.date) -> list[dict[str, Any]]:
    """Every file the day processed: payment files uploaded during D, return files received during D."""
    start, end = _day_bounds(day)
    with conn.cursor() as cur:
        cur.execute(
            """SELECT 'payment', bank, file_name, archive_uri, cipher_sha256, cipher_bytes, plain_sha256,
                      encrypted_to, signed_with, host_key
               FROM pay.batch WHERE uploaded_at >= %s AND uploaded_at < %s AND archive_uri IS NOT NULL
               UNION ALL
               SELECT 'return', split_part(file_name, '/', 1), split_part(file_name, '/', 2), source_uri, sha256,
                      NULL, NULL, NULL, verified_with, host_key FROM ops.file_control
               WHERE flow = 'bank_reconciliation' AND started_at >= %s AND started_at < %s
               ORDER BY 1, 2, 3""",
            (start, end, start, end),
        )
        # the keys each file names: which bank key a payment file was encrypted to and which of ours
        # signed it; which bank key signed a return file (issue #44: an auditor asks first)
        keys = ("kind", "bank", "file_name", "archive_uri", "sha256", "bytes", "plain_sha256", "encrypted_to",
                "signed_with", "host_key")  # fmt: skip
        return [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]


def verify_archive(s3_hook: S3Hook, files: list[dict[str, Any]], open_own: OpenOwn | None = None) -> list[str]:
    """Names of files whose archived copy is missing or differs from the recorded sha256; with
    ``open_own`` (decrypt with our key), also each payment file that does not open with our key to
    exactly the plaintext we recorded. The plaintext stays in memory."""
    client = s3_hook.get_conn()
    bad = []
    for f in files:
        bucket, _, key = f["archive_uri"].removeprefix("s3://").partition("/")
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            bad.append(f"{f['bank']}/{f['file_name']} (not in the archive)")
            continue
        if hashlib.sha256(body).hexdigest() != f["sha256"].strip():
            bad.append(f"{f['bank']}/{f['file_name']} (archived copy differs)")
            continue
        if open_own is None or f["kind"] != "payment" or not f.get("plain_sha256"):
            continue
        try:
            plain = open_own(body)
        except Exception as e:
            bad.append(f"{f['bank']}/{f['file_name']} (archived copy does not open with our key: {e})")
            continue
        if hashlib.sha256(plain).hexdigest() != f["plain_sha256"].strip():
            bad.append(f"{f['bank']}/{f['file_name']} (archived copy opens to other content than we made)")
    return bad
