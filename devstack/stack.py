"""Supervisor of the local stack: start, check, provision and stop every stand-in.

Each service is a child process with a pid file under ``.local/run`` and a log under
``.local/logs``; ``up`` is idempotent (a running, ready service is left alone), ``down`` stops
them all and ``verify_down`` proves nothing of the stack is left running or listening.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devstack import secrets
from devstack.config import (
    ACCOUNT_FOLDERS,
    AIRFLOW_DB,
    AIRFLOW_HOME,
    AIRFLOW_PG_PASSWORD,
    AIRFLOW_PG_USER,
    AIRFLOW_UP_DB,
    AWS_ACCOUNT,
    AWS_KEY_ID,
    AWS_REGION,
    AWS_SECRET,
    BANKS,
    ENV_FILE,
    FINANCE_DRIVE_FOLDER,
    FTP_PASSIVE_PORTS,
    FTP_USERS,
    FTPS_USERS,
    HOST,
    INTERIM_SPREADSHEET,
    LOCAL,
    LOGS,
    PG_DB,
    PG_PASSWORD,
    PG_USER,
    PORTS,
    QUEUES,
    REDIS_PASSWORD,
    REPO,
    RUN,
    SFTP_USERS,
    TOPICS,
    pg_bin,
)

PY = sys.executable
IS_ROOT = os.geteuid() == 0
SERVICES = ("postgres", "sftp", "ftps", "ftp", "aws", "smtp", "google", "redis")


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# ---------------------------------------------------------------------------- processes
def _pidfile(name: str) -> Path:
    return RUN / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _read_pid(name: str) -> int | None:
    p = _pidfile(name)
    if name == "postgres":
        p = PG_DATA / "postmaster.pid"
    try:
        return int(p.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _banner(port: int, prefix: bytes) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            return s.recv(64).startswith(prefix)
    except OSError:
        return False


def _wait(name: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        pid = _read_pid(name)
        if name != "postgres" and (pid is None or not _alive(pid)):
            break
        time.sleep(0.2)
    tail = (LOGS / f"{name}.log").read_text(errors="replace")[-3000:] if (LOGS / f"{name}.log").exists() else ""
    raise RuntimeError(f"{name} did not become ready on port {PORTS[name]} (log {LOGS / name}.log):\n{tail}")


def _spawn(name: str, args: list[str]) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    if port_open(PORTS[name]):
        raise RuntimeError(
            f"port {PORTS[name]} for {name} is taken by another process; stop it or set FINFLOWS_{name.upper()}_PORT"
        )
    env = os.environ | {"PYTHONPATH": str(REPO)}
    with open(LOGS / f"{name}.log", "ab") as logf:
        proc = subprocess.Popen(
            args,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
    _pidfile(name).write_text(str(proc.pid))


def _stop_pid(name: str, pid: int, timeout: float = 15) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        log(f"{name} ignored SIGTERM; killing")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- PostgreSQL
PG_DATA = LOCAL / "pg" / "data"
PG_SOCK = LOCAL / "pg" / "run"


def _as_pg(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server binary as the postgres system user when we are root."""
    if IS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def ensure_postgres_installed() -> None:
    if Path(pg_bin("postgres")).exists():
        return
    if not IS_ROOT:
        raise RuntimeError("PostgreSQL 15 is missing: run `sudo apt-get install -y postgresql-15`")
    log("installing PostgreSQL 15 from Debian packages (apt-get)")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql-15", "postgresql-client-15"],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    # Debian starts a system cluster on 5432; ours is separate and the system one is not needed.
    subprocess.run(["sh", "-c", "pg_ctlcluster 15 main stop 2>/dev/null || true"], check=False)


def _pg_ready() -> bool:
    r = subprocess.run([pg_bin("pg_isready"), "-h", HOST, "-p", str(PORTS["postgres"]), "-q"], check=False)
    return r.returncode == 0


