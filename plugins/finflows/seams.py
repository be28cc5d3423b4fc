"""Names for the types at the project's seams (a database connection and cursor, the S3 hook),
for annotations only: each is a string the type checker resolves, so importing this module
imports neither psycopg nor the Amazon provider (DAG files stay parse-fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook as _S3Hook
    from airflow.providers.google.suite.hooks.drive import GoogleDriveHook as _DriveHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook as _PostgresHook

    from finflows.hooks.ftp import FTPHook as _FTPHook
    from finflows.hooks.ftp import FTPSHook as _FTPSHook
    from finflows.hooks.sftp import BankSFTPHook as _BankSFTPHook

Conn: TypeAlias = "psycopg.Connection[Any]"  # the finance database, as psycopg 3 gives it
Cur: TypeAlias = "psycopg.Cursor[Any]"
S3Hook: TypeAlias = "_S3Hook"
PgHook: TypeAlias = "_PostgresHook"
FtpHook: TypeAlias = "_FTPHook | _FTPSHook"  # a card company's or acquirer's FTP(S) server
SftpHook: TypeAlias = "_BankSFTPHook"
DriveHook: TypeAlias = "_DriveHook"
# untyped by their libraries: named for the reader, Any for the checker
Sftp: TypeAlias = Any  # an open SFTP session: paramiko's SFTPClient, or our asyncssh one with the same calls
AwsClient: TypeAlias = Any  # a boto3 client (s3, sqs, kms): botocore builds its methods at run time
OpenOwn: TypeAlias = Callable[[bytes], bytes]  # opens a file we made and archived (our keys, our signature)
Row: TypeAlias = dict[str, Any]  # a row read by name (psycopg's dict_row), a report, an XCom value


def one(cur: Cur) -> Any:
    """The row a query that always returns exactly one (an aggregate, ``RETURNING`` of an upsert, a
    row the transaction holds locked) returned; an error naming the query if it returned none."""
    row = cur.fetchone()
    if row is None:
        from finflows.errors import FinflowsError

        raise FinflowsError(f"no row from a query that returns one: {getattr(cur, '_query', None) or 'unknown'}")
    return row
