"""Issue #42: a sixth bank is its banks.yaml entry and its two connections. In a copy of the
repository an entry is added (cathay, clearing-house code 013, a unit of the public TCH table);
`python -m finflows.flows.banking.derived write` derives what is bank-shaped elsewhere (Helm's and
compose's environment, compose's SFTP accounts, the README's table of banks), and then the unit
suite, the Helm, compose and docs tests, and the local stack's derivations (its SFTP account and
connections) are green, no other file edited. (tests/e2e/test_sixth_bank.py pays such a bank over
its own OpenSSH server.) No service is needed."""

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
CATHAY = """  cathay:
    bank_code: "013"
    name: 國泰世華商業銀行
    sftp_conn_id: sftp_cathay
    upload_path: /upload
    download_path: /download
    file_format: achp01
    encoding: cp950
    payment_file_pattern: "ACHP01_{BANK}_{YYYYMMDD}_{BATCH}.txt"
    reconciliation_file_pattern: "ACHR01_{BANK}_{YYYYMMDD}*.txt"
    cutoff_time: "15:00"
    sending_unit: "0130017"
    presenting_account: "${FINFLOWS_ACCOUNT_CATHAY}"
    pgp_key_conn_id: pgp_bank_cathay
    pgp_key_fingerprint: "${FINFLOWS_PGP_FPR_CATHAY}"
    default_txn_code: "405"
    return_window_days: 2
"""


def _run(copy: Path, *argv: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FINFLOWS_UNIT": "1", "PYTHONPATH": f"{copy / 'plugins'}{os.pathsep}{copy}"}
    env.pop("FINFLOWS_BANKS_FILE", None)
    return subprocess.run(
        [sys.executable, *argv], check=False, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_sixth_bank_is_its_entry_and_its_keys(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=SKIP)
    banks_yaml = copy / "include/banking/banks.yaml"
    banks_yaml.write_text(banks_yaml.read_text(encoding="utf-8").rstrip("\n") + "\n" + CATHAY, encoding="utf-8")

    before = _run(copy, "-m", "finflows.flows.banking.derived", "check")
    stale = {line.removeprefix("stale: ") for line in before.stdout.splitlines()}
    assert before.returncode == 1 and stale == {
        "deploy/helm/values.yaml", "docker/airflow.env", "docker/sftp-users.conf", "README.md"
    }, before.stdout + before.stderr  # fmt: skip
    wrote = _run(copy, "-m", "finflows.flows.banking.derived", "write")
    assert wrote.returncode == 0, wrote.stderr
    assert "| cathay 013 | ACHP01, Big5 | 0130017 / 0130017 |" in (copy / "README.md").read_text(encoding="utf-8")
    assert "cathay::1007:100:upload,download" in (copy / "docker/sftp-users.conf").read_text(encoding="utf-8")

    suite = _run(
        copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/formats", "tests/dags",
        "tests/test_deploy.py", "tests/test_docker_compose.py", "tests/test_docs.py",
    )  # fmt: skip
    assert suite.returncode == 0, suite.stdout[-6000:] + suite.stderr[-3000:]
    local = _run(
        copy, "-c",
        "from devstack import config, stack; "
        "assert 'cathay' in config.BANKS and config.ACCOUNT_FOLDERS['sftp']['cathay'] == ['upload', 'download']; "
        "import re; from finflows.flows.banking import banks; "
        "names = re.findall(r'[$][{](FINFLOWS_[A-Z0-9_]+)[}]', banks.DEFAULT_FILE.read_text()); "
        "env = {n: 'AB' * 20 if '_FPR' in n else '12345675' for n in names}; "
        "cfg = banks.load(env=env); print(cfg.bank('cathay').sftp_conn_id, cfg.bank('cathay').pgp_key_conn_id)",
    )  # fmt: skip
    assert local.returncode == 0 and local.stdout.split() == ["sftp_cathay", "pgp_bank_cathay"], local.stderr[-3000:]
