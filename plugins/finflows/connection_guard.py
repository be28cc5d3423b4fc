"""The api-server refuses, in words, a ``pgp`` connection saved without a key.

Airflow 3's Connections form saves whatever its fields hold: an OpenPGP connection with no key (or
a fingerprint that is not 40 hex digits) was stored, and failed only when a task used it. This ASGI
middleware (registered by ``plugins/finflows_plugin.py`` as a FastAPI root middleware) reads the
body of a connection create or edit (``POST /api/v2/connections``, ``PATCH /api/v2/connections/{id}``,
the bulk ``PATCH /api/v2/connections``) and answers 422 with the reason when a ``pgp`` connection
holds neither ``public_key`` nor ``private_key``; anything else passes through unread by it.

It also mends the Connections list's **Test** button for a connection without a port (see
``_without_port_zero``): Airflow 3.3.2 answered it with HTTP 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

CONNECTIONS = re.compile(r"^/api/v2/connections(/[^/]+)?$")
FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
MAX_BODY = 1 << 20  # a connection with a key is a few KB


def problem(conn: dict) -> str | None:
    """Why this connection (the REST API's body) must not be saved, or None."""
    if conn.get("conn_type") != "pgp":
        return None
    extra: Any = conn.get("extra") or "{}"
    try:
        extra = json.loads(extra) if isinstance(extra, str) else extra
    except json.JSONDecodeError:
        return "its extra is not JSON"
    if not isinstance(extra, dict):
        return "its extra is not a JSON object"
    extra = {k.removeprefix("extra__pgp__"): v for k, v in extra.items()}
    name = conn.get("connection_id") or "the connection"
    if not (str(extra.get("public_key") or "").strip() or str(extra.get("private_key") or "").strip()):
        return f"{name}: an OpenPGP connection needs a key: paste the counterparty's public key (or ours, private)"
    fingerprint = str(extra.get("fingerprint") or "").replace(" ", "")
    if fingerprint and not FINGERPRINT.match(fingerprint):
        return f"{name}: the pinned fingerprint must be 40 hex digits, not {len(fingerprint)} characters"
    return None


def _bodies(data: Any) -> list[dict]:
    if isinstance(data, dict) and isinstance(data.get("actions"), list):  # the bulk form
        return [
            e for a in data["actions"] if isinstance(a, dict) for e in a.get("entities") or [] if isinstance(e, dict)
        ]
    return [data] if isinstance(data, dict) else []


class PgpConnectionGuard:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if not (scope["type"] == "http" and scope["method"] in ("POST", "PATCH", "PUT")
                and CONNECTIONS.match(scope["path"])):  # fmt: skip
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
            if sum(map(len, chunks)) > MAX_BODY:
                break
        body = b"".join(chunks)
        if scope["path"].endswith("/test"):
            await self.app(scope, _replay(_without_port_zero(body), receive), send)
            return
        try:
            why = next(filter(None, map(problem, _bodies(json.loads(body or b"{}")))), None)
        except (json.JSONDecodeError, UnicodeDecodeError):
            why = None  # not ours to judge: Airflow answers it
        if why:
            out = json.dumps({"detail": why}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
            await send({"type": "http.response.start", "status": 422, "headers": headers})
            await send({"type": "http.response.body", "body": out})
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive):
    """An ASGI ``receive`` that gives ``body`` once, then what the client sends next."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _without_port_zero(body: bytes) -> bytes:
    """The Connections list's Test button (Airflow 3.3.2) sends ``port: Number(row.port)``, which is
    0 for a connection without a port (OpenPGP, AWS, Google): the API then finds "the host or port
    to test differs from the stored connection" and answers 400. Port 0 is no port anyone tests, so
    it is dropped and the stored connection is tested as it is."""
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body
    if isinstance(data, dict) and data.get("port") == 0:
        del data["port"]
        return json.dumps(data).encode()
    return body
