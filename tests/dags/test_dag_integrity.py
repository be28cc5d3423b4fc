"""DAG integrity, parametrised over every DAG in dags/: the rules every finflows DAG keeps."""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finflows.dag_defaults import APPROVED_TAGS, OWNER

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
HEAVY = (
    "pandas",
    "boto3",
    "botocore",
    "gnupg",
    "paramiko",
    "googleapiclient",
    "google.cloud",
    "psycopg",
    "psycopg2",
    "pyarrow",
    "numpy",
    "matplotlib",
)


@pytest.fixture(scope="session")
def dagbag():
    """The DAGs as the scheduler's dag-processor parses them: with their Deadline Alerts (the
    dag.test suites turn deadlines off, see finflows.dag_defaults.deadline)."""
    from airflow.dag_processing.dagbag import DagBag

    before = os.environ.get("FINFLOWS_DEADLINES")
    os.environ["FINFLOWS_DEADLINES"] = "on"
    try:
        return DagBag(dag_folder=str(REPO / "dags"))
    finally:
        if before is None:
            del os.environ["FINFLOWS_DEADLINES"]
        else:
            os.environ["FINFLOWS_DEADLINES"] = before


def _dag_ids() -> list[str]:
    # file stem == dag id is itself a rule (checked below), so the ids can be listed without parsing
    return [p.stem for p in DAG_FILES]


def test_there_are_dags_and_none_fails_to_import(dagbag):
    assert DAG_FILES, "dags/ holds no DAG files"
    assert dagbag.import_errors == {}, "\n".join(f"{k}: {v}" for k, v in dagbag.import_errors.items())
    assert sorted(dagbag.dag_ids) == _dag_ids(), "each dags/NAME.py defines exactly the DAG NAME"


