"""The finance monitor API, mounted in Airflow's api-server at ``/finflows/api`` by
``plugins/finflows_plugin.py``.

Airflow mounts plugin apps **without** authentication, so every route here depends on
``reader`` or ``operator``: the caller's Airflow token (``Authorization: Bearer`` from
``POST /auth/token``, or the UI's session cookie) is resolved by Airflow's own ``get_user``
(no token → 401) and checked by the configured auth manager: reading needs read access to the
``bank_payments`` DAG, actions (test a bank connection, generate a batch) need permission to
trigger it (else 403); a decision on an uncertain delivery is recorded under the caller's user name. ``generate-batch`` triggers bank_payments through Airflow's public REST
API with the caller's own token, so Airflow applies its rules a second time.

Routes are plain ``def``: FastAPI runs them in its thread pool, off the api-server's event loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

PAYMENTS_DAG = "bank_payments"


def _allowed(user, method: Literal["GET", "POST"], run: bool = False) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(
        method=method,
        user=user,
        access_entity=DagAccessEntity.RUN if run else None,
        details=DagDetails(id=PAYMENTS_DAG),
    )


def _user_dep():
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def reader(user=Depends(_user_dep())):  # noqa: B008 (FastAPI's dependency idiom)
    if not _allowed(user, "GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs read access to the {PAYMENTS_DAG} DAG")
    return user


def operator(request: Request, user=Depends(_user_dep())):  # noqa: B008
    # an action needs the token in the Authorization header: a browser sends its cookie with a
    # request another site makes it send, never a header; SameSite=Lax alone is not the guard
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "an action needs your token in the Authorization header (Bearer), not a cookie"
        )
    if not _allowed(user, "POST", run=True):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs permission to trigger {PAYMENTS_DAG}")
    return user


Reader = Annotated[object, Depends(reader)]
Operator = Annotated[object, Depends(operator)]


def _own_api() -> str:
    """Where this api-server's own REST API is: ``[api] base_url`` when configured, else its own
    port on loopback. Never the request's Host header: a caller could point it anywhere."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or f"http://127.0.0.1:{conf.getint('api', 'port', fallback=8080)}"
    return base.rstrip("/")


def _name(user) -> str:
    """The Airflow user name a decision is recorded under."""
    return user.get_name() if hasattr(user, "get_name") else str(user)


def _db():
    from finflows import files
    from finflows.task_support import finance_db

    return files.connect(finance_db())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


app = FastAPI(
    title="finflows finance monitor",
    description="Bank health and circuits, per-flow figures, transfers and batches; bank actions.",
    docs_url=None,  # Swagger UI loads from a CDN: blank where the api-server has no internet
    redoc_url=None,
)


@app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs() -> str:
    """The API's routes from its OpenAPI document, as plain HTML with nothing loaded from elsewhere
    (the machine-readable document is ``openapi.json`` beside it)."""
    import html

    spec = app.openapi()
    rows = []
    for path, methods in sorted(spec["paths"].items()):
        for method, op in methods.items():
            params = ", ".join(
                f"{p['name']} ({p['in']}{', required' if p.get('required') else ''})" for p in op.get("parameters", [])
            )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            body_name = body.get("$ref", "").rsplit("/", 1)[-1]
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('description') or op.get('summary') or '')}</td>"
                f"<td>{html.escape(params)}</td><td>{html.escape(body_name)}</td></tr>"
            )
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(spec['info']['title'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}</style>"
        f"<h1>{html.escape(spec['info']['title'])}</h1><p>{html.escape(spec['info'].get('description', ''))}</p>"
        "<p>Every route needs an Airflow token; actions (POST) need it in an <code>Authorization: Bearer</code> "
        'header. The OpenAPI document: <a href="openapi.json">openapi.json</a>.</p>'
        "<table><tr><th>method</th><th>path</th><th>what it does</th><th>parameters</th><th>body</th></tr>"
        + "".join(rows)
        + "</table>"
    )


