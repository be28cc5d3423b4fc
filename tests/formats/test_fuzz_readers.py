"""Hypothesis fuzzing of the readers whose own modules do not fuzz them already: whatever the
bytes, each fails only with its format's own error (cash files, card statements and ACH files are
fuzzed beside their other tests)."""

from __future__ import annotations

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finflows.flows.banking import banks
from finflows.formats import ach, chargeback, tenure
from finflows.formats.fixedwidth import FormatError
from tests.helpers.chargebacks import record
from tests.helpers.tenure import event

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=600))
def test_chargeback_files_of_arbitrary_bytes(data):
    with contextlib.suppress(FormatError):
        chargeback.parse_file(data, "fuzz.json")


@FUZZ
@given(st.sampled_from(sorted(record(0))), json_values)
def test_a_chargeback_record_with_any_value_in_any_field(field, value):
    with contextlib.suppress(FormatError):
        chargeback.parse_file(json.dumps([record(0) | {field: value}]).encode(), "fuzz.json")


@FUZZ
@given(st.text(max_size=400))
def test_tenure_messages_of_arbitrary_text(body):
    with contextlib.suppress(tenure.PoisonMessage):
        tenure.parse_message(body)


@FUZZ
@given(st.sampled_from(sorted(event("00000000-0000-0000-0000-000000000001", 1)["tenure"])), json_values)
def test_a_tenure_event_with_any_value_in_any_tenure_field(field, value):
    ev = event("00000000-0000-0000-0000-000000000001", 1)
    ev["tenure"][field] = value
    with contextlib.suppress(tenure.PoisonMessage):
        tenure.parse_message(json.dumps(ev))


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(["cp950", "utf-8"]))
def test_ach_csv_variant_of_arbitrary_bytes(data, encoding):
    with contextlib.suppress(FormatError):
        ach.read_csv(data, "fuzz.csv", encoding)


@FUZZ
@given(st.lists(st.lists(st.text(max_size=12), max_size=14), max_size=5), st.sampled_from(["cp950", "utf-8"]))
def test_ach_csv_variant_with_the_right_header_and_any_rows(rows, encoding):
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows([list(ach.CSV_COLUMNS), *rows])
    with contextlib.suppress(FormatError, UnicodeEncodeError):
        ach.read_csv(out.getvalue().encode(encoding), "fuzz.csv", encoding)


@FUZZ
@given(json_values)
def test_bank_configuration_of_any_shape(raw):
    with contextlib.suppress(banks.BankConfigError):
        banks.parse(raw, env={})


@FUZZ
@given(
    json_values,
    st.dictionaries(
        st.text(max_size=8),
        json_values
        | st.dictionaries(
            st.sampled_from(
                [
                    "bank_code",
                    "sftp_conn_id",
                    "file_format",
                    "encoding",
                    "cutoff_time",
                    "upload_path",
                    "payment_file_pattern",
                    "pgp_key_fingerprint",
                ]
            ),
            json_values,
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_bank_configuration_with_banks_of_any_content(originator, bank_entries):
    with contextlib.suppress(banks.BankConfigError):
        banks.parse({"originator": originator, "banks": bank_entries}, env={})
