"""Google Drive and Sheets hooks that honour an ``api_endpoint`` connection extra.

Production connections have no such extra and reach Google; the local connection points at the
stand-in. ``GSheetsHook`` takes the endpoint as an argument. ``GoogleDriveHook`` does not, and a client
option alone is not enough for Drive: media uploads are addressed from the discovery document's
``rootUrl`` (scheme included), so ``DriveHook`` builds from the bundled discovery document with
that root changed.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
from airflow.providers.google.suite.hooks.drive import GoogleDriveHook
from airflow.providers.google.suite.hooks.sheets import GSheetsHook


def _endpoint(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).extra_dejson.get("api_endpoint") or None


class DriveHook(GoogleDriveHook):
    def get_conn(self) -> Any:
        if not self._conn:
            endpoint = _endpoint(self.gcp_conn_id)
            if endpoint is None:
                return super().get_conn()
            import json

            from googleapiclient.discovery import build_from_document
            from googleapiclient.discovery_cache import get_static_doc

            doc = json.loads(get_static_doc("drive", self.api_version))
            doc["rootUrl"] = endpoint.rstrip("/") + "/"
            doc["baseUrl"] = doc["rootUrl"] + doc["servicePath"]
            self._conn = build_from_document(doc, http=self._authorize())
        return self._conn


def sheets_hook(conn_id: str) -> GSheetsHook:
    return GSheetsHook(gcp_conn_id=conn_id, api_endpoint=_endpoint(conn_id))


class WorkspaceHook(GoogleBaseHook):
    """The ``google_workspace`` connection type (registered by ``finflows.provider``): a Google
    service account for Drive and Sheets, with the same fields as the provider's Google Cloud
    connection plus ``api_endpoint``. Its Test asks Drive for one file as that account, where the
    provider's Test asks www.googleapis.com about the token whatever the endpoint (so it failed
    locally, and proved nothing about Drive in production)."""

    conn_type = "google_workspace"
    hook_name = "Google Workspace (Drive and Sheets)"

    def test_connection(self) -> tuple[bool, str]:
        try:
            listed = DriveHook(gcp_conn_id=self.gcp_conn_id).get_conn().files().list(pageSize=1).execute()
        except Exception as e:  # the Test button shows the reason, whatever it is
            return False, f"{type(e).__name__}: {e}"
        return (
            True,
            f"Drive answered for the service account ({'a file is' if listed.get('files') else 'no file is'} visible to it)",
        )