@app.get("/ui", response_class=HTMLResponse)
def ui(_: Reader) -> str:
    """The monitor page shown inside the Airflow UI (external view): tables over this API."""
    from pathlib import Path

    return (Path(__file__).parent / "static" / "monitor.html").read_text()


@app.get("/health")
def get_health(_: Reader) -> dict:
    """Each bank's circuit and latest health check, and the finance database."""
    from finflows import monitor, settings
    from finflows.flows.banking import banks

    with _db() as conn:
        return monitor.health(conn, banks.load().enabled, _now(), settings.bank_circuit_half_open_after())


@app.get("/today")
def get_today(_: Reader) -> dict:
    """The treasurer's start page: today in Asia/Taipei per bank (files prepared, awaiting approval
    with the deadline, sent, rejected, expired, uncertain, given up; held payments, returns,
    circuit), the decisions waiting for a person with the link to each Required Action, every batch
    with links to its detail, run and task log, and the day's failed or quarantined files (file,
    rule broken, next step, run). Every time in Asia/Taipei, the zone named."""
    from finflows import links, settings
    from finflows.flows.banking import banks, today

    with _db() as conn:
        return today.today(
            conn,
            banks.load(),
            _now(),
            settings.bank_circuit_half_open_after(),
            settings.approval_margin(),
            links.base_url(default=""),
        )


@app.get("/dashboard")
def get_dashboard(_: Reader, days: Annotated[int, Query(ge=1, le=366)] = 7) -> dict:
    """Files, rows, amounts and failures per flow, and bank batches, over the last ``days`` days."""
    from finflows import monitor

    with _db() as conn:
        return monitor.dashboard(conn, days, _now())


@app.get("/transfers")
def get_transfers(_: Reader, days: Annotated[int, Query(ge=1, le=366)] = 7, bank: str | None = None) -> list[dict]:
    """Every SFTP transfer to a bank (uploaded, already there, failed), newest first."""
    from finflows import monitor

    with _db() as conn:
        return monitor.transfers(conn, days, _now(), bank)


@app.get("/batches/uncertain")
def get_uncertain(_: Reader) -> list[dict]:
    """Batches whose delivery is uncertain: the bank may or may not have them; nothing resends them
    until a person decides (``POST /batches/{id}/decision``)."""
    from finflows import monitor
    from finflows.flows.banking import delivery

    with _db() as conn:
        return [{k: monitor._plain(v) for k, v in u.items()} for u in delivery.uncertain_batches(conn)]


class Decision(BaseModel):
    decision: Literal["bank_has_it", "resend"] = Field(
        description="bank_has_it: the bank confirmed it received the file (the batch is delivered); "
        "resend: it did not (bank_transfer_retry sends the archived file once, or cancels it after the cutoff)"
    )
    note: str = Field("", max_length=500, description="what the bank said, a ticket number (no payee details)")


@app.post("/batches/{batch_id}/decision")
def decide_batch(user: Operator, batch_id: int, body: Decision) -> dict:
    """Treasury's decision on an uncertain batch, recorded with the caller's Airflow user name and
    the time (``pay.batch`` and its ``pay.batch_event`` trail)."""
    from finflows.flows.banking import delivery

    with _db() as conn:
        return _decided(delivery.decide, conn, batch_id, body.decision, by=_name(user), note=body.note)


def _decided(decide, *args, **kwargs) -> dict:
    """A person's decision, its refusals as HTTP: 404 nothing such, 403 the maker (four eyes),
    409 not waiting for that decision."""
    from finflows.flows.banking import delivery

    try:
        return decide(*args, **kwargs)
    except LookupError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except delivery.FourEyesRefused as e:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from e
    except delivery.DecisionRefused as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e


class Requeue(BaseModel):
    note: str = Field(min_length=1, max_length=500, description="what was fixed, so that another try can succeed")


