"""The production files are checked statically (no Docker or Kubernetes here): the Dockerfile
bakes the pinned Airflow and the code in, and the Helm values give the chart every setting the
flows read, a secrets backend that exists, the triggerer, and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VALUES = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())


def test_the_image_is_the_pinned_airflow_with_the_lock_and_the_code():
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow(?:\[[^\]]*\])?==([\d.]+)$", (REPO / "requirements.in").read_text(), re.M)[1]
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11$", dockerfile, re.M)
    assert "COPY --chown=airflow:0 requirements.txt /opt/finflows/requirements.txt" in dockerfile
    assert f"ARG AIRFLOW_VERSION={pinned}" in dockerfile
    assert "pip install --no-cache-dir --require-hashes -r /opt/finflows/requirements.txt" in dockerfile
    assert 'grep -q "^apache-airflow==${AIRFLOW_VERSION} " /opt/finflows/requirements.txt' in dockerfile
    assert "requirements-dev" not in dockerfile
    for part in ("dags", "plugins", "include"):
        assert f"COPY --chown=airflow:0 {part}/ /opt/airflow/{part}/" in dockerfile


def pins(name: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", (REPO / name).read_text(), re.M))


def test_every_pin_carries_its_hashes_and_every_install_requires_them():
    """Supply chain: `make lock` writes a sha256 for every file of every pinned package, the image
    (pip) and `make` (uv) refuse anything without a matching one."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        text = (REPO / name).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.split("\n", 2)[2])
        assert len(blocks) == len(pins(name)) > 300, name
        for block in blocks:
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"{name}: no hash for {block.split()[0]}"
    makefile = (REPO / "Makefile").read_text()
    assert "uv pip sync -q --require-hashes" in makefile and "compile -q --generate-hashes" in makefile


def test_the_image_requirements_hold_the_runtime_only_at_the_versions_tests_ran_with():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    # what only the local stand-ins, the tests, lint and benchmarks need (requirements-dev.in)
    dev_only = {
        "moto",
        "pyopenssl",
        "aiosmtpd",
        "pytest",
        "pytest-timeout",
        "hypothesis",
        "time-machine",
        "playwright",
        "ruff",
    }
    assert {p.lower() for p in runtime} & dev_only == set()
    assert {"moto", "pytest", "playwright", "ruff", "aiosmtpd"} <= set(dev)  # the dev file does hold them
    assert {p: v for p, v in runtime.items() if dev.get(p) != v} == {}, "requirements.txt differs from the tested pins"
    wanted = re.findall(r"^([a-z0-9\-]+)", (REPO / "requirements.in").read_text(), re.M)
    assert {w for w in wanted if w not in runtime} == set()
    assert runtime["apache-airflow"] == "3.3.2"


def test_helm_values_run_kubernetes_executor_with_triggerer_secrets_backend_and_metrics():
    import importlib

    assert VALUES["executor"] == "KubernetesExecutor"
    assert VALUES["triggerer"]["enabled"] is True  # asset watchers and Deadline Alert callbacks run there
    module, _, cls = VALUES["config"]["secrets"]["backend"].rpartition(".")
    assert hasattr(importlib.import_module(module), cls)
    assert VALUES["config"]["metrics"]["statsd_on"] == "True" and VALUES["statsd"]["enabled"] is True
    assert VALUES["postgresql"]["enabled"] is False and VALUES["data"]["metadataSecretName"]


def test_helm_values_set_every_setting_and_every_bank_value():
    from finflows import flowspec

    declared = {s.env: s for _owner, s in flowspec.declared_settings().values()}
    banks = set(re.findall(r"\$\{(FINFLOWS_[A-Z_]+)\}", (REPO / "include" / "banking" / "banks.yaml").read_text()))
    given = {e["name"]: e["value"] for e in VALUES["env"]}
    assert set(declared) <= set(given) and banks <= set(given)
    assert given["FINFLOWS_PAYMENT_APPROVERS"] == "REPLACE"  # production names its own approvers
    assert given["FINFLOWS_BANKS_FILE"] == "/opt/airflow/include/banking/banks.yaml"  # the image's include/
    assert given["FINFLOWS_CASHFILE_BUCKET"] == declared["FINFLOWS_CASHFILE_BUCKET"].default
    assert not any("password" in e["name"].lower() or "secret" in e["name"].lower() for e in VALUES["env"])


