"""PAN masking: what may be echoed from an input into logs, reports, the database, notifications."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finflows.formats.chargeback import parse_file
from finflows.formats.fixedwidth import FormatError
from finflows.pci import luhn_ok, mask_pans
from tests.helpers.chargebacks import record


def test_a_pan_is_masked_to_bin_and_last_four_and_other_numbers_are_not():
    assert mask_pans("card 4000000000000002 used") == "card 400000******0002 used"
    assert mask_pans("arn 74000000000000000000001, amount 12345, 20261001") == (
        "arn 74000000000000000000001, amount 12345, 20261001"
    )
    assert mask_pans("4000000000000003") == "4000000000000003"  # fails Luhn: not a card number


@given(st.from_regex(r"\A[0-9]{13,19}\Z"))
def test_no_luhn_valid_number_survives(digits):
    masked = mask_pans(f"x{digits}y")
    assert (digits in masked) is not luhn_ok(digits)


def test_a_refused_record_never_echoes_the_full_card_number():
    rows = [record(0, masked_card="4000000000000002", merchant="paid with 5555555555554444")]
    with pytest.raises(FormatError) as err:
        parse_file(json.dumps(rows).encode(), "cb.json")
    text = str(err.value) + json.dumps(err.value.report())
    assert "4000000000000002" not in text and "400000******0002" in text
