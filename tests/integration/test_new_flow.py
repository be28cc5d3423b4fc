"""Issue #42: a new inbox flow is its package and its DAG file. The example flow
(``examples/inbox_flow``) is copied into a copy of the repository the way its docstring says to ship
one: the package under ``plugins/finflows/flows/bank_fees/``, the DAG file into ``dags/`` naming the
package where it now lives, the README's table of flows and Helm's and compose's environment written
from the specs (the local stack's buckets too). Nothing else is edited; the DAG integrity, layout, docs, Helm and
compose tests then pass there, and they did look at the new DAG.
No service is needed (it runs with the integration tests for its minute or two)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".venv", ".local", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules"
)


def test_a_new_inbox_flow_is_its_package_and_its_dag_file(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=SKIP)
    shutil.copytree(REPO / "examples" / "inbox_flow", copy / "plugins/finflows/flows/bank_fees", ignore=SKIP)
    dag = (REPO / "examples/inbox_flow/dag.py").read_text(encoding="utf-8")
    assert dag.count("examples.inbox_flow") == 2  # FLOW and find_files' import: where the package lives
    (copy / "dags/example_bank_fees.py").write_text(
        dag.replace("examples.inbox_flow", "finflows.flows.bank_fees"), encoding="utf-8"
    )
    env = os.environ | {"FINFLOWS_UNIT": "1", "PYTHONPATH": f"{copy / 'plugins'}{os.pathsep}{copy}"}
    env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    readme = subprocess.run(
        [sys.executable, "-m", "finflows.flowspec", "write", str(copy)],
        check=False, cwd=copy, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert readme.returncode == 0, readme.stderr
    assert "| `example_bank_fees` | daily 07:00 Europe/London |" in (copy / "README.md").read_text(encoding="utf-8")
    for deployed in ("deploy/helm/values.yaml", "docker/airflow.env"):  # its setting, from its spec
        assert "FINFLOWS_BANK_FEES_BUCKET" in (copy / deployed).read_text(encoding="utf-8"), deployed
    local = subprocess.run(
        [sys.executable, "-c", "from devstack import stack; print(stack.bucket_settings())"],
        check=False, cwd=copy, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "'FINFLOWS_BANK_FEES_BUCKET': 'finflows-bank-fees'" in local.stdout, local.stderr  # the local stack makes it
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
         "tests/dags/test_dag_integrity.py", "tests/dags/test_layout.py", "tests/test_docs.py",
         "tests/test_deploy.py", "tests/test_docker_compose.py"],
        check=False, cwd=copy, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASSED") and "example_bank_fees" in line]
    assert len(passed) >= 5, run.stdout[-4000:]  # the new DAG was among those checked, one by one
