"""The bank calendar in the finance database: 2027 loaded, any other year refused by name."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import psycopg
import pytest

from finflows.flows.banking import business_days
from tests.helpers import payments as pay

pytestmark = pytest.mark.integration
TAIPEI = ZoneInfo("Asia/Taipei")


def one(pg, sql: str, *args):
    return pg.execute(sql, args).fetchone()[0]


def test_founding_day_2027_is_not_a_business_day(pg):
    assert one(pg, "SELECT pay.is_business_day('2027-01-01')") is False  # Friday
    assert one(pg, "SELECT pay.next_business_day('2026-12-31')") == dt.date(2027, 1, 4)
    assert one(pg, "SELECT pay.previous_business_day('2027-01-04')") == dt.date(2026, 12, 31)


def test_lunar_new_year_2027_is_skipped_whole(pg):
    assert one(pg, "SELECT pay.next_business_day('2027-02-03')") == dt.date(2027, 2, 11)
    assert one(pg, "SELECT pay.previous_business_day('2027-02-11')") == dt.date(2027, 2, 3)


def test_a_day_outside_the_loaded_calendar_is_refused_by_name(pg):
    with pytest.raises(psycopg.Error) as e:
        pg.execute("SELECT pay.is_business_day('2028-03-01')")
    assert e.value.sqlstate == "FFC01"
    assert "no bank calendar is loaded for 2028-03-01 (year 2028)" in e.value.diag.message_primary
    assert "business_days load 2028" in e.value.diag.message_hint
    with pytest.raises(psycopg.Error, match="2028-01-01"):  # the search walks out of 2027 and stops
        pg.execute("SELECT pay.next_business_day('2027-12-31')")


def test_bank_payments_refuses_to_date_a_file_outside_the_calendar(clean_payments, db, pg, cfg):
    refs = pay.add(pg, "mega", 2, due=dt.date(2028, 1, 3))
    with pytest.raises(business_days.CalendarNotLoaded, match=r"mega: no bank calendar is loaded for 2028-01-03"):
        pay.pay_bank(db, cfg, "mega", now=dt.datetime(2028, 1, 3, 6, 0, tzinfo=TAIPEI))
    assert set(pay.statuses(pg, refs).values()) == {"pending"}
    assert one(pg, "SELECT count(*) FROM pay.batch") == 0


def test_a_batch_made_on_the_last_day_of_2026_after_cutoff_is_dated_the_first_business_day_of_2027(
    clean_payments, db, pg, cfg, local_dir
):
    pay.add(pg, "mega", 1, due=dt.date(2026, 12, 31))
    run = pay.pay_bank(db, cfg, "mega", now=dt.datetime(2026, 12, 31, 16, 0, tzinfo=TAIPEI))
    assert run.processing_date == "2027-01-04"
    assert sorted(pay.uploaded(local_dir, "mega")) == ["ACHP01_017_20270104_001.txt"]


def test_finance_loads_a_new_year_with_one_command(pg, pg_dsn):
    assert business_days.covered_until(pg) == dt.date(2027, 12, 31)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "finflows.flows.banking.business_days", "load", "2028", "--dsn", pg_dsn],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": "plugins", "PATH": "/usr/bin:/bin"},
        ).stdout
        assert "2028: " in out and "loaded into pay.calendar" in out
        assert business_days.covered_until(pg) == dt.date(2028, 12, 31)
        expected = {d.day for d in business_days.taiwan_year(2028) if not d.is_business}
        assert expected and all(one(pg, "SELECT pay.is_business_day(%s)", d) is False for d in expected)
        assert one(pg, "SELECT pay.next_business_day('2027-12-31')") == dt.date(2028, 1, 3)
        # a clearing-house announcement entered by hand survives a reload
        pg.execute("INSERT INTO pay.calendar VALUES ('2028-07-12', false, 'typhoon day', 'manual')")
        business_days.load_year(pg, 2028)
        assert one(pg, "SELECT pay.is_business_day('2028-07-12')") is False
    finally:
        pg.execute("DELETE FROM pay.calendar WHERE day >= '2028-01-01' AND day < '2029-01-01'")
        pg.execute("DELETE FROM pay.calendar_year WHERE year = 2028")
