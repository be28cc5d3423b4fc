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