@app.post("/batches/{batch_id}/requeue")
def requeue_batch(user: Operator, batch_id: int, body: Requeue) -> dict:
    """Put a given-up batch back in the retry queue (bank_transfer_retry sends its archived file once,
    or cancels it after the cutoff); recorded with the caller's name. Never by the batch's maker (403)."""
    from finflows.flows.banking import delivery

    with _db() as conn:
        return _decided(delivery.requeue, conn, batch_id, by=_name(user), note=body.note)


@app.get("/attention")
def get_attention(_: Reader) -> dict:
    """The attention list: what the money invariants found and a person must see, until a person
    resolves each row (what, which batch or payment, the next step, by when). Empty is said."""
    from finflows import monitor
    from finflows.flows.banking import invariants

    with _db() as conn:
        rows = invariants.open_rows(conn)
    return {
        "rows": [{k: monitor._plain(v) for k, v in r.items()} for r in rows],
        "summary": invariants.describe(rows)[0] if not rows else f"{len(rows)} item(s) need a person",
        "invariants": [{"name": i.name, "sentence": i.sentence, "every_health_check": i.cheap}
                       for i in invariants.INVARIANTS],
    }  # fmt: skip


class Resolution(BaseModel):
    note: str = Field(min_length=1, max_length=500, description="how it was resolved (no payee details)")


@app.post("/attention/{attention_id}/resolve")
def resolve_attention(user: Operator, attention_id: int, body: Resolution) -> dict:
    """A person resolves a row of the attention list, saying how; kept with who and when. A row whose
    cause is still there is raised again by the next check."""
    from finflows.flows.banking import invariants

    with _db() as conn:
        try:
            return invariants.resolve(conn, attention_id, by=_name(user), note=body.note)
        except LookupError as e:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


@app.get("/batches/awaiting-approval")
def get_awaiting_approval(_: Reader) -> list[dict]:
    """Payment files made and waiting for a second person (bank_payments' approve step): each with
    the link to the Airflow page that answers it, when its request has been made."""
    from finflows import links, monitor
    from finflows.flows.banking import approval

    base = links.base_url(default="")
    out = []
    with _db() as conn:
        for a in approval.awaiting(conn):
            row = {k: monitor._plain(v) for k, v in a.items()}
            if a["request"]:  # run id / task id / map index
                run_id, task_id, map_index = a["request"].rsplit("/", 2)
                row["answer_at"] = links.required_actions_url(base, "bank_payments", run_id, task_id, map_index)
            out.append(row)
    return out


@app.get("/payments/held")
def get_held(_: Reader) -> list[dict]:
    """Payments held as possible duplicates (same payee bank, account and amount as another payment
    due within the window): not batched until a person decides."""
    from finflows import monitor
    from finflows.flows.banking import payments

    with _db() as conn:
        return [{k: monitor._plain(v) for k, v in h.items()} for h in payments.held_payments(conn)]


class HoldDecision(BaseModel):
    decision: Literal["release", "cancel"] = Field(
        description="release: it is no duplicate (batched with the next run, never held again); cancel: "
        "it is one (the payment fails, nothing is paid)"
    )
    note: str = Field("", max_length=500, description="why (no payee details)")


@app.post("/payments/{reference}/hold-decision")
def decide_held(user: Operator, reference: str, body: HoldDecision) -> dict:
    """Treasury's decision on a held payment, recorded with the caller's Airflow user name; never by
    the user whose run held it (403)."""
    from finflows.flows.banking import delivery, payments

    with _db() as conn:
        try:
            return payments.decide_hold(conn, reference, body.decision, by=_name(user), note=body.note)
        except delivery.FourEyesRefused as e:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from e
        except LookupError as e:
            raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e


