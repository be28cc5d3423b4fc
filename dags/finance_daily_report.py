"""
### finance_daily_report: the banking day on one page, at 19:00 Asia/Taipei

For the day (today in Taipei, or param `day` to re-send an earlier one), per bank and in total:
payment files and NTD sent for that processing date and any not delivered; returns received that
day (settled and returned with NTD, unmatched, mismatched, duplicate lines, quarantined files);
transfer failures; health checks failed and p95 latency; circuits open now; payments still pending.

Emailed (HTML) to treasury and operations with an inline PNG chart of NTD sent / settled /
returned per bank. The report, the chart, the figures (`totals.json`) and a manifest of every file
the day processed are archived under `finance-daily/DAY/` in the archive bucket; each processed
file's archived copy is downloaded and its sha256 checked, and the run is red if one is missing
or different.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from finflows.dag_defaults import deadline, default_args, tags
from finflows.schedules import ZonedCron, zone_start


@dag(
    dag_id="finance_daily_report",
    description="Daily 19:00 Asia/Taipei (11:00 UTC): the finance daily report",
    schedule=ZonedCron("0 19 * * *", timezone="Asia/Taipei"),
    start_date=zone_start("Asia/Taipei"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    deadline=deadline("finance_daily_report"),
    tags=tags("finance_daily_report"),
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Asia/Taipei day to report (YYYY-MM-DD); empty: today",
        ),
    },
    doc_md=__doc__,
)
def finance_daily_report():
    @task
    def report(**context) -> dict:
        """Gather the day, email it with its chart, archive report and manifest, verify the archive."""
        from finflows.flows.banking.tasks.daily_report import daily_report as run

        return run(context["params"].get("day"))

    report()


finance_daily_report()
