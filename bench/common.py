"""Shared by the benchmarks: run a phase in a forked child and report its time and peak RSS."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _child(fn: Callable[[], Any], q: mp.Queue) -> None:
    t0 = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t0
    q.put((secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, out))


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak RSS in MB, result) of fn run in a fresh fork of this process."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, q))
    p.start()
    res = q.get()
    p.join()
    if p.exitcode:
        raise RuntimeError(f"benchmark phase exited with {p.exitcode}")
    return res


def write_rows(name: str, rows: list[dict[str, str]]) -> None:
    """Rows for the README's benchmark table: figure, value, baseline, ratio, peak RSS, target."""
    RESULTS.mkdir(exist_ok=True)
    import json
    import time

    measured = time.strftime("%Y-%m-%d")
    dated = [r if "measured" in r else r | {"measured": measured} for r in rows]  # a kept row keeps its date
    (RESULTS / f"{name}.json").write_text(json.dumps(dated, indent=1))


def median(values: list[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def alternate(phases: dict[str, Callable[[], Any]], reps: int, between: Callable[[], None]) -> dict[str, list]:
    """Run each phase ``reps`` times, interleaved (a, b, a, b, …) so that a noisy moment of a shared
    machine falls on both alike; ``between`` resets the database after each. Returns every
    (seconds, peak RSS MB, result) per phase: ratios are taken from medians of one run."""
    out: dict[str, list] = {name: [] for name in phases}
    for _ in range(reps):
        for name, fn in phases.items():
            out[name].append(measure(fn))
            between()
    return out


def psql_script(dsn: str, script: str) -> str:
    """Run a psql script (``\\copy`` lines and all) in one transaction; its output."""
    import shutil
    import subprocess

    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    return subprocess.run(
        [psql, dsn, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=script,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def scratch_dsn(name: str) -> str:
    """The DSN of the scratch database ``name`` on the local stack's PostgreSQL."""
    from devstack import stack

    return stack.pg_dsn().rsplit("/", 1)[0] + f"/{name}"


def fresh_database(name: str) -> str:
    """A scratch database ``name`` made anew with every migration applied (the flows' tables, no
    rows): a benchmark's figures then depend neither on what the tests left in the stack's
    database nor on an earlier benchmark. Returns its DSN; ``stack.drop_database`` removes it."""
    from devstack import stack
    from finflows.migrations import apply_migrations

    stack.drop_database(name)
    stack.create_database(name, "finflows")
    apply_migrations(scratch_dsn(name), Path(__file__).resolve().parents[1] / "include" / "sql")
    return scratch_dsn(name)
