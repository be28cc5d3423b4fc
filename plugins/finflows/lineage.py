"""What a task read and wrote, for lineage: Airflow's hook-level lineage, which the OpenLineage
provider turns into the inputs and outputs of the task's events (a TaskFlow task has no operator
of ours to report them). Without a lineage reader installed the collector does nothing.

Uris follow the providers' asset schemes: ``s3://bucket/key``, ``postgres://host:port/db/schema/table``,
``sftp://host:port/path``.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _collector():
    from airflow.sdk.lineage import get_hook_lineage_collector

    return get_hook_lineage_collector()


def read(hook, uri: str) -> None:
    """The task read ``uri`` through ``hook``."""
    _collector().add_input_asset(context=hook, uri=uri)


def wrote(hook, uri: str) -> None:
    """The task wrote ``uri`` through ``hook``."""
    _collector().add_output_asset(context=hook, uri=uri)


def table(conn_id: str, name: str) -> str:
    """``postgres://host:port/database/schema/table`` of a table (``schema.table``) of a connection."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    schema, _, table_name = name.partition(".")
    return f"postgres://{conn.host}:{conn.port or 5432}/{conn.schema}/{schema}/{table_name}"


def remote_file(conn_id: str, path: str) -> str:
    """``sftp://host:port/path`` of a file on a server of an SSH connection."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    return f"sftp://{conn.host}:{conn.port or 22}/{path.lstrip('/')}"
