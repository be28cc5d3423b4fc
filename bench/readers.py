"""The readers' own CPU, this tree against an earlier revision (``python -m bench readers``;
``BENCH_READERS_BASE`` names the revision: ``c8f0745`` by default, the readers before issue #43
(the card-number finder over the receivable operation number, its quick look alone); ``ebe5619``,
the code before the strict field rules of issue #41, is the older baseline).

The cash reader (``formats.cashfile.read_rows``) and the statement reader
(``formats.card_statement.read_statement``) each read the same realistic file (the cash and card
benchmarks' own generators: a week of dates, six methods, 100,000 accounts; every record field
filled, 1,000 stores, times, brands, products and channels), in a fresh process per reading, the
two trees interleaved, ``BENCH_REPS`` times; the figure is the median CPU time of the reading
alone (no database: the load's COPY is measured by the cash and card benchmarks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import median, write_rows

REPO = Path(__file__).resolve().parents[1]
BASE = os.environ.get("BENCH_READERS_BASE", "c8f0745")
BASE_WHAT = {"c8f0745": "before #43", "ebe5619": "before the strict field rules"}.get(BASE, "the base revision")
REPS = int(os.environ.get("BENCH_REPS", "5"))
LINES = int(os.environ.get("BENCH_READERS_LINES", "300000"))

_READ = """
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
if kind == "cash":
    from finflows.formats.cashfile import read_rows as read
else:
    from finflows.formats.card_statement import read_statement as read
t = time.process_time()
with open(path, "rb") as f:
    n = sum(1 for _ in read(f, path.rsplit("/", 1)[-1]))
print(json.dumps({"cpu": time.process_time() - t, "rows": n,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _read(tree: Path, kind: str, path: Path) -> dict:
    env = os.environ | {"PYTHONPATH": f"{tree / 'plugins'}"}
    out = subprocess.run(
        [sys.executable, "-c", _READ, kind, str(path)], check=False, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"{tree} {kind}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main() -> list[dict[str, str]]:
    from bench import card_statement, cashfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-f", "--detach", str(base), BASE], check=True,
                       capture_output=True)  # fmt: skip
        try:
            files = {"cash": Path(tmp) / cashfile.NAME, "card": Path(tmp) / card_statement.name_for(1)}
            cashfile.make_file(files["cash"], LINES)
            card_statement.make_file(files["card"], LINES)
            for kind, path in files.items():
                got: dict[str, list[dict]] = {"base": [], "head": []}
                for _ in range(REPS):
                    for label, tree in (("base", base), ("head", REPO)):
                        got[label].append(_read(tree, kind, path))
                assert {r["rows"] for r in got["base"] + got["head"]} == {got["head"][0]["rows"]}, "same rows read"
                cpu = {label: median([r["cpu"] for r in runs]) for label, runs in got.items()}
                rss = max(r["rss_mb"] for r in got["head"])
                print(
                    f"{kind}: {BASE} {cpu['base']:.2f} s, this tree {cpu['head']:.2f} s ({cpu['head'] / cpu['base']:.2f}x)"
                )
                per_million = cpu["head"] * 1_000_000 / LINES
                rows.append({
                    "figure": f"{kind} reader CPU, {LINES:,} realistic records, every field filled (median of {REPS}, interleaved)",
                    "value": f"{cpu['head']:.2f} s ({per_million:.1f} s per million records)",
                    "baseline": f"{cpu['base']:.2f} s at {BASE} ({BASE_WHAT})",
                    "ratio": f"{cpu['head'] / cpu['base']:.2f}x",
                    "peak_rss": f"{rss:.0f} MB",
                    "target": "card ≤ 0.65x (#43: 35% less)" if kind == "card" else "≤ 1.05x (speed kept)",
                })  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False,
                           capture_output=True)  # fmt: skip
    write_rows("readers", rows)
    return rows


if __name__ == "__main__":
    main()
