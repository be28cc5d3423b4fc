"""The bank business calendar: Taiwan's government office calendar, one year at a time.

The clearing house (TCH) works the days the Directorate-General of Personnel Administration (DGPA)
publishes as office days: Monday to Friday, less national holidays and their observed days, plus
any Saturday announced as a make-up working day. ``pay.calendar`` holds the exceptions of every
loaded year and ``pay.calendar_year`` which years are loaded; ``pay.is_business_day`` refuses a
day of a year that is not loaded (it never falls back to Monday–Friday).

A new year comes from the maintained ``holidays`` package (its TW calendar follows DGPA, make-up
Saturdays included as ``weekend_workdays``). Finance loads it once DGPA has published it::

    python -m finflows.flows.banking.business_days load 2028 [--dsn DSN]

(the DSN defaults to the finance connection, ``postgres_finance``). Loading a year again replaces
it in one transaction. Check the printed days against DGPA's published calendar before the first
payment day of that year; where the clearing house announces otherwise (a typhoon day, say), add
or change the row by hand: the loader never overwrites a row whose source is ``manual``.
No Airflow import here.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from dataclasses import dataclass

from finflows.errors import FinflowsError
from finflows.seams import Conn

SOURCE = "holidays {version}: TW (DGPA office calendar)"


@dataclass(frozen=True)
class Day:
    day: dt.date
    is_business: bool
    name: str


class CalendarNotLoaded(FinflowsError, LookupError):
    """A day was asked about whose year has no calendar loaded."""


def taiwan_year(year: int) -> list[Day]:
    """The exceptions to Monday–Friday in ``year``: weekday holidays, and make-up working Saturdays."""
    import holidays

    tw = holidays.country_holidays("TW", years=year, language="en_US")
    out = [Day(d, False, name) for d, name in sorted(tw.items()) if d.year == year and d.weekday() < 5]
    out += [
        Day(d, True, "Make-up working day")
        for d in sorted(getattr(tw, "weekend_workdays", ()))
        if d.year == year and d.weekday() >= 5
    ]
    return sorted(out, key=lambda x: x.day)


def load_year(conn: Conn, year: int, days: list[Day] | None = None, source: str | None = None) -> list[Day]:
    """Replace ``year``'s rows of ``pay.calendar`` (hand-made ``manual`` rows kept) and mark the year loaded."""

    days = taiwan_year(year) if days is None else days
    if any(d.day.year != year for d in days):
        raise ValueError(f"days outside {year} given to load_year({year})")
    source = source or SOURCE.format(version=importlib.metadata.version("holidays"))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "DELETE FROM pay.calendar WHERE day BETWEEN %s AND %s AND source <> 'manual'",
            (dt.date(year, 1, 1), dt.date(year, 12, 31)),
        )
        cur.executemany(
            "INSERT INTO pay.calendar (day, is_business, name, source) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (day) DO NOTHING",
            [(d.day, d.is_business, d.name, source) for d in days],
        )
        cur.execute(
            "INSERT INTO pay.calendar_year (year, source) VALUES (%s, %s) "
            "ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source, loaded_at = now()",
            (year, source),
        )
    return days


def covered_until(conn: Conn) -> dt.date | None:
    """The last day of the last year loaded without a gap from the first, or None when none is."""
    years = [r[0] for r in conn.execute("SELECT year FROM pay.calendar_year ORDER BY year").fetchall()]
    if not years:
        return None
    last = years[0]
    for y in years[1:]:
        if y != last + 1:
            break
        last = y
    return dt.date(last, 12, 31)


def coverage_warning(until: dt.date | None, today: dt.date, min_days: int = 60) -> str | None:
    """A sentence for treasury when the calendar (loaded ``until``, see :func:`covered_until`)
    covers fewer than ``min_days`` days ahead of ``today``."""
    if until is not None and (until - today).days >= min_days:
        return None
    if until is None or until < today:
        return (
            f"No bank calendar is loaded for today ({today}): bank_payments cannot date a file. Load it with "
            f"`python -m finflows.flows.banking.business_days load {today.year}`."
        )
    return (
        f"The bank calendar ends on {until}, {(until - today).days} day(s) from today (warned below {min_days}): "
        f"from {until + dt.timedelta(days=1)} bank_payments refuses to date a file. Load {until.year + 1} with "
        f"`python -m finflows.flows.banking.business_days load {until.year + 1}` once DGPA has published it."
    )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m finflows.flows.banking.business_days", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="load a year of the Taiwan office calendar into pay.calendar")
    load.add_argument("year", type=int)
    load.add_argument("--dsn", help="finance database (default: the postgres_finance connection)")
    args = parser.parse_args(argv)
    if args.dsn:
        import psycopg

        conn = psycopg.connect(args.dsn, autocommit=True)
    else:
        from finflows import files
        from finflows.task_support import finance_db

        conn = files.connect(finance_db())
    with conn:
        days = load_year(conn, args.year)
    out = [f"{d.day} {d.day:%a} {'business day' if d.is_business else 'holiday'}: {d.name}" for d in days]
    out.append(f"{args.year}: {len(days)} exception(s) to Monday–Friday loaded into pay.calendar")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
