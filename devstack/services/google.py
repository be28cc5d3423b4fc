"""A small HTTP server speaking the subset of Google Drive v3 and Sheets v4 that finflows uses.

It is reached through the real Google client (``googleapiclient`` + ``google-auth``): the
service-account credentials of the local connection point their ``token_uri`` here, the server
verifies the signed JWT assertion against the account's public key and hands out a bearer token
that every API call must carry (401 otherwise).

Drive: files.list (``q`` with name/mimeType/parents/trashed terms), files.get (metadata and
``alt=media``), files.create (metadata only, multipart and resumable uploads), files.delete.
Sheets: spreadsheets.get/create/batchUpdate (addSheet, addProtectedRange, deleteProtectedRange),
values.get/batchGet/update/append/batchUpdate/clear, in A1 notation.

``GET /_stats`` (no token) returns how many calls each method and path received, so tests can
check how many requests a flow made (Sheets quotas count requests).

State is kept in ``STATE_DIR/state.json`` and file bodies in ``STATE_DIR/blobs/`` so a restart
keeps what was written.

Usage: python -m devstack.services.google PORT STATE_DIR SA_PUBLIC_KEY SEED_JSON
"""

from __future__ import annotations

import collections
import email.parser
import email.policy
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from google.auth import jwt

FOLDER = "application/vnd.google-apps.folder"
LOCK = threading.RLock()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------- A1 notation
def col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def col_letters(index: int) -> str:
    s, n = "", index + 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


def parse_a1(a1: str, default_sheet: str) -> tuple[str, int, int, int | None, int | None]:
    """Return (sheet, row0, col0, row1, col1) zero-based, inclusive; None means open-ended."""
    if "!" in a1:
        sheet, cells = a1.rsplit("!", 1)
    elif a1 and not re.match(r"^[A-Za-z]*\d*(:[A-Za-z]*\d*)?$", a1):
        sheet, cells = a1, ""
    else:
        sheet, cells = default_sheet, a1
    sheet = sheet.strip("'").replace("''", "'")
    if not cells:
        return sheet, 0, 0, None, None
    start, _, end = cells.partition(":")
    m1, m2 = _CELL.match(start), _CELL.match(end or start)
    if not m1 or not m2:
        raise ApiError(400, f"Unable to parse range: {a1}")
    c0 = col_index(m1.group(1)) if m1.group(1) else 0
    r0 = int(m1.group(2)) - 1 if m1.group(2) else 0
    c1 = col_index(m2.group(1)) if m2.group(1) else None
    r1 = int(m2.group(2)) - 1 if m2.group(2) else None
    if not end and m1.group(2) and m1.group(1):  # a single cell
        c1, r1 = c0, r0
    return sheet, r0, c0, r1, c1


def a1(sheet: str, r0: int, c0: int, r1: int, c1: int) -> str:
    quoted = f"'{sheet}'" if not re.match(r"^\w+$", sheet) else sheet
    return f"{quoted}!{col_letters(c0)}{r0 + 1}:{col_letters(c1)}{r1 + 1}"


