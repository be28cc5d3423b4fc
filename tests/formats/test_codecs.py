"""The date and time codecs decide as ``strptime`` does (the reference: Python's own parser),
also on the fast path that checks digits with ``date()``/``time()`` instead. Seeded and bounded."""

from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from finflows.formats.fixedwidth import Date, Time


def _outcome(parse, raw: str):
    try:
        return parse(raw)
    except ValueError:
        return "refused"


@pytest.mark.parametrize(("fmt", "width"), [("%Y%m%d", 8), ("%d/%m/%Y", 10), ("%H%M%S", 6)])
def test_the_codecs_accept_and_refuse_exactly_what_strptime_does(fmt, width):
    rng = random.Random(f"codecs-{fmt}")
    codec = Time(fmt) if "%H" in fmt else Date(fmt)
    by_strptime = (
        (lambda raw: dt.datetime.strptime(raw, fmt).time())
        if "%H" in fmt
        else (lambda raw: dt.datetime.strptime(raw, fmt).date())
    )
    alphabet = "0123456789" * 4 + " /-+x"
    samples = ["".join(rng.choice(alphabet) for _ in range(width)) for _ in range(40_000)]
    if "%H" in fmt:
        samples += [f"{h:02d}{m:02d}{s:02d}" for h in range(26) for m in range(0, 62, 3) for s in range(0, 62, 7)]
    else:
        samples += [f"{y:04d}{m:02d}{d:02d}" if fmt == "%Y%m%d" else f"{d:02d}/{m:02d}/{y:04d}"
                    for y in (2023, 2024) for m in (0, 2, 4, 12, 13) for d in range(0, 33)]  # fmt: skip
    differ = [
        (raw, a, b) for raw in samples if (a := _outcome(by_strptime, raw)) != (b := _outcome(codec._decode, raw))
    ]
    assert differ == []
    accepted = sum(1 for raw in samples if _outcome(codec._decode, raw) != "refused")
    assert 0 < accepted < len(samples)  # both outcomes were exercised
    if fmt == "%H%M%S":  # the record regex judges this time whole (it is copied as it stands): the same verdicts
        assert not codec.semantic
        whole = re.compile(codec.regex(width))
        assert [
            raw for raw in samples if (whole.fullmatch(raw) is None) != (_outcome(by_strptime, raw) == "refused")
        ] == []
