"""finflows as an Airflow provider, for what only a provider can register: the ``pgp`` connection
type (``PgpHook``), so the Connections form offers "OpenPGP key" with its own fields and a Test
button. Found through the ``apache_airflow_provider`` entry point of the ``finflows``
distribution (``pyproject.toml``; ``make venv`` and the image install it: metadata only, the code
stays in ``plugins/``)."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "finflows",
        "name": "finflows",
        "description": "The finance team's file exchanges: PGP keys as connections, bank and file operators.",
        "versions": ["0.1.0"],
        "connection-types": [{"connection-type": "pgp", "hook-class-name": "finflows.hooks.pgp.PgpHook"}],
    }
