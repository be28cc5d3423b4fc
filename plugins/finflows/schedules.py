"""The flows' clock schedules, with their zone where Airflow shows the schedule.

Airflow 3.3's DAG list and a DAG's Details show a cron timetable's ``summary``: the expression
alone (``0 6 * * *``), its zone only on hover, and Details says "Timezone: UTC" (the server's).
A finance engineer in Taipei or London reads "06:00" as their own time. :class:`ZonedCron` is
Airflow's ``CronTriggerTimetable`` unchanged but for that summary: ``0 6 * * * Asia/Taipei``.

A custom timetable must be importable where the scheduler and api-server decode the serialised
DAG and registered by a plugin (``plugins/finflows_plugin.py`` lists it); Airflow builds it back
with the core class's own ``deserialize``, so the schedule itself is Airflow's.
"""

from __future__ import annotations

from airflow.timetables.trigger import CronTriggerTimetable


class ZonedCron(CronTriggerTimetable):
    """``CronTriggerTimetable(cron, timezone=…)`` whose summary names its zone."""

    @property
    def summary(self) -> str:
        zone = getattr(self._timezone, "name", None) or str(self._timezone)
        return f"{self._expression} {zone}"


def zone_start(zone: str):
    """A start date in the schedule's own zone, so that the DAG's timezone (Details: "Timezone") is
    the one its schedule runs in, not the server's UTC. Long past: with ``catchup=False`` only the
    latest due run is made."""
    import pendulum

    return pendulum.datetime(2025, 1, 1, tz=zone)
