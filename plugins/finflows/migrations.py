"""Apply the SQL migrations in include/sql/ in order, once each, recorded with their checksum.

A migration is a file ``NNNN_name.sql``; it runs in one transaction with its record, under an
advisory lock so two runners never race. An applied file that has since changed is refused:
migrations are immutable, a change is a new file.

``python -m finflows.migrations DSN [DIR]`` applies them outside the local stack (production).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from finflows.errors import FinflowsError
from finflows.settings import INCLUDE

LOCK_KEY = 7_146_915_001  # pg_advisory_xact_lock key for migrations
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(FinflowsError, RuntimeError):
    pass


def pending_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql"))
    bad = [p.name for p in files if not _NAME.match(p.name)]
    if bad:
        raise MigrationError(f"migration file names must look like 0001_name.sql: {bad}")
    versions = [p.name[:4] for p in files]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return files


def apply_migrations(dsn: str, directory: Path) -> list[str]:
    import psycopg

    applied_now: list[str] = []
    with psycopg.connect(dsn) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(
                """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                       version text PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        for path in pending_files(directory):
            body = path.read_text()
            digest = hashlib.sha256(body.encode()).hexdigest()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                row = conn.execute(
                    "SELECT sha256 FROM public.schema_migrations WHERE version = %s", (path.name[:4],)
                ).fetchone()
                if row:
                    if row[0] != digest:
                        raise MigrationError(f"{path.name} changed after it was applied; add a new migration")
                    continue
                conn.execute(body)
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                    (path.name[:4], path.name, digest),
                )
                applied_now.append(path.name)
    return applied_now


if __name__ == "__main__":
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else INCLUDE / "sql"