def start_postgres() -> None:
    ensure_postgres_installed()
    pid = _read_pid("postgres")
    if pid and _alive(pid) and _pg_ready():
        provision_postgres()  # roles and databases added since the cluster was made
        return
    PG_SOCK.mkdir(parents=True, exist_ok=True)
    if IS_ROOT:
        shutil.chown(PG_DATA.parent, "postgres", "postgres")
        shutil.chown(PG_SOCK, "postgres", "postgres")
        # the postgres user must be able to reach .local/pg through the checkout's directories
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(PG_SOCK)], check=False)
        if probe.returncode != 0:
            raise RuntimeError(
                f"the postgres system user cannot reach {PG_SOCK}: make the checkout's parent "
                "directories world-executable (chmod o+x) or set FINFLOWS_LOCAL elsewhere"
            )
    if not (PG_DATA / "PG_VERSION").exists():
        log("initdb (throwaway cluster)")
        _as_pg(
            [
                pg_bin("initdb"),
                "-D",
                str(PG_DATA),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
    _as_pg(
        [
            pg_bin("pg_ctl"),
            "-D",
            str(PG_DATA),
            "-l",
            str(PG_DATA.parent / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {PORTS['postgres']} -k {PG_SOCK} -c listen_addresses={HOST} -c fsync=off "
            "-c full_page_writes=off -c max_connections=200",
            "start",
        ]
    )
    _wait("postgres", _pg_ready)
    provision_postgres()


def provision_postgres() -> None:
    """The roles and databases the stack needs, each created once (idempotent)."""
    _psql_super(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_USER}') THEN
            CREATE ROLE {PG_USER} LOGIN;
          END IF;
          ALTER ROLE {PG_USER} PASSWORD '{PG_PASSWORD}';
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'finance_readonly') THEN
            CREATE ROLE finance_readonly NOLOGIN;
          END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AIRFLOW_PG_USER}') THEN
            CREATE ROLE {AIRFLOW_PG_USER} LOGIN;
          END IF;
          ALTER ROLE {AIRFLOW_PG_USER} PASSWORD '{AIRFLOW_PG_PASSWORD}';
        END $$;""")
    if create_database(PG_DB, PG_USER):
        _psql_super(f"GRANT CONNECT ON DATABASE {PG_DB} TO finance_readonly")
    for db in (AIRFLOW_DB, AIRFLOW_UP_DB):
        create_database(db, AIRFLOW_PG_USER)


def create_database(name: str, owner: str) -> bool:
    """Create the database unless it exists; True if it was created."""
    if _psql_super(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", capture=True).strip():
        return False
    _psql_super(f"CREATE DATABASE {name} OWNER {owner}")
    return True


def drop_database(name: str) -> None:
    _psql_super(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def airflow_db_migrated(name: str = AIRFLOW_DB) -> bool:
    """Whether ``airflow db migrate`` has run on this metadata database."""
    found = _psql_super(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", capture=True).strip()
    return (
        bool(found)
        and _as_pg(
            [
                "psql",
                "-X",
                "-h",
                str(PG_SOCK),
                "-p",
                str(PORTS["postgres"]),
                "-U",
                "postgres",
                "-d",
                name,
                "-tA",
                "-c",
                "SELECT to_regclass('public.alembic_version') IS NOT NULL",
            ]
        ).stdout.strip()
        == "t"
    )


def airflow_db_url(name: str = AIRFLOW_DB) -> str:
    """SQLAlchemy URL of one of Airflow's metadata databases on the stack's PostgreSQL."""
    return f"postgresql+psycopg2://{AIRFLOW_PG_USER}:{AIRFLOW_PG_PASSWORD}@{HOST}:{PORTS['postgres']}/{name}"


def _psql_super(sql: str, capture: bool = False) -> str:
    r = _as_pg(
        [
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(PG_SOCK),
            "-p",
            str(PORTS["postgres"]),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tA",
            "-c",
            sql,
        ]
    )
    return r.stdout if capture else ""


def pg_dsn(db: str = PG_DB) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PORTS['postgres']}/{db}"


def migrate(db: str = PG_DB) -> list[str]:
    sys.path.insert(0, str(REPO / "plugins"))
    from finflows.migrations import apply_migrations

    return apply_migrations(pg_dsn(db), REPO / "include" / "sql")


def finance_database(name: str) -> list[str]:
    """Another finance database beside the suite's (make up's own): created when missing, with the
    read-only role's access, and migrated. Returns the migrations applied."""
    if create_database(name, PG_USER):
        _psql_super(f"GRANT CONNECT ON DATABASE {name} TO finance_readonly")
    return migrate(name)


def finance_connection(db: str = PG_DB) -> str:
    """The ``postgres_finance`` connection (JSON) for one finance database of the stack."""
    return _conn("postgres", host=HOST, port=PORTS["postgres"], login=PG_USER, password=PG_PASSWORD, schema=db)


