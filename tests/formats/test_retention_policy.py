"""The retention policy file: the shipped one loads with the ages a finance team expects, and a
bad entry is refused naming the kind and the field."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from finflows.flows.retention import policy


def test_the_shipped_policy():
    p = policy.load(policy.DEFAULT_FILE)
    assert p.age("payments") == p.age("card_facts") == dt.timedelta(days=7 * 365)
    assert p.age("health_checks") == dt.timedelta(days=2 * 365)
    assert p.age("tenure_event_bodies") == dt.timedelta(days=90)
    assert set(policy.KINDS) == {"payments", "card_facts", "health_checks", "tenure_event_bodies"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"payments": {"years": 3}}, "payments: financial records are kept five years at least"),
        ({"health_checks": {"years": 2, "days": 5}}, "health_checks: Value error, give years or days"),
        ({"card_facts": {"months": 90}}, "card_facts.months"),
        ({"batch_size": 5}, "batch_size"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(tmp_path, change, message):
    raw = yaml.safe_load(policy.DEFAULT_FILE.read_text()) | change
    path = tmp_path / "retention.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(policy.PolicyError, match=message):
        policy.load(path)
