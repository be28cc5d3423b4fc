"""make bench: run every benchmark and write bench/results/RESULTS.md (included in the README).

``python -m bench NAME…`` runs only those (e.g. ``card_statement``) and rebuilds the table from
every benchmark's latest results in ``bench/results/*.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys

from bench.common import RESULTS

ORDER = (
    "dag_parse",
    "cashfile",
    "card_statement",
    "readers",
    "bank_payments",
    "hostile",
    "load",
    "event_latency",
    "history",
)


def main(names: list[str]) -> None:
    table_only = names == ["--table"]  # rewrite RESULTS.md and the README table from the stored results
    for name in [] if table_only else names or ORDER:
        if name not in ORDER:
            raise SystemExit(f"unknown benchmark {name!r}; one of {', '.join(ORDER)}")
        importlib.import_module(f"bench.{name}").main()
    rows = [
        r
        for name in ORDER
        if (RESULTS / f"{name}.json").exists()
        for r in json.loads((RESULTS / f"{name}.json").read_text())
    ]
    dates = {
        name: json.loads((RESULTS / f"{name}.json").read_text())[0].get("measured", "by 2026-11-22")
        for name in ORDER
        if (RESULTS / f"{name}.json").exists()
    }
    out = [
        f"Each benchmark's latest run on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; each ratio from one run. Measured: "
        + ", ".join(f"{name} {day}" for name, day in dates.items())
        + ".",
        "",
        "| figure | value | baseline | ratio | peak RSS | target |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['figure']} | {r['value']} | {r['baseline']} | {r['ratio']} | {r['peak_rss']} | {r['target']} |"
        for r in rows
    ]
    (RESULTS / "RESULTS.md").write_text("\n".join(out) + "\n")
    readme = RESULTS.parents[1] / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n".join(out) + "\n" + end + rest.split(end, 1)[1])
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
