"""docker-compose.yaml is checked statically (no Docker engine here): every reference resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
AIRFLOW_ROLES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


def test_airflow_3_3_with_celery_and_every_component():
    services = COMPOSE["services"]
    assert AIRFLOW_ROLES | {"postgres", "redis", "airflow-init"} <= set(services)
    for name in AIRFLOW_ROLES | {"airflow-init"}:
        # our image, built from the Dockerfile (Airflow 3.3.2 + requirements.txt + the code)
        assert services[name]["build"] == "." and services[name]["image"].startswith("finflows:3.3.")
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
    assert {"aws", "sftp", "ftps", "smtp", "google"} <= set(services), "a stand-in for every external system"


def test_every_dependency_volume_and_env_file_exists():
    services, volumes = COMPOSE["services"], set(COMPOSE.get("volumes") or {})
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in deps:
            assert dep in services, f"{name} depends on unknown service {dep}"
        for env_file in svc.get("env_file") or []:
            assert (REPO / env_file).is_file(), f"{name}: env_file {env_file} missing"
        for vol in svc.get("volumes") or []:
            source = vol.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: bind mount {source} missing"
            else:
                assert source in volumes, f"{name}: named volume {source} not declared"


def test_no_service_publishes_a_port_twice():
    ports = [p.split(":")[-2] for s in COMPOSE["services"].values() for p in s.get("ports") or []]
    assert len(ports) == len(set(ports))


def test_every_port_is_published_on_loopback_unless_configured():
    for name, svc in COMPOSE["services"].items():
        for port in svc.get("ports") or []:
            host = port.rsplit(":", 2)[0]
            assert host in ("127.0.0.1", "${FINFLOWS_BIND_ADDRESS:-127.0.0.1}"), (
                f"{name} publishes {port} beyond loopback"
            )


def test_the_stack_refuses_to_start_without_its_secrets():
    """No default secret: Compose's ``${VAR:?message}`` stops ``docker compose up`` with the message
    when the variable is unset or empty, and the message says where to read how to make one."""
    import re

    env = COMPOSE["x-airflow-common"]["environment"]
    for key, var in (
        ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET"),
        ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY"),
    ):
        assert re.fullmatch(rf"\$\{{{var}:\?set {var} \(see the top of docker-compose.yaml\)\}}", env[key]), env[key]
        assert f"{var}=$(python3 -c" in (REPO / "docker-compose.yaml").read_text()  # how to make one
    text = (REPO / "docker-compose.yaml").read_text() + (REPO / "docker" / "airflow.env").read_text()
    assert "change-me" not in text
    assert not re.search(r"(SECRET|FERNET)[A-Z_]*:-", text), "a secret with a default"


def test_airflow_components_are_supervised_as_in_the_official_compose_file():
    services = COMPOSE["services"]
    for name in AIRFLOW_ROLES:
        svc = services[name]
        assert svc["restart"] == "always", name
        check = svc["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 3 and check["start_period"], name
    assert "8974/health" in services["airflow-scheduler"]["healthcheck"]["test"][-1]
    assert COMPOSE["x-airflow-common"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "TriggererJob" in services["airflow-triggerer"]["healthcheck"]["test"][-1]
    assert "DagProcessorJob" in services["airflow-dag-processor"]["healthcheck"]["test"][-1]
    worker = services["airflow-worker"]
    assert "inspect ping" in worker["healthcheck"]["test"][-1]
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown: running tasks finish
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"  # the common env kept


def test_stand_ins_install_only_pinned_packages():
    import re

    for name, svc in COMPOSE["services"].items():
        command = (
            " ".join(svc.get("command") or []) if isinstance(svc.get("command"), list) else svc.get("command") or ""
        )
        for install in re.findall(r"pip install ([^&]+)", command):
            for package in install.split():
                assert package.startswith("-") or "==" in package, f"{name}: {package} unpinned"
        for install in re.findall(r"apt-get install ([^&]+)", command):
            for package in install.split():
                assert package.startswith("-") or "=" in package, f"{name}: {package} unpinned"


def test_the_file_follows_the_compose_specification(tmp_path):
    """Validated against the Compose specification's JSON schema (vendored in check-jsonschema); the
    same check refuses a file with a key the specification does not have."""
    import shutil
    import subprocess
    import sys

    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    ok = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(REPO / "docker-compose.yaml")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text((REPO / "docker-compose.yaml").read_text().replace("\nservices:\n", "\nservicez:\n"))
    refused = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(broken)], check=False, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "servicez" in refused.stdout + refused.stderr


def test_stand_ins_that_need_credentials_wait_for_the_service_that_writes_them():
    services = COMPOSE["services"]
    writer = services["stack-secrets"]
    assert "devstack.secrets" in " ".join(writer["command"])
    for name, svc in services.items():
        mounts = [v.split(":")[0] for v in svc.get("volumes") or []]
        if "stack-secrets" in mounts and name != "stack-secrets":
            assert svc["depends_on"]["stack-secrets"]["condition"] == "service_completed_successfully", name
            paths = [p for p in " ".join(svc["command"]).split() if p.startswith("/stack/")]
            assert paths, f"{name} mounts the secrets but reads none of them"
            for path in paths:  # written where devstack.secrets puts them (FINFLOWS_LOCAL=/stack)
                assert path.split("/")[2] in ("keys", "tls"), f"{name}: {path}"


def test_compose_sets_every_setting_a_flow_reads():
    """Each declared FINFLOWS_* setting (finflows.settings.CORE and the flow specs) is given to the
    compose Airflow containers, with the compose stand-ins' own values where they differ."""
    from finflows import flowspec

    given = dict(
        line.split("=", 1)
        for line in (REPO / "docker" / "airflow.env").read_text().splitlines()
        if line.startswith("FINFLOWS_")
    )
    declared = {s.env for _owner, s in flowspec.declared_settings().values()}
    assert declared - set(given) == set()
    assert given["FINFLOWS_CASHFILE_QUEUE_URL"] == "http://aws:5000/123456789012/cashfile-events"  # compose's own
    assert given["FINFLOWS_RETENTION_FILE"] == "/opt/airflow/include/retention.yaml"