@app.get("/batches/{batch_id}")
def get_batch(_: Reader, batch_id: int) -> dict:
    """A batch: file, checksums, archive, its payments (reference, amount, state), transfers, returns."""
    from finflows import monitor

    with _db() as conn:
        found = monitor.batch(conn, batch_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no batch {batch_id}")
    return found


@app.post("/banks/{bank_id}/test-connection")
def check_bank_connection(user: Operator, bank_id: str) -> dict:
    """Log in to the bank's SFTP server and stat its upload directory now; once per bank per
    ``FINFLOWS_TEST_CONNECTION_INTERVAL`` seconds (429 before that), recorded in
    ``pay.connection_test`` with the caller. The answer says what failed in words, never a host."""
    from finflows import settings
    from finflows.flows.banking import banks, health
    from finflows.flows.banking.common import sftp

    try:
        bank = banks.load().bank(bank_id)
    except (KeyError, ValueError):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no bank {bank_id!r} is configured") from None
    interval = settings.test_connection_interval()
    with _db() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"test-connection/{bank.id}",))
        cur.execute("SELECT extract(epoch FROM now() - max(at)) FROM pay.connection_test WHERE bank = %s", (bank.id,))
        (since,) = cur.fetchone()
        if since is not None and since < interval:
            wait = int(interval - since) + 1
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"{bank.id} was tested {int(since)} s ago; again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        check = health.probe(sftp(bank, one_attempt=True), bank)
        cur.execute(
            "INSERT INTO pay.connection_test (bank, asked_by, ok, latency_ms, error) VALUES (%s, %s, %s, %s, %s)",
            (bank.id, _name(user), check.ok, check.latency_ms, check.error),
        )
    return {"bank": bank.id, "ok": check.ok, "latency_ms": check.latency_ms, "error": _in_words(check.error)}


def _in_words(error: str | None) -> str | None:
    """What a failed connection test tells a caller: the kind of failure, not the address or the
    configuration (the full message is in pay.connection_test for operations)."""
    if error is None:
        return None
    text = error.lower()
    for needle, words in (
        ("timed out", "the bank's server did not answer in time"),
        ("refused", "the bank's server refused the connection"),
        ("host key", "the bank's server presented a host key other than the one pinned"),
        ("authentication", "the bank's server refused our login"),
        ("permission", "the bank's server refused access to the upload directory"),
        ("no such file", "the upload directory does not exist on the bank's server"),
    ):
        if needle in text:
            return words
    return f"the test failed ({error.split(':', 1)[0]})"


class GenerateBatch(BaseModel):
    banks: list[str] = Field(min_length=1, description='the banks to pay, or ["all"] for every enabled bank')


@app.post("/batches/generate", status_code=status.HTTP_202_ACCEPTED)
def generate_batch(user: Operator, body: GenerateBatch, request: Request) -> dict:
    """Trigger bank_payments now through Airflow's REST API, as the caller; refused (409, in words)
    when the caller is the only approver of a bank whose files would need one."""
    import httpx

    from finflows import settings
    from finflows.flows.banking import banks

    cfg = banks.load()
    try:
        chosen = body.banks if body.banks == [settings.ALL_BANKS] else [cfg.bank(b).id for b in body.banks]
    except (KeyError, ValueError) as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from e
    from finflows.flows.banking.common import no_approver

    # the run would be refused by its first task: say why now, before anything is triggered
    refusal = no_approver(cfg, cfg.enabled if chosen == [settings.ALL_BANKS] else chosen, _name(user))
    if refusal:
        raise HTTPException(status.HTTP_409_CONFLICT, refusal)
    base = _own_api()
    headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
    conf = {"banks": chosen}
    r = httpx.post(
        f"{base}/api/v2/dags/{PAYMENTS_DAG}/dagRuns",
        headers=headers,
        timeout=30,
        json={"logical_date": None, "conf": conf, "note": "generate-batch from the finance monitor"},
    )
    if r.status_code >= 400:
        raise HTTPException(r.status_code, f"Airflow refused the run: HTTP {r.status_code}")
    run = r.json()
    return {"dag_id": PAYMENTS_DAG, "dag_run_id": run["dag_run_id"], "state": run["state"], "conf": conf}
