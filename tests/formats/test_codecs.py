"""The date and time codecs decide as ``strptime`` does (the reference: Python's own parser) held
to the layout's exact form (issue #41: what strptime forgives, a space for a digit, is refused:
the value must format back to the very text), also on the fast path that checks digits with
``date()``/``time()`` instead. Seeded and bounded."""

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

    # the layout's exact form: two digits for each of %m %d %H %M %S, four for %Y, separators as written
    exact = re.compile("".join({"%Y": "[0-9]{4}"}.get(part, "[0-9]{2}" if part.startswith("%") else re.escape(part))
                               for part in re.findall(r"%.|[^%]+", fmt)))  # fmt: skip

    def by_strptime(raw: str):
        if not exact.fullmatch(raw):
            raise ValueError(f"{raw!r} is not written as {fmt}")
        parsed = dt.datetime.strptime(raw, fmt)
        return parsed.time() if "%H" in fmt else parsed.date()

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
    forgiven = {"%Y%m%d": "202511 5", "%d/%m/%Y": " 1/02/2026"}.get(fmt)  # strptime takes it, the layout does not
    if forgiven:
        assert _outcome(lambda r: dt.datetime.strptime(r, fmt), forgiven) != "refused"
        assert _outcome(codec._decode, forgiven) == "refused"
    if fmt == "%H%M%S":  # the record regex judges this time whole (it is copied as it stands): the same verdicts
        assert not codec.semantic
        whole = re.compile(codec.regex(width))
        assert [
            raw for raw in samples if (whole.fullmatch(raw) is None) != (_outcome(by_strptime, raw) == "refused")
        ] == []
