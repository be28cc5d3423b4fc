"""Bank configuration: the shipped file is valid; a bad entry names the bank and the field."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from finflows.flows.banking import banks
from finflows.flows.banking.payments import plan_batches

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
# a value for every ${FINFLOWS_*} banks.yaml reads (a bank added there needs nothing here)
ENV = {
    name: FPR if "_FPR" in name else "12345675" if name == "FINFLOWS_ACH_COMPANY_ID" else "1234567890"
    for name in re.findall(r"\$\{(FINFLOWS_[A-Z0-9_]+)\}", banks.DEFAULT_FILE.read_text(encoding="utf-8"))
}


def raw() -> dict:
    return yaml.safe_load(banks.DEFAULT_FILE.read_text(encoding="utf-8"))


def test_the_shipped_configuration_has_the_five_banks():
    """The five banks as shipped (a sixth added to banks.yaml leaves this true: tests/integration/
    test_sixth_bank_config.py adds one)."""
    cfg = banks.load(env=ENV)
    assert {b: c.bank_code for b, c in cfg.banks.items() if b in ("mega", "ctbc", "esun", "first", "taishin")} == {
        "mega": "017",
        "ctbc": "822",
        "esun": "808",
        "first": "007",
        "taishin": "812",
    }
    assert cfg.bank("ctbc").cutoff_time == dt.time(15, 30)
    assert {c.file_format.value for c in cfg.banks.values()} == {"achp01", "csv"}
    assert cfg.originator.max_payments_per_batch == 5000 and cfg.originator.max_bytes_per_batch == 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("bank", "field", "value", "message"),
    [
        ("ctbc", "cutoff_time", "25:00", "bank ctbc, field cutoff_time"),
        ("mega", "bank_code", "17", "bank mega, field bank_code"),
        ("esun", "file_format", "xml", "bank esun, field file_format"),
        ("first", "encoding", "klingon", "bank first, field encoding"),
        ("mega", "encoding", "utf-8", "bank mega, field encoding: Value error, ACHP01 files are Big5"),
        ("taishin", "payment_file_pattern", "PAY_{YYYYMMDD}.csv", "must contain {BATCH}"),
        (
            "mega",
            "sending_unit",
            "8220901",
            "bank mega, field sending_unit: Value error, sending_unit 8220901 must start",
        ),
        ("ctbc", "pgp_key_fingerprint", "not-a-fingerprint", "bank ctbc, field pgp_key_fingerprint"),
        ("ctbc", "upload_path", "upload", "bank ctbc, field upload_path"),
        ("esun", "surprise", "x", "bank esun, field surprise"),
        ("first", "sftp_client", "openssh", "bank first, field sftp_client"),
        ("first", "upload_check", "hope", "bank first, field upload_check"),
    ],
)
def test_a_bad_entry_names_bank_and_field(bank, field, value, message):
    data = raw()
    data["banks"][bank][field] = value
    with pytest.raises(banks.BankConfigError, match=re.escape(message)):
        banks.parse(data, ENV)


def test_a_missing_environment_variable_names_bank_and_field():
    env = {k: v for k, v in ENV.items() if k != "FINFLOWS_PGP_FPR_ESUN"}
    with pytest.raises(banks.BankConfigError, match="bank esun, field pgp_key_fingerprint: environment variable"):
        banks.parse(raw(), env)


def test_every_problem_is_listed_at_once():
    data = raw()
    data["banks"]["mega"]["cutoff_time"] = "nope"
    data["banks"]["first"]["bank_code"] = "822"  # ctbc's
    data["banks"]["first"]["sending_unit"] = "8220015"
    with pytest.raises(banks.BankConfigError) as e:
        banks.parse(data, ENV)
    assert "bank mega, field cutoff_time" in str(e.value) and "bank code 822 is configured twice" in str(e.value)


def test_reconciliation_pattern_as_regex():
    cfg = banks.load(env=ENV)
    rx = cfg.bank("ctbc").reconciliation_regex(dt.date(2026, 1, 5))
    assert rx.fullmatch("REC_20260105_001.txt") and not rx.fullmatch("REC_20260106_001.txt")
    assert cfg.bank("mega").reconciliation_regex().fullmatch("ACHR01_017_20260105.txt")


@given(st.lists(st.integers(1, 400), max_size=60), st.integers(1, 7), st.integers(300, 2000))
def test_batches_keep_order_and_limits(sizes, max_count, max_bytes):
    chunks = plan_batches(sizes, max_count, max_bytes, overhead=100)
    assert [i for c in chunks for i in c] == list(range(len(sizes)))
    for c in chunks:
        assert 1 <= len(c) <= max_count
        assert len(c) == 1 or 100 + sum(sizes[i] for i in c) <= max_bytes


def test_a_bank_entry_that_is_not_a_mapping_is_named_not_a_crash():
    """Found by fuzzing (tests/formats/test_fuzz_readers.py): ``mega: true`` raised a TypeError."""
    with pytest.raises(banks.BankConfigError, match="bank mega: must be a mapping of its settings, not bool"):
        banks.parse({"originator": {}, "banks": {"mega": True}}, env={})
