"""Key windows (issue #44): which key encrypts, signs and verifies on which day, and the rules a
chain keeps, checked when banks.yaml is loaded. Pure: no gpg, no connection."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from finflows.flows.banking import banks, keys
from tests.formats.test_banks import ENV, raw

OLD, NEW, THIRD = "A" * 40, "B" * 40, "C" * 40
D = dt.date


def w(fp: str, start: D | None, end: D | None, conn: str | None = None) -> keys.KeyWindow:
    return keys.KeyWindow(fingerprint=fp, conn_id=conn, valid_from=start, valid_until=end)


ROTATION = (w(OLD, None, D(2026, 12, 20)), w(NEW, D(2026, 12, 10), None))


def test_a_file_goes_to_the_newest_key_of_its_day_and_either_signature_is_taken_in_the_overlap():
    assert keys.for_sending(ROTATION, "bank mega", D(2026, 12, 9)).fingerprint == OLD
    assert keys.for_sending(ROTATION, "bank mega", D(2026, 12, 10)).fingerprint == NEW  # the bank's switch day
    assert keys.for_sending(ROTATION, "bank mega", D(2026, 12, 21)).fingerprint == NEW
    assert [k.fingerprint for k in keys.for_verifying(ROTATION, "bank mega", D(2026, 12, 9))] == [OLD]
    assert [k.fingerprint for k in keys.for_verifying(ROTATION, "bank mega", D(2026, 12, 15))] == [OLD, NEW]
    assert [k.fingerprint for k in keys.for_verifying(ROTATION, "bank mega", D(2026, 12, 21))] == [NEW]


def test_a_day_outside_every_window_is_refused_by_name():
    ended = (w(OLD, D(2026, 1, 1), D(2026, 12, 31)),)
    with pytest.raises(
        keys.KeyWindowError,
        match=r"bank esun: no key is valid on 2027-01-01 \(keys: A{40} \(2026-01-01 to 2026-12-31\)\)",
    ):
        keys.for_sending(ended, "bank esun", D(2027, 1, 1))
    with pytest.raises(keys.KeyWindowError, match="no key is valid on 2025-12-31"):
        keys.for_verifying(ended, "bank esun", D(2025, 12, 31))


@pytest.mark.parametrize(
    ("windows", "problem"),
    [
        ((w(OLD, None, D(2026, 12, 1)), w(NEW, D(2026, 12, 3), None)), "no key between 2026-12-01 and 2026-12-03"),
        (
            (w(OLD, None, D(2027, 3, 1)), w(NEW, D(2026, 12, 1), None)),
            "overlap 91 days, more than key_overlap_max_days (60)",
        ),
        ((w(OLD, None, None), w(NEW, D(2026, 12, 1), None)), "never ends, yet " + NEW + " follows it"),
        ((w(NEW, D(2026, 12, 1), None), w(OLD, None, D(2026, 12, 5))), "in the order of valid_from"),
        ((w(OLD, None, D(2026, 12, 5)), w(OLD, D(2026, 12, 1), None)), f"key {OLD} is listed twice"),
        ((w(OLD, D(2026, 12, 5), D(2026, 12, 1)),), "ends before it starts"),
    ],
)
def test_a_chain_that_breaks_a_rule_is_refused_naming_it(windows, problem):
    assert any(problem in p for p in keys.check(windows, "bank ctbc, pgp_keys", 60)), keys.check(windows, "x", 60)


def test_a_chain_that_follows_the_rules_passes():
    assert keys.check(ROTATION, "bank mega, pgp_keys", 60) == []
    adjacent = (w(OLD, None, D(2026, 12, 9)), w(NEW, D(2026, 12, 10), D(2027, 6, 30)), w(THIRD, D(2027, 6, 1), None))
    assert keys.check(adjacent, "x", 60) == []


def test_banks_yaml_takes_key_windows_for_a_bank_and_for_us_and_checks_them_when_loaded():
    data = raw()
    data["originator"]["signing_keys"] = [
        {"fingerprint": OLD, "valid_until": "2026-12-31"},
        {"fingerprint": NEW, "conn_id": "pgp_finflows_2027", "valid_from": "2026-12-15"},
    ]
    data["banks"]["mega"]["pgp_keys"] = [
        {"fingerprint": OLD, "valid_until": "2026-12-20"},
        {"fingerprint": NEW, "valid_from": "2026-12-10"},
    ]
    cfg = banks.parse(data, ENV)
    ours = cfg.originator.signing_chain
    assert [(k.fingerprint, k.conn_id) for k in ours] == [(OLD, "pgp_finflows"), (NEW, "pgp_finflows_2027")]
    assert [k.conn_id for k in cfg.bank("mega").pgp_chain] == ["pgp_bank_mega", "pgp_bank_mega"]
    # a bank without a list: its one pinned key, always valid
    [only] = cfg.bank("ctbc").pgp_chain
    assert (only.fingerprint, only.valid_from, only.valid_until) == (ENV["FINFLOWS_PGP_FPR_CTBC"], None, None)

    data["banks"]["mega"]["pgp_keys"][0]["valid_until"] = "2026-12-05"
    with pytest.raises(banks.BankConfigError, match="bank mega, pgp_keys: no key between 2026-12-05 and 2026-12-10"):
        banks.parse(data, ENV)
    del data["banks"]["mega"]["pgp_keys"]
    del data["banks"]["mega"]["pgp_key_fingerprint"]
    with pytest.raises(banks.BankConfigError, match=r"pgp_key_fingerprint \(one key\) or pgp_keys"):
        banks.parse(data, ENV)
    assert yaml.safe_dump(data)  # the test's own data stays plain YAML
