"""finflows registered as a provider (the ``finflows`` distribution's entry point, installed by
``make venv``): the Connections form knows the ``pgp`` type, its fields and its Test button."""

from __future__ import annotations


def test_the_pgp_connection_type_reaches_the_connections_form():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    pm = ProvidersManager()  # the API server's view: the Connections form
    assert pm.providers["finflows"].data["package-name"] == "finflows"
    hook = ProvidersManagerTaskRuntime().hooks["pgp"]  # a task's view: BaseHook.get_hook by conn type
    assert (hook.hook_class_name, hook.hook_name, hook.connection_testable) == (
        "finflows.hooks.pgp.PgpHook",
        "OpenPGP key",
        True,
    )
    form = pm.field_behaviours["pgp"]
    assert set(form["hidden_fields"]) == {"host", "schema", "login", "port", "extra"}
    assert form["relabeling"]["password"].startswith("Passphrase")
    fields = {w.field_name: w for w in pm.connection_form_widgets.values() if w.hook_class_name.endswith("PgpHook")}
    assert set(fields) == {"public_key", "private_key", "fingerprint"}
    # text areas keep an armoured key's line breaks (a single-line input, password or not, drops them)
    assert (
        fields["public_key"].field["schema"]["format"] == fields["private_key"].field["schema"]["format"] == "multiline"
    )
    # the private key stays secret by its name: the API, the UI and the logs mask a field so named
    from airflow._shared.secrets_masker.secrets_masker import should_hide_value_for_key

    assert should_hide_value_for_key("private_key") and should_hide_value_for_key("extra__pgp__private_key")


def test_ftps_and_google_workspace_are_connection_types_whose_test_button_works():
    """Issue #40: Test answered 'Unknown hook type "ftps"', and the Google connection's Test asked
    www.googleapis.com whatever its endpoint."""
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    assert (hooks["ftps"].hook_class_name, hooks["ftps"].connection_testable) == ("finflows.hooks.ftp.FTPSHook", True)
    google = hooks["google_workspace"]
    assert (google.hook_class_name, google.connection_testable) == ("finflows.google.WorkspaceHook", True)


def test_an_openpgp_connection_saved_without_a_key_is_refused_in_words():
    """The api-server's root middleware: 422 with the reason, before Airflow stores it; any other
    body reaches the app byte for byte."""
    import json

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from finflows.connection_guard import PgpConnectionGuard

    async def store(request):
        return JSONResponse({"stored": json.loads(await request.body())})

    app = Starlette(routes=[Route("/api/v2/connections", store, methods=["POST", "PATCH"]),
                            Route("/api/v2/connections/test", store, methods=["POST"]),
                            Route("/api/v2/connections/{cid}", store, methods=["PATCH"])])  # fmt: skip
    app.add_middleware(PgpConnectionGuard)
    client = TestClient(app)
    empty = {"connection_id": "pgp_bank_x", "conn_type": "pgp", "extra": "{}"}
    r = client.post("/api/v2/connections", json=empty)
    assert r.status_code == 422 and "pgp_bank_x: an OpenPGP connection needs a key" in r.json()["detail"]
    blank = empty | {"extra": json.dumps({"public_key": "  ", "fingerprint": ""})}
    assert client.patch("/api/v2/connections/pgp_bank_x", json=blank).status_code == 422
    short = empty | {"extra": json.dumps({"public_key": "-----BEGIN PGP…", "fingerprint": "ABC"})}
    assert "40 hex digits" in client.post("/api/v2/connections", json=short).json()["detail"]
    bulk = {"actions": [{"action": "create", "entities": [empty]}]}
    assert client.patch("/api/v2/connections", json=bulk).status_code == 422
    good = empty | {
        "extra": json.dumps({"public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx", "fingerprint": "A" * 40})
    }
    assert client.post("/api/v2/connections", json=good).json() == {"stored": good}
    other = {"connection_id": "sftp_x", "conn_type": "sftp", "extra": "{}"}
    assert client.post("/api/v2/connections", json=other).json() == {"stored": other}
    # the list's Test button sends port Number(null) = 0 for a connection without a port: dropped
    row = {"connection_id": "pgp_bank_mega", "conn_type": "pgp", "host": "", "port": 0, "extra": "{}"}
    assert client.post("/api/v2/connections/test", json=row).json() == {
        "stored": {k: v for k, v in row.items() if k != "port"}
    }
    sftp = {"connection_id": "sftp_mega", "conn_type": "sftp", "port": 2222}
    assert client.post("/api/v2/connections/test", json=sftp).json() == {"stored": sftp}
