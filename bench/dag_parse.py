"""Parse time of each DAG file against a trivial DAG's, in one run.

Each sample is a fresh interpreter that has already imported ``airflow.sdk`` (as the DAG processor
has) and then times executing one DAG file: the cost a DAG file adds to every parse loop.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import write_rows

REPO = Path(__file__).resolve().parents[1]
TRIVIAL = """
from airflow.sdk import dag, task
@dag(schedule=None)
def trivial():
    @task
    def hello():
        return 1
    hello()
trivial()
"""
PROBE = (
    "import time, runpy, sys, airflow.sdk\n"
    "t = time.perf_counter(); runpy.run_path(sys.argv[1]); print(time.perf_counter() - t)\n"
)


def parse_seconds(path: Path, samples: int) -> float:
    env = os.environ | {"PYTHONPATH": str(REPO / "plugins")}
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, env=env, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(samples)
    ]
    return statistics.median(times)


def main(samples: int = 5) -> list[dict[str, str]]:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(TRIVIAL)
    base = parse_seconds(Path(f.name), samples)
    os.unlink(f.name)
    rows = []
    print(f"trivial DAG: {base * 1000:.0f} ms (median of {samples})")
    for dag_file in sorted((REPO / "dags").glob("*.py")):
        t = parse_seconds(dag_file, samples)
        print(f"{dag_file.name}: {t * 1000:.0f} ms = {t / base:.1f}x the trivial DAG")
        rows.append(
            {
                "figure": f"parse dags/{dag_file.name}",
                "value": f"{t * 1000:.0f} ms",
                "baseline": f"trivial DAG {base * 1000:.0f} ms",
                "ratio": f"{t / base:.1f}x",
                "peak_rss": "",
                "target": "no heavy imports; < 2 s",
            }
        )
    write_rows("dag_parse", rows)
    return rows


if __name__ == "__main__":
    main()
