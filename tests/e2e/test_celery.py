"""The CeleryExecutor on one machine, as docker-compose and the Helm values run Airflow: api-server,
scheduler, dag-processor and triggerer as separate processes, two Celery workers taking tasks from
the stack's redis (Debian's redis-server), the metadata database on PostgreSQL. Every DAG is
triggered through the REST API as an operator would; then a worker is killed in the middle of an
import, and the file is still imported exactly once."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse

import pytest

from devstack import cluster, stack
from devstack.fixtures import forget_cash_files, seed_rent_accounts
from tests.e2e.test_standalone import api, finished_run, free_port, tis_of, token, wait_for
from tests.helpers.cash import KNOWN_ACCOUNTS, cash_file, random_day

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BUCKET = os.environ.get("FINFLOWS_CASHFILE_BUCKET", "finflows-cashfiles")
DAGS = (
    "cashfile_import",
    "card_reconciliation",
    "bank_payments",
    "bank_reconciliation",
    "chargeback_export",
    "tenure_sync",
    "bank_health",
    "bank_transfer_retry",
    "finance_daily_report",
)


@pytest.fixture(scope="module")
def celery_airflow(local_dir):
    database = "airflow_celery_test"  # a metadata database of its own: no run of another test here
    stack.drop_database(database)
    c = cluster.start(
        free_port(),
        executor="celery",
        workers=2,
        database=database,
        log_dir=local_dir / "logs" / "celery",
        extra_env={
            # a task whose worker died is noticed after 30 s (not 5 min) and retried 5 s later
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "FINFLOWS_RETRY_DELAY": "5",
        },
    )
    try:
        yield c
    finally:
        cluster.stop(c)
        stack.drop_database(database)
    assert not [n for n, p in c.procs.items() if p.poll() is None], "an Airflow component outlived stop()"


def given_to(c: cluster.Cluster) -> dict[str, list[dict]]:
    return cluster.tasks_given(c)


def ran_on(c: cluster.Cluster) -> dict[str, list[tuple[str, str]]]:
    """(dag_id, task_id) of each task each worker was given."""
    return {w: [(t["dag"], t["task"]) for t in tasks] for w, tasks in given_to(c).items()}


def test_every_dag_triggered_through_the_api_succeeds_on_both_celery_workers(
    celery_airflow, pg, s3_hook, clean_payments
):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from tests.helpers import payments as pay

    port = celery_airflow.port
    tok = token(port)
    seed_rent_accounts(pg, KNOWN_ACCOUNTS)
    days = [random_day() for _ in range(4)]
    names = [f"CashFile{d:%Y%m%d}.dat" for d in days]
    forget_cash_files(pg, names)
    for day, name in zip(days, names, strict=True):
        s3_hook.load_bytes(cash_file(5, day), key=f"cashfiles/{name}", bucket_name=BUCKET, replace=True)
    refs = pay.add(pg, "mega", 2, due=dt.datetime.now(ZoneInfo("Asia/Taipei")).date(), amount=900)

    runs = {}
    for dag_id in DAGS:
        wait_for(lambda d=dag_id: api(port, "GET", f"/api/v2/dags/{d}", tok), 180, f"{dag_id} to be parsed")
        api(port, "PATCH", f"/api/v2/dags/{dag_id}", tok, {"is_paused": False})
        runs[dag_id] = api(port, "POST", f"/api/v2/dags/{dag_id}/dagRuns", tok, {"logical_date": None})["dag_run_id"]
    try:
        states = {d: finished_run(port, tok, d, r, timeout=600)["state"] for d, r in runs.items()}
        failed = {
            d: [(t["task_id"], t["map_index"], t["state"]) for t in tis_of(port, tok, d, runs[d])]
            for d, s in states.items()
            if s != "success"
        }
        assert failed == {}

        done = dict(
            pg.execute(
                "SELECT file_name, count(*) FROM ops.file_control WHERE flow = 'cashfile_import' "
                "AND status = 'SUCCESS' AND file_name = ANY(%s) GROUP BY 1",
                (names,),
            ).fetchall()
        )
        assert done == dict.fromkeys(names, 1)
        assert pay.statuses(pg, refs) == dict.fromkeys(refs, "uploaded")

        per_worker = ran_on(celery_airflow)
        assert all(per_worker.values()), f"a worker ran nothing: {per_worker}"
        dags_run = {d for tasks in per_worker.values() for d, _ in tasks}
        assert set(DAGS) <= dags_run
        print({w: len(t) for w, t in per_worker.items()})
    finally:
        for dag_id in DAGS:
            if dag_id != "cashfile_import":
                api(port, "PATCH", f"/api/v2/dags/{dag_id}", tok, {"is_paused": True})


def test_a_worker_killed_mid_import_loses_nothing_and_the_file_is_imported_once(celery_airflow, pg, s3_hook):
    port = celery_airflow.port
    tok = token(port)
    seed_rent_accounts(pg, KNOWN_ACCOUNTS)
    day = random_day()
    name = f"CashFile{day:%Y%m%d}.dat"
    forget_cash_files(pg, [name])
    lines = 400_000  # an import that takes seconds, so the worker can be killed in the middle of it
    data = cash_file(lines, day)
    api(port, "PATCH", "/api/v2/dags/cashfile_import", tok, {"is_paused": False})
    try:
        s3_hook.load_bytes(data, key=f"cashfiles/{name}", bucket_name=BUCKET, replace=True)

        def importing():
            """(run id, task instance) of the running import of this file. A mapped task's label
            (rendered_map_index) is only known once it ends, so its index comes from find_files."""
            runs = api(port, "GET", "/api/v2/dags/cashfile_import/dagRuns?state=running", tok)["dag_runs"]
            for run in runs:
                rid = urllib.parse.quote(run["dag_run_id"], safe="")
                try:
                    keys = api(
                        port,
                        "GET",
                        f"/api/v2/dags/cashfile_import/dagRuns/{rid}/taskInstances/find_files"
                        "/xcomEntries/return_value?deserialize=true&stringify=false",
                        tok,
                    )["value"]
                except urllib.error.HTTPError:
                    continue  # find_files has not run yet
                if f"cashfiles/{name}" not in keys:
                    continue
                for ti in tis_of(port, tok, "cashfile_import", run["dag_run_id"]):
                    if (ti["task_id"], ti["map_index"], ti["state"]) == (
                        "import_file",
                        keys.index(f"cashfiles/{name}"),
                        "running",
                    ):
                        return run["dag_run_id"], ti
            return None

        run_id, ti = wait_for(importing, 300, f"{name} to be importing")
        holder = wait_for(
            lambda: next(
                (w for w, tasks in given_to(celery_airflow).items() if any(t["id"] == ti["id"] for t in tasks)), None
            ),
            60,
            "the worker given the import",
        )
        status = pg.execute(
            "SELECT status FROM ops.file_control WHERE flow = 'cashfile_import' AND file_name = %s", (name,)
        ).fetchone()
        assert status is None or status[0] != "SUCCESS", "the import finished before the worker could be killed"
        cluster.kill(celery_airflow, holder)

        # the scheduler notices the task has no heartbeat, the retry goes to the surviving worker
        run = finished_run(port, tok, "cashfile_import", run_id, timeout=600)
        tis = tis_of(port, tok, "cashfile_import", run_id)
        assert run["state"] == "success", tis
        # the run may import other files too (S3 events the queue kept while the DAG was paused):
        # the killed one is this file's mapped instance
        [ours] = [t for t in tis if (t["task_id"], t["map_index"]) == ("import_file", ti["map_index"])]
        assert ours["try_number"] >= 2, ours
        row = pg.execute(
            """SELECT c.status, (SELECT count(*) FROM ifs.cash_payment p WHERE p.file_id = c.id)
                              + (SELECT count(*) FROM ifs.cash_suspense s WHERE s.file_id = c.id),
                      (SELECT count(*) FROM ops.file_control c2 WHERE c2.flow = c.flow AND c2.file_name = c.file_name)
               FROM ops.file_control c WHERE c.flow = 'cashfile_import' AND c.file_name = %s""",
            (name,),
        ).fetchone()
        assert row == ("SUCCESS", lines, 1)
        survivor = next(w for w in celery_airflow.worker_names() if w != holder)
        retried = [t for t in given_to(celery_airflow)[survivor] if (t["task"], t["run"]) == ("import_file", run_id)]
        assert retried and int(retried[-1]["try"]) >= 2, given_to(celery_airflow)[survivor][-5:]
    finally:
        api(port, "PATCH", "/api/v2/dags/cashfile_import", tok, {"is_paused": True})
        forget_cash_files(pg, [name])
