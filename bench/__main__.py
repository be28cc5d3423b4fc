"""make bench: run every benchmark and write bench/results/RESULTS.md (included in the README)."""

from __future__ import annotations

import json
import platform
import time

from bench import cashfile, dag_parse
from bench.common import RESULTS


def main() -> None:
    rows = dag_parse.main() + cashfile.main()
    out = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}; each ratio from one run.",
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
    print(json.dumps({"written": str(RESULTS / "RESULTS.md")}))


if __name__ == "__main__":
    main()
