"""finflows as an Airflow provider, for what only a provider can register: the ``ftps`` connection
type (``finflows.hooks.ftp.FTPSHook``; the ftp provider registers ``ftp`` only, so Test answered
'Unknown hook type "ftps"'), ``google_workspace`` (``finflows.google.WorkspaceHook``: its Test asks
Drive, at the connection's endpoint) and the ``pgp`` connection type (``PgpHook``), so the Connections form offers "OpenPGP key" with its own fields (public
key, private key as a secret, the pinned fingerprint) and a Test button. Airflow 3 reads the
form from this declaration, without importing the hook. Found through the ``apache_airflow_provider`` entry point of the ``finflows``
distribution (``pyproject.toml``; ``make venv`` and the image install it: metadata only, the code
stays in ``plugins/``)."""

from __future__ import annotations

_GOOGLE_WORKSPACE = {
    "connection-type": "google_workspace",
    "hook-class-name": "finflows.google.WorkspaceHook",
    "hook-name": "Google Workspace (Drive and Sheets)",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
        "relabeling": {},
        "placeholders": {},
    },
    "conn-fields": {
        # keyfile_dict is one of Airflow's sensitive names: masked in the API, the UI and logs
        "keyfile_dict": {
            "label": "Service account key (JSON)",
            "schema": {"type": ["string", "null"], "format": "multiline"},
        },
        "scope": {
            "label": "Scopes (comma-separated)",
            "schema": {"type": ["string", "null"]},
        },
        "api_endpoint": {
            "label": "API endpoint (empty in production: Google itself)",
            "schema": {"type": ["string", "null"]},
        },
        "num_retries": {"label": "Retries", "schema": {"type": ["integer", "null"]}},
    },
}

_FTPS = {
    "connection-type": "ftps",
    "hook-class-name": "finflows.hooks.ftp.FTPSHook",
    "hook-name": "FTPS (explicit TLS, session reuse)",
    "ui-field-behaviour": {
        "hidden-fields": ["schema"],
        "relabeling": {},
        "placeholders": {
            "port": "21",
            "extra": '{"passive": true, "timeout": 60}',
        },
    },
}

_PGP = {
    "connection-type": "pgp",
    "hook-class-name": "finflows.hooks.pgp.PgpHook",
    "hook-name": "OpenPGP key",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "login", "port", "extra"],
        "relabeling": {"password": "Passphrase (own key only)"},
        "placeholders": {},
    },
    "conn-fields": {
        # text areas: an armoured key is many lines, and a single-line input drops
        # its line breaks. The private key is still kept secret by its name
        # (private_key is one of Airflow's sensitive field names: masked in the API,
        # the UI and logs), not by a password input.
        "public_key": {
            "label": "Public key (a counterparty's; ASCII-armoured)",
            "schema": {"type": ["string", "null"], "format": "multiline"},
        },
        "private_key": {
            "label": "Private key (ours only; ASCII-armoured)",
            "schema": {"type": ["string", "null"], "format": "multiline"},
        },
        "fingerprint": {
            "label": "Pinned fingerprint (40 hex digits; a key without it is refused)",
            "schema": {"type": ["string", "null"], "pattern": "^[0-9A-Fa-f]{40}$"},
        },
    },
}


def get_provider_info() -> dict:
    return {
        "package-name": "finflows",
        "name": "finflows",
        "description": "The finance team's file exchanges: PGP keys as connections, bank and file operators.",
        "versions": ["0.1.0"],
        "connection-types": [_GOOGLE_WORKSPACE, _FTPS, _PGP],
    }
