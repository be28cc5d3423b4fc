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
    (RESULTS / f"{name}.json").write_text(json.dumps([r | {"measured": measured} for r in rows], indent=1))