def test_helm_values_give_every_aws_component_its_own_role_and_keep_task_logs():
    """Each component that reaches AWS has a service account with the IRSA role (the chart has no
    top-level ``serviceAccount``: it would be ignored); the versions are stated; task logs go to S3
    (KubernetesExecutor's pods end with their task); emails link to the public URL, not localhost."""
    assert "serviceAccount" not in VALUES
    role = "eks.amazonaws.com/role-arn"
    for component in (VALUES["scheduler"], VALUES["apiServer"], VALUES["triggerer"], VALUES["dagProcessor"]):
        assert component["serviceAccount"]["create"] is True and role in component["serviceAccount"]["annotations"]
    assert role in VALUES["workers"]["kubernetes"]["serviceAccount"]["annotations"]
    pinned = re.search(r"^apache-airflow(?:\[[^\]]*\])?==([\d.]+)$", (REPO / "requirements.in").read_text(), re.M)[1]
    assert VALUES["airflowVersion"] == VALUES["defaultAirflowTag"] == pinned
    assert "--version 1.22.0" in (REPO / "deploy" / "helm" / "values.yaml").read_text()
    logging = VALUES["config"]["logging"]
    assert logging["remote_logging"] == "True" and logging["remote_base_log_folder"].startswith("s3://")
    assert logging["remote_log_conn_id"] == "aws_finflows"
    assert (
        VALUES["config"]["api"]["base_url"].startswith("https://")
        and "localhost" not in VALUES["config"]["api"]["base_url"]
    )


