"""The life of one file in a flow's S3 inbox, written once for every inbox flow.

    hold the name → download (bounded: ``FileTooLarge`` → quarantined unread) and sha256
    → name it (the flow may refuse the name) → the flow decides and processes (its load, or its
    deliveries) → a refusal (``FormatError``) or the same name with other content (``CONFLICT``)
    is quarantined with its report, nothing kept of it → a file seen before is reported, a copy
    re-delivered by another run recorded as ``DUPLICATE`` → the flow's after-step (e.g. the Drive
    copy) → the object archived (only the version that was read) → a quarantined earlier copy of
    the name marked resolved.

Every step is idempotent, so a retried or cleared task picks up where it stopped: a task cleared
after it succeeded finds its object archived and reports the file as done before (``AGAIN``).

A flow supplies what is its own, as an :class:`InboxFlow`: its name in ``ops.file_control``, its
intake limit, the words for its work, :meth:`~InboxFlow.process` (decide and load in one
transaction, or decide and deliver), :meth:`~InboxFlow.summary` of a file done before, and
optionally :meth:`~InboxFlow.file_name` and :meth:`~InboxFlow.after`. cashfile_import,
card_reconciliation and chargeback_export are three such flows; ``examples/inbox_flow/`` shows a
fourth from nothing.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from finflows import files, pci, settings
from finflows.files import Decision, FileRejected, Incoming
from finflows.formats.fixedwidth import FormatError
from finflows.seams import Conn, PgHook, S3Hook

log = logging.getLogger(__name__)

PROCESSED = "processed/"


class Seen(StrEnum):
    """How a run met a file: processed now; processed before by this run (a retry or a clear);
    processed before by another run, now delivered again."""

    NEW = "new"
    AGAIN = "again"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Outcome:
    """One file's end in the lifecycle, the one outcome of every inbox flow: ``status`` is the
    flow's word for how the run met the file (``InboxFlow.statuses``), ``figures`` what the flow
    reports of it (counts, totals, deliveries: never its data). ``as_dict()`` is the task's XCom; a
    figure reads as an attribute (``outcome.records``)."""

    key: str
    file_name: str
    seen: Seen
    status: StrEnum
    sha256: str
    figures: dict[str, Any] = field(default_factory=dict)
    bytes: int = 0

    def __post_init__(self) -> None:  # amounts as strings, as the XCom and the emails show them
        amounts = {k: str(v) for k, v in self.figures.items() if isinstance(v, Decimal)}
        object.__setattr__(self, "figures", self.figures | amounts)

    def __getattr__(self, name: str) -> Any:
        figures = self.__dict__.get("figures") or {}
        if name in figures:
            return figures[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or figure {name!r}")

    def as_dict(self) -> dict[str, Any]:
        """What the task returns (its XCom): plain JSON values, amounts as strings."""
        head = {"key": self.key, "file_name": self.file_name, "status": str(self.status), "sha256": self.sha256}
        return head | {"bytes": self.bytes} | {k: _plain(v) for k, v in self.figures.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def statuses(new: StrEnum, again: StrEnum, duplicate: StrEnum | None = None) -> Mapping[Seen, StrEnum]:
    """A flow's words for how a run met a file (``InboxFlow.statuses``): processed now, processed
    before (by this run's earlier try, or by another run unless ``duplicate`` has its own word)."""
    return MappingProxyType({Seen.NEW: new, Seen.AGAIN: again, Seen.DUPLICATE: duplicate or again})


class InboxFlow(ABC):
    """What one inbox flow adds to the lifecycle. Class attributes name the flow; methods do its work."""

    flow: ClassVar[str]  # its name in ops.file_control / ops.file_event (the DAG id)
    limit: ClassVar[str]  # settings.intake_limit(limit): the size a file may have
    done: ClassVar[str]  # the verb of its work, for people: "imported", "loaded", "exported"
    statuses: ClassVar[Mapping[Seen, StrEnum]]  # its word for each way a run meets a file (Outcome.status)
    rejected: ClassVar[type[FileRejected]] = FileRejected  # what a refused file raises (the failure email reads it)
    nothing: ClassVar[str] = "loaded"  # "… rejected and quarantined, nothing <loaded>"
    duplicates: ClassVar[str] = PROCESSED  # where a copy delivered again is archived
    conflict_step: ClassVar[str] = (
        "{name} was already {done} with other content. Compare the quarantined copy with the {done} one "
        "(processed/{name}); nothing is changed until finance data engineering reverses the first one."
    )

    @classmethod
    def for_task(cls) -> InboxFlow:
        """The flow as a task runs it (``Entry.flow`` names the class): with its connections."""
        return cls()

    def file_name(self, raw_name: str) -> str:
        """The name the file is known by (its control row). Raise ``FormatError`` to refuse the name."""
        return raw_name

    @abstractmethod
    def process(self, conn: Conn, path: Path, f: Incoming) -> tuple[Decision, dict[str, Any]]:
        """Decide from the control row and, for a new file, do the flow's work; return the decision
        and what to report. For a file done before, the info holds ``previous_run``. Raise
        ``FormatError`` for a file that must not be taken: whatever it started is rolled back."""

    @abstractmethod
    def summary(self, conn: Conn, file_name: str) -> dict[str, Any]:
        """What a file done before amounted to (counts, totals, deliveries), from the database."""

    def after(self, conn: Conn, path: Path, f: Incoming, seen: Seen) -> dict[str, Any]:
        """After the decision, before the archive: what the flow does with every good file, new or
        not (e.g. the Drive copy, itself idempotent). Returns more to report. ``path`` is the file as
        it may be kept: card numbers masked (``mask_line``)."""
        return {}

    def mask_line(self, line: str) -> str:
        """One line of the file (read as latin-1, so byte for byte) as a kept copy may hold it: every
        card number masked, the length unchanged. By default ``pci.mask_pans`` over the whole line;
        a fixed-width layout masks its free-text and card fields only (``Layout.mask_text``)."""
        return pci.mask_pans(line)


def masked_copy(flow: InboxFlow, path: Path, tmp: str, *, broken: frozenset[int] | None = frozenset()) -> Path | None:
    """The file with every card number masked line by line (``flow.mask_line``), streamed, or None
    when it holds none: what the archive, the quarantine and the flow's own copies keep. The
    control row keeps the original's sha256, so the original can still be proven. On a ``broken``
    line (numbered from 1: where a refused file departs from its layout, so its fields cannot be
    trusted to be where the layout says) any Luhn-valid 13–19 digit run is masked, wherever it is:
    a number in a numeric field of that line may then show ``*`` in the quarantined copy.
    ``broken=None``: every line (an error that lists only the first of its lines)."""
    out = Path(tmp) / f"{path.name}.masked"
    changed = False
    with path.open(encoding="latin-1", newline="") as src, out.open("w", encoding="latin-1", newline="") as dst:
        for number, line in enumerate(src, start=1):
            hidden = flow.mask_line(line)
            hidden = pci.mask_pans(hidden) if broken is None or number in broken else hidden
            changed = changed or hidden != line
            dst.write(hidden)
    if not changed:
        out.unlink()
        return None
    log.warning("%s holds card numbers: every copy kept of it is masked (the original's sha256 stays)", path.name)
    return out


def run(flow: InboxFlow, key: str, *, bucket: str, run_id: str, s3_hook: S3Hook, pg_hook: PgHook) -> Outcome:
    """The lifecycle of the object ``key`` in ``bucket`` for ``flow``; raises ``flow.rejected``
    for a file refused (quarantined with its report, nothing kept of it)."""
    done = _run(flow, key, bucket=bucket, run_id=run_id, s3_hook=s3_hook, pg_hook=pg_hook)
    shown = ", ".join(f"{k} {v}" for k, v in done.figures.items() if not isinstance(v, list | dict))
    log.info("%s %s: %s", done.status, done.file_name, shown)
    return done


def _run(flow: InboxFlow, key: str, *, bucket: str, run_id: str, s3_hook: S3Hook, pg_hook: PgHook) -> Outcome:
    raw_name = key.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix=f"{flow.flow}-") as tmp, files.connect(pg_hook) as conn:
        files.hold_file(conn, flow.flow, _known_as(flow, raw_name))  # released when the connection closes
        here = Incoming(flow.flow, bucket, key, raw_name, "", run_id)
        try:
            path, sha256, size, etag = files.download(s3_hook, bucket, key, tmp, settings.intake_limit(flow.limit))
        except files.ObjectGone:
            return _done_before(flow, conn, here)
        except files.FileTooLarge as e:
            raise files.refused_too_large(conn, s3_hook, e, here, flow.rejected) from None
        log.info("fetched %s: %d bytes, sha256 %s", here.source_uri, size, sha256)
        here = replace(here, sha256=sha256, etag=etag)
        masked_before = pci.found()
        try:
            here = replace(here, file_name=flow.file_name(raw_name))
            decision, info = flow.process(conn, path, here)
        except FormatError as e:
            listed = frozenset(x.line for x in e.errors if x.unit == "line")
            broken = listed if e.total <= len(e.errors) else None  # lines past the listed ones: all
            stored = masked_copy(flow, path, tmp, broken=broken)  # not read to its end: look at all of it
            raise files.rejected_format(
                conn, s3_hook, here, e, flow.rejected, nothing=flow.nothing, shown_name=raw_name, body=stored
            ) from None
        # a new file read whole masked every card number its reader met; any other is looked at here
        read_clean = decision is Decision.NEW and pci.found() == masked_before
        stored = None if read_clean else masked_copy(flow, path, tmp)
        if decision is Decision.CONFLICT:
            raise files.rejected_conflict(
                conn,
                s3_hook,
                here,
                flow.rejected,
                done=flow.done,
                next_step=flow.conflict_step.format(name=here.file_name, done=flow.done),
                shown_name=raw_name,
                body=stored,
            )
        seen, target = Seen.NEW, PROCESSED + here.file_name
        if decision is Decision.ALREADY_IMPORTED:
            seen = _seen_before(flow, conn, here, info.get("previous_run"))
            if seen is Seen.DUPLICATE and flow.duplicates != PROCESSED:
                target = f"{flow.duplicates}{run_id.replace(':', '-')}/{raw_name}"
            info = flow.summary(conn, here.file_name)
        info |= flow.after(conn, stored or path, here, seen)
        files.move_object(s3_hook, bucket, key, target, etag, body=stored, original_sha256=sha256)
        if seen is Seen.NEW:
            files.resolve_quarantine(
                conn, s3_hook, flow=flow.flow, bucket=bucket, name=raw_name, sha256=sha256, run_id=run_id
            )
    return Outcome(key, here.file_name, seen, flow.statuses[seen], sha256, info, size)


