"""The bank calendar's source, checked against what DGPA published, without a database."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from finflows.flows.banking import business_days

REPO = Path(__file__).resolve().parents[2]


def dgpa(roc_year: int) -> dict[dt.date, bool]:
    """DGPA's exceptions to Monday–Friday for a ROC year: day → is a business day."""
    path = REPO / "tests" / "data" / "dgpa" / f"{roc_year}.csv"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return {dt.datetime.strptime(r["西元日期"], "%Y%m%d").date(): r["是否放假"] == "0" for r in csv.DictReader(lines)}


def migration_days(name: str, year: int) -> dict[dt.date, bool]:
    sql = (REPO / "include" / "sql" / name).read_text()
    rows = re.findall(r"\('(\d{4}-\d\d-\d\d)',\s*(true|false),", sql)
    return {dt.date.fromisoformat(d): b == "true" for d, b in rows if d.startswith(str(year))}


def test_the_holidays_package_gives_2027_as_dgpa_published_it():
    assert {d.day: d.is_business for d in business_days.taiwan_year(2027)} == dgpa(116)


def test_the_2027_migration_is_dgpa_2027():
    assert migration_days("0012_calendar_years.sql", 2027) == dgpa(116)


def test_the_2026_migration_agrees_with_the_holidays_package():
    assert migration_days("0006_payments.sql", 2026) == {d.day: d.is_business for d in business_days.taiwan_year(2026)}


def test_2027_holds_founding_day_lunar_new_year_and_no_weekend():
    days = {d.day: d for d in business_days.taiwan_year(2027)}
    assert not days[dt.date(2027, 1, 1)].is_business  # Friday, Founding Day
    lunar = [dt.date(2027, 2, d) for d in (4, 5, 8, 9, 10)]  # Thursday 4th to Wednesday 10th, weekend inside
    assert all(not days[d].is_business for d in lunar)
    assert all(d.weekday() < 5 or d.is_business for d in (x.day for x in days.values()))


def test_a_make_up_saturday_is_a_business_day():
    """2023 had make-up working Saturdays (DGPA 112): the loader marks them business days."""
    days = {d.day: d.is_business for d in business_days.taiwan_year(2023)}
    assert days[dt.date(2023, 1, 7)] is True and dt.date(2023, 1, 7).weekday() == 5
    assert days[dt.date(2023, 1, 20)] is False  # the Friday off it makes up for


@pytest.mark.parametrize(
    ("until", "today", "warns"),
    [
        (dt.date(2027, 12, 31), dt.date(2027, 10, 1), False),  # 91 days ahead
        (dt.date(2027, 12, 31), dt.date(2027, 11, 2), True),  # 59 days ahead
        (dt.date(2027, 12, 31), dt.date(2028, 1, 3), True),  # past the end
    ],
)
def test_coverage_warns_below_sixty_days(until, today, warns):
    message = business_days.coverage_warning(until, today)
    assert (message is not None) == warns
    if warns:
        assert f"business_days load {until.year + 1 if today <= until else today.year}" in message