# ---------------------------------------------------------------------------- state
class State:
    def __init__(self, root: Path, seed: dict):
        self.root = root
        self.blobs = root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.path = root / "state.json"
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = {"files": {}, "spreadsheets": {}}
        for folder in seed.get("folders", []):
            self.data["files"].setdefault(
                folder["id"],
                {
                    "id": folder["id"],
                    "name": folder["name"],
                    "mimeType": FOLDER,
                    "parents": ["root"],
                    "trashed": False,
                    "createdTime": _now(),
                },
            )
        for sheet in seed.get("spreadsheets", []):
            if sheet["id"] not in self.data["spreadsheets"]:
                self.data["spreadsheets"][sheet["id"]] = _new_spreadsheet(
                    sheet["id"], sheet["title"], [(t, [sheet.get("header", [])]) for t in sheet["tabs"]]
                )
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, ensure_ascii=False))
        tmp.replace(self.path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _new_spreadsheet(sid: str, title: str, tabs: list[tuple[str, list[list]]]) -> dict:
    sheets = []
    for i, (name, rows) in enumerate(tabs):
        sheets.append(
            {
                "properties": {"sheetId": i, "title": name, "index": i},
                "rows": [list(r) for r in rows if r],  # a copy: tabs seeded with one header must not share it
                "protectedRanges": [],
            }
        )
    return {"spreadsheetId": sid, "properties": {"title": title}, "sheets": sheets, "nextProtectedId": 1}


# ---------------------------------------------------------------------------- Drive
_Q_TERM = re.compile(
    r"^\s*(?:(name|mimeType)\s*(=|!=)\s*'((?:[^'\\]|\\.)*)'"
    r"|'([^']+)'\s+in\s+parents|parents\s+in\s+'([^']+)'"
    r"|trashed\s*=\s*(true|false))\s*$"
)


def drive_matches(f: dict, q: str) -> bool:
    if not q:
        return not f.get("trashed")
    for term in re.split(r"\s+and\s+", q):
        m = _Q_TERM.match(term)
        if not m:
            raise ApiError(400, f"Invalid Value: unsupported query term {term!r}")
        field, op, value, parent, parent2, trashed = m.groups()
        parent = parent or parent2
        if field:
            value = value.replace("\\'", "'")
            if (f.get(field) == value) != (op == "="):
                return False
        elif parent:
            if parent not in f.get("parents", []):
                return False
        elif (str(bool(f.get("trashed"))).lower()) != trashed:
            return False
    return True


def drive_public(f: dict) -> dict:
    return {k: v for k, v in f.items() if k != "trashed"} | {"kind": "drive#file"}


# ---------------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    server_version = "finflows-google-standin/1"
    state: State
    public_key: str
    tokens: set[str]
    uploads: dict[str, dict]

    def log_message(self, fmt, *args):  # quieter than the default, still in the service log
        sys.stderr.write(
            "{} {} {}\n".format(
                getattr(self, "command", "-"),
                getattr(self, "path", "-").split("?")[0],
                args[1] if len(args) > 1 else "",
            )
        )

    # -- plumbing
    def _send(self, status: int, body: dict | bytes | None = None, headers: dict | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        self.send_response(status)
        ctype = "application/octet-stream" if isinstance(body, bytes) else "application/json; charset=UTF-8"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self) -> dict:
        raw = self._body()
        return json.loads(raw) if raw else {}

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if path == "/healthz":
                return self._send(200, {"status": "ok"})
            if path == "/_stats":  # requests served per method and path: lets tests count API calls
                return self._send(200, dict(self.counts))
            if path == "/token" and self.command == "POST":
                return self._token()
            self._authorise()
            with LOCK:
                self.counts[f"{self.command} {path}"] += 1
                result = self._route(path, query)
                self.state.save()
            if isinstance(result, tuple):
                return self._send(*result)
            return self._send(200, result)
        except ApiError as e:
            self._send(e.status, {"error": {"code": e.status, "message": e.message, "status": "ERROR"}})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _token(self) -> None:
        form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
        try:
            claims = jwt.decode(form.get("assertion", ""), certs=self.public_key, verify=True)
        except Exception as e:  # a bad signature or malformed assertion is a 400, as at Google
            return self._send(400, {"error": "invalid_grant", "error_description": str(e)})
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        sys.stderr.write(f"token issued to {claims.get('iss')}\n")
        return self._send(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _authorise(self) -> None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise ApiError(401, "Request is missing a valid authentication credential.")

    # -- routing
    def _route(self, path: str, q: dict):
        m = re.match(r"^(?:/drive/v3|/upload/drive/v3|/v4/spreadsheets)(.*)$", path)
        if not m:
            raise ApiError(404, f"Not found: {path}")
        if path.startswith("/upload/drive/v3/files"):
            return self._drive_upload(path, q)
        if path.startswith("/drive/v3/files"):
            return self._drive(path[len("/drive/v3/files") :], q)
        return self._sheets(path[len("/v4/spreadsheets") :], q)

    # -- Drive
    def _drive(self, rest: str, q: dict):
        files = self.state.data["files"]
        if rest in ("", "/") and self.command == "GET":
            found = [drive_public(f) for f in files.values() if drive_matches(f, q.get("q", ""))]
            return {"kind": "drive#fileList", "files": sorted(found, key=lambda f: f["createdTime"])}
        if rest in ("", "/") and self.command == "POST":
            return self._drive_create(self._json(), None)
        fid = rest.strip("/")
        if fid == "root" and self.command == "GET":  # Drive's alias for My Drive
            return {"kind": "drive#file", "id": "root", "name": "My Drive", "mimeType": FOLDER}
        if fid not in files:
            raise ApiError(404, f"File not found: {fid}.")
        if self.command == "DELETE":
            files.pop(fid)
            (self.state.blobs / fid).unlink(missing_ok=True)
            return (204, b"")
        if q.get("alt") == "media":
            return (200, (self.state.blobs / fid).read_bytes())
        return drive_public(files[fid])

    def _drive_create(self, meta: dict, content: bytes | None) -> dict:
        fid = uuid.uuid4().hex[:20]
        parents = meta.get("parents") or ["root"]
        for p in parents:
            if p != "root" and p not in self.state.data["files"]:
                raise ApiError(404, f"File not found: {p}.")
        f = {
            "id": fid,
            "name": meta.get("name", "Untitled"),
            "mimeType": meta.get("mimeType") or ("application/octet-stream" if content is not None else FOLDER),
            "parents": parents,
            "trashed": False,
            "createdTime": _now(),
        }
        if content is not None:
            (self.state.blobs / fid).write_bytes(content)
            f["size"] = str(len(content))
            f["md5Checksum"] = hashlib.md5(content).hexdigest()  # noqa: S324 (Drive's own field)
            f["sha256Checksum"] = hashlib.sha256(content).hexdigest()
        self.state.data["files"][fid] = f
        return drive_public(f)

    def _drive_upload(self, path: str, q: dict):
        kind = q.get("uploadType")
        if kind == "multipart":
            ctype = self.headers.get("Content-Type", "")
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self._body()
            )
            parts = list(msg.iter_parts())
            meta = json.loads(parts[0].get_content())
            content = parts[1].get_payload(decode=True)
            return self._drive_create(meta, content)
        if kind == "media":
            return self._drive_create({}, self._body())
        if kind == "resumable":
            upload_id = q.get("upload_id")
            if upload_id is None:  # start a session
                upload_id = uuid.uuid4().hex
                self.uploads[upload_id] = {"meta": self._json(), "data": b""}
                host = self.headers.get("Host")
                return (
                    200,
                    b"",
                    {"Location": f"http://{host}/upload/drive/v3/files?uploadType=resumable&upload_id={upload_id}"},
                )
            session = self.uploads.get(upload_id)
            if session is None:
                raise ApiError(404, "No such upload session")
            session["data"] += self._body()
            crange = self.headers.get("Content-Range", "")
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", crange)
            if m and m.group(3) != "*" and int(m.group(2)) + 1 < int(m.group(3)):
                return (308, b"", {"Range": f"bytes=0-{len(session['data']) - 1}"})
            self.uploads.pop(upload_id)
            return self._drive_create(session["meta"], session["data"])
        raise ApiError(400, f"Unsupported uploadType {kind}")

    # -- Sheets
    def _sheets(self, rest: str, q: dict):
        books = self.state.data["spreadsheets"]
        if rest in ("", "/") and self.command == "POST":
            body = self._json()
            sid = uuid.uuid4().hex
            tabs = [(s["properties"]["title"], []) for s in body.get("sheets", [])] or [("Sheet1", [])]
            books[sid] = _new_spreadsheet(sid, body.get("properties", {}).get("title", "Untitled"), tabs)
            return self._book_public(books[sid])
        m = re.match(r"^/([^/:]+)(.*)$", rest)
        if not m or m.group(1) not in books:
            raise ApiError(404, "Requested entity was not found.")
        book, rest = books[m.group(1)], m.group(2)
        if rest == "" and self.command == "GET":
            return self._book_public(book)
        if rest == ":batchUpdate":
            return self._book_batch_update(book, self._json())
        if rest == "/values:batchGet":
            ranges = parse_qs(urlsplit(self.path).query).get("ranges", [])
            return {"spreadsheetId": book["spreadsheetId"], "valueRanges": [self._values_get(book, r) for r in ranges]}
        if rest == "/values:batchUpdate":
            body = self._json()
            responses = [self._values_put(book, d["range"], d.get("values", [])) for d in body.get("data", [])]
            return {
                "spreadsheetId": book["spreadsheetId"],
                "responses": responses,
                "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            }
        m = re.match(r"^/values/(.+?)(:append|:clear)?$", rest)
        if not m:
            raise ApiError(404, f"Not found: {rest}")
        rng, action = m.group(1), m.group(2)
        if action == ":append":
            return self._values_append(book, rng, self._json().get("values", []))
        if action == ":clear":
            return self._values_clear(book, rng)
        if self.command == "GET":
            return self._values_get(book, rng)
        if self.command == "PUT":
            body = self._json()
            return self._values_put(book, rng, body.get("values", []))
        raise ApiError(405, "Method not allowed")

    @staticmethod
    def _book_public(book: dict) -> dict:
        return {
            "spreadsheetId": book["spreadsheetId"],
            "properties": book["properties"],
            "sheets": [
                {"properties": s["properties"], "protectedRanges": s["protectedRanges"]} for s in book["sheets"]
            ],
        }

    @staticmethod
    def _tab(book: dict, title: str) -> dict:
        for s in book["sheets"]:
            if s["properties"]["title"] == title:
                return s
        raise ApiError(400, f"Unable to parse range: {title}")

    def _resolve(self, book: dict, rng: str):
        first = book["sheets"][0]["properties"]["title"]
        title, r0, c0, r1, c1 = parse_a1(rng, first)
        return self._tab(book, title), title, r0, c0, r1, c1

    def _values_get(self, book: dict, rng: str) -> dict:
        tab, title, r0, c0, r1, c1 = self._resolve(book, rng)
        rows = tab["rows"]
        last = len(rows) - 1 if r1 is None else min(r1, len(rows) - 1)
        out = []
        for r in range(r0, last + 1):
            row = rows[r] if r < len(rows) else []
            cells = row[c0:] if c1 is None else row[c0 : c1 + 1]
            out.append([("" if v is None else str(v)) for v in cells])
        while out and not any(out[-1]):
            out.pop()
        out = [_rstrip(r) for r in out]
        width = max((len(r) for r in out), default=1)
        res = {"range": a1(title, r0, c0, max(r0, r0 + len(out) - 1), c0 + width - 1), "majorDimension": "ROWS"}
        if out:
            res["values"] = out
        return res

    def _values_put(self, book: dict, rng: str, values: list[list]) -> dict:
        tab, title, r0, c0, _r1, _c1 = self._resolve(book, rng)
        rows = tab["rows"]
        for i, new in enumerate(values):
            r = r0 + i
            while len(rows) <= r:
                rows.append([])
            row = rows[r]
            while len(row) < c0 + len(new):
                row.append("")
            for j, v in enumerate(new):
                row[c0 + j] = "" if v is None else v
        width = max((len(v) for v in values), default=0)
        return {
            "spreadsheetId": book["spreadsheetId"],
            "updatedRows": len(values),
            "updatedColumns": width,
            "updatedCells": sum(len(v) for v in values),
            "updatedRange": a1(title, r0, c0, r0 + max(len(values), 1) - 1, c0 + max(width, 1) - 1),
        }

    def _values_append(self, book: dict, rng: str, values: list[list]) -> dict:
        tab, title, r0, c0, _r1, _c1 = self._resolve(book, rng)
        last = max((i for i, row in enumerate(tab["rows"]) if any(str(v) for v in row)), default=r0 - 1)
        start = max(last + 1, r0)
        update = self._values_put(book, a1(title, start, c0, start, c0), values)
        return {
            "spreadsheetId": book["spreadsheetId"],
            "tableRange": a1(title, r0, c0, max(last, r0), c0),
            "updates": update,
        }

    def _values_clear(self, book: dict, rng: str) -> dict:
        tab, _title, r0, c0, r1, c1 = self._resolve(book, rng)
        for r in range(r0, len(tab["rows"]) if r1 is None else min(r1 + 1, len(tab["rows"]))):
            row = tab["rows"][r]
            for c in range(c0, len(row) if c1 is None else min(c1 + 1, len(row))):
                row[c] = ""
        return {"spreadsheetId": book["spreadsheetId"], "clearedRange": rng}

    def _book_batch_update(self, book: dict, body: dict) -> dict:
        replies = []
        for req in body.get("requests", []):
            if "addSheet" in req:
                props = req["addSheet"].get("properties", {})
                sheet_id = max((s["properties"]["sheetId"] for s in book["sheets"]), default=-1) + 1
                p = {
                    "sheetId": sheet_id,
                    "title": props.get("title", f"Sheet{sheet_id + 1}"),
                    "index": len(book["sheets"]),
                }
                book["sheets"].append({"properties": p, "rows": [], "protectedRanges": []})
                replies.append({"addSheet": {"properties": p}})
            elif "addProtectedRange" in req:
                pr = dict(req["addProtectedRange"]["protectedRange"])
                sheet_id = pr.get("range", {}).get("sheetId", 0)
                tab = next((s for s in book["sheets"] if s["properties"]["sheetId"] == sheet_id), None)
                if tab is None:
                    raise ApiError(400, f"No grid with id: {sheet_id}")
                pr["protectedRangeId"] = book["nextProtectedId"]
                book["nextProtectedId"] += 1
                tab["protectedRanges"].append(pr)
                replies.append({"addProtectedRange": {"protectedRange": pr}})
            elif "deleteProtectedRange" in req:
                pid = req["deleteProtectedRange"]["protectedRangeId"]
                for tab in book["sheets"]:
                    tab["protectedRanges"] = [p for p in tab["protectedRanges"] if p["protectedRangeId"] != pid]
                replies.append({})
            else:
                raise ApiError(400, f"Unsupported request: {sorted(req)}")
        return {"spreadsheetId": book["spreadsheetId"], "replies": replies}


def _rstrip(row: list[str]) -> list[str]:
    while row and row[-1] == "":
        row = row[:-1]
    return row


def main() -> None:
    port, state_dir, pubkey, seed = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    Handler.state = State(state_dir, json.loads(Path(seed).read_text()))
    Handler.public_key = Path(pubkey).read_text()
    Handler.tokens = set()
    Handler.uploads = {}
    Handler.counts = collections.Counter()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