def stop_postgres() -> None:
    if (PG_DATA / "postmaster.pid").exists():
        try:
            _as_pg([pg_bin("pg_ctl"), "-D", str(PG_DATA), "-m", "fast", "-w", "-t", "30", "stop"])
        except subprocess.CalledProcessError as e:
            log(f"pg_ctl stop: {e.stderr.strip()}")


# ---------------------------------------------------------------------------- the other services
def start_service(name: str, material: dict) -> None:
    pid = _read_pid(name)
    checks = {
        "sftp": lambda: _banner(PORTS["sftp"], b"SSH-2.0"),
        "ftps": lambda: _banner(PORTS["ftps"], b"220"),
        "ftp": lambda: _banner(PORTS["ftp"], b"220"),
        "aws": lambda: _http_ok(f"http://{HOST}:{PORTS['aws']}/moto-api/"),
        "smtp": lambda: _banner(PORTS["smtp"], b"220"),
        "google": lambda: _http_ok(f"http://{HOST}:{PORTS['google']}/healthz"),
        "redis": _redis_ready,
    }
    if pid and _alive(pid) and checks[name]():
        return
    if name in REAL_SERVERS:
        args = real_server_command(name, material)
    elif name == "redis":
        args = redis_command()
    else:
        mod = [PY, "-m", f"devstack.services.{name}"]
        args = {
            "aws": [*mod, str(PORTS["aws"])],
            "smtp": [*mod, str(PORTS["smtp"]), str(LOCAL / "smtp")],
            "google": [
                *mod,
                str(PORTS["google"]),
                str(LOCAL / "google"),
                str(secrets.KEYS / "google_sa_public.pem"),
                str(REPO / "include" / "stack" / "google_seed.json"),
            ],
        }[name]
    _spawn(name, args)
    _wait(name, checks[name])


def redis_command() -> list[str]:
    """Debian's redis-server with a config of its own: loopback only, protected mode, a password,
    no persistence (a broker's queue of the local stack), in the foreground under our pid file."""
    from devstack.services import servers

    servers.ensure_installed()
    (LOCAL / "redis").mkdir(parents=True, exist_ok=True)
    conf = LOCAL / "redis" / "redis.conf"
    conf.write_text(
        f'bind {HOST}\nport {PORTS["redis"]}\nprotected-mode yes\ndaemonize no\nsave ""\nappendonly no\n'
        f'dir {LOCAL / "redis"}\nlogfile ""\nrequirepass {REDIS_PASSWORD}\n'
    )
    conf.chmod(0o600)
    return [servers.REDIS, str(conf)]


def _redis_ready() -> bool:
    try:
        with socket.create_connection((HOST, PORTS["redis"]), timeout=2) as s:
            s.sendall(f"AUTH {REDIS_PASSWORD}\r\nPING\r\n".encode())
            got = b""
            while b"PONG" not in got and len(got) < 200:
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
            return b"+PONG" in got
    except OSError:
        return False


def celery_env() -> dict[str, str]:
    """Celery settings for EXECUTOR=celery: the stack's redis as broker, Airflow's metadata
    database as result backend (as docker-compose and the Helm values have them)."""
    backend = airflow_db_url().replace("postgresql+psycopg2://", "db+postgresql://")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{REDIS_PASSWORD}@{HOST}:{PORTS['redis']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": backend,
    }


def stop_service(name: str) -> None:
    """Stop one service (fault-injection tests stop a real server and start it again with start_service).

    sshd and vsftpd leave their sessions running when the listener stops: those are stopped too."""
    pid = _read_pid(name)
    if pid and _alive(pid):
        if name in REAL_SERVERS:
            kill_sessions(pid, signal.SIGTERM)
        _stop_pid(name, pid)
    _pidfile(name).unlink(missing_ok=True)
    deadline = time.monotonic() + 10  # the process is gone; let the kernel finish closing its listener
    while port_open(PORTS[name]) and time.monotonic() < deadline:
        time.sleep(0.1)


# ---------------------------------------------------------------------------- sshd and vsftpd
REAL_SERVERS = ("sftp", "ftps", "ftp")


def real_server_command(name: str, material: dict) -> list[str]:
    """Provision and return the command of OpenSSH's sshd (sftp) or vsftpd (ftps, ftp)."""
    from devstack.services import servers

    if name == "sftp":
        return servers.sshd_command(
            PORTS["sftp"], ACCOUNT_FOLDERS["sftp"], material["ssh"]["host_key"], material["ssh"]["authorized"]
        )
    folders = ACCOUNT_FOLDERS[name]
    passwords = json.loads(material[name].read_text())
    tls = material["tls"] if name == "ftps" else {"cert": None, "key": None}
    return servers.vsftpd_command(name, PORTS[name], folders, passwords, tls["cert"], tls["key"])


