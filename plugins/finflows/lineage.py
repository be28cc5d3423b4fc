"""OpenLineage datasets of what our operators read and write, named as the OpenLineage naming
spec and the providers' own operators name them (``get_openlineage_facets_on_complete`` of
each operator in ``finflows.operators`` returns these):

- an S3 object: namespace ``s3://bucket``, name the key;
- a PostgreSQL table: namespace ``postgres://host:port``, name ``database.schema.table``;
- a file on an SFTP server: namespace ``file://host:port``, name its path (as ``SFTPOperator``);
- a file on an FTP or FTPS server: namespace ``ftp://host:port`` or ``ftps://host:port``, name its path.

Imported only when lineage is extracted (it needs the OpenLineage provider).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def _dataset(namespace: str, name: str):
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=namespace, name=name)


def s3_object(bucket: str, key: str):
    return _dataset(f"s3://{bucket}", key)


def table(conn_id: str, name: str):
    """A table (``schema.table``) of the database of a Postgres connection."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    return _dataset(f"postgres://{conn.host}:{conn.port or 5432}", f"{conn.schema}.{name}")


def remote_file(conn_id: str, path: str):
    """A file on the server of an SSH connection."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    return _dataset(f"file://{conn.host}:{conn.port or 22}", path.lstrip("/"))


def ftp_file(conn_id: str, path: str, protocol: str = "ftp"):
    """A file on the server of an FTP connection (``ftp`` or ``ftps``)."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    return _dataset(f"{protocol}://{conn.host}:{conn.port or 21}", path.lstrip("/"))


def of_uri(uri: str):
    """``s3://bucket/key`` or ``sftp://<ssh_conn_id>/<path>`` (the PGP operators' notation)."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return s3_object(parts.netloc, parts.path.lstrip("/"))
    if parts.scheme == "sftp":
        return remote_file(parts.netloc, parts.path)
    raise ValueError(f"{uri!r}: no lineage naming for {parts.scheme!r}")