@pytest.mark.parametrize("dag_id", _dag_ids())
class TestEveryDag:
    def test_owner_and_tags(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        assert dag.owner == OWNER
        assert dag.tags, "every DAG is tagged"
        assert set(dag.tags) <= APPROVED_TAGS, f"tags outside the approved set: {set(dag.tags) - APPROVED_TAGS}"
        from finflows import flowspec

        declared = flowspec.dags().get(dag_id)
        if declared:  # the tags come from the flow's spec (Dag.tags), not from the DAG file
            assert set(dag.tags) == set(declared[1].tags)

    def test_retries_with_exponential_backoff_and_failure_email(self, dagbag, dag_id):
        for t in dagbag.dags[dag_id].tasks:
            assert t.retries >= 2, f"{t.task_id} retries {t.retries}"
            assert t.retry_exponential_backoff, f"{t.task_id} has no exponential backoff"
            assert t.on_failure_callback, f"{t.task_id} sends no failure email"

    def test_no_task_can_wait_for_ever(self, dagbag, dag_id):
        import datetime as dt

        for t in dagbag.dags[dag_id].tasks:
            limit = t.execution_timeout
            assert limit is not None and dt.timedelta(0) < limit <= dt.timedelta(hours=1), f"{t.task_id}: {limit}"

    def test_a_deadline_alert_emails_operations_when_a_run_is_late(self, dagbag, dag_id):
        from airflow.sdk import AsyncCallback, DeadlineReference

        from finflows.dag_defaults import EXPECTED_MINUTES

        [alert] = dagbag.dags[dag_id].deadline
        assert isinstance(alert.reference, type(DeadlineReference.DAGRUN_QUEUED_AT))
        assert alert.interval.total_seconds() == EXPECTED_MINUTES[dag_id] * 60
        assert isinstance(alert.callback, AsyncCallback) and alert.callback.path == "finflows.alerts.deadline_missed"
        assert alert.callback.kwargs == {"expected_minutes": EXPECTED_MINUTES[dag_id]}

    def test_no_catchup_and_documented(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        assert dag.catchup is False
        assert dag.doc_md and len(dag.doc_md.strip()) > 200, "doc_md explains the flow"

    def test_schedule_is_timezone_aware_or_event_driven(self, dagbag, dag_id):
        dag = dagbag.dags[dag_id]
        timetable = dag.timetable
        inner = getattr(timetable, "timetable", timetable)  # AssetOrTimeSchedule wraps a time table
        if type(inner).__name__ == "AssetTriggeredTimetable":  # event-only: it must have events
            assert getattr(dag.timetable.asset_condition, "objects", None), "an event-driven DAG watches an asset"
            return
        tz = getattr(inner, "timezone", None) or getattr(inner, "_timezone", None)
        assert tz is not None, f"{type(inner).__name__} has no timezone"
        assert str(getattr(tz, "name", tz)) not in ("", "UTC") or dag_id.endswith("_health"), (
            "schedules are set in the business's own timezone"
        )

    def test_no_heavy_imports_at_module_top_level(self, dag_id):
        path = REPO / "dags" / f"{dag_id}.py"
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(HEAVY), f"{path.name} imports {name} at top level"

    def test_parsing_loads_no_heavy_module(self, parse_imports, dag_id):
        """What the DAG file pulls in transitively when parsed, beyond what Airflow itself loads."""
        heavy = sorted(m for m in parse_imports[dag_id] if any(m == h or m.startswith(h + ".") for h in HEAVY))
        assert heavy == [], f"parsing {dag_id} loads {heavy}"


@pytest.fixture(scope="module")
def parse_imports() -> dict[str, list[str]]:
    """{DAG id: the modules its file loads when parsed}, from one fresh interpreter that parses every
    DAG file in turn (one Airflow import instead of one per DAG). A module loaded by an earlier
    file is attributed to that file: a heavy import anywhere still fails, under the first DAG that
    loads it."""
    code = (
        "import sys, json, runpy, airflow.sdk\n"
        "out = {}\n"
        f"for path in {[str(p) for p in DAG_FILES]!r}:\n"
        "    before = set(sys.modules)\n"
        "    runpy.run_path(path)\n"
        "    out[path.rsplit('/', 1)[-1][:-3]] = sorted(set(sys.modules) - before)\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "plugins"), "FINFLOWS_DEADLINES": "on"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("syntax", ["regexp", "glob"])
def test_the_plugin_loader_imports_only_the_plugin_module_and_warns_of_nothing(syntax):
    """Airflow's plugin loader imports every .py file of plugins/ under its bare name: without
    plugins/.airflowignore, finflows/google.py becomes sys.modules["google"] and every Google client
    import fails. The scheduler reads the ignore file as regular expressions (our setting), the task
    SDK's loader as a glob whatever the setting (Airflow 3.3.2): both must keep finflows/ out, in a
    process with the stack's environment, and print no deprecation warning."""
    repo = Path(__file__).resolve().parents[2]
    assert os.environ.get("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX") == "regexp"
    code = (
        "import sys, warnings\n"
        "from airflow.sdk._shared.plugins_manager import _load_plugins_from_plugin_directory\n"
        f"plugins, errors = _load_plugins_from_plugin_directory(plugins_folder={str(repo / 'plugins')!r}, "
        f"load_examples=False, example_plugins_module=None, ignore_file_syntax={syntax!r})\n"
        "print(sorted(p.name for p in plugins), errors, getattr(sys.modules.get('google'), '__file__', None))\n"
        "import googleapiclient.discovery\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['finflows'] {} None"
    assert "deprecated" not in out.stderr.lower(), out.stderr


def _day_of_fires(dag):
    """(zone, the DAG's fire times on a Monday) from its timetable; None for an asset-only DAG."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from croniter import croniter

    inner = getattr(dag.timetable, "timetable", dag.timetable)
    # the SDK's cron timetables keep both private (``_timezone``, ``_expression``); the serialised
    # ones public: read either, or every check below would pass by checking nothing
    tz = getattr(inner, "timezone", None) or getattr(inner, "_timezone", None)
    expression = getattr(inner, "expression", None) or getattr(inner, "_expression", None)
    if tz is None or expression is None:  # asset-triggered only
        assert type(inner).__name__ == "AssetTriggeredTimetable", f"{dag.dag_id}: no zone or cron in {inner!r}"
        return None
    zone = ZoneInfo(str(tz.name if hasattr(tz, "name") else tz))
    monday = dt.datetime(2026, 11, 30, tzinfo=zone)
    fires = croniter(expression, monday - dt.timedelta(seconds=1))
    today = []
    while (t := fires.get_next(dt.datetime)).date() == monday.date():
        today.append(t)
    return zone, today


def _check_stated_times(dag_id: str, text: str, zone, today, where: str) -> None:
    """``text`` names the zone, and every ``HH:MM[-HH:MM] <zone>`` in it is the first (and last) run."""
    import re

    assert zone.key in text, f"{dag_id}: {where} does not name {zone.key}"
    for m in re.finditer(r"(\d\d):(\d\d)(?:[-–](\d\d):(\d\d))? " + re.escape(zone.key), text):
        first, last = today[0], today[-1]
        assert m.group(1, 2) == (f"{first:%H}", f"{first:%M}"), (
            f"{dag_id}: {where} says {m[0]}, first run {first:%H:%M}"
        )
        if m.group(3):
            assert m.group(3, 4) == (f"{last:%H}", f"{last:%M}"), (
                f"{dag_id}: {where} says {m[0]}, last run {last:%H:%M}"
            )


def test_each_schedule_is_described_with_its_time_zone_and_true_local_and_utc_times(dagbag):
    """The DAG list shows a cron like `0 6 * * *` beside next-run times in UTC; the description says
    in words when the DAG runs, in which time zone, and in UTC where that zone has no summer time.
    The times stated are checked against the timetable itself, so a changed cron cannot leave a
    wrong description behind."""
    import re

    for dag in dagbag.dags.values():
        assert dag.description, f"{dag.dag_id} has no description for the DAG list"
        fires = _day_of_fires(dag)
        if fires is None:
            continue
        zone, today = fires
        _check_stated_times(dag.dag_id, dag.description, zone, today, "the description")
        _check_stated_times(dag.dag_id, dag.doc_md, zone, today, "doc_md (the DAG's Details)")
        utc = re.search(r"\((\d\d):(\d\d)(?:-(\d\d):(\d\d))? UTC", dag.description)
        if utc:
            for day in (today[0], today[0].replace(month=7, day=6)):  # winter and summer: no summer time allowed
                first = day.replace(hour=today[0].hour, minute=today[0].minute).astimezone(dt.UTC)
                assert utc.group(1, 2) == (f"{first:%H}", f"{first:%M}"), f"{dag.dag_id}: {first:%H:%M} UTC"
                if utc.group(3):
                    last = day.replace(hour=today[-1].hour, minute=today[-1].minute).astimezone(dt.UTC)
                    assert utc.group(3, 4) == (f"{last:%H}", f"{last:%M}"), f"{dag.dag_id}: {last:%H:%M} UTC"


def test_the_schedule_airflow_shows_names_its_zone(dagbag):
    """The DAG list and Details show the timetable's summary as the dag-processor stores it: from the
    DAG serialised and read back as the scheduler and api-server read it (the plugin registers the
    timetable; an unregistered one fails here). A clock schedule's summary is its cron and its
    zone, never the cron alone; an asset-or-time schedule says both."""
    from airflow.serialization.serialized_objects import DagSerialization

    shown = {}
    for dag in dagbag.dags.values():
        core = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        shown[dag.dag_id] = core.timetable.summary
        if (fires := _day_of_fires(dag)) is None:
            continue
        inner = getattr(dag.timetable, "timetable", dag.timetable)
        expression = getattr(inner, "expression", None) or inner._expression
        assert shown[dag.dag_id].endswith(f"{expression} {fires[0].key}"), (dag.dag_id, shown[dag.dag_id])
    assert shown["bank_payments"] == "0 6 * * * Asia/Taipei"
    assert shown["cashfile_import"] == "Asset or 0 7 * * * Europe/London"
    assert shown["chargeback_export"] == "Asset"  # event-driven: no clock, no zone to show


def test_the_readme_lists_every_dag_with_the_schedule_its_timetable_has(dagbag):
    """Docs from one source: the README's table of flows has a row for each DAG (and no other), and
    the zone and times its trigger column states are the timetable's, as the description's are."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## The flows", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, re.M))
    assert set(rows) == set(dagbag.dag_ids)
    for dag in dagbag.dags.values():
        if (fires := _day_of_fires(dag)) is not None:
            _check_stated_times(dag.dag_id, rows[dag.dag_id], *fires, "the README")


def test_only_the_health_checks_start_unpaused(dagbag):
    """bank_health only logs in and looks at a directory: it runs from the first deployment, so the
    circuit breaker and the monitor know each bank at once. treasury_decisions only asks people
    (Required Actions): nothing waits unseen for someone to unpause it. Everything that moves files
    or money starts paused, as Airflow's default leaves it, until someone turns it on."""
    unpaused = {d.dag_id for d in dagbag.dags.values() if d.is_paused_upon_creation is False}
    assert unpaused == {"bank_health", "treasury_decisions"}


def test_each_dag_runs_in_the_zone_its_details_show(dagbag):
    """Details in the UI shows the DAG's timezone: it is its schedule's zone, not the server's UTC
    (issue #40: "Timezone UTC" under a Taipei schedule)."""
    zoned = {}
    for dag in dagbag.dags.values():
        timetable = getattr(dag.timetable, "timetable", dag.timetable)  # an AssetOrTimeSchedule's clock
        zone = getattr(timetable, "_timezone", None)
        if zone is not None:
            zoned[dag.dag_id] = (str(getattr(dag.timezone, "name", dag.timezone)), str(getattr(zone, "name", zone)))
    assert {"bank_payments", "cashfile_import", "card_reconciliation", "treasury_decisions"} <= set(zoned)
    assert {d: z for d, z in zoned.items() if z[0] != z[1]} == {}
    assert zoned["bank_payments"] == ("Asia/Taipei", "Asia/Taipei")


def test_a_dag_takes_its_tags_from_its_spec_and_an_undeclared_one_is_named():
    from finflows.dag_defaults import Tag, tags

    assert tags("cashfile_import") == [Tag.FINANCE, Tag.CASH, Tag.EVENT_DRIVEN, Tag.DAILY]
    assert tags("example_bank_fees", "examples.inbox_flow") == [Tag.FINANCE, Tag.DAILY]
    with pytest.raises(ValueError, match=r"DAG no_such_dag is declared in no flow's spec\.py"):
        tags("no_such_dag")
