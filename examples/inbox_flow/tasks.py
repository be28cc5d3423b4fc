"""The example flow's task bodies (its DAG's ``find_files``; each file's import is
``FileImportOperator``'s, through ``INBOX``)."""

from __future__ import annotations

import importlib


def find_files() -> list[str]:
    """Every fee file waiting under ``fees/`` in the flow's bucket."""
    from finflows.task_support import s3_hook

    package = importlib.import_module(__name__.rpartition(".")[0])
    keys = s3_hook().list_keys(package.bucket(), prefix="fees/") or []
    return sorted(k for k in keys if k != "fees/")
