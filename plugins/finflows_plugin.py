"""The finflows Airflow plugin: the finance monitor API (``/finflows/api``) in the api-server, its
page in the Airflow UI (Browse → Finance monitor, an external view over ``/finflows/api/ui``), a
guard that refuses an OpenPGP connection saved without a key (``finflows.connection_guard``),
and the flows' timetable (``finflows.schedules.ZonedCron``: the schedule shown with its zone).

A top-level module on purpose: Airflow imports every ``.py`` under ``plugins/`` by its bare
name, and ``plugins/.airflowignore`` keeps it out of the ``finflows`` package.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class FinflowsPlugin(AirflowPlugin):
    name = "finflows"

    @property
    def fastapi_apps(self):  # built when the api-server asks, not when a worker loads plugins
        from finflows import airflow_fixes
        from finflows.monitor_api import app

        airflow_fixes.apply()  # Clear of a failed run with a pending deadline (apache/airflow#70368)

        return [{"app": app, "url_prefix": "/finflows/api", "name": "finflows finance monitor"}]

    @property
    def fastapi_root_middlewares(self):  # an OpenPGP connection saved without a key is refused in words
        from finflows.connection_guard import PgpConnectionGuard

        return [{"middleware": PgpConnectionGuard, "args": [], "kwargs": {}, "name": "finflows pgp connection guard"}]

    @property
    def timetables(self):  # the scheduler, dag-processor and api-server decode the DAGs' schedules with it
        from finflows.schedules import ZonedCron

        return [ZonedCron]

    external_views: list[Any] = [  # noqa: RUF012 (an instance attribute of AirflowPlugin, declared so there)
        {
            "name": "Finance monitor",
            "href": "finflows/api/ui",  # relative: works behind a proxy prefix
            "destination": "nav",
            "category": "browse",
            "url_route": "finance-monitor",
        }
    ]
