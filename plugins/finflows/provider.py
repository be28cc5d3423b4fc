"""finflows as an Airflow provider, for what only a provider can register: the ``pgp`` connection
type (``PgpHook``), so the Connections form offers "OpenPGP key" with its own fields (public
key, private key as a secret, the pinned fingerprint) and a Test button. Airflow 3 reads the
form from this declaration, without importing the hook. Found through the ``apache_airflow_provider`` entry point of the ``finflows``
distribution (``pyproject.toml``; ``make venv`` and the image install it: metadata only, the code
stays in ``plugins/``)."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "finflows",
        "name": "finflows",
        "description": "The finance team's file exchanges: PGP keys as connections, bank and file operators.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
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
        ],
    }