def _known_as(flow: InboxFlow, raw_name: str) -> str:
    try:
        return flow.file_name(raw_name)
    except FormatError:
        return raw_name


def _seen_before(flow: InboxFlow, conn: Conn, f: Incoming, previous_run: str | None) -> Seen:
    """A file already done: this run's own earlier try (a retry), or a copy delivered again,
    recorded as ``DUPLICATE`` and left undone."""
    if previous_run == f.run_id:
        log.info("%s was %s by this run's earlier try: nothing to do again", f.file_name, flow.done)
        return Seen.AGAIN
    log.warning(
        "DUPLICATE: %s (sha256 %s) was already %s by run %s; nothing done again",
        f.file_name,
        f.sha256,
        flow.done,
        previous_run,
    )
    with conn.transaction(), conn.cursor() as cur:
        files.record_event(
            cur,
            flow.flow,
            f.file_name,
            f.sha256,
            files.FileEvent.DUPLICATE,
            f"already {flow.done} by {previous_run}",
            f.run_id,
        )
    return Seen.DUPLICATE


def _done_before(flow: InboxFlow, conn: Conn, f: Incoming) -> Outcome:
    """The object is gone from the inbox: done by this flow before (a task cleared and run again
    after it succeeded: the object is archived), or ``flow.rejected``: no retry can bring it."""
    name = _known_as(flow, f.file_name)
    control = files.gone_but_done(
        conn, flow.flow, name, f.source_uri, flow.rejected, done=flow.done, raw_name=f.file_name
    )
    summary = flow.summary(conn, name)
    return Outcome(f.key, name, Seen.AGAIN, flow.statuses[Seen.AGAIN], control.sha256 or "", summary)


