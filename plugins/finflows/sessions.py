"""Counted sessions to a counterparty, kept in PostgreSQL so every process shares the count.

Each session holds one of a key's numbered advisory locks on a connection of its own for as long as
it is open; a process that dies loses its connection and with it the lock, so a crashed worker never
holds a slot. No Airflow import here (``hooks/sftp.py`` puts it on the SFTP hook).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from finflows.errors import FinflowsError

log = logging.getLogger(__name__)


class IncompatibleServer(FinflowsError, ConnectionError):
    """The server and our SSH client share no key exchange, cipher or host-key algorithm: no retry
    can help, the bank's ``sftp_client`` must change (raised by ``hooks/sftp.py``)."""


class SessionLimitReached(FinflowsError, RuntimeError):
    """Every session the counterparty allows stayed in use for as long as we were willing to wait."""


@contextmanager
def session_slot(connect: Callable[[], Any], key: str, limit: int, *, wait: float, poll: float = 0.5) -> Iterator[int]:
    """Hold one of ``limit`` slots named ``key`` (PostgreSQL advisory locks ``(hashtext(key), n)``)
    while the block runs; wait up to ``wait`` seconds for one to free, then raise."""
    if limit < 1:
        raise ValueError(f"{key}: a session limit of {limit} allows no session")
    conn = connect()
    conn.autocommit = True
    try:
        deadline = time.monotonic() + wait
        waited = False
        while True:
            for n in range(limit):
                if conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", (key, n)).fetchone()[0]:
                    if waited:
                        log.info("%s: session slot %d of %d free after waiting", key, n + 1, limit)
                    try:
                        yield n
                    finally:
                        conn.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", (key, n))
                    return
            if time.monotonic() >= deadline:
                raise SessionLimitReached(f"{key}: all {limit} sessions allowed were in use for {wait:.0f} s")
            if not waited:
                log.info("%s: all %d sessions allowed are in use; waiting for one", key, limit)
                waited = True
            time.sleep(poll)
    finally:
        conn.close()