def _value_paths(values: dict, prefix: str = ""):
    """Every key path a values file sets (``scheduler.serviceAccount.create``)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _value_paths(value, f"{path}.")
        else:
            yield path


def _not_chart_keys(values: dict) -> list[str]:
    """The key paths of ``values`` that deploy/helm/chart-keys.txt (the chart's own keys) lacks."""
    lines = (REPO / "deploy" / "helm" / "chart-keys.txt").read_text().splitlines()
    facts = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    exact = {f for f in facts if not f.endswith(".*")}
    open_below = tuple(f[:-1] for f in facts if f.endswith(".*"))
    return [p for p in _value_paths(values) if p not in exact and not p.startswith(open_below)]


def test_every_key_the_values_set_is_a_key_the_chart_declares():
    """Helm ignores a key its chart does not have, without a word: each key path values.yaml sets
    is one the chart declares (deploy/helm/chart-keys.txt, read from the chart's own values). A
    top-level ``serviceAccount`` or a misspelt key is caught."""
    import copy

    assert _not_chart_keys(VALUES) == []
    wrong = copy.deepcopy(VALUES)
    wrong["serviceAccount"] = {"create": True}
    wrong["workers"]["kubernetes"]["serviceAcount"] = {"create": True}
    wrong["scheduler"]["replica"] = 2
    assert sorted(_not_chart_keys(wrong)) == [
        "scheduler.replica",
        "serviceAccount.create",
        "workers.kubernetes.serviceAcount.create",
    ]


def test_every_bucket_has_lifecycle_rules_for_production():
    """deploy/s3/lifecycle.json: one lifecycle configuration per bucket setting the flows read, each
    rule a valid S3 rule; the ages follow the seeds (cash files 30 days) and include/retention.yaml
    (tenure event bodies 90 days, financial records 7 years). Accepted by the local S3 in
    tests/integration/test_retention.py."""
    import json

    rules = json.loads((REPO / "deploy" / "s3" / "lifecycle.json").read_text())
    buckets = set(re.findall(r'get\("([A-Z_]+_BUCKET)"', (REPO / "plugins" / "finflows" / "settings.py").read_text()))
    assert {k for k in rules if not k.startswith("_")} == {f"FINFLOWS_{b}" for b in buckets}
    by_prefix = {}
    for setting, cfg in rules.items():
        if setting.startswith("_"):
            continue
        for r in cfg["Rules"]:
            assert r["Status"] == "Enabled" and r["Expiration"]["Days"] > 0 and "Prefix" in r["Filter"], r
            by_prefix[(setting, r["Filter"]["Prefix"])] = r["Expiration"]["Days"]
    assert by_prefix[("FINFLOWS_CASHFILE_BUCKET", "processed/")] == 30
    assert by_prefix[("FINFLOWS_ARCHIVE_BUCKET", "tenure-events/")] == 90
    assert by_prefix[("FINFLOWS_ARCHIVE_BUCKET", "bank-payments/")] >= 7 * 365


def test_what_is_bank_shaped_elsewhere_is_derived_from_banks_yaml():
    """Issue #42: Helm's and compose's bank environment, compose's SFTP accounts and the README's
    table of banks are written from banks.yaml (python -m finflows.flows.banking.derived write)."""
    from finflows.flows.banking import derived

    assert derived.stale() == [], "run: PYTHONPATH=plugins python -m finflows.flows.banking.derived write"


def test_every_setting_read_is_declared_once_and_the_deployments_are_written_from_the_declarations():
    """Issue #42: a FINFLOWS_* setting is declared once (finflows.settings.CORE or its flow's spec);
    Helm's and compose's environment are written from the declarations (``python -m
    finflows.flowspec write``), and so is the README's table of settings: a new flow's setting reaches
    all three without a hand edit."""
    from finflows import flowspec, settings

    declared = flowspec.declared_settings()
    code = [*(REPO / "plugins").rglob("*.py"), *(REPO / "examples").rglob("*.py")]
    read = {
        n
        for f in code
        for n in re.findall(r'(?:settings\.|(?<![.\w]))get\("([A-Z][A-Z0-9_]+)"\)', f.read_text(encoding="utf-8"))
    }
    assert read, "the pattern finds the settings read"
    assert read - set(declared) == set(), "declare these in their flow's spec.py (finflows.flowspec.Setting)"
    doubled = {
        n for f in code for n in re.findall(r'settings\.get\("([A-Z][A-Z0-9_]+)",', f.read_text(encoding="utf-8"))
    }
    assert doubled & set(declared) == set(), "a declared setting's default is its declaration's alone"
    assert declared["CASHFILE_BUCKET"][0] == "cashfile_import" and declared["OPS_EMAIL"][0] == "core"
    stale = [rel for rel, (now, want) in flowspec.derived(REPO, flowspec.TARGETS).items() if now != want]
    assert stale == [], "run: PYTHONPATH=plugins python -m finflows.flowspec write"
    with pytest.raises(settings.UndeclaredSetting, match="FINFLOWS_NOT_A_SETTING is read but declared nowhere"):
        settings.get("NOT_A_SETTING")


def test_a_declared_default_is_the_one_read_and_the_environment_overrides_it(monkeypatch):
    from finflows import settings

    monkeypatch.delenv("FINFLOWS_STATEMENT_FTPS_DIR", raising=False)
    monkeypatch.delenv("FINFLOWS_BANKS_FILE", raising=False)
    assert settings.statement_ftps_dir() == "/Saida"
    assert settings.get("BANKS_FILE") == str(settings.INCLUDE / "banking" / "banks.yaml")
    monkeypatch.setenv("FINFLOWS_STATEMENT_FTPS_DIR", "/elsewhere")
    assert settings.statement_ftps_dir() == "/elsewhere"
    assert settings.intake_limit("STATEMENT") == settings.Limit(1 << 30, "FINFLOWS_STATEMENT_MAX_BYTES")
    assert settings.intake_limit("NEW_FLOW") == settings.Limit(64 << 20, "FINFLOWS_NEW_FLOW_MAX_BYTES")