def kill_sessions(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Signal every session process of a server (its descendants); returns their pids."""
    from devstack.services import servers

    pids = servers.descendants(pid)
    for child in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)
    return pids


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback only)
            return r.status == 200
    except OSError:
        return False


def _aws_client(service: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=f"http://{HOST}:{PORTS['aws']}",
        region_name=AWS_REGION,
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=AWS_SECRET,
    )


def queue_url(name: str) -> str:
    return f"http://{HOST}:{PORTS['aws']}/{AWS_ACCOUNT}/{name}"


def bucket_settings() -> dict[str, str]:
    """The FINFLOWS_* settings naming the local buckets: every bucket the flow specs declare, by
    its default name (``finflows.flowspec.buckets``)."""
    sys.path.insert(0, str(REPO / "plugins"))
    from finflows import flowspec

    return flowspec.buckets()


def _provision_kms(keys: dict[str, str]) -> None:
    """A KMS key behind each alias (once: a second ``up`` finds the alias)."""
    kms = _aws_client("kms")
    have = {a["AliasName"] for a in kms.list_aliases().get("Aliases", [])}
    for alias, purpose in keys.items():
        if alias not in have:
            key_id = kms.create_key(Description=purpose[:8192])["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)


def provision_aws() -> None:
    """Buckets, queues, topics, S3 → SQS notifications and lifecycle rules the flows need."""
    spec = json.loads((REPO / "include" / "stack" / "aws.json").read_text())
    s3, sqs, sns = _aws_client("s3"), _aws_client("sqs"), _aws_client("sns")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    arns = {}
    for q in QUEUES:
        url = sqs.create_queue(QueueName=q)["QueueUrl"]
        arns[q] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if "tenure-events-dlq" in arns:
        sqs.set_queue_attributes(
            QueueUrl=queue_url("tenure-events"),
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arns["tenure-events-dlq"], "maxReceiveCount": "5"})
            },
        )
    _provision_kms(spec.get("kms_keys", {}))
    for t in TOPICS:
        topic_arn = sns.create_topic(Name=t)["TopicArn"]
        for sub in spec["topics"].get(t, {}).get("subscribe_queues", []):
            sns.subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=arns[sub], Attributes={"RawMessageDelivery": "true"}
            )
    # the lifecycle rules production applies (deploy/s3/lifecycle.json), by the setting naming each bucket
    lifecycle = json.loads((REPO / "deploy" / "s3" / "lifecycle.json").read_text())
    for setting, bucket in bucket_settings().items():
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": AWS_REGION})
        conf = spec["buckets"].get(setting, {})
        rules = lifecycle.get(setting, {}).get("Rules")
        if rules:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        if conf.get("notifications"):
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "Id": n["id"],
                            "QueueArn": arns[n["queue"]],
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {
                                    "FilterRules": [
                                        {"Name": "prefix", "Value": n["prefix"]},
                                        {"Name": "suffix", "Value": n.get("suffix", "")},
                                    ]
                                }
                            },
                        }
                        for n in conf["notifications"]
                    ]
                },
            )


# ---------------------------------------------------------------------------- environment
def airflow_env() -> dict[str, str]:
    """Airflow's own settings for local runs: its metadata DB on the stack's PostgreSQL, this repo's
    dags and plugins."""
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # .airflowignore as regular expressions: the glob syntax goes through pathspec's deprecated
        # GitWildMatchPattern, whose warning every task log carried
        "AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX": "regexp",
        # ...which the task SDK's plugin loader ignores (Airflow 3.3.2): it reads plugins/.airflowignore
        # as a glob, so the file means the same in both syntaxes and this one warning is silenced
        "PYTHONWARNINGS": "ignore:GitWildMatchPattern:DeprecationWarning",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "UTC",
        # PostgreSQL, as in production (SQLite is for trying Airflow out, not for running it)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url(),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API__PORT": os.environ.get("FINFLOWS_API_PORT", "8080"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "NO_PROXY": "127.0.0.1,localhost",
    }


def _conn(conn_type: str, **kw) -> str:
    return json.dumps({"conn_type": conn_type, **kw})


def connections(material: dict) -> dict[str, str]:
    """Airflow connections for every local service, as AIRFLOW_CONN_* variables (JSON form)."""
    from devstack.services import servers

    env: dict[str, str] = {}
    ssh = material["ssh"]
    for user in SFTP_USERS:
        env[f"AIRFLOW_CONN_SFTP_{user.upper()}"] = _conn(
            "sftp",
            host=HOST,
            port=PORTS["sftp"],
            login=servers.login("sftp", user),
            extra={"key_file": str(ssh["client_key"]), "host_key": ssh["host_pub"]},
        )
    ftps = json.loads(material["ftps"].read_text())
    for user in FTPS_USERS:
        env[f"AIRFLOW_CONN_FTPS_{user.upper()}"] = _conn(
            "ftps",
            host=HOST,
            port=PORTS["ftps"],
            login=servers.login("ftps", user),
            password=ftps[user],
            extra={"passive": True},
        )
    ftp = json.loads(material["ftp"].read_text())
    for user in FTP_USERS:
        env[f"AIRFLOW_CONN_FTP_{user.upper()}"] = _conn(
            "ftp",
            host=HOST,
            port=PORTS["ftp"],
            login=servers.login("ftp", user),
            password=ftp[user],
            extra={"passive": True},
        )
    env["AIRFLOW_CONN_POSTGRES_FINANCE"] = finance_connection()
    env["AIRFLOW_CONN_AWS_FINFLOWS"] = _conn(
        "aws",
        login=AWS_KEY_ID,
        password=AWS_SECRET,
        extra={
            "region_name": AWS_REGION,
            "endpoint_url": f"http://{HOST}:{PORTS['aws']}",
            # the Test button asks STS who we are, and the provider never sends STS to endpoint_url
            "service_config": {"sts": {"endpoint_url": f"http://{HOST}:{PORTS['aws']}"}},
        },
    )
    env["AIRFLOW_CONN_SMTP_FINFLOWS"] = _conn(
        "smtp",
        host=HOST,
        port=PORTS["smtp"],
        extra={
            "disable_tls": True,
            "disable_ssl": True,
            "from_email": "finflows@finance.local",
            "timeout": 10,
            "retry_limit": 3,
        },
    )
    pgp = material["pgp"]
    ours = pgp["finflows"]
    env["AIRFLOW_CONN_PGP_FINFLOWS"] = _conn(
        "pgp",
        password=ours["passphrase"],
        extra={"private_key": ours["secret"], "fingerprint": ours["fingerprint"]},
    )
    # the example DAG's partner (dags/examples): the local "mega" bank's key stands in for it
    env["AIRFLOW_CONN_PGP_EXAMPLE_PARTNER"] = _conn(
        "pgp", extra={"public_key": pgp["mega"]["public"], "fingerprint": pgp["mega"]["fingerprint"]}
    )
    env["FINFLOWS_PGP_SIGNING_FPR"] = ours["fingerprint"]
    for n, bank in enumerate(BANKS, start=1):
        env[f"AIRFLOW_CONN_PGP_BANK_{bank.upper()}"] = _conn(
            "pgp", extra={"public_key": pgp[bank]["public"], "fingerprint": pgp[bank]["fingerprint"]}
        )
        env[f"FINFLOWS_PGP_FPR_{bank.upper()}"] = pgp[bank]["fingerprint"]
        env[f"FINFLOWS_ACCOUNT_{bank.upper()}"] = f"{n:02d}00000000000{n}"  # our (local, made-up) account there
    google = f"http://{HOST}:{PORTS['google']}"
    env["AIRFLOW_CONN_GOOGLE_FINFLOWS"] = _conn(
        "google_workspace",
        extra={
            "keyfile_dict": json.dumps(secrets.google_service_account(f"{google}/token")),
            "scope": "https://www.googleapis.com/auth/drive,https://www.googleapis.com/auth/spreadsheets",
            "api_endpoint": google,
            "num_retries": 2,
        },
    )
    return env


def finflows_env() -> dict[str, str]:
    """Settings the flows read (see plugins/finflows/settings.py); production sets its own."""
    return {
        **bucket_settings(),
        "FINFLOWS_CASHFILE_QUEUE_URL": queue_url("cashfile-events"),
        "FINFLOWS_CHARGEBACK_QUEUE_URL": queue_url("chargeback-events"),
        "FINFLOWS_CHARGEBACK_TOPIC_ARN": f"arn:aws:sns:{AWS_REGION}:{AWS_ACCOUNT}:chargeback-notifications",
        "FINFLOWS_CHARGEBACK_AUDIT_QUEUE_URL": queue_url("chargeback-notifications-audit"),
        "FINFLOWS_TENURE_QUEUE_URL": queue_url("tenure-events"),
        "FINFLOWS_TENURE_DLQ_URL": queue_url("tenure-events-dlq"),
        "FINFLOWS_FINANCE_DRIVE_FOLDER": FINANCE_DRIVE_FOLDER,
        "FINFLOWS_INTERIM_SPREADSHEET": INTERIM_SPREADSHEET,
        "FINFLOWS_OPS_EMAIL": "finance-ops@finance.local",
        "FINFLOWS_TREASURY_EMAIL": "treasury@finance.local",
        "FINFLOWS_ACH_COMPANY_ID": "00000000",  # a made-up company id for the local stack
        "FINFLOWS_PAYMENT_APPROVERS": "treasurer",  # the local second person (make up prints its login)
        "FINFLOWS_SMTP_MAILDIR": str(LOCAL / "smtp"),
    }


def write_env(material: dict) -> dict[str, str]:
    env = airflow_env() | finflows_env() | connections(material)
    env["SSL_CERT_FILE"] = str(material["tls"]["bundle"])
    env["AWS_DEFAULT_REGION"] = AWS_REGION
    # every port of this stack, so that tests and a second stack beside it read them, never assume them
    env |= {f"FINFLOWS_{name.upper()}_PORT": str(port) for name, port in PORTS.items()}
    env["FINFLOWS_FTP_PASSIVE_PORTS"] = f"{FTP_PASSIVE_PORTS[0]}-{FTP_PASSIVE_PORTS[-1]}"
    lines = ["# generated by `python -m devstack up`; source with: set -a; . .local/stack.env; set +a"]
    lines += [f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)
    return env


# ---------------------------------------------------------------------------- commands
def material() -> dict:
    google = f"http://{HOST}:{PORTS['google']}"
    secrets.google_service_account(f"{google}/token")
    return {
        "ssh": secrets.ssh_keys(),
        "tls": secrets.tls_certs(),
        "ftps": secrets.ftp_passwords("ftps"),
        "ftp": secrets.ftp_passwords("ftp"),
        "pgp": secrets.pgp_keys(),
    }


def up() -> dict[str, str]:
    t0 = time.monotonic()
    LOCAL.mkdir(parents=True, exist_ok=True)
    mat = material()
    for old in (AIRFLOW_HOME / "airflow.db", AIRFLOW_HOME / "up.db"):  # Airflow's metadata was SQLite once
        if old.exists():
            old.unlink()
            log(f"removed {old}: Airflow's metadata is in PostgreSQL now")
    start_postgres()
    applied = migrate()
    if applied:
        log(f"migrations applied: {', '.join(applied)}")
    cert = mat["tls"]["cert"].stat().st_mtime
    if (pid := _read_pid("ftps")) and _alive(pid) and _pidfile("ftps").stat().st_mtime < cert:
        stop_service("ftps")  # it serves the certificate before the one just made (renewed): start it again
    for name in SERVICES[1:]:
        start_service(name, mat)
    provision_aws()
    env = write_env(mat)
    log(f"ready in {time.monotonic() - t0:.1f}s: " + ", ".join(f"{n}:{PORTS[n]}" for n in SERVICES))
    return env


UP, DOWN = "up", "down"
NOT_ANSWERING = "running but not answering on its port"
PORT_TAKEN = "down, but its port is held by another process"


def status() -> dict[str, str]:
    """Each service's state: ``up``, ``down``, or one of the two states that need a person
    (``NOT_ANSWERING``, ``PORT_TAKEN``)."""
    out = {}
    for name in SERVICES:
        pid = _read_pid(name)
        alive, listening = bool(pid and _alive(pid)), port_open(PORTS[name])
        out[name] = (UP if listening else NOT_ANSWERING) if alive else (PORT_TAKEN if listening else DOWN)
    return out


def all_up() -> bool:
    return all(state == UP for state in status().values())


def down() -> None:
    for name in reversed(SERVICES[1:]):
        stop_service(name)
    stop_postgres()
    log("stopped")


def verify_down() -> list[str]:
    """Names of stack services still running or still holding their port."""
    left = []
    for name in SERVICES:
        pid = _read_pid(name)
        if (pid and _alive(pid)) or port_open(PORTS[name]):
            left.append(name)
    return left