def test_every_connection_a_flow_uses_is_given_or_listed_as_a_secret_to_supply():
    """Connection ids from the code and the include/ configuration: each is an AIRFLOW_CONN_* of
    docker/airflow.env or named on one of its `# secret:` lines."""
    import json
    import re

    settings = (REPO / "plugins" / "finflows" / "settings.py").read_text()
    used = set(re.findall(r'^CONN_[A-Z_]+ = "([a-z_]+)"', settings, re.M))
    used |= set(
        re.findall(
            r"(?:sftp_conn_id|pgp_key_conn_id|signing_key_conn_id): *([a-z_]+)",
            (REPO / "include" / "banking" / "banks.yaml").read_text(),
        )
    )
    used |= {
        d["conn_id"]
        for d in json.loads((REPO / "include" / "chargeback_destinations.json").read_text())["destinations"].values()
    }
    env = (REPO / "docker" / "airflow.env").read_text()
    given = {m.lower() for m in re.findall(r"^AIRFLOW_CONN_([A-Z_]+)=", env, re.M)}
    secret = {c for line in re.findall(r"^#\s+secret: (.+)$", env, re.M) for c in line.split()}
    assert len(used) >= 20 and {"aws_finflows", "sftp_mega", "pgp_finflows", "ftps_visa"} <= used
    assert used - given - secret == set()
    assert given & secret == set()


def test_the_compose_banks_are_the_banks_of_banks_yaml():
    """banks.yaml is the one list of banks: the compose stand-in SFTP server has an account for each
    (and for CivicaPay's drop), and the connections to supply name each bank's SFTP and PGP key, as
    the bank's entry in banks.yaml names them."""
    configured = yaml.safe_load((REPO / "include" / "banking" / "banks.yaml").read_text())["banks"]
    accounts = [line.split(":")[0] for line in (REPO / "docker" / "sftp-users.conf").read_text().split()]
    assert accounts == ["civicapay", *configured]
    secrets = " ".join(
        line for line in (REPO / "docker" / "airflow.env").read_text().splitlines() if line.startswith("#   secret:")
    ).split()
    for bank in configured.values():
        assert bank["sftp_conn_id"] in secrets and bank["pgp_key_conn_id"] in secrets, bank


def _python_stand_ins() -> list[str]:
    return sorted(n for n, s in COMPOSE["services"].items() if "python -m devstack" in " ".join(s.get("command") or []))


def _container_root(tmp: Path, svc: dict) -> Path:
    """A directory laid out as the service's container sees its files: each bind mount copied to its
    container path (nothing else of the repository), named volumes empty."""
    import shutil

    root = tmp / "root"
    for volume in svc.get("volumes") or []:
        source, target = volume.split(":")[:2]
        inside = root / target.lstrip("/")
        if source.startswith("./"):
            shutil.copytree(REPO / source, inside)
        else:
            inside.mkdir(parents=True, exist_ok=True)
    return root


def _service_python(tmp: Path, command: str) -> Path:
    """A virtual environment holding only what the service's command installs with pip."""
    import re
    import subprocess
    import sys

    uv = Path(sys.executable).parent / "uv"
    venv = tmp / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, venv], check=True)
    pins = [p for install in re.findall(r"pip install ([^&]+)", command) for p in install.split() if "==" in p]
    if pins:
        subprocess.run([uv, "pip", "install", "-q", "--python", venv / "bin" / "python", *pins], check=True)
    return venv / "bin" / "python"


@pytest.mark.parametrize("name", _python_stand_ins())
def test_each_python_stand_in_runs_with_only_what_its_service_installs_and_mounts(name, tmp_path):
    """Static checks miss what a container lacks. Each stand-in that runs our devstack code is run as
    its service would be, without Docker: its bind mounts alone laid out at their container paths, a
    Python holding only the packages its command installs, its environment with container paths
    mapped. The credentials writer runs whole (and needs gpg, which its apt line must install); a
    server is imported (it would run for ever)."""
    import os
    import re
    import subprocess

    svc = COMPOSE["services"][name]
    command = " ".join(svc["command"])
    root = _container_root(tmp_path, svc)
    python = _service_python(tmp_path, command)
    module = re.search(r"python -m ([\w.]+)", command)[1]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    env |= {k: str(root / v.lstrip("/")) if v.startswith("/") else v for k, v in (svc.get("environment") or {}).items()}
    run = ["-m", module] if module == "devstack.secrets" else ["-c", f"import {module}"]
    done = subprocess.run(
        [python, *run],
        cwd=root / svc["working_dir"].lstrip("/"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"
    if module == "devstack.secrets":
        stack = Path(env["FINFLOWS_LOCAL"])
        for made in (
            "tls/server.pem",
            "tls/server.key",
            "keys/ftps_passwords.json",
            "keys/google_sa_public.pem",
            "keys/pgp/keys.json",
        ):
            assert (stack / made).is_file(), made
        assert re.search(r"apt-get install [^&]*\bgnupg=", command), "the PGP keys need gpg in the container"
