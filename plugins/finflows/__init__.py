"""finflows: the finance team's file exchanges on Apache Airflow 3.

Keep this package's top level import-light: DAG files import from it at parse time.

The modules at this level fall in three groups, each with its import rule; under them the flows
(``finflows.flows.<flow>``) use any group but never another flow. ``tests/dags/test_layout.py``
holds every module to its group's rule on what importing it loads (module-level imports followed
through every module they import, not only its own lines); a new module must be put in a group.

- **model** (``MODEL``): the core model and errors: settings and the flow specs, layouts and
  readers (``formats``), card-number masking, the seams' type names, what expires. No I/O and no
  Airflow: it imports only the model.
- **io** (``IO``): file I/O, transfer and the finance database: a file's lifecycle (``files``,
  ``inbox``), uploads seen whole, PGP, counted sessions, migrations, the monitor's queries. It
  imports the model and itself, never Airflow, so it is tested without Airflow.
- **glue** (``GLUE``): Airflow glue: operators, hooks, notifiers, triggers, the provider and the
  api-server plugin, DAG defaults, schedules, task support, emails, lineage, metrics. It imports
  the model, io and itself.

Neither group imports a flow when it is imported (a flow is found by name when needed:
``flowspec``, ``expiry``, ``inbox.Entry``).
"""

MODEL = ("errors", "settings", "flowspec", "seams", "pci", "formats", "expiry", "links")
IO = ("files", "inbox", "transfer", "pgp", "sessions", "migrations", "monitor")
GLUE = (
    "operators",
    "hooks",
    "notifiers",
    "triggers",
    "provider",
    "dag_defaults",
    "task_support",
    "schedules",
    "google",
    "monitor_api",
    "alerts",
    "emails",
    "lineage",
    "airflow_fixes",
    "connection_guard",
    "metrics",
)