@dataclass(frozen=True)
class Entry:
    """How ``FileImportOperator(flow=…)`` finds an inbox flow: the flow's package declares one as
    ``INBOX`` (see ``finflows.flows.cashfile_import``). ``flow`` names its :class:`InboxFlow`
    (``module:Class``, imported when a task runs, made by ``for_task()``); ``bucket`` is the flow's
    default bucket; ``tables`` what a load writes (lineage), when a run processed the file
    (``Seen.NEW``)."""

    flow: str
    bucket: Callable[[], str]
    tables: tuple[str, ...]

    def make(self) -> InboxFlow:
        module, _, name = self.flow.partition(":")
        made = getattr(importlib.import_module(module), name).for_task()
        if not isinstance(made, InboxFlow):
            raise TypeError(f"{self.flow}.for_task() made no finflows.inbox.InboxFlow")
        return made


def entry(flow: str) -> Entry:
    """The ``INBOX`` declared by the flow's package: ``cashfile_import`` (a package under
    ``finflows.flows``) or a dotted module path (``examples.inbox_flow``)."""
    module_name = flow if "." in flow else f"finflows.flows.{flow}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"flow {flow!r}: no module {module_name} ({e})") from None
    declared = module.__dict__.get("INBOX")
    if not isinstance(declared, Entry):
        raise ValueError(f"flow {flow!r}: {module_name} declares no INBOX = finflows.inbox.Entry(…)")
    return declared
