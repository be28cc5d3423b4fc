"""Write-once records of what was about to reach a bank, kept outside the finance database.

The finance database is the delivery state machine's memory. Restore it to a point before a
delivery's commits (or fail over to an asynchronous replica) and it forgets that a file went: the
next run would find the final name free (the bank took the file) and send the payments again.
So, immediately before any rename of ``NAME.part`` to the final name is sent, a record is put in
the archive bucket with a conditional write (``IfNoneMatch: *``: it fails if the object exists;
object lock in production makes it undeletable too)::

    sent-records/<bank>/<processing date>/<file name>.<attempt>.json
        {bank, file_name, batch_id, attempt, processing_date, cipher_sha256, plain_sha256,
         references: [...], written_at, run_id}

A record means "this file may have reached the bank from here on". Only one thing proves
otherwise: past the cutoff we removed our own ``NAME.part`` and the final name is free; then a
``.void.json`` record is put beside it.

Before anything is sent, the references of the batch are checked against the bank's records of
the last ``FINFLOWS_SENT_RECORD_WINDOW_DAYS`` processing days (``blocking``). A record that the
database does not account for (another file, or a later attempt of this one than the database
knows) means the database lost what it knew: the batch is not sent, it becomes *uncertain* ("sent
according to the archive record") and a person decides, as for any uncertain delivery. A
``resend`` decision taken after a record was written lets that record pass; a later one still
stops it.

No Airflow import here: the S3 client is boto3's (the archive's S3Hook gives it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from finflows.errors import FinflowsError

log = logging.getLogger(__name__)

PREFIX = "sent-records"


class RecordConflict(FinflowsError, RuntimeError):
    """A send record already exists under this name for another file: nothing is renamed."""


@dataclass(frozen=True)
class Record:
    """One send record as read back (references are payment references only)."""

    key: str
    bank: str
    file_name: str
    batch_id: int
    attempt: int
    processing_date: dt.date
    cipher_sha256: str
    references: frozenset[str]
    written_at: dt.datetime

    def describe(self) -> str:
        return (
            f"{self.file_name} (attempt {self.attempt}, recorded {self.written_at:%Y-%m-%d %H:%M:%S %Z}, "
            f"sha256 {self.cipher_sha256[:12]})"
        )


def key(bank: str, day: dt.date, file_name: str, attempt: int, *, void: bool = False) -> str:
    return f"{PREFIX}/{bank}/{day.isoformat()}/{file_name}.{attempt}{'.void' if void else ''}.json"


def precondition_failed(e: Exception) -> bool:
    """Whether an S3 error is a conditional write refused because the object exists."""
    response = getattr(e, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict") or status in (409, 412)


@dataclass(frozen=True)
class SentRecords:
    """The write-once send records of the archive bucket.

    :param s3: a boto3 S3 client (``S3Hook.get_conn()``).
    :param bucket: the archive bucket.
    :param window_days: processing days back that ``blocking`` reads.
    """

    s3: Any
    bucket: str
    window_days: int = 14

    # ------------------------------------------------------------------ writing
    def _put_once(self, k: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Put ``body`` at ``k`` unless something is there; returns what was there, or None."""
        data = json.dumps(body, sort_keys=True).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=k, Body=data, IfNoneMatch="*", ContentType="application/json")
            return None
        except Exception as e:
            if not precondition_failed(e):
                raise
        found: dict[str, Any] = json.loads(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read())
        return found

    def write(
        self,
        *,
        bank: str,
        day: dt.date,
        file_name: str,
        batch_id: int,
        attempt: int,
        cipher_sha256: str,
        plain_sha256: str,
        references: Iterable[str],
        run_id: str,
    ) -> str:
        """The record for one attempt, written once; the same attempt writing again (a retried
        rename) finds its own record and goes on. Another file's record there: :class:`RecordConflict`."""
        k = key(bank, day, file_name, attempt)
        refs = sorted(references)
        body = {
            "bank": bank,
            "file_name": file_name,
            "batch_id": batch_id,
            "attempt": attempt,
            "processing_date": day.isoformat(),
            "cipher_sha256": cipher_sha256,
            "plain_sha256": plain_sha256,
            "references": refs,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
            "run_id": run_id,
        }
        there = self._put_once(k, body)
        if there is not None and (
            there.get("batch_id") != batch_id
            or there.get("cipher_sha256") != cipher_sha256
            or sorted(there.get("references", [])) != refs
        ):
            raise RecordConflict(
                f"{k} already records another file (batch {there.get('batch_id')}, sha256 "
                f"{str(there.get('cipher_sha256'))[:12]}): the finance database and the archive disagree"
            )
        log.info("%s: send record %s", file_name, k)
        return k

    def void(self, *, bank: str, day: dt.date, file_name: str, attempt: int, why: str) -> str:
        """Record that this attempt's file provably never reached the bank (our part removed by us,
        the final name free): its send record no longer stops its payments."""
        k = key(bank, day, file_name, attempt, void=True)
        self._put_once(k, {"file_name": file_name, "attempt": attempt, "why": why[:500],
                           "written_at": dt.datetime.now(dt.UTC).isoformat()})  # fmt: skip
        return k

    # ------------------------------------------------------------------ reading
    def _keys(self, bank: str, day: dt.date) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{PREFIX}/{bank}/{day.isoformat()}/"):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def records(self, bank: str, day: dt.date, days: int | None = None) -> list[Record]:
        """The bank's records (not voided) of the ``days`` processing days up to ``day``."""
        out: list[Record] = []
        for back in range(self.window_days if days is None else days):
            keys = set(self._keys(bank, day - dt.timedelta(days=back)))
            for k in sorted(keys):
                if k.endswith(".void.json") or k.removesuffix(".json") + ".void.json" in keys:
                    continue
                body = json.loads(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read())
                out.append(
                    Record(
                        k,
                        body["bank"],
                        body["file_name"],
                        int(body["batch_id"]),
                        int(body["attempt"]),
                        dt.date.fromisoformat(body["processing_date"]),
                        body["cipher_sha256"],
                        frozenset(body["references"]),
                        dt.datetime.fromisoformat(body["written_at"]),
                    )
                )
        return out

    def blocking(
        self,
        *,
        bank: str,
        day: dt.date,
        file_name: str,
        send_attempt: int,
        references: Iterable[str],
        resend_decided_at: dt.datetime | None,
    ) -> list[tuple[Record, int]]:
        """The records that name any of ``references`` and that the database does not account for,
        each with how many of the references it names: a record of another file, or of this file
        at an attempt the database has not gone past. A ``resend`` decision taken after a record
        was written lets that record pass."""
        refs = frozenset(references)
        found = []
        for r in self.records(bank, day):
            shared = len(r.references & refs)
            if not shared:
                continue
            if r.file_name == file_name and r.attempt < send_attempt:
                continue  # an earlier attempt of this batch, which the database went past
            if resend_decided_at is not None and r.written_at < resend_decided_at:
                continue  # a person decided to resend after this record was written
            found.append((r, shared))
        return found
